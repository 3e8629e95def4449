//! Every GPU resource a model needs, created once for a batch and step capacity:
//! buffers, pipelines and bind groups. Nothing here is created per step or per batch.

use super::step_plan::ForwardGrids;
use crate::error::{Error, Result};
use crate::gpu::bindings::{self, MATMUL, Table};
use crate::gpu::context::STORAGE_BUFFERS_DIRECT;
use crate::gpu::kernel::groups_for;
use crate::gpu::kernel::{Kernel, module};
use crate::gpu::matmul::{self, GemmShapes, StepQuadsShape};
use crate::gpu::structs::{
    CellParams, CopyParams, GemmParams, GridRule, PlanParams, Source, SparseParams, Weight,
    validity,
};
use crate::gpu::{GpuContext, shaders};
use crate::model::{ModelConfig, ParamLayout};
use wgpu::util::DeviceExt;

/// The largest batch and sequence length a workspace holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    pub batch: usize,
    pub steps: usize,
}

/// Batch sums written by `loss_stats`: loss, correct, fired, steps processed,
/// decision steps, end-of-sequence correct, end-of-sequence rows, unused.
pub const STATS: usize = 8;

/// The partial sums of |g|^2 that `grad_sq_norm` writes and `grad_norm_total` adds
/// up (`NORM_PARTS` in adam.wgsl).
pub(crate) const NORM_PARTS: usize = 256;

/// Element offsets into the per-layer state buffers.
pub(crate) struct StateLayout {
    cap: Capacity,
    hidden: usize,
}

impl StateLayout {
    /// Base of layer k in h_all / c_all ([T, B, H] per layer).
    pub fn state(&self, k: usize) -> usize {
        k * self.cap.steps * self.cap.batch * self.hidden
    }
    /// Base of layer k in gates_all / dgates_all ([T, B, 4H] per layer).
    pub fn gates(&self, k: usize) -> usize {
        4 * self.state(k)
    }
}

/// Where the weight copies that the direct form's step GEMMs (`step_cell_forward`,
/// `step_cell_backward`) read lie in `Buffers::weights_kn`, each in [K][N] layout with
/// rows that start at multiples of 4 elements. Per layer, in order:
/// - `gates`: the forward gate GEMM's `W_ih^T` ([I][4H]; left zero on layer 0 with
///   sparse input, whose input part `sparse_gates` computes from the parameters)
///   followed by `W_hh^T` ([H][4H]), the gates interleaved: column 4u + g holds gate g
///   of unit u;
/// - `dh`: the dh GEMM's `W_hh` ([4H][H]) followed by the weights from above: the next
///   layer's `W_ih` ([4H][H]) or, on the top layer, the readout's ([C][H]); rows of
///   `dh_row` (H rounded up to a multiple of 4; the padding stays zero). Only where H
///   is not a multiple of 4: otherwise each of those rows already starts at a multiple
///   of 4 elements in the parameters, and the dh GEMM reads them there.
pub struct WeightCopies {
    pub layers: Vec<LayerCopies>,
    pub dh_row: usize,
    /// Elements of the whole buffer.
    pub len: usize,
}

/// One layer's copies in [`WeightCopies`].
#[derive(Debug, Clone, Copy)]
pub struct LayerCopies {
    pub gates: usize,
    /// None where the dh GEMM reads its weights from the parameters.
    pub dh: Option<usize>,
}

impl WeightCopies {
    pub fn new(cfg: &ModelConfig) -> Self {
        let (h, l) = (cfg.hidden_size, cfg.layers);
        let dh_row = h.next_multiple_of(4);
        let copy_dh = !Self::dh_weights_in_quads(cfg);
        let mut layers = Vec::with_capacity(l);
        let mut end = 0;
        for k in 0..l {
            let gates = end;
            end = gates + (cfg.layer_input(k) + h) * 4 * h;
            let dh = copy_dh.then_some(end);
            if copy_dh {
                let above = if k + 1 < l { 4 * h } else { cfg.classes };
                end += (4 * h + above) * dh_row;
            }
            layers.push(LayerCopies { gates, dh });
        }
        WeightCopies {
            layers,
            dh_row,
            len: end,
        }
    }

    /// Whether every row of the dh GEMMs' weights (each layer's `W_hh`, the next
    /// layer's `W_ih`, the readout's) starts at a multiple of 4 elements in the
    /// parameters, so that the dh GEMM reads them there in vec4s: where H is a
    /// multiple of 4.
    pub fn dh_weights_in_quads(cfg: &ModelConfig) -> bool {
        let layout = ParamLayout::new(cfg);
        let mut bases = layout.layers.iter().flat_map(|lo| [lo.w_ih, lo.w_hh]);
        cfg.hidden_size.is_multiple_of(4)
            && bases.all(|base| base.is_multiple_of(4))
            && layout.readout_w.is_multiple_of(4)
    }
}

pub(crate) struct Buffers {
    pub params: wgpu::Buffer,
    /// The weights of the gate and dh GEMMs in [K][N] layout (see [`WeightCopies`]),
    /// for the direct form's step GEMMs; empty in the staged form.
    pub weights_kn: wgpu::Buffer,
    pub grads: wgpu::Buffer,
    pub adam_m: wgpu::Buffer,
    pub adam_v: wgpu::Buffer,
    /// For clipping: `grad_sq_norm`'s partial sums of |g|^2, and |g|^2.
    pub grad_norm_parts: wgpu::Buffer,
    pub grad_norm_sq: wgpu::Buffer,
    pub x: wgpu::Buffer,
    pub labels: wgpu::Buffer,
    pub h_all: wgpu::Buffer,
    pub c_all: wgpu::Buffer,
    pub gates_all: wgpu::Buffer,
    pub dgates_all: wgpu::Buffer,
    pub logits: wgpu::Buffer,
    pub gates_pre: wgpu::Buffer,
    pub dh: wgpu::Buffer,
    pub dc_carry: wgpu::Buffer,
    pub dz: wgpu::Buffer,
    pub rows: wgpu::Buffer,
    pub tstar: wgpu::Buffer,
    pub first_spike: wgpu::Buffer,
    /// Sparse layer-0 input (CSR over (step, row)): offsets, input indices, values.
    pub csr_offsets: wgpu::Buffer,
    pub csr_indices: wgpu::Buffer,
    pub csr_values: wgpu::Buffer,
    /// The same nonzeros of the processed pairs grouped by input (CSC): offsets, pairs, values.
    pub csc_offsets: wgpu::Buffer,
    pub csc_pairs: wgpu::Buffer,
    pub csc_values: wgpu::Buffer,
    /// Batch sums (see [`STATS`]).
    pub stats: wgpu::Buffer,
    /// (decision step, prediction) per row.
    pub decisions: wgpu::Buffer,
    /// `Step` slots: forward steps, backward steps, loss-step pairs, all pairs.
    pub steps: wgpu::Buffer,
    pub readout_params: wgpu::Buffer,
    pub adam_params: wgpu::Buffer,
    /// MAP_READ buffer large enough for any readback.
    pub staging: wgpu::Buffer,
    /// A second MAP_READ buffer of one u32 a row: the scheduler reads the loss steps
    /// of one chunk from it while the next chunk runs (docs/design.md, 'The scheduler').
    pub staging_next: wgpu::Buffer,
    /// The forward step's grid rules ([`ForwardGrids`]), and the workgroup counts that
    /// `plan_next_step` writes from them for the next step: 3 u32s a rule, for steps
    /// of even and of odd t, dispatched indirectly.
    pub grid_rules: wgpu::Buffer,
    pub grids: wgpu::Buffer,
    pub plan_params: wgpu::Buffer,
}

impl Buffers {
    /// Bytes of GPU memory the workspace holds (the stored prefix and everything else).
    pub fn total_bytes(&self) -> u64 {
        [
            &self.params,
            &self.weights_kn,
            &self.grads,
            &self.adam_m,
            &self.adam_v,
            &self.grad_norm_parts,
            &self.grad_norm_sq,
            &self.x,
            &self.labels,
            &self.h_all,
            &self.c_all,
            &self.gates_all,
            &self.dgates_all,
            &self.logits,
            &self.gates_pre,
            &self.dh,
            &self.dc_carry,
            &self.dz,
            &self.rows,
            &self.tstar,
            &self.first_spike,
            &self.csr_offsets,
            &self.csr_indices,
            &self.csr_values,
            &self.csc_offsets,
            &self.csc_pairs,
            &self.csc_values,
            &self.stats,
            &self.decisions,
            &self.steps,
            &self.readout_params,
            &self.adam_params,
            &self.staging,
            &self.staging_next,
            &self.grid_rules,
            &self.grids,
            &self.plan_params,
        ]
        .iter()
        .map(|b| b.size())
        .sum()
    }
}

pub(crate) struct Kernels {
    /// `step_gemm` in its wide blocks, and in narrow ones for steps with few live rows.
    pub step_gemm: Kernel,
    pub step_gemm_narrow: Kernel,
    /// The blocks of `step_gemm` (and of `grad_gemm`: `wide`) and of `step_gemm_narrow`.
    pub gemm_shapes: GemmShapes,
    pub grad_gemm: Kernel,
    /// `grad_gemm_quads`, for the direct form's input weight gradients whose operands
    /// read in vec4s.
    pub grad_gemm_quads: Option<Kernel>,
    /// `grad_gemm_narrow`, for the direct form's input weight gradients of few columns.
    pub grad_gemm_narrow: Option<Kernel>,
    /// The direct form's step GEMMs with the cell in their epilogue, in wide and
    /// narrow blocks: `step_cell_forward` (the gate GEMM, `StepQuadsShape::GATES`)
    /// and `step_cell_backward` (the dh GEMM, `StepQuadsShape::DH`).
    pub cell_forward_gemm: Option<QuadsKernels>,
    pub cell_backward_gemm: Option<QuadsKernels>,
    /// `copy_weights`: the weight copies that those read.
    pub weight_copy: Kernel,
    pub cell_forward: Kernel,
    pub cell_backward: Kernel,
    pub readout_forward: Kernel,
    pub loss_stats: Kernel,
    pub grad_sq_norm: Kernel,
    pub grad_norm_total: Kernel,
    pub adam: Kernel,
    pub plan_next_step: Kernel,
    pub sparse_gates: Kernel,
    pub sparse_weight_grad: Kernel,
}

/// A step GEMM of `matmul/step_cell.wgsl` in a wide and a narrow shape.
pub(crate) struct QuadsKernels {
    pub wide: Kernel,
    pub narrow: Kernel,
    pub shapes: [StepQuadsShape; 2],
}

impl QuadsKernels {
    /// The grid rules of the wide and the narrow kernel over `cols` output columns.
    pub fn rules(&self, cols: usize) -> [GridRule; 2] {
        StepQuadsShape::rules(self.shapes, cols)
    }

    fn new(
        ctx: &GpuContext,
        module: &wgpu::ShaderModule,
        (entry, table): (&'static str, &'static Table),
        shapes: [StepQuadsShape; 2],
    ) -> Self {
        let wide = Kernel::with_constants(ctx, module, entry, table, &shapes[0].constants());
        let narrow = wide.variant(ctx, module, entry, &shapes[1].constants());
        QuadsKernels {
            wide,
            narrow,
            shapes,
        }
    }
}

pub(crate) struct LayerBinds {
    pub gates_forward: wgpu::BindGroup,
    /// The gate and dh GEMMs with the cell in their epilogue, reading the weight
    /// copies (direct form).
    pub cell_forward_gemm: Option<wgpu::BindGroup>,
    pub cell_backward_gemm: Option<wgpu::BindGroup>,
    pub cell_forward: wgpu::BindGroup,
    pub dh_backward: wgpu::BindGroup,
    pub cell_backward: wgpu::BindGroup,
    pub grad_ih: wgpu::BindGroup,
    /// `grad_ih` bound to `grad_gemm_quads`, where its operands read in vec4s.
    pub grad_ih_quads: Option<wgpu::BindGroup>,
    /// `grad_ih` bound to `grad_gemm_narrow`, where it has at most
    /// `NARROW_GRAD_COLUMNS` columns and G's rows read in vec4s.
    pub grad_ih_narrow: Option<wgpu::BindGroup>,
    pub grad_hh: wgpu::BindGroup,
}

pub(crate) struct Binds {
    pub layers: Vec<LayerBinds>,
    /// The dispatches that refresh the weight copies of the direct form's step GEMMs,
    /// four a layer (three on layer 0 with sparse input); none in the staged form.
    pub weight_copies: Vec<(wgpu::BindGroup, [u32; 3])>,
    /// Layer 0's sparse input product and weight gradient, when the engine takes
    /// sparse inputs.
    pub sparse_gates: Option<wgpu::BindGroup>,
    pub sparse_weight_grad: Option<wgpu::BindGroup>,
    pub readout_forward: wgpu::BindGroup,
    pub loss_stats: wgpu::BindGroup,
    pub grad_readout: wgpu::BindGroup,
    pub grad_sq_norm: wgpu::BindGroup,
    pub grad_norm_total: wgpu::BindGroup,
    pub adam: wgpu::BindGroup,
    pub plan_next_step: wgpu::BindGroup,
}

/// Indices of the `Step` slots.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Slots {
    cap: Capacity,
    /// Bytes between slots (the adapter's storage offset alignment).
    pub stride: u32,
}

impl Slots {
    pub fn forward(&self, t: usize) -> usize {
        t
    }
    pub fn backward(&self, t: usize) -> usize {
        self.cap.steps + t
    }
    pub fn loss_steps(&self) -> usize {
        2 * self.cap.steps
    }
    pub fn all_pairs(&self) -> usize {
        2 * self.cap.steps + 1
    }
    /// The pairs of steps 1 and later: the recurrent weight gradient's, since
    /// h_{-1} = 0 makes the pairs of step 0 add nothing to it.
    pub fn recurrent_pairs(&self) -> usize {
        2 * self.cap.steps + 2
    }
    pub fn count(&self) -> usize {
        2 * self.cap.steps + 3
    }
    pub fn offset(&self, slot: usize) -> u32 {
        slot as u32 * self.stride
    }
}

/// Element offsets of the regions of the `rows` buffer.
pub(crate) struct RowRegions {
    /// The forward steps' row lists: steps of even t read the first, steps of odd t
    /// the second (`plan_next_step` writes one from the other).
    pub forward: [usize; 2],
    pub loss_steps: usize,
    pub replay: usize,
    pub total: usize,
}

impl RowRegions {
    pub fn new(cap: Capacity) -> Self {
        RowRegions {
            forward: [0, cap.batch],
            loss_steps: 2 * cap.batch,
            replay: 3 * cap.batch,
            total: (cap.steps + 3) * cap.batch,
        }
    }

    /// The row list of forward step `t`.
    pub fn forward(&self, t: usize) -> usize {
        self.forward[t % 2]
    }
}

pub(crate) struct Workspace {
    pub buf: Buffers,
    pub kernels: Kernels,
    pub binds: Binds,
    pub slots: Slots,
    pub regions: RowRegions,
    pub grids: ForwardGrids,
}

fn storage(ctx: &GpuContext, label: &str, bytes: usize, extra: wgpu::BufferUsages) -> wgpu::Buffer {
    ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: bytes.max(4) as u64,
        usage: wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_DST
            | wgpu::BufferUsages::COPY_SRC
            | extra,
        mapped_at_creation: false,
    })
}

/// A kernel's parameter struct, in a small read-only storage buffer.
fn params_buffer<T: bytemuck::Pod>(ctx: &GpuContext, label: &str, value: &T) -> wgpu::Buffer {
    ctx.device
        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents: bytemuck::bytes_of(value),
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
        })
}

impl Workspace {
    pub fn new(
        ctx: &GpuContext,
        cfg: &ModelConfig,
        cap: Capacity,
        sparse_input: bool,
        recurrent_block: usize,
    ) -> Result<Self> {
        let layout = ParamLayout::new(cfg);
        let (h, c, l) = (cfg.hidden_size, cfg.classes, cfg.layers);
        let per_layer_state = cap.steps * cap.batch * h;
        let regions = RowRegions::new(cap);
        let stride = ctx.limits.min_storage_buffer_offset_alignment.max(16);
        let slots = Slots { cap, stride };
        let f = 4; // bytes per f32 / u32
        let storage_buffers = ctx.limits.max_storage_buffers_per_shader_stage;
        if ctx.direct_gemm && storage_buffers < STORAGE_BUFFERS_DIRECT {
            return Err(Error::AdapterLimit {
                adapter: ctx.info.name.clone(),
                problem: format!(
                    "the direct form's step GEMMs bind {STORAGE_BUFFERS_DIRECT} storage buffers a \
                     stage, the device {storage_buffers}; leave `direct_gemm` as the context set it"
                ),
            });
        }
        // The weight copies, which the direct form's step GEMMs read.
        let copy_len = if ctx.direct_gemm {
            WeightCopies::new(cfg).len
        } else {
            0
        };
        // With sparse input layer 0 reads the CSR lists, never the dense inputs: one
        // vec4 stands in for them. The nonzero inputs of a batch: to start with, room
        // for the events of a temporal-coded batch, one per input and sequence; they
        // grow when a batch has more (`Workspace::reserve_nonzeros`).
        let (input_bytes, nonzero_bytes) = if sparse_input {
            (16, cap.batch * cfg.input_size * f)
        } else {
            (cap.steps * cap.batch * cfg.input_size * f, 0)
        };
        let state_bytes = l * per_layer_state * f;
        let gate_bytes = 4 * state_bytes;
        let logit_bytes = cap.steps * cap.batch * c * f;
        let sizes = [
            ("parameters", layout.total * f),
            ("inputs", input_bytes),
            ("hidden states", state_bytes),
            ("gate activations", gate_bytes),
            ("logits", logit_bytes),
            ("row lists", regions.total * f),
            ("sparse inputs", nonzero_bytes),
            ("weight copies", copy_len * f),
        ];
        let max_binding = ctx
            .limits
            .max_storage_buffer_binding_size
            .min(ctx.limits.max_buffer_size);
        for (what, bytes) in sizes {
            if bytes as u64 > max_binding || bytes >= u32::MAX as usize {
                return Err(Error::AdapterLimit {
                    adapter: ctx.info.name.clone(),
                    problem: format!(
                        "the {what} buffer needs {bytes} bytes for batch {} x {} steps, the limit is {max_binding}; \
                         use a smaller batch, model or sequence length",
                        cap.batch, cap.steps
                    ),
                });
            }
        }
        // copy_weights dispatches one workgroup row per row of a copy: I or 4H of them.
        let copy_rows = (0..l).map(|k| cfg.layer_input(k)).chain([4 * h]).max();
        let max_groups = ctx.limits.max_compute_workgroups_per_dimension as usize;
        if ctx.direct_gemm && copy_rows.is_some_and(|rows| rows > max_groups) {
            return Err(Error::AdapterLimit {
                adapter: ctx.info.name.clone(),
                problem: format!(
                    "a layer's {} inputs or 4 x {h} gate rows exceed the {max_groups} workgroups a dispatch \
                     dimension allows; use a narrower model",
                    cfg.layer_input(0)
                ),
            });
        }
        let none = wgpu::BufferUsages::empty();
        let results_len = STATS + 2 * cap.batch;
        // Any readback: parameters, results, logits, the weight copies (tests).
        let staging_bytes = [
            layout.total,
            results_len,
            cap.steps * cap.batch * c,
            copy_len,
        ]
        .into_iter()
        .max()
        .unwrap()
            * f;
        // The flat buffers, padded with zeros to a multiple of 4 elements:
        // grad_sq_norm reads the gradients in vec4s (adam.wgsl).
        let flat_bytes = layout.total.next_multiple_of(4) * f;
        let kernels = Kernels::new(ctx);
        let grids = ForwardGrids::new(cfg, &kernels);
        let plan = PlanParams {
            region_a: regions.forward[0] as u32,
            region_b: regions.forward[1] as u32,
            rules: grids.rules.len() as u32,
            _pad: 0,
        };
        let buf = Buffers {
            params: storage(ctx, "params", flat_bytes, none),
            weights_kn: storage(ctx, "weights_kn", copy_len * f, none),
            grads: storage(ctx, "grads", flat_bytes, none),
            adam_m: storage(ctx, "adam_m", flat_bytes, none),
            adam_v: storage(ctx, "adam_v", flat_bytes, none),
            grad_norm_parts: storage(ctx, "grad_norm_parts", NORM_PARTS * f, none),
            grad_norm_sq: storage(ctx, "grad_norm_sq", f, none),
            x: storage(ctx, "x", input_bytes, none),
            labels: storage(ctx, "labels", cap.batch * f, none),
            h_all: storage(ctx, "h_all", state_bytes, none),
            c_all: storage(ctx, "c_all", state_bytes, none),
            gates_all: storage(ctx, "gates_all", gate_bytes, none),
            dgates_all: storage(ctx, "dgates_all", gate_bytes, none),
            logits: storage(ctx, "logits", logit_bytes, none),
            gates_pre: storage(ctx, "gates_pre", cap.batch * 4 * h * f, none),
            dh: storage(ctx, "dh", cap.batch * h * f, none),
            dc_carry: storage(ctx, "dc_carry", l * cap.batch * h * f, none),
            dz: storage(ctx, "dz", logit_bytes, none),
            rows: storage(ctx, "rows", regions.total * f, none),
            tstar: storage(ctx, "tstar", cap.batch * f, none),
            first_spike: storage(ctx, "first_spike", cap.batch * f, none),
            csr_offsets: storage(
                ctx,
                "csr_offsets",
                if sparse_input {
                    (cap.steps * cap.batch + 1) * f
                } else {
                    0
                },
                none,
            ),
            csr_indices: storage(ctx, "csr_indices", nonzero_bytes, none),
            csr_values: storage(ctx, "csr_values", nonzero_bytes, none),
            csc_offsets: storage(
                ctx,
                "csc_offsets",
                if sparse_input {
                    (cfg.input_size + 1) * f
                } else {
                    0
                },
                none,
            ),
            csc_pairs: storage(ctx, "csc_pairs", nonzero_bytes, none),
            csc_values: storage(ctx, "csc_values", nonzero_bytes, none),
            stats: storage(ctx, "stats", STATS * f, none),
            decisions: storage(ctx, "decisions", 2 * cap.batch * f, none),
            steps: ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("steps"),
                size: (slots.count() as u32 * stride) as u64,
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }),
            readout_params: params_buffer(
                ctx,
                "readout_params",
                &crate::gpu::structs::ReadoutParams::default(),
            ),
            adam_params: params_buffer(
                ctx,
                "adam_params",
                &crate::gpu::structs::AdamParams::default(),
            ),
            staging: ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("staging"),
                size: staging_bytes as u64,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }),
            staging_next: ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("staging_next"),
                size: (cap.batch * 4) as u64,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }),
            grid_rules: ctx
                .device
                .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some("grid_rules"),
                    contents: bytemuck::cast_slice(&grids.planned_rules()),
                    // COPY_DST: the kernel's test gives it other rules.
                    usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
                }),
            grids: storage(
                ctx,
                "grids",
                2 * grids.rules.len() * 12,
                wgpu::BufferUsages::INDIRECT,
            ),
            plan_params: params_buffer(ctx, "plan_params", &plan),
        };
        let binds = Binds::new(ctx, cfg, cap, sparse_input, recurrent_block, &buf, &kernels);
        Ok(Workspace {
            buf,
            kernels,
            binds,
            slots,
            regions,
            grids,
        })
    }
}

impl Kernels {
    fn new(ctx: &GpuContext) -> Self {
        let matmul = module(ctx, "matmul/*.wgsl", shaders::MATMUL);
        let cell = module(ctx, "lstm_cell.wgsl", shaders::LSTM_CELL);
        let readout = module(ctx, "readout.wgsl", shaders::READOUT);
        let adam = module(ctx, "adam.wgsl", shaders::ADAM);
        let sparse = module(ctx, "sparse_input.wgsl", shaders::SPARSE_INPUT);
        let copy = module(ctx, "weight_copy.wgsl", shaders::WEIGHT_COPY);
        let (step_entry, grad_entry) = if ctx.direct_gemm {
            ("step_gemm_direct", "grad_gemm_direct")
        } else {
            ("step_gemm", "grad_gemm")
        };
        let gemm_shapes = GemmShapes::of_form(ctx.direct_gemm);
        let GemmShapes { wide, narrow } = gemm_shapes;
        let step_gemm =
            Kernel::with_constants(ctx, &matmul, step_entry, &MATMUL, &wide.constants());
        let step_gemm_narrow = step_gemm.variant(ctx, &matmul, step_entry, &narrow.constants());
        let matmul_cell = ctx
            .direct_gemm
            .then(|| module(ctx, "matmul/step_cell.wgsl", shaders::MATMUL_CELL));
        let quads = |kernel, shapes| {
            let module = matmul_cell.as_ref()?;
            Some(QuadsKernels::new(ctx, module, kernel, shapes))
        };
        Kernels {
            step_gemm,
            step_gemm_narrow,
            gemm_shapes,
            cell_forward_gemm: quads(
                ("step_cell_forward", &bindings::STEP_CELL_FORWARD),
                StepQuadsShape::GATES,
            ),
            cell_backward_gemm: quads(
                ("step_cell_backward", &bindings::STEP_CELL_BACKWARD),
                StepQuadsShape::DH,
            ),
            weight_copy: Kernel::new(ctx, &copy, "copy_weights", &bindings::COPY_WEIGHTS),
            grad_gemm: Kernel::with_constants(ctx, &matmul, grad_entry, &MATMUL, &wide.constants()),
            grad_gemm_quads: ctx
                .direct_gemm
                .then(|| Kernel::new(ctx, &matmul, "grad_gemm_quads", &bindings::GRAD_GEMM_QUADS)),
            grad_gemm_narrow: ctx.direct_gemm.then(|| {
                Kernel::new(
                    ctx,
                    &matmul,
                    "grad_gemm_narrow",
                    &bindings::GRAD_GEMM_NARROW,
                )
            }),
            cell_forward: Kernel::new(ctx, &cell, "cell_forward", &bindings::CELL_FORWARD),
            cell_backward: Kernel::new(ctx, &cell, "cell_backward", &bindings::CELL_BACKWARD),
            readout_forward: Kernel::new(
                ctx,
                &readout,
                "readout_forward",
                &bindings::READOUT_FORWARD,
            ),
            loss_stats: Kernel::new(ctx, &readout, "loss_stats", &bindings::LOSS_STATS),
            sparse_gates: Kernel::new(ctx, &sparse, "sparse_gates", &bindings::SPARSE_GATES),
            sparse_weight_grad: Kernel::new(
                ctx,
                &sparse,
                "sparse_weight_grad",
                &bindings::SPARSE_WEIGHT_GRAD,
            ),
            grad_sq_norm: Kernel::new(ctx, &adam, "grad_sq_norm", &bindings::GRAD_SQ_NORM),
            grad_norm_total: Kernel::new(ctx, &adam, "grad_norm_total", &bindings::GRAD_NORM_TOTAL),
            adam: Kernel::new(ctx, &adam, "adam_step", &bindings::ADAM_STEP),
            plan_next_step: Kernel::new(
                ctx,
                &module(ctx, "plan_step.wgsl", shaders::PLAN_STEP),
                "plan_next_step",
                &bindings::PLAN_NEXT_STEP,
            ),
        }
    }
}

/// Layer 0's sparse input product and weight gradient, bound to the CSR and CSC lists
/// of `buf`.
fn sparse_binds(
    ctx: &GpuContext,
    cfg: &ModelConfig,
    cap: Capacity,
    buf: &Buffers,
    k: &Kernels,
) -> (wgpu::BindGroup, wgpu::BindGroup) {
    let params = params_buffer(
        ctx,
        "sparse_params",
        &SparseParams {
            cols: (4 * cfg.hidden_size) as u32,
            input: cfg.input_size as u32,
            w_base: ParamLayout::new(cfg).layers[0].w_ih as u32,
            batch_stride: cap.batch as u32,
        },
    );
    let gates = k.sparse_gates.bind(
        ctx,
        &[
            ("p", &params),
            ("step", &buf.steps),
            ("offsets", &buf.csr_offsets),
            ("indices", &buf.csr_indices),
            ("values", &buf.csr_values),
            ("weights", &buf.params),
            ("rows", &buf.rows),
            ("tstar", &buf.tstar),
            ("out", &buf.gates_pre),
        ],
    );
    let grad = k.sparse_weight_grad.bind(
        ctx,
        &[
            ("p", &params),
            ("col_offsets", &buf.csc_offsets),
            ("col_pairs", &buf.csc_pairs),
            ("col_values", &buf.csc_values),
            ("dgates", &buf.dgates_all),
            ("grads", &buf.grads),
        ],
    );
    (gates, grad)
}

impl Workspace {
    /// Nonzero inputs the sparse lists hold.
    pub fn nonzero_capacity(&self) -> usize {
        self.buf.csr_indices.size() as usize / 4
    }

    /// Makes room in the sparse lists (CSR and CSC) for a batch of `nonzeros` nonzero
    /// inputs: they grow to at least twice their size, and layer 0's sparse bind groups
    /// are made again. A size past the adapter's limit is an error that says so.
    pub fn reserve_nonzeros(
        &mut self,
        ctx: &GpuContext,
        cfg: &ModelConfig,
        cap: Capacity,
        nonzeros: usize,
    ) -> Result<()> {
        let have = self.nonzero_capacity();
        if nonzeros <= have {
            return Ok(());
        }
        let bytes = nonzeros.max(2 * have) * 4;
        let max_binding = ctx
            .limits
            .max_storage_buffer_binding_size
            .min(ctx.limits.max_buffer_size);
        if bytes as u64 > max_binding {
            return Err(Error::AdapterLimit {
                adapter: ctx.info.name.clone(),
                problem: format!(
                    "a batch of {nonzeros} nonzero inputs needs {bytes} bytes of sparse lists, the limit is {max_binding}; \
                     use a smaller batch"
                ),
            });
        }
        let none = wgpu::BufferUsages::empty();
        let buf = &mut self.buf;
        buf.csr_indices = storage(ctx, "csr_indices", bytes, none);
        buf.csr_values = storage(ctx, "csr_values", bytes, none);
        buf.csc_pairs = storage(ctx, "csc_pairs", bytes, none);
        buf.csc_values = storage(ctx, "csc_values", bytes, none);
        let (gates, grad) = sparse_binds(ctx, cfg, cap, &self.buf, &self.kernels);
        self.binds.sparse_gates = Some(gates);
        self.binds.sparse_weight_grad = Some(grad);
        Ok(())
    }
}

impl Binds {
    fn new(
        ctx: &GpuContext,
        cfg: &ModelConfig,
        cap: Capacity,
        sparse_input: bool,
        recurrent_block: usize,
        buf: &Buffers,
        k: &Kernels,
    ) -> Self {
        let layout = ParamLayout::new(cfg);
        let (h, c, l) = (cfg.hidden_size, cfg.classes, cfg.layers);
        let b = cap.batch;
        let st = StateLayout { cap, hidden: h };
        let gemm = |label: &str,
                    kernel: &Kernel,
                    p: GemmParams,
                    src1: &wgpu::Buffer,
                    src2: &wgpu::Buffer,
                    out: &wgpu::Buffer| {
            let params = params_buffer(ctx, label, &p);
            kernel.bind(
                ctx,
                &[
                    ("p", &params),
                    ("step", &buf.steps),
                    ("src1", src1),
                    ("src2", src2),
                    ("weights", &buf.params),
                    ("rows", &buf.rows),
                    ("tstar", &buf.tstar),
                    ("out", out),
                ],
            )
        };
        let gates_of = |k: usize| Source::per_step(st.gates(k), b, 4 * h, 0, validity::ALWAYS);
        let h_of = |k: usize, step_offset: i32| {
            Source::per_step(st.state(k), b, h, step_offset, validity::ALWAYS)
        };
        let x_src = Source::per_step(0, b, cfg.input_size, 0, validity::ALWAYS);
        // dL/dz at step s, zero at the steps of a row without a loss (`loss_stats`).
        let dz_of = |validity| Source::per_step(0, b, cfg.classes, 0, validity);
        let copies = WeightCopies::new(cfg);
        let layers = (0..l)
            .map(|kk| {
                let lo = layout.layers[kk];
                let input = cfg.layer_input(kk);
                let cell = params_buffer(
                    ctx,
                    "cell_params",
                    &CellParams {
                        hidden: h as u32,
                        batch_stride: b as u32,
                        state_base: st.state(kk) as u32,
                        gates_base: st.gates(kk) as u32,
                        carry_base: (kk * b * h) as u32,
                        _pad: [0; 3],
                    },
                );
                let (in_src, in_buf) = if kk == 0 {
                    (x_src, &buf.x)
                } else {
                    (h_of(kk - 1, 0), &buf.h_all)
                };
                // With sparse input, sparse_gates writes layer 0's input part first and
                // the GEMM adds the recurrent part to it.
                let sparse = sparse_input && kk == 0;
                let gates_params = GemmParams {
                    a1: if sparse {
                        Source { width: 0, ..in_src }
                    } else {
                        in_src
                    },
                    a2: h_of(kk, -1),
                    accumulate: sparse as u32,
                    w1: Weight::transposed(lo.w_ih, input),
                    w2: Weight::transposed(lo.w_hh, h),
                    n_out: (4 * h) as u32,
                    has_bias: 1,
                    bias1: lo.b_ih as u32,
                    bias2: lo.b_hh as u32,
                    out_stride: (4 * h) as u32,
                    a2_block: recurrent_block as u32,
                    ..Default::default()
                };
                let gates_forward = gemm(
                    "gates_forward",
                    &k.step_gemm,
                    gates_params,
                    in_buf,
                    &buf.h_all,
                    &buf.gates_pre,
                );
                // The same GEMM reading the weights from their [K][4H] copy, with the
                // cell in its epilogue; h_t is written into src2, h_all.
                let at = copies.layers[kk];
                let cell_forward_gemm = k.cell_forward_gemm.as_ref().map(|q| {
                    let p = GemmParams {
                        w1: Weight::plain(at.gates, 4 * h),
                        w2: Weight::plain(at.gates + input * 4 * h, 4 * h),
                        ..gates_params
                    };
                    q.wide.bind(
                        ctx,
                        &[
                            ("p", &params_buffer(ctx, "cell_forward_gemm", &p)),
                            ("step", &buf.steps),
                            ("src1", in_buf),
                            ("src2", &buf.h_all),
                            ("weights", &buf.params),
                            ("rows", &buf.rows),
                            ("tstar", &buf.tstar),
                            ("out", &buf.gates_pre),
                            ("weights_kn", &buf.weights_kn),
                            ("cell", &cell),
                            ("gates_all", &buf.gates_all),
                            ("c_all", &buf.c_all),
                        ],
                    )
                });
                // dh of layer kk at step t: recurrent part from the gate deltas of t+1,
                // plus the part from the layer above at t (or the readout's loss at t).
                let (above_src, above_w, above_buf) = if kk + 1 < l {
                    (
                        gates_of(kk + 1),
                        Weight::plain(layout.layers[kk + 1].w_ih, h),
                        &buf.dgates_all,
                    )
                } else {
                    (
                        dz_of(validity::LIVE),
                        Weight::plain(layout.readout_w, h),
                        &buf.dz,
                    )
                };
                let dh_params = GemmParams {
                    a1: Source::per_step(st.gates(kk), b, 4 * h, 1, validity::LIVE),
                    a2: above_src,
                    w1: Weight::plain(lo.w_hh, h),
                    w2: above_w,
                    n_out: h as u32,
                    out_stride: h as u32,
                    ..Default::default()
                };
                let dh_backward = gemm(
                    "dh_backward",
                    &k.step_gemm,
                    dh_params,
                    &buf.dgates_all,
                    above_buf,
                    &buf.dh,
                );
                // The same GEMM reading the weights in vec4s, from the parameters or
                // from their copies with padded rows (WeightCopies), with the cell
                // backward in its epilogue; the gate deltas are written into src1,
                // dgates_all.
                let row = copies.dh_row;
                let cell_backward_gemm = k.cell_backward_gemm.as_ref().map(|q| {
                    let (p, weights_kn) = match at.dh {
                        Some(dh) => (
                            GemmParams {
                                w1: Weight::plain(dh, row),
                                w2: Weight::plain(dh + 4 * h * row, row),
                                ..dh_params
                            },
                            &buf.weights_kn,
                        ),
                        None => (dh_params, &buf.params),
                    };
                    q.wide.bind(
                        ctx,
                        &[
                            ("p", &params_buffer(ctx, "cell_backward_gemm", &p)),
                            ("step", &buf.steps),
                            ("src1", &buf.dgates_all),
                            ("src2", above_buf),
                            ("rows", &buf.rows),
                            ("tstar", &buf.tstar),
                            ("weights_kn", weights_kn),
                            ("cell", &cell),
                            ("gates_all", &buf.gates_all),
                            ("c_all", &buf.c_all),
                            ("dc_carry", &buf.dc_carry),
                        ],
                    )
                });
                let grad_ih_params = GemmParams {
                    a1: gates_of(kk),
                    // With sparse input only the bias column is computed here; the
                    // weights come from sparse_weight_grad.
                    a2: if sparse {
                        Source { width: 0, ..in_src }
                    } else {
                        in_src
                    },
                    has_bias: 1,
                    bias1: lo.b_ih as u32,
                    bias2: lo.b_hh as u32,
                    out_base: lo.w_ih as u32,
                    out_stride: input as u32,
                    ..Default::default()
                };
                let grad_ih = gemm(
                    "grad_ih",
                    &k.grad_gemm,
                    grad_ih_params,
                    &buf.dgates_all,
                    in_buf,
                    &buf.grads,
                );
                let grad_ih_quads = k.grad_gemm_quads.as_ref().and_then(|quads| {
                    let aligned = matmul::reads_in_quads(&grad_ih_params.a1, buf.dgates_all.size())
                        && matmul::reads_in_quads(&grad_ih_params.a2, in_buf.size());
                    aligned.then(|| {
                        let params = params_buffer(ctx, "grad_ih_quads", &grad_ih_params);
                        quads.bind(
                            ctx,
                            &[
                                ("p", &params),
                                ("step", &buf.steps),
                                ("rows", &buf.rows),
                                ("tstar", &buf.tstar),
                                ("out", &buf.grads),
                                ("src1_quads", &buf.dgates_all),
                                ("src2_quads", in_buf),
                            ],
                        )
                    })
                });
                // Gradients of at most 4 columns (the bias column included) in
                // grad_gemm_narrow, where G's rows read in vec4s.
                let columns = grad_ih_params.a2.width as usize + 1;
                let grad_ih_narrow = k.grad_gemm_narrow.as_ref().and_then(|narrow| {
                    let fits = columns <= matmul::NARROW_GRAD_COLUMNS
                        && matmul::reads_in_quads(&grad_ih_params.a1, buf.dgates_all.size());
                    fits.then(|| {
                        let params = params_buffer(ctx, "grad_ih_narrow", &grad_ih_params);
                        narrow.bind(
                            ctx,
                            &[
                                ("p", &params),
                                ("step", &buf.steps),
                                ("src2", in_buf),
                                ("rows", &buf.rows),
                                ("tstar", &buf.tstar),
                                ("out", &buf.grads),
                                ("src1_quads", &buf.dgates_all),
                            ],
                        )
                    })
                });
                let grad_hh = gemm(
                    "grad_hh",
                    &k.grad_gemm,
                    GemmParams {
                        a1: gates_of(kk),
                        a2: h_of(kk, -1),
                        out_base: lo.w_hh as u32,
                        out_stride: h as u32,
                        ..Default::default()
                    },
                    &buf.dgates_all,
                    &buf.h_all,
                    &buf.grads,
                );
                let cell_forward = k.cell_forward.bind(
                    ctx,
                    &[
                        ("p", &cell),
                        ("step", &buf.steps),
                        ("scratch", &buf.gates_pre),
                        ("rows", &buf.rows),
                        ("tstar", &buf.tstar),
                        ("gates_all", &buf.gates_all),
                        ("c_all", &buf.c_all),
                        ("h_or_dgates", &buf.h_all),
                    ],
                );
                let cell_backward = k.cell_backward.bind(
                    ctx,
                    &[
                        ("p", &cell),
                        ("step", &buf.steps),
                        ("scratch", &buf.dh),
                        ("rows", &buf.rows),
                        ("tstar", &buf.tstar),
                        ("gates_all", &buf.gates_all),
                        ("c_all", &buf.c_all),
                        ("h_or_dgates", &buf.dgates_all),
                        ("dc_carry", &buf.dc_carry),
                    ],
                );
                LayerBinds {
                    gates_forward,
                    cell_forward_gemm,
                    cell_backward_gemm,
                    cell_forward,
                    dh_backward,
                    cell_backward,
                    grad_ih,
                    grad_ih_quads,
                    grad_ih_narrow,
                    grad_hh,
                }
            })
            .collect();
        let grad_readout = gemm(
            "grad_readout",
            &k.grad_gemm,
            GemmParams {
                a1: dz_of(validity::ALWAYS),
                a2: h_of(l - 1, 0),
                has_bias: 1,
                bias1: layout.readout_b as u32,
                bias2: layout.readout_b as u32,
                out_base: layout.readout_w as u32,
                out_stride: h as u32,
                ..Default::default()
            },
            &buf.dz,
            &buf.h_all,
            &buf.grads,
        );
        let readout_forward = k.readout_forward.bind(
            ctx,
            &[
                ("p", &buf.readout_params),
                ("step", &buf.steps),
                ("weights", &buf.params),
                ("h_all", &buf.h_all),
                ("rows", &buf.rows),
                ("logits", &buf.logits),
                ("tstar", &buf.tstar),
                ("first_spike", &buf.first_spike),
            ],
        );
        let loss_stats = k.loss_stats.bind(
            ctx,
            &[
                ("p", &buf.readout_params),
                ("step", &buf.steps),
                ("labels", &buf.labels),
                ("logits", &buf.logits),
                ("tstar", &buf.tstar),
                ("first_spike", &buf.first_spike),
                ("dz", &buf.dz),
                ("decisions", &buf.decisions),
                ("stats", &buf.stats),
            ],
        );
        let grad_sq_norm = k.grad_sq_norm.bind(
            ctx,
            &[
                ("a", &buf.adam_params),
                ("norm_parts", &buf.grad_norm_parts),
                ("grad_quads", &buf.grads),
            ],
        );
        let grad_norm_total = k.grad_norm_total.bind(
            ctx,
            &[
                ("norm_parts", &buf.grad_norm_parts),
                ("grad_norm_sq", &buf.grad_norm_sq),
            ],
        );
        let adam = k.adam.bind(
            ctx,
            &[
                ("a", &buf.adam_params),
                ("grads", &buf.grads),
                ("params", &buf.params),
                ("m", &buf.adam_m),
                ("v", &buf.adam_v),
                ("grad_norm_sq", &buf.grad_norm_sq),
            ],
        );
        let plan_next_step = k.plan_next_step.bind(
            ctx,
            &[
                ("p", &buf.plan_params),
                ("step", &buf.steps),
                ("rows", &buf.rows),
                ("tstar", &buf.tstar),
                ("grid_rules", &buf.grid_rules),
                ("grids", &buf.grids),
            ],
        );
        let (sparse_gates, sparse_weight_grad) = if sparse_input {
            let (gates, grad) = sparse_binds(ctx, cfg, cap, buf, k);
            (Some(gates), Some(grad))
        } else {
            (None, None)
        };
        // One matrix of the parameters into the copies (see WeightCopies): `k_len` rows
        // of `n` at `dst_base`, `dst_row` apart, element (k, j) read at
        // `src_base + k * src_k + j * src_j`, or with the gates of `gate_units` units
        // interleaved where that is nonzero (see CopyParams).
        let copy = |src_base: usize,
                    (src_k, src_j): (usize, usize),
                    n: usize,
                    k_len: usize,
                    dst_base: usize,
                    dst_row: usize,
                    gate_units: usize| {
            let p = CopyParams {
                src_base: src_base as u32,
                src_k: src_k as u32,
                src_j: src_j as u32,
                n: n as u32,
                k_len: k_len as u32,
                dst_base: dst_base as u32,
                dst_row: dst_row as u32,
                gate_units: gate_units as u32,
            };
            let params = params_buffer(ctx, "weight_copy", &p);
            let bind = k.weight_copy.bind(
                ctx,
                &[
                    ("p", &params),
                    ("src", &buf.params),
                    ("dst", &buf.weights_kn),
                ],
            );
            (bind, [groups_for(n, 64), k_len as u32, 1])
        };
        // The gate GEMM's, transposed: [4H][K] to [K][4H], the gates interleaved.
        let gate_copy = |kk: usize, (base, k_len): (usize, usize), row: usize| {
            let at = copies.layers[kk].gates + row * 4 * h;
            copy(base, (1, k_len), 4 * h, k_len, at, 4 * h, h)
        };
        let weight_copies = if k.cell_forward_gemm.is_some() {
            (0..l)
                .flat_map(|kk| {
                    let (lo, input, at) =
                        (layout.layers[kk], cfg.layer_input(kk), copies.layers[kk]);
                    let (n, row) = (4 * h, copies.dh_row);
                    // With sparse input, layer 0's input part is sparse_gates', and
                    // not copied: a copy of 784 x 1,024 each batch cost more in RC
                    // training than sparse_gates gained from reading it
                    // (docs/performance.md).
                    let ih =
                        (!(sparse_input && kk == 0)).then(|| gate_copy(kk, (lo.w_ih, input), 0));
                    let hh = gate_copy(kk, (lo.w_hh, h), input);
                    // The dh GEMM's, as they are, in rows of dh_row, where it does
                    // not read them from the parameters.
                    let (above, above_rows) = if kk + 1 < l {
                        (layout.layers[kk + 1].w_ih, n)
                    } else {
                        (layout.readout_w, c)
                    };
                    let dh = at.dh.into_iter().flat_map(move |dh| {
                        [
                            copy(lo.w_hh, (h, 1), h, n, dh, row, 0),
                            copy(above, (h, 1), h, above_rows, dh + n * row, row, 0),
                        ]
                    });
                    ih.into_iter().chain([hh]).chain(dh)
                })
                .collect()
        } else {
            Vec::new()
        };
        Binds {
            layers,
            weight_copies,
            sparse_gates,
            sparse_weight_grad,
            readout_forward,
            loss_stats,
            grad_readout,
            grad_sq_norm,
            grad_norm_total,
            adam,
            plan_next_step,
        }
    }
}
