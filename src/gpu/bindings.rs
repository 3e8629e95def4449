//! Every kernel's binding table, in one place: for each slot the name of its WGSL
//! variable, its binding number and what it holds. `Kernel::new` builds the bind-group
//! layout from a table, `Kernel::bind` takes the buffers by these names, and
//! `tests/shaders_validate.rs` checks each table against naga's reflection of the
//! shader: every slot a variable of that name, number and access, and every variable
//! an entry point uses a slot of its table.

use super::kernel::Binding::{self, Params, Read, ReadWrite, Step};

/// One binding slot: the WGSL variable `name` at `@binding(binding)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub name: &'static str,
    pub binding: u32,
    pub kind: Binding,
}

const fn slot(name: &'static str, binding: u32, kind: Binding) -> Slot {
    Slot {
        name,
        binding,
        kind,
    }
}

/// The bindings of the entry points `entries` of the shader `shader` (named as in
/// `gpu::shaders::all`).
#[derive(Debug, Clone, Copy)]
pub struct Table {
    pub shader: &'static str,
    pub entries: &'static [&'static str],
    pub slots: &'static [Slot],
}

/// The slots of the gathered GEMMs.
const GATHERED: [Slot; 8] = [
    slot("p", 0, Params),
    slot("step", 1, Step),
    slot("src1", 2, Read),
    slot("src2", 3, Read),
    slot("weights", 4, Read),
    slot("rows", 5, Read),
    slot("tstar", 6, Read),
    slot("out", 7, ReadWrite),
];

/// The gathered GEMMs of both forms (`matmul/*.wgsl`).
pub const MATMUL: Table = Table {
    shader: "matmul/*.wgsl",
    entries: &[
        "step_gemm",
        "dense_gemm",
        "grad_gemm",
        "step_gemm_direct",
        "dense_gemm_direct",
        "grad_gemm_direct",
    ],
    slots: &GATHERED,
};

/// `step_cell_forward`: the gate GEMM's slots with its operands read-write, the
/// weight copies read as vec4s, and the cell's parameters and states.
pub const STEP_CELL_FORWARD: Table = Table {
    shader: "matmul/step_cell.wgsl",
    entries: &["step_cell_forward"],
    slots: &[
        slot("p", 0, Params),
        slot("step", 1, Step),
        slot("src1", 2, ReadWrite),
        slot("src2", 3, ReadWrite),
        slot("weights", 4, Read),
        slot("rows", 5, Read),
        slot("tstar", 6, Read),
        slot("out", 7, ReadWrite),
        slot("weights_kn", 10, Read),
        slot("cell", 11, Params),
        slot("gates_all", 12, ReadWrite),
        slot("c_all", 13, ReadWrite),
    ],
};

/// `step_cell_backward`: as [`STEP_CELL_FORWARD`], without the biases (`weights`) and
/// the sparse pre-activations (`out`), with the cell-state carry.
pub const STEP_CELL_BACKWARD: Table = Table {
    shader: "matmul/step_cell.wgsl",
    entries: &["step_cell_backward"],
    slots: &[
        slot("p", 0, Params),
        slot("step", 1, Step),
        slot("src1", 2, ReadWrite),
        slot("src2", 3, ReadWrite),
        slot("rows", 5, Read),
        slot("tstar", 6, Read),
        slot("weights_kn", 10, Read),
        slot("cell", 11, Params),
        slot("gates_all", 12, ReadWrite),
        slot("c_all", 13, ReadWrite),
        slot("dc_carry", 14, ReadWrite),
    ],
};

/// `grad_gemm_quads`: G and X read as vec4s.
pub const GRAD_GEMM_QUADS: Table = Table {
    shader: "matmul/*.wgsl",
    entries: &["grad_gemm_quads"],
    slots: &[
        slot("p", 0, Params),
        slot("step", 1, Step),
        slot("rows", 5, Read),
        slot("tstar", 6, Read),
        slot("out", 7, ReadWrite),
        slot("src1_quads", 8, Read),
        slot("src2_quads", 9, Read),
    ],
};

/// `grad_gemm_narrow`: G read as vec4s, X as it is.
pub const GRAD_GEMM_NARROW: Table = Table {
    shader: "matmul/*.wgsl",
    entries: &["grad_gemm_narrow"],
    slots: &[
        slot("p", 0, Params),
        slot("step", 1, Step),
        slot("src2", 3, Read),
        slot("rows", 5, Read),
        slot("tstar", 6, Read),
        slot("out", 7, ReadWrite),
        slot("src1_quads", 8, Read),
    ],
};

/// `tiled_gemm` (`gemm.wgsl`).
pub const TILED_GEMM: Table = Table {
    shader: "gemm.wgsl",
    entries: &["tiled_gemm"],
    slots: &[
        slot("p", 0, Params),
        slot("a", 1, Read),
        slot("b", 2, Read),
        slot("c", 3, ReadWrite),
    ],
};

/// The slots of `cell_backward`, and of `cell_forward` but the last.
const CELL: [Slot; 9] = [
    slot("p", 0, Params),
    slot("step", 1, Step),
    slot("scratch", 2, Read),
    slot("rows", 3, Read),
    slot("tstar", 4, Read),
    slot("gates_all", 5, ReadWrite),
    slot("c_all", 6, ReadWrite),
    slot("h_or_dgates", 7, ReadWrite),
    slot("dc_carry", 8, ReadWrite),
];

/// `cell_forward`: pre-activations in `scratch`, h written to `h_or_dgates`.
pub const CELL_FORWARD: Table = Table {
    shader: "lstm_cell.wgsl",
    entries: &["cell_forward"],
    slots: CELL.split_at(8).0,
};

/// `cell_backward`: dh in `scratch`, the gate deltas written to `h_or_dgates`.
pub const CELL_BACKWARD: Table = Table {
    shader: "lstm_cell.wgsl",
    entries: &["cell_backward"],
    slots: &CELL,
};

/// `readout_forward`: logits, the threshold and the loss step.
pub const READOUT_FORWARD: Table = Table {
    shader: "readout.wgsl",
    entries: &["readout_forward"],
    slots: &[
        slot("p", 0, Params),
        slot("step", 1, Step),
        slot("weights", 2, Read),
        slot("h_all", 3, Read),
        slot("rows", 4, Read),
        slot("logits", 6, ReadWrite),
        slot("tstar", 7, ReadWrite),
        slot("first_spike", 8, ReadWrite),
    ],
};

/// `loss_stats`: the loss, dL/dz, the decisions and the batch sums.
pub const LOSS_STATS: Table = Table {
    shader: "readout.wgsl",
    entries: &["loss_stats"],
    slots: &[
        slot("p", 0, Params),
        slot("step", 1, Step),
        slot("labels", 5, Read),
        slot("logits", 6, ReadWrite),
        slot("tstar", 7, ReadWrite),
        slot("first_spike", 8, ReadWrite),
        slot("dz", 9, ReadWrite),
        slot("decisions", 10, ReadWrite),
        slot("stats", 11, ReadWrite),
    ],
};

/// `sparse_gates`: layer 0's input part of the gates from CSR lists.
pub const SPARSE_GATES: Table = Table {
    shader: "sparse_input.wgsl",
    entries: &["sparse_gates"],
    slots: &[
        slot("p", 0, Params),
        slot("step", 1, Step),
        slot("offsets", 2, Read),
        slot("indices", 3, Read),
        slot("values", 4, Read),
        slot("weights", 5, Read),
        slot("rows", 6, Read),
        slot("tstar", 7, Read),
        slot("out", 8, ReadWrite),
    ],
};

/// `sparse_weight_grad`: layer 0's input weight gradient from CSC lists.
pub const SPARSE_WEIGHT_GRAD: Table = Table {
    shader: "sparse_input.wgsl",
    entries: &["sparse_weight_grad"],
    slots: &[
        slot("p", 0, Params),
        slot("col_offsets", 2, Read),
        slot("col_pairs", 3, Read),
        slot("col_values", 4, Read),
        slot("dgates", 5, Read),
        slot("grads", 8, ReadWrite),
    ],
};

/// `grad_sq_norm`: the squared global gradient norm, for clipping.
pub const GRAD_SQ_NORM: Table = Table {
    shader: "adam.wgsl",
    entries: &["grad_sq_norm"],
    slots: &[
        slot("a", 0, Params),
        slot("norm_parts", 6, ReadWrite),
        slot("grad_quads", 8, Read),
    ],
};

/// `grad_norm_total`: |g|^2 from `grad_sq_norm`'s partial sums.
pub const GRAD_NORM_TOTAL: Table = Table {
    shader: "adam.wgsl",
    entries: &["grad_norm_total"],
    slots: &[
        slot("norm_parts", 6, ReadWrite),
        slot("grad_norm_sq", 7, ReadWrite),
    ],
};

/// `adam_step`.
pub const ADAM_STEP: Table = Table {
    shader: "adam.wgsl",
    entries: &["adam_step"],
    slots: &[
        slot("a", 0, Params),
        slot("grads", 2, Read),
        slot("params", 3, ReadWrite),
        slot("m", 4, ReadWrite),
        slot("v", 5, ReadWrite),
        slot("grad_norm_sq", 7, ReadWrite),
    ],
};

/// `copy_weights`: the weight copies that `step_cell_forward` and `step_cell_backward`
/// read.
pub const COPY_WEIGHTS: Table = Table {
    shader: "weight_copy.wgsl",
    entries: &["copy_weights"],
    slots: &[
        slot("p", 0, Params),
        slot("src", 1, Read),
        slot("dst", 2, ReadWrite),
    ],
};

/// `plan_next_step`: the next step's row list and workgroup counts, on the GPU.
pub const PLAN_NEXT_STEP: Table = Table {
    shader: "plan_step.wgsl",
    entries: &["plan_next_step"],
    slots: &[
        slot("p", 0, Params),
        slot("step", 1, Step),
        slot("rows", 2, ReadWrite),
        slot("tstar", 3, Read),
        slot("grid_rules", 4, Read),
        slot("grids", 5, ReadWrite),
    ],
};

/// Every table, for the check against the shaders.
pub const ALL: [Table; 17] = [
    MATMUL,
    STEP_CELL_FORWARD,
    STEP_CELL_BACKWARD,
    GRAD_GEMM_QUADS,
    GRAD_GEMM_NARROW,
    TILED_GEMM,
    CELL_FORWARD,
    CELL_BACKWARD,
    READOUT_FORWARD,
    LOSS_STATS,
    SPARSE_GATES,
    SPARSE_WEIGHT_GRAD,
    GRAD_SQ_NORM,
    GRAD_NORM_TOTAL,
    ADAM_STEP,
    COPY_WEIGHTS,
    PLAN_NEXT_STEP,
];
