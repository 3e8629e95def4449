//! The rank-coded step loop, scheduler, backward replay and Adam: drives the kernels.
//!
//! One batch of training:
//! 1. forward, step by step over the live rows only: per layer the gate GEMM and the
//!    fused cell, then the readout that applies the threshold. Every `readback_every`
//!    steps the host reads the loss steps back and drops the rows that have decided;
//!    between those readbacks `plan_next_step` does the same on the GPU, so every step
//!    computes its live rows only, and the cadence changes no result;
//! 2. `loss_stats`: loss and dL/dz at each row's loss step (or at each of its steps
//!    from `RcConfig::loss_from_step` on), batch sums;
//! 3. backward replay from max t* down to 0 over the rows with t <= t*, top layer first;
//! 4. weight gradients as one GEMM per tensor over exactly the processed (step, row)
//!    pairs (the recurrent weights over those of steps 1 and later, since h_{-1} = 0);
//!    then Adam. The batch sums are read back once.

pub mod schedule;
mod step_plan;
pub mod timing;
mod workspace;

pub use timing::{BackwardGemm, DispatchTiming};
pub use workspace::Capacity;

use crate::data::Batch;
use crate::error::{Error, Result, ensure};
use crate::gpu::kernel::groups_for;
use crate::gpu::matmul;
use crate::gpu::profile::{KernelProfile, KernelProfiler};
use crate::gpu::structs::{AdamParams, ReadoutParams, Step};
use crate::gpu::{GpuContext, Kernel};
use crate::model::{AdamConfig, ModelConfig, ParamLayout, RcConfig, TrainMode};
use schedule::{ReplayPlan, SparseColumns, SparseRows, loss_step_entries, still_live};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use step_plan::{ForwardGrid, StepRows};
use workspace::{LayerBinds, STATS, Workspace};
pub use workspace::{LayerCopies, WeightCopies};

/// Elements each `adam_step` invocation updates (`ELEMENTS_PER_INVOCATION` in the
/// shader).
const ADAM_ELEMENTS_PER_INVOCATION: usize = 16;
/// The workgroups of `grad_sq_norm`: `NORM_INVOCATIONS / NORM_GROUP_SIZE` in
/// adam.wgsl, side by side on the cores of a CPU adapter.
const NORM_GROUPS: u32 = 4;

/// The profile's names of the step GEMMs' wide and narrow dispatches, forward and
/// backward: alone (staged form), and with the cell in their epilogue (direct form).
const GATES_GEMM: [&str; 2] = ["gates GEMM", "gates GEMM (narrow)"];
const DH_GEMM: [&str; 2] = ["dh GEMM", "dh GEMM (narrow)"];
const GATES_CELL: [&str; 2] = ["gates GEMM and cell", "gates GEMM and cell (narrow)"];
const DH_CELL: [&str; 2] = [
    "dh GEMM and cell backward",
    "dh GEMM and cell backward (narrow)",
];

/// Everything an engine is built from.
///
/// Built with [`EngineConfig::new`], which holds every default, and the `with_`
/// setters; outside this crate it cannot be written as a struct literal, so a new field
/// is added in one place.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct EngineConfig {
    pub model: ModelConfig,
    pub rc: RcConfig,
    pub adam: AdamConfig,
    pub capacity: Capacity,
    /// Steps between fired-mask readbacks (K >= 1). Changes no result.
    pub readback_every: usize,
    /// Layer 0 takes the nonzero inputs of each step as a sparse list (cost follows
    /// the number of nonzeros, not the input width). Changes no result beyond f32
    /// rounding order. For inputs with few events per step, e.g. temporal MNIST.
    pub sparse_input: bool,
    /// 0, or the size of the diagonal blocks of every layer's recurrent weights (an
    /// ensemble of runs of one width): the forward pass skips the zero blocks. Changes
    /// no result; the backward pass computes them all.
    pub recurrent_block: usize,
    /// Whether the scheduler submits the next chunk of steps before it reads back
    /// the last one's fired mask, so that the GPU does not wait for the host.
    pub overlap_readback: Overlap,
}

/// Whether the forward scheduler overlaps a chunk's readback with the next chunk
/// (docs/design.md, 'The scheduler'). Changes no result: a row that fired leaves the
/// row list one chunk later, and the kernels skip it meanwhile; a batch may run one
/// chunk more, of rows that have all decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overlap {
    /// On a GPU, off on a software adapter: there the host and the "GPU" share the
    /// CPU's cores, and overlapping measured no faster (docs/performance.md).
    Auto,
    /// Always (tests and measurements on a software adapter).
    On,
    /// Never: each chunk's mask is read before the next chunk is submitted.
    Off,
}

impl EngineConfig {
    /// An engine for `model` with room for `capacity`, and the defaults:
    /// - `rc`: [`RcConfig::default`] (theta 0.95, beta 0, RC training);
    /// - `adam`: [`AdamConfig::default`] (lr 1e-3, no clipping, no weight decay);
    /// - `readback_every`: 1 (read the fired mask back after every step);
    /// - `sparse_input`: false (dense input);
    /// - `recurrent_block`: 0 (dense recurrent weights);
    /// - `overlap_readback`: [`Overlap::Auto`] (the next chunk runs while the host reads
    ///   one back, on a GPU).
    pub fn new(model: ModelConfig, capacity: Capacity) -> Self {
        EngineConfig {
            model,
            rc: RcConfig::default(),
            adam: AdamConfig::default(),
            capacity,
            readback_every: 1,
            sparse_input: false,
            recurrent_block: 0,
            overlap_readback: Overlap::Auto,
        }
    }

    /// Sets the model.
    pub fn with_model(self, model: ModelConfig) -> Self {
        EngineConfig { model, ..self }
    }

    /// Sets the threshold, entropy bonus and training mode.
    pub fn with_rc(self, rc: RcConfig) -> Self {
        EngineConfig { rc, ..self }
    }

    /// Sets the optimizer.
    pub fn with_adam(self, adam: AdamConfig) -> Self {
        EngineConfig { adam, ..self }
    }

    /// Sets the largest batch and sequence length.
    pub fn with_capacity(self, capacity: Capacity) -> Self {
        EngineConfig { capacity, ..self }
    }

    /// Sets the steps between fired-mask readbacks.
    pub fn with_readback_every(self, readback_every: usize) -> Self {
        EngineConfig {
            readback_every,
            ..self
        }
    }

    /// Sets whether layer 0 takes its input as sparse lists.
    pub fn with_sparse_input(self, sparse_input: bool) -> Self {
        EngineConfig {
            sparse_input,
            ..self
        }
    }

    /// Sets whether the scheduler overlaps a chunk's readback with the next chunk.
    pub fn with_overlap_readback(self, overlap_readback: Overlap) -> Self {
        EngineConfig {
            overlap_readback,
            ..self
        }
    }

    /// Sets the size of the recurrent weights' diagonal blocks (0: none).
    pub fn with_recurrent_block(self, recurrent_block: usize) -> Self {
        EngineConfig {
            recurrent_block,
            ..self
        }
    }

    /// Checks every setting and size is in range, before anything is allocated for
    /// them.
    pub fn validate(&self) -> Result<()> {
        self.model.validate()?;
        self.rc.validate()?;
        self.adam.validate()?;
        let cap = self.capacity;
        ensure(cap.batch > 0 && cap.batch <= schedule::MAX_ROWS, || {
            format!(
                "batch size must be between 1 and {}, got {}",
                schedule::MAX_ROWS,
                cap.batch
            )
        })?;
        ensure(cap.steps > 0 && cap.steps <= schedule::MAX_STEPS, || {
            format!(
                "sequence length must be between 1 and {}, got {}",
                schedule::MAX_STEPS,
                cap.steps
            )
        })?;
        ensure(self.readback_every > 0, || {
            "the readback cadence must be at least 1 step".into()
        })?;
        let block = self.recurrent_block;
        ensure(
            block == 0 || self.model.hidden_size.is_multiple_of(block),
            || {
                format!(
                    "recurrent blocks of {block} units do not tile {} units",
                    self.model.hidden_size
                )
            },
        )
    }
}

/// Adam's state, saved with checkpoints so that a resumed run continues exactly.
#[derive(Debug, Clone, PartialEq)]
pub struct OptimizerState {
    /// Adam steps taken so far.
    pub steps: u32,
    pub m: Vec<f32>,
    pub v: Vec<f32>,
}

/// What one batch did, reduced on the GPU.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchReport {
    pub sequences: usize,
    pub steps: usize,
    /// Mean loss over the batch.
    pub loss: f64,
    /// Correct predictions at the decision step.
    pub correct: usize,
    /// Sequences with a spike.
    pub fired: usize,
    /// Steps computed, summed over sequences (sum of t* + 1).
    pub steps_processed: usize,
    /// Decision steps (first spike, else T-1) plus one, summed over sequences.
    pub decision_steps: usize,
    /// Correct argmax predictions at T-1, over the rows that reached T-1.
    pub eos_correct: usize,
    /// Rows that reached T-1.
    pub eos_rows: usize,
    /// Per row: the step whose output carried the loss (the last step computed).
    pub loss_steps: Vec<u32>,
    /// Per row: the decision step (first spike, else T-1).
    pub decision_step: Vec<u32>,
    /// Per row: the predicted class at the decision step.
    pub prediction: Vec<u32>,
    /// Host round trips of the forward scheduler.
    pub readbacks: usize,
    /// Kernel dispatches recorded (those of zero workgroups skipped).
    pub dispatches: usize,
    /// Command buffers submitted to the queue: one a readback, one for the rest.
    pub submits: usize,
}

/// What a batch run does beyond the forward pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Run {
    /// Forward and statistics only; `retire` stops rows at their first spike.
    Evaluate { retire: bool },
    /// Forward, loss and gradients; `update` also applies Adam.
    Train { update: bool },
}

/// A model on the GPU with its workspace, optimiser state and settings.
pub struct Engine {
    /// The nonzero inputs of the current batch, when the engine takes sparse inputs.
    sparse_rows: Option<SparseRows>,
    ctx: Arc<GpuContext>,
    cfg: EngineConfig,
    layout: ParamLayout,
    ws: Workspace,
    adam_steps: u32,
    /// Times every dispatch, once `enable_profiling` is called.
    profiler: Option<KernelProfiler>,
    /// Dispatches and submits of the batch in progress (see [`BatchReport`]).
    dispatched: AtomicUsize,
    submitted: AtomicUsize,
}

impl Engine {
    /// Builds the workspace for `cfg` and uploads `params`.
    pub fn new(ctx: Arc<GpuContext>, cfg: EngineConfig, params: &[f32]) -> Result<Self> {
        cfg.validate()?;
        let layout = ParamLayout::new(&cfg.model);
        let (cap, block) = (cfg.capacity, cfg.recurrent_block);
        let ws = Workspace::new(&ctx, &cfg.model, cap, cfg.sparse_input, block)?;
        let mut engine = Engine {
            sparse_rows: None,
            ctx,
            cfg,
            layout,
            ws,
            adam_steps: 0,
            profiler: None,
            dispatched: AtomicUsize::new(0),
            submitted: AtomicUsize::new(0),
        };
        engine.set_params(params)?;
        Ok(engine)
    }

    /// Times every dispatch of the batches run from now on with timestamp queries
    /// (`take_profile`). Fails on an adapter without them. The timestamps between
    /// dispatches may cost a little time of their own.
    pub fn enable_profiling(&mut self) -> Result<()> {
        self.profiler = Some(KernelProfiler::new(&self.ctx)?);
        Ok(())
    }

    /// GPU time per kind of dispatch since profiling was enabled or last taken (the
    /// dispatches of the [`timing`] hooks included); None unless it is enabled.
    pub fn take_profile(&self) -> Result<Option<KernelProfile>> {
        let Some(profiler) = &self.profiler else {
            return Ok(None);
        };
        profiler.collect(&self.ctx)?;
        Ok(Some(profiler.take()))
    }

    /// The settings the engine runs with.
    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// The GPU context.
    pub fn context(&self) -> &GpuContext {
        &self.ctx
    }

    /// Changes the threshold, entropy weight or training mode (e.g. for evaluation).
    pub fn set_rc(&mut self, rc: RcConfig) -> Result<()> {
        rc.validate()?;
        self.cfg.rc = rc;
        Ok(())
    }

    /// Changes the learning rate (for a schedule); the optimiser state is kept.
    pub fn set_learning_rate(&mut self, lr: f32) -> Result<()> {
        let adam = AdamConfig {
            lr,
            ..self.cfg.adam
        };
        adam.validate()?;
        self.cfg.adam = adam;
        Ok(())
    }

    /// Changes whether the scheduler overlaps a chunk's readback with the next chunk.
    pub fn set_overlap_readback(&mut self, overlap: Overlap) {
        self.cfg.overlap_readback = overlap;
    }

    /// Whether the scheduler overlaps readbacks on this adapter.
    pub fn overlaps_readback(&self) -> bool {
        match self.cfg.overlap_readback {
            Overlap::Auto => !self.ctx.is_software(),
            Overlap::On => true,
            Overlap::Off => false,
        }
    }

    /// Changes the readback cadence K.
    pub fn set_readback_every(&mut self, k: usize) -> Result<()> {
        ensure(k > 0, || {
            "the readback cadence must be at least 1 step".into()
        })?;
        self.cfg.readback_every = k;
        Ok(())
    }

    /// Replaces the parameters and resets the optimiser state.
    pub fn set_params(&mut self, params: &[f32]) -> Result<()> {
        if params.len() != self.layout.total {
            return Err(Error::ShapeMismatch(format!(
                "{} parameters given, the model has {}",
                params.len(),
                self.layout.total
            )));
        }
        let q = &self.ctx.queue;
        q.write_buffer(&self.ws.buf.params, 0, bytemuck::cast_slice(params));
        let zeros = vec![0f32; params.len()];
        q.write_buffer(&self.ws.buf.adam_m, 0, bytemuck::cast_slice(&zeros));
        q.write_buffer(&self.ws.buf.adam_v, 0, bytemuck::cast_slice(&zeros));
        self.adam_steps = 0;
        Ok(())
    }

    /// The current parameters.
    pub fn params(&self) -> Result<Vec<f32>> {
        self.read_f32(&self.ws.buf.params, 0, self.layout.total)
    }

    /// The gradients of the last training batch.
    pub fn grads(&self) -> Result<Vec<f32>> {
        self.read_f32(&self.ws.buf.grads, 0, self.layout.total)
    }

    /// |g|^2 as the last Adam step with clipping summed it (`grad_sq_norm` and
    /// `grad_norm_total`, adam.wgsl): for tests.
    pub fn grad_norm_squared(&self) -> Result<f32> {
        Ok(self.read_f32(&self.ws.buf.grad_norm_sq, 0, 1)?[0])
    }

    /// The direct form's copies of the gate and dh GEMMs' weights as the last forward
    /// pass refreshed them, laid out as [`WeightCopies`] says (empty in the staged
    /// form): for tests.
    pub fn weight_copies(&self) -> Result<Vec<f32>> {
        if self.ws.binds.weight_copies.is_empty() {
            return Ok(Vec::new());
        }
        let len = WeightCopies::new(&self.cfg.model).len;
        self.read_f32(&self.ws.buf.weights_kn, 0, len)
    }

    /// The Adam state: steps taken and both moment vectors.
    pub fn optimizer_state(&self) -> Result<OptimizerState> {
        Ok(OptimizerState {
            steps: self.adam_steps,
            m: self.read_f32(&self.ws.buf.adam_m, 0, self.layout.total)?,
            v: self.read_f32(&self.ws.buf.adam_v, 0, self.layout.total)?,
        })
    }

    /// Restores an Adam state saved by [`Self::optimizer_state`].
    pub fn set_optimizer_state(&mut self, state: &OptimizerState) -> Result<()> {
        let n = self.layout.total;
        if state.m.len() != n || state.v.len() != n {
            return Err(Error::ShapeMismatch(format!(
                "optimizer state holds {} and {} values, the model has {n} parameters",
                state.m.len(),
                state.v.len()
            )));
        }
        let q = &self.ctx.queue;
        q.write_buffer(&self.ws.buf.adam_m, 0, bytemuck::cast_slice(&state.m));
        q.write_buffer(&self.ws.buf.adam_v, 0, bytemuck::cast_slice(&state.v));
        self.adam_steps = state.steps;
        Ok(())
    }

    /// Logits of the last batch at every step, `[steps][rows][C]` for its first `rows`
    /// rows. Only steps a row actually computed hold its values (all of them after
    /// [`Self::evaluate_full`]).
    pub fn batch_logits(&self, steps: usize, rows: usize) -> Result<Vec<f32>> {
        let (c, cap) = (self.cfg.model.classes, self.cfg.capacity);
        ensure(steps <= cap.steps && rows <= cap.batch, || {
            format!("no logits stored for {steps} steps of {rows} rows")
        })?;
        let all = self.read_f32(&self.ws.buf.logits, 0, steps * cap.batch * c)?;
        Ok((0..steps)
            .flat_map(|t| {
                all[t * cap.batch * c..(t * cap.batch + rows) * c]
                    .iter()
                    .copied()
            })
            .collect())
    }

    /// Logits of the last batch at step `t` for its first `rows` rows, `[rows, C]`.
    /// Only steps a row actually computed hold its values.
    pub fn logits_at(&self, t: usize, rows: usize) -> Result<Vec<f32>> {
        let (c, cap) = (self.cfg.model.classes, self.cfg.capacity);
        ensure(t < cap.steps && rows <= cap.batch, || {
            format!("no logits stored for step {t}, {rows} rows")
        })?;
        self.read_f32(&self.ws.buf.logits, t * cap.batch * c, rows * c)
    }

    /// Bytes of GPU memory this engine's workspace holds.
    pub fn memory_bytes(&self) -> u64 {
        self.ws.buf.total_bytes()
    }

    /// Forward, loss, backward and one Adam step on `batch`.
    pub fn train_batch(&mut self, batch: &Batch) -> Result<BatchReport> {
        self.run(batch, Run::Train { update: true })
    }

    /// Forward, loss and backward without updating the parameters (see [`Self::grads`]).
    pub fn compute_gradients(&mut self, batch: &Batch) -> Result<BatchReport> {
        self.run(batch, Run::Train { update: false })
    }

    /// Rank-coded inference: each row stops at its first spike.
    pub fn evaluate(&mut self, batch: &Batch) -> Result<BatchReport> {
        self.run(batch, Run::Evaluate { retire: true })
    }

    /// Inference over every step (for end-of-sequence accuracy).
    pub fn evaluate_full(&mut self, batch: &Batch) -> Result<BatchReport> {
        self.run(batch, Run::Evaluate { retire: false })
    }

    fn check_batch(&self, batch: &Batch) -> Result<()> {
        let m = &self.cfg.model;
        batch.validate(m.classes)?;
        if batch.input != m.input_size {
            return Err(Error::ShapeMismatch(format!(
                "the data has {} input features per step, the model expects {}",
                batch.input, m.input_size
            )));
        }
        let cap = self.cfg.capacity;
        if batch.batch > cap.batch || batch.steps > cap.steps {
            return Err(Error::ShapeMismatch(format!(
                "a batch of {} sequences x {} steps exceeds the engine's capacity of {} x {}",
                batch.batch, batch.steps, cap.batch, cap.steps
            )));
        }
        Ok(())
    }

    fn run(&mut self, batch: &Batch, run: Run) -> Result<BatchReport> {
        self.check_batch(batch)?;
        let retire = match run {
            Run::Evaluate { retire } => retire,
            Run::Train { .. } => self.cfg.rc.mode == TrainMode::Rc,
        };
        let want_grad = matches!(run, Run::Train { .. });
        // Gradients would fill the blocks the forward pass skips.
        ensure(!want_grad || self.cfg.recurrent_block == 0, || {
            "an engine that skips zero blocks (recurrent_block) runs forward passes only".into()
        })?;
        self.dispatched.store(0, Ordering::Relaxed);
        self.submitted.store(0, Ordering::Relaxed);
        self.upload_batch(batch, retire, want_grad)?;
        let (tstar, readbacks) = self.forward(batch, retire)?;
        let mut encoder = self.ctx.device.create_command_encoder(&Default::default());
        self.write_loss_step_list(batch.steps, &tstar);
        let plan = want_grad.then(|| ReplayPlan::new(&tstar));
        if let Some(plan) = &plan {
            self.write_replay_lists(batch.steps, plan);
            self.write_sparse_columns(plan);
        }
        {
            let mut pass = self.begin_pass(&mut encoder);
            self.dispatch(
                &mut pass,
                "loss and dL/dz",
                &self.ws.kernels.loss_stats,
                &self.ws.binds.loss_stats,
                Some(self.slot(self.ws.slots.loss_steps())),
                [1, 1, 1],
            );
            if let Some(plan) = &plan {
                self.encode_backward(&mut pass, plan);
            }
            if run == (Run::Train { update: true }) {
                self.encode_adam(&mut pass);
            }
        }
        self.end_pass(&mut encoder);
        let b = batch.batch;
        let buf = &self.ws.buf;
        encoder.copy_buffer_to_buffer(&buf.stats, 0, &buf.staging, 0, (STATS * 4) as u64);
        encoder.copy_buffer_to_buffer(
            &buf.decisions,
            0,
            &buf.staging,
            (STATS * 4) as u64,
            (2 * b * 4) as u64,
        );
        self.submit(encoder);
        let raw: Vec<u32> = self.ctx.read_staging(&buf.staging, STATS + 2 * b)?;
        if let Some(profiler) = &self.profiler {
            profiler.collect(&self.ctx)?;
        }
        let stats: Vec<f32> = raw[..STATS].iter().map(|&u| f32::from_bits(u)).collect();
        let loss = stats[0] as f64 / b as f64;
        if !loss.is_finite() {
            return Err(Error::NonFinite(format!(
                "a batch of {b} sequences (loss {loss}); the parameters were {}",
                if run == (Run::Train { update: true }) {
                    "updated with it"
                } else {
                    "not changed"
                }
            )));
        }
        let decisions = &raw[STATS..];
        Ok(BatchReport {
            sequences: b,
            steps: batch.steps,
            loss,
            correct: stats[1] as usize,
            fired: stats[2] as usize,
            steps_processed: stats[3] as usize,
            decision_steps: stats[4] as usize,
            eos_correct: stats[5] as usize,
            eos_rows: stats[6] as usize,
            decision_step: decisions.iter().step_by(2).copied().collect(),
            prediction: decisions.iter().skip(1).step_by(2).copied().collect(),
            loss_steps: tstar,
            readbacks,
            dispatches: self.dispatched.load(Ordering::Relaxed),
            submits: self.submitted.load(Ordering::Relaxed),
        })
    }

    fn slot(&self, slot: usize) -> u32 {
        self.ws.slots.offset(slot)
    }

    /// Begins a compute pass on `encoder`, timed if profiling; `end_pass` follows it.
    fn begin_pass<'e>(&self, encoder: &'e mut wgpu::CommandEncoder) -> wgpu::ComputePass<'e> {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        if let Some(profiler) = &self.profiler {
            profiler.begin_pass(&mut pass);
        }
        pass
    }

    /// Resolves the timestamps of the pass that just ended on `encoder`, if profiling.
    fn end_pass(&self, encoder: &mut wgpu::CommandEncoder) {
        if let Some(profiler) = &self.profiler {
            profiler.end_pass(encoder);
        }
    }

    /// Dispatches `kernel`, timed as `what` if profiling.
    fn dispatch(
        &self,
        pass: &mut wgpu::ComputePass,
        what: &'static str,
        kernel: &Kernel,
        bind: &wgpu::BindGroup,
        slot: Option<u32>,
        groups: [u32; 3],
    ) {
        if kernel.dispatch(pass, bind, slot, groups) {
            self.count_dispatch(pass, what, kernel);
        }
    }

    /// Counts a dispatch just recorded, and times it as `what` if profiling.
    fn count_dispatch(&self, pass: &mut wgpu::ComputePass, what: &'static str, kernel: &Kernel) {
        self.dispatched.fetch_add(1, Ordering::Relaxed);
        if let Some(profiler) = &self.profiler {
            profiler.after_dispatch(pass, what, kernel.name);
        }
    }

    /// Submits `encoder`'s commands, counted for the batch's report.
    fn submit(&self, encoder: wgpu::CommandEncoder) -> wgpu::SubmissionIndex {
        self.submitted.fetch_add(1, Ordering::Relaxed);
        self.ctx.queue.submit([encoder.finish()])
    }

    /// Uploads inputs, labels and the per-batch readout settings, and marks every row undecided.
    fn upload_batch(&mut self, batch: &Batch, retire: bool, want_grad: bool) -> Result<()> {
        let (cap, model) = (self.cfg.capacity, &self.cfg.model);
        let sparse = self
            .cfg
            .sparse_input
            .then(|| SparseRows::of_batch(batch, cap.batch));
        if let Some(sparse) = &sparse {
            let nonzeros = sparse.indices.len();
            self.ws.reserve_nonzeros(&self.ctx, model, cap, nonzeros)?;
        }
        let q = &self.ctx.queue;
        let buf = &self.ws.buf;
        let (b, cap_b, i) = (batch.batch, cap.batch, batch.input);
        if self.cfg.sparse_input {
            // Layer 0 reads the CSR lists below; the dense inputs are never read.
        } else if b == cap_b {
            q.write_buffer(&buf.x, 0, bytemuck::cast_slice(&batch.dense()));
        } else {
            let x = batch.dense();
            for t in 0..batch.steps {
                let src = &x[t * b * i..(t + 1) * b * i];
                q.write_buffer(
                    &buf.x,
                    (t * cap_b * i * 4) as u64,
                    bytemuck::cast_slice(src),
                );
            }
        }
        q.write_buffer(&buf.labels, 0, bytemuck::cast_slice(&batch.labels));
        if let Some(sparse) = sparse {
            q.write_buffer(&buf.csr_offsets, 0, bytemuck::cast_slice(&sparse.offsets));
            if !sparse.indices.is_empty() {
                q.write_buffer(&buf.csr_indices, 0, bytemuck::cast_slice(&sparse.indices));
                q.write_buffer(&buf.csr_values, 0, bytemuck::cast_slice(&sparse.values));
            }
            self.sparse_rows = Some(sparse);
        }
        q.write_buffer(
            &buf.tstar,
            0,
            bytemuck::cast_slice(&vec![batch.steps as u32; b]),
        );
        q.write_buffer(
            &buf.first_spike,
            0,
            bytemuck::cast_slice(&vec![u32::MAX; b]),
        );
        let (m, rc) = (&self.cfg.model, &self.cfg.rc);
        let theta = rc.theta as f64;
        let top = m.layers - 1;
        let params = ReadoutParams {
            hidden: m.hidden_size as u32,
            classes: m.classes as u32,
            batch_stride: cap_b as u32,
            readout: m.readout.shader_code(),
            w_base: self.layout.readout_w as u32,
            b_base: self.layout.readout_b as u32,
            h_base: (top * self.cfg.capacity.steps * cap_b * m.hidden_size) as u32,
            retire: retire as u32,
            theta: rc.theta,
            theta_logit: (theta / (1.0 - theta)).ln() as f32,
            beta: rc.beta,
            batch: b as u32,
            want_grad: want_grad as u32,
            loss_from: rc.loss_from_index().map_or(u32::MAX, |first| first as u32),
            _pad: [0; 2],
        };
        q.write_buffer(&buf.readout_params, 0, bytemuck::bytes_of(&params));
        Ok(())
    }

    /// Writes `Step` values into consecutive slots starting at `first`.
    fn write_slots(&self, first: usize, steps: &[Step]) {
        let stride = self.ws.slots.stride as usize;
        let mut bytes = vec![0u8; steps.len() * stride];
        for (i, s) in steps.iter().enumerate() {
            bytes[i * stride..i * stride + 16].copy_from_slice(bytemuck::bytes_of(s));
        }
        self.ctx
            .queue
            .write_buffer(&self.ws.buf.steps, (first * stride) as u64, &bytes);
    }

    fn write_rows(&self, at: usize, entries: &[u32]) {
        if !entries.is_empty() {
            self.ctx.queue.write_buffer(
                &self.ws.buf.rows,
                (at * 4) as u64,
                bytemuck::cast_slice(entries),
            );
        }
    }

    /// The scheduler: runs the forward pass in chunks of K steps over the live rows,
    /// compacting the row list after each readback of the loss steps, and on the GPU
    /// between the steps of a chunk (`plan_next_step`, `step_plan`). Returns every
    /// row's loss step and the number of readbacks. Without `retire` no row stops
    /// early, so the whole pass is one chunk.
    ///
    /// With `overlap_readback`, chunk c + 1 is submitted before chunk c's loss steps
    /// are read, into the other of two staging buffers, so the GPU runs while the host
    /// waits for and reads the mask; the rows that fired in chunk c leave the list
    /// from chunk c + 2 on. Every kernel skips a row retired before its step, so the
    /// results are the same; the last chunk may be one of rows that have all decided.
    fn forward(&mut self, batch: &Batch, retire: bool) -> Result<(Vec<u32>, usize)> {
        let steps = batch.steps;
        let chunk = if retire {
            self.cfg.readback_every
        } else {
            steps
        };
        let overlap = self.overlaps_readback();
        let buf = &self.ws.buf;
        let staging = [&buf.staging, &buf.staging_next];
        let mut live: Vec<u32> = (0..batch.batch as u32).collect();
        let mut t = 0;
        let mut readbacks = 0;
        let mut in_flight = None;
        let mut tstar = Vec::new();
        let regions = &self.ws.regions;
        while t < steps && !live.is_empty() {
            let end = (t + chunk).min(steps);
            let n = live.len();
            self.write_rows(regions.forward(t), &live);
            // With retirement, each step after the chunk's first reads the list that
            // plan_next_step writes for it, in the other region; the lists keep the
            // chunk's n rows, live ones first.
            let list = |s: usize| regions.forward(if retire { s } else { t });
            let slots: Vec<Step> = (t..end)
                .map(|s| Step {
                    t: s as u32,
                    n_rows: n as u32,
                    rows_offset: list(s) as u32,
                    steps: steps as u32,
                })
                .collect();
            self.write_slots(self.ws.slots.forward(t), &slots);
            let mut encoder = self.ctx.device.create_command_encoder(&Default::default());
            {
                let mut pass = self.begin_pass(&mut encoder);
                if t == 0 {
                    self.encode_weight_copies(&mut pass);
                }
                for s in t..end {
                    let rows = if s == t || !retire {
                        StepRows::Listed(n)
                    } else {
                        self.plan_step_after(&mut pass, s - 1);
                        StepRows::Planned(n)
                    };
                    self.encode_forward_step(&mut pass, s, rows);
                }
            }
            self.end_pass(&mut encoder);
            let target = staging[readbacks % 2];
            encoder.copy_buffer_to_buffer(&buf.tstar, 0, target, 0, (batch.batch * 4) as u64);
            let submitted = self.submit(encoder);
            let read = self
                .ctx
                .start_read::<u32>(target, batch.batch, Some(submitted));
            readbacks += 1;
            // Without overlap, this chunk's own mask; with it, the one before (none
            // after the first chunk: all rows stay listed).
            let known = if overlap {
                in_flight.replace(read)
            } else {
                Some(read)
            };
            if let Some(read) = known {
                tstar = read.finish(&self.ctx)?;
                live = still_live(&live, &tstar, steps as u32);
            }
            if let Some(profiler) = self.profiler.as_ref().filter(|p| p.half_full()) {
                // Long sequences: collect the timestamps before the query set fills.
                profiler.collect(&self.ctx)?;
            }
            t = end;
        }
        if let Some(read) = in_flight {
            tstar = read.finish(&self.ctx)?;
        }
        Ok((tstar, readbacks))
    }

    /// Dispatches `plan_next_step` after forward step `t`: step t + 1's row list and
    /// workgroup counts, made on the GPU.
    fn plan_step_after(&self, pass: &mut wgpu::ComputePass, t: usize) {
        let (kernel, bind) = (
            &self.ws.kernels.plan_next_step,
            &self.ws.binds.plan_next_step,
        );
        let slot = Some(self.slot(self.ws.slots.forward(t)));
        self.dispatch(pass, "next step's plan", kernel, bind, slot, [1, 1, 1]);
    }

    /// Dispatches a forward step's `kernel` as `grid` says (workgroups that follow the
    /// step's live rows), timed as `what` if profiling.
    #[allow(clippy::too_many_arguments)]
    fn dispatch_forward(
        &self,
        pass: &mut wgpu::ComputePass,
        what: &'static str,
        kernel: &Kernel,
        bind: &wgpu::BindGroup,
        slot: Option<u32>,
        (t, rows): (usize, StepRows),
        grid: ForwardGrid,
    ) {
        let grids = &self.ws.grids;
        match rows {
            StepRows::Listed(n) => {
                self.dispatch(pass, what, kernel, bind, slot, grids.rule(grid).groups(n))
            }
            // A planned step runs the kernels its chunk's first step ran: of the two
            // step GEMM kernels, the one for that step's rows.
            StepRows::Planned(first) if grids.rule(grid).groups(first)[0] == 0 => {}
            StepRows::Planned(_) => {
                let offset = grids.offset(t, grid);
                kernel.dispatch_indirect(pass, bind, slot, &self.ws.buf.grids, offset);
                self.count_dispatch(pass, what, kernel);
            }
        }
    }

    /// Dispatches a layer's forward step `t` over its rows: in the direct form one
    /// dispatch, `step_cell_forward` (the gate GEMM with the weights read in vec4s
    /// from their interleaved copy, and the cell in its epilogue: docs/performance.md,
    /// 'The cell in the GEMMs' epilogue'); in the staged form `step_gemm`, then
    /// `cell_forward`. The GEMMs run in narrow blocks while the live rows fit in one
    /// (`ForwardGrid::GatesNarrow`), in wide ones past that: of each pair one kernel
    /// gets workgroups.
    fn dispatch_layer_forward(
        &self,
        pass: &mut wgpu::ComputePass,
        layer: &LayerBinds,
        slot: Option<u32>,
        step: (usize, StepRows),
    ) {
        let k = &self.ws.kernels;
        let grids = [ForwardGrid::GatesWide, ForwardGrid::GatesNarrow];
        if let (Some(quads), Some(bind)) = (&k.cell_forward_gemm, &layer.cell_forward_gemm) {
            let kernels = [&quads.wide, &quads.narrow];
            for ((what, kernel), grid) in GATES_CELL.into_iter().zip(kernels).zip(grids) {
                self.dispatch_forward(pass, what, kernel, bind, slot, step, grid);
            }
            return;
        }
        let kernels = [&k.step_gemm, &k.step_gemm_narrow];
        for ((what, kernel), grid) in GATES_GEMM.into_iter().zip(kernels).zip(grids) {
            self.dispatch_forward(pass, what, kernel, &layer.gates_forward, slot, step, grid);
        }
        let (what, bind) = ("cell", &layer.cell_forward);
        let grid = ForwardGrid::PerUnit;
        self.dispatch_forward(pass, what, &k.cell_forward, bind, slot, step, grid);
    }

    /// Dispatches a layer's backward step over `rows` listed rows, as
    /// [`Engine::dispatch_layer_forward`] its forward step: `step_cell_backward` (the
    /// dh GEMM and the cell backward), or `step_gemm`, then `cell_backward`; the GEMMs
    /// in narrow blocks while the rows fit in one, in wide ones past that.
    fn dispatch_layer_backward(
        &self,
        pass: &mut wgpu::ComputePass,
        layer: &LayerBinds,
        slot: Option<u32>,
        rows: usize,
    ) {
        let (k, h) = (&self.ws.kernels, self.cfg.model.hidden_size);
        if let (Some(quads), Some(bind)) = (&k.cell_backward_gemm, &layer.cell_backward_gemm) {
            let kernels = [&quads.wide, &quads.narrow];
            for ((what, kernel), rule) in DH_CELL.into_iter().zip(kernels).zip(quads.rules(h)) {
                self.dispatch(pass, what, kernel, bind, slot, rule.groups(rows));
            }
            return;
        }
        let kernels = [&k.step_gemm, &k.step_gemm_narrow];
        let rules = k.gemm_shapes.rules(h);
        for ((what, kernel), rule) in DH_GEMM.into_iter().zip(kernels).zip(rules) {
            let bind = &layer.dh_backward;
            self.dispatch(pass, what, kernel, bind, slot, rule.groups(rows));
        }
        let per_unit = [groups_for(h, 64), rows as u32, 1];
        let (what, bind) = ("cell backward", &layer.cell_backward);
        self.dispatch(pass, what, &k.cell_backward, bind, slot, per_unit);
    }

    /// Refreshes the weight copies that `step_cell.wgsl` reads (the gate GEMMs'
    /// weights, and the dh GEMMs' where H is not a multiple of 4: `WeightCopies`) from
    /// the parameters, in the direct form only: recorded at the start of every forward
    /// pass, so they hold whatever the parameters hold then.
    fn encode_weight_copies(&self, pass: &mut wgpu::ComputePass) {
        let kernel = &self.ws.kernels.weight_copy;
        for (bind, groups) in &self.ws.binds.weight_copies {
            self.dispatch(pass, "weight copies", kernel, bind, None, *groups);
        }
    }

    /// Dispatches `grad_gemm` over a gradient of `rows` x `cols` (the bias column
    /// included), in the wide blocks of its form.
    fn dispatch_grad_gemm(
        &self,
        pass: &mut wgpu::ComputePass,
        what: &'static str,
        bind: &wgpu::BindGroup,
        slot: Option<u32>,
        rows: usize,
        cols: usize,
    ) {
        let k = &self.ws.kernels;
        let groups = k.gemm_shapes.wide.groups(rows, cols);
        self.dispatch(pass, what, &k.grad_gemm, bind, slot, groups);
    }

    /// Dispatches a layer's input weight gradient, `rows` x `cols` (the bias column
    /// included): in `grad_gemm_narrow` where it has at most 4 columns (a few inputs,
    /// or a sparse layer 0's bias column), in `grad_gemm_quads` where its operands read
    /// in vec4s (on lavapipe 1.4-4.2 times as fast at the dense MNIST shape,
    /// docs/performance.md), else in `grad_gemm`.
    fn dispatch_input_grad(
        &self,
        pass: &mut wgpu::ComputePass,
        what: &'static str,
        layer: &LayerBinds,
        slot: Option<u32>,
        rows: usize,
        cols: usize,
    ) {
        let k = &self.ws.kernels;
        if let (Some(bind), Some(kernel)) = (&layer.grad_ih_narrow, &k.grad_gemm_narrow) {
            let groups = matmul::narrow_grad_groups(rows);
            self.dispatch(pass, what, kernel, bind, slot, groups);
        } else if let (Some(bind), Some(kernel)) = (&layer.grad_ih_quads, &k.grad_gemm_quads) {
            let groups = matmul::quads_grad_groups(rows, cols);
            self.dispatch(pass, what, kernel, bind, slot, groups);
        } else {
            self.dispatch_grad_gemm(pass, what, &layer.grad_ih, slot, rows, cols);
        }
    }

    fn encode_forward_step(&self, pass: &mut wgpu::ComputePass, t: usize, rows: StepRows) {
        let (k, binds) = (&self.ws.kernels, &self.ws.binds);
        let slot = Some(self.slot(self.ws.slots.forward(t)));
        let step = (t, rows);
        if let Some(sparse) = &binds.sparse_gates {
            let (what, kernel) = ("sparse input gates", &k.sparse_gates);
            self.dispatch_forward(pass, what, kernel, sparse, slot, step, ForwardGrid::PerUnit);
        }
        for layer in &binds.layers {
            self.dispatch_layer_forward(pass, layer, slot, step);
        }
        let (what, kernel, bind) = (
            "readout and threshold",
            &k.readout_forward,
            &binds.readout_forward,
        );
        self.dispatch_forward(pass, what, kernel, bind, slot, step, ForwardGrid::Readout);
    }

    /// Writes the replay lists and the pair lists of the weight gradients.
    /// Writes one (t*, row) entry per row: the list of `loss_stats` and the readout gradient.
    fn write_loss_step_list(&self, steps: usize, tstar: &[u32]) {
        let regions = &self.ws.regions;
        self.write_rows(regions.loss_steps, &loss_step_entries(tstar));
        let step = Step {
            t: 0,
            n_rows: tstar.len() as u32,
            rows_offset: regions.loss_steps as u32,
            steps: steps as u32,
        };
        self.write_slots(self.ws.slots.loss_steps(), &[step]);
    }

    /// Writes the backward replay's per-step row lists, which together are also the
    /// (step, row) pairs of the weight gradients.
    fn write_replay_lists(&self, steps: usize, plan: &ReplayPlan) {
        let (regions, slots) = (&self.ws.regions, &self.ws.slots);
        let steps = steps as u32;
        self.write_rows(regions.replay, &plan.entries);
        let backward: Vec<Step> = plan
            .per_step
            .iter()
            .enumerate()
            .map(|(t, &(start, len))| Step {
                t: t as u32,
                n_rows: len as u32,
                rows_offset: (regions.replay + start) as u32,
                steps,
            })
            .collect();
        self.write_slots(slots.backward(0), &backward);
        let all = Step {
            t: 0,
            n_rows: plan.pairs() as u32,
            rows_offset: regions.replay as u32,
            steps,
        };
        self.write_slots(slots.all_pairs(), &[all]);
        // The entries are in step order, so those of steps 1 and later are the ones
        // past the end of step 0's.
        let step0_end = plan.per_step.first().map_or(0, |&(start, len)| start + len) as u32;
        let recurrent = Step {
            n_rows: all.n_rows - step0_end,
            rows_offset: all.rows_offset + step0_end,
            ..all
        };
        self.write_slots(slots.recurrent_pairs(), &[recurrent]);
    }

    /// Uploads the sparse inputs of the processed pairs grouped by input position, for
    /// the sparse weight gradient.
    fn write_sparse_columns(&self, plan: &ReplayPlan) {
        let Some(rows) = &self.sparse_rows else {
            return;
        };
        let cols = SparseColumns::from_rows(
            rows,
            &plan.entries,
            self.cfg.capacity.batch,
            self.cfg.model.input_size,
        );
        let (q, buf) = (&self.ctx.queue, &self.ws.buf);
        q.write_buffer(&buf.csc_offsets, 0, bytemuck::cast_slice(&cols.offsets));
        if !cols.pairs.is_empty() {
            q.write_buffer(&buf.csc_pairs, 0, bytemuck::cast_slice(&cols.pairs));
            q.write_buffer(&buf.csc_values, 0, bytemuck::cast_slice(&cols.values));
        }
    }

    fn encode_backward(&self, pass: &mut wgpu::ComputePass, plan: &ReplayPlan) {
        let (k, binds, slots) = (&self.ws.kernels, &self.ws.binds, &self.ws.slots);
        let m = &self.cfg.model;
        let h = m.hidden_size;
        for (t, &(_, n)) in plan.per_step.iter().enumerate().rev() {
            let slot = Some(self.slot(slots.backward(t)));
            for layer in binds.layers.iter().rev() {
                self.dispatch_layer_backward(pass, layer, slot, n);
            }
        }
        let pairs_slot = Some(self.slot(slots.all_pairs()));
        // The readout's gradient sums over the steps that carry a loss: the loss steps,
        // or every processed pair when the loss starts earlier (dL/dz is zero at the
        // pairs before its first step).
        let readout_slot = match self.cfg.rc.loss_from_step {
            None => Some(self.slot(slots.loss_steps())),
            Some(_) => pairs_slot,
        };
        let (what, bind) = ("readout weight gradient", &binds.grad_readout);
        self.dispatch_grad_gemm(pass, what, bind, readout_slot, m.classes, h + 1);
        let recurrent_pairs_slot = Some(self.slot(slots.recurrent_pairs()));
        for (kk, layer) in binds.layers.iter().enumerate() {
            // With sparse input, grad_ih computes layer 0's bias column only.
            let sparse = kk == 0 && self.cfg.sparse_input;
            let input = if sparse { 0 } else { m.layer_input(kk) };
            let what = "input weight gradient";
            self.dispatch_input_grad(pass, what, layer, pairs_slot, 4 * h, input + 1);
            let (what, bind) = ("recurrent weight gradient", &layer.grad_hh);
            self.dispatch_grad_gemm(pass, what, bind, recurrent_pairs_slot, 4 * h, h);
        }
        if let Some(bind) = &binds.sparse_weight_grad {
            let (what, kernel) = ("sparse input weight gradient", &k.sparse_weight_grad);
            let groups = [groups_for(h, 64), m.input_size as u32, 1];
            self.dispatch(pass, what, kernel, bind, None, groups);
        }
    }

    fn encode_adam(&mut self, pass: &mut wgpu::ComputePass) {
        self.adam_steps += 1;
        let a = &self.cfg.adam;
        let step = self.adam_steps as i32;
        let params = AdamParams {
            count: self.layout.total as u32,
            lr: a.lr,
            beta1: a.beta1,
            beta2: a.beta2,
            eps: a.eps,
            c1: (1.0 - (a.beta1 as f64).powi(step)) as f32,
            c2: (1.0 - (a.beta2 as f64).powi(step)) as f32,
            max_norm: a.max_grad_norm.unwrap_or(0.0),
            weight_decay: a.weight_decay,
        };
        self.ctx
            .queue
            .write_buffer(&self.ws.buf.adam_params, 0, bytemuck::bytes_of(&params));
        let (k, binds) = (&self.ws.kernels, &self.ws.binds);
        if a.max_grad_norm.is_some() {
            let (what, bind) = ("gradient norm", &binds.grad_sq_norm);
            self.dispatch(pass, what, &k.grad_sq_norm, bind, None, [NORM_GROUPS, 1, 1]);
            let (what, bind) = ("gradient norm total", &binds.grad_norm_total);
            self.dispatch(pass, what, &k.grad_norm_total, bind, None, [1, 1, 1]);
        }
        let groups = groups_for(self.layout.total, 256 * ADAM_ELEMENTS_PER_INVOCATION);
        let max = self.ctx.limits.max_compute_workgroups_per_dimension;
        let x = groups.min(max);
        let groups = [x, groups.div_ceil(x), 1];
        self.dispatch(pass, "Adam", &k.adam, &binds.adam, None, groups);
    }

    /// Copies `count` f32 values from element `at` of `buffer` and reads them back.
    fn read_f32(&self, buffer: &wgpu::Buffer, at: usize, count: usize) -> Result<Vec<f32>> {
        let mut encoder = self.ctx.device.create_command_encoder(&Default::default());
        encoder.copy_buffer_to_buffer(
            buffer,
            (at * 4) as u64,
            &self.ws.buf.staging,
            0,
            (count * 4) as u64,
        );
        self.submit(encoder);
        self.ctx.read_staging(&self.ws.buf.staging, count)
    }
}
