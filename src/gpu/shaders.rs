//! The WGSL sources, each with the shared definitions of `common.wgsl.inc` prepended.

const COMMON: &str = include_str!("../../shaders/common.wgsl.inc");

/// Source of the gathered GEMMs (`step_gemm`, `dense_gemm`, `grad_gemm` and their
/// `*_direct` forms, `grad_gemm_quads` and `grad_gemm_narrow`): one module from four
/// files. `gather.wgsl.inc` holds the parameters, bindings, gathered operands and
/// output stores both forms share; `sources.wgsl.inc` the left operands, read only
/// (neither has an entry point); `staged.wgsl` the blocks staged through workgroup
/// memory; `direct.wgsl` the blocks read straight from the buffers.
pub const MATMUL: &str = concat!(
    include_str!("../../shaders/matmul/gather.wgsl.inc"),
    "\n",
    include_str!("../../shaders/matmul/sources.wgsl.inc"),
    "\n",
    include_str!("../../shaders/matmul/staged.wgsl"),
    "\n",
    include_str!("../../shaders/matmul/direct.wgsl"),
);
/// Source of the direct form's step GEMMs with the LSTM cell in their epilogue
/// (`step_cell_forward`, `step_cell_backward`, in `step_cell.wgsl`): the cell's
/// arithmetic, the direct GEMMs' files with the left operands read-write
/// (`sources_read_write.wgsl.inc`), and the kernels.
pub const MATMUL_CELL: &str = concat!(
    include_str!("../../shaders/cell_math.wgsl.inc"),
    "\n",
    include_str!("../../shaders/matmul/gather.wgsl.inc"),
    "\n",
    include_str!("../../shaders/matmul/sources_read_write.wgsl.inc"),
    "\n",
    include_str!("../../shaders/matmul/direct.wgsl"),
    "\n",
    include_str!("../../shaders/matmul/step_cell.wgsl"),
);
/// Source of the plain tiled GEMM (`tiled_gemm`), the ceiling of the benchmarks.
pub const GEMM: &str = include_str!("../../shaders/gemm.wgsl");
/// Source of the LSTM cell kernels (`cell_forward`, `cell_backward`): the cell's
/// arithmetic, shared with `MATMUL_CELL`, and the kernels.
pub const LSTM_CELL: &str = concat!(
    include_str!("../../shaders/cell_math.wgsl.inc"),
    "\n",
    include_str!("../../shaders/lstm_cell.wgsl"),
);
/// Source of the readout, threshold and loss (`readout_forward`, `loss_stats`).
pub const READOUT: &str = include_str!("../../shaders/readout.wgsl");
/// Source of the sparse input product (`sparse_gates`).
pub const SPARSE_INPUT: &str = include_str!("../../shaders/sparse_input.wgsl");
/// Source of the weight copies that the step GEMMs of `MATMUL_CELL` read
/// (`copy_weights`).
pub const WEIGHT_COPY: &str = include_str!("../../shaders/weight_copy.wgsl");
/// Source of the scheduler's next-step plan (`plan_next_step`).
pub const PLAN_STEP: &str = include_str!("../../shaders/plan_step.wgsl");
/// Source of the optimiser (`adam_step`).
pub const ADAM: &str = include_str!("../../shaders/adam.wgsl");

/// A complete shader: the common definitions followed by `body`.
pub fn with_common(body: &str) -> String {
    format!("{COMMON}\n{body}")
}

/// Every shader, named by file, ready to compile.
pub fn all() -> Vec<(&'static str, String)> {
    [
        ("matmul/*.wgsl", MATMUL),
        ("matmul/step_cell.wgsl", MATMUL_CELL),
        ("gemm.wgsl", GEMM),
        ("lstm_cell.wgsl", LSTM_CELL),
        ("readout.wgsl", READOUT),
        ("sparse_input.wgsl", SPARSE_INPUT),
        ("adam.wgsl", ADAM),
        ("weight_copy.wgsl", WEIGHT_COPY),
        ("plan_step.wgsl", PLAN_STEP),
    ]
    .into_iter()
    .map(|(name, body)| (name, with_common(body)))
    .collect()
}
