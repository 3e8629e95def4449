//! Timing hooks for the benchmarks (`rankcode bench`, benches/kernels.rs): single
//! kernels and round trips of an engine, driven from outside it. They live here, not
//! on `Engine`, and change no result of a training or evaluation batch (they
//! overwrite the scheduler state of the last batch, and `time_adam` the parameters).

use super::schedule::ReplayPlan;
use super::{Engine, StepRows};
use crate::error::{Result, ensure};
use crate::gpu::structs::Step;

/// A GEMM of the backward pass, for [`time_backward_gemm`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackwardGemm {
    /// dh = W_hh^T (gate deltas of t + 1): `[B, 4H] x [4H, H]`, and the cell backward
    /// that takes it (in the direct form the GEMM's epilogue, in the staged form a
    /// dispatch of its own).
    Dh,
    /// The input weights' and biases' gradient over every (step, row) pair:
    /// `[4H, pairs] x [pairs, I + 1]` (the bias column alone with sparse input).
    InputGrad,
    /// The recurrent weights' gradient over the pairs of steps 1 and later:
    /// `[4H, pairs] x [pairs, H]`.
    RecurrentGrad,
    /// The readout's gradient over each row's loss step: `[C, B] x [B, H + 1]`.
    ReadoutGrad,
}

impl BackwardGemm {
    pub const ALL: [BackwardGemm; 4] = [
        BackwardGemm::Dh,
        BackwardGemm::InputGrad,
        BackwardGemm::RecurrentGrad,
        BackwardGemm::ReadoutGrad,
    ];

    /// What the benchmark report calls it.
    pub fn name(self) -> &'static str {
        match self {
            BackwardGemm::Dh => "dh",
            BackwardGemm::InputGrad => "input weight gradient",
            BackwardGemm::RecurrentGrad => "recurrent weight gradient",
            BackwardGemm::ReadoutGrad => "readout weight gradient",
        }
    }
}

/// Host and GPU time of a dispatch, split as wgpu's own benchmarks do.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DispatchTiming {
    /// Recording the command buffer.
    pub encode_s: f64,
    /// `Queue::submit`.
    pub submit_s: f64,
    /// Waiting for the GPU to finish.
    pub wait_s: f64,
}

impl DispatchTiming {
    /// All three together.
    pub fn total_s(&self) -> f64 {
        self.encode_s + self.submit_s + self.wait_s
    }
}

/// Times layer 0's forward step, its gate GEMM and the cell (in the direct form one
/// dispatch, the cell in the GEMM's epilogue; in the staged form two), over the
/// first `rows` rows at step 1, where the GEMM reads both the input and h_0 (at step
/// 0, h_{-1} = 0 and the recurrent part is skipped): `reps` steps recorded in one
/// command buffer and submitted once; the encoding, submission and wait times, each
/// divided by `reps` (after a warm-up). Overwrites the scheduler state and the step-1
/// states of the last batch.
pub fn time_layer_forward(engine: &mut Engine, rows: usize, reps: usize) -> Result<DispatchTiming> {
    let cap = engine.cfg.capacity;
    ensure(rows > 0 && rows <= cap.batch && reps > 0, || {
        format!("cannot time {rows} rows x {reps}")
    })?;
    ensure(cap.steps > 1, || {
        "timing a layer's forward step at step 1 needs sequences of at least 2 steps".into()
    })?;
    let list: Vec<u32> = (0..rows as u32).collect();
    let list_at = engine.ws.regions.forward(1);
    engine.write_rows(list_at, &list);
    engine.ctx.queue.write_buffer(
        &engine.ws.buf.tstar,
        0,
        bytemuck::cast_slice(&vec![cap.steps as u32; rows]),
    );
    let step = Step {
        t: 1,
        n_rows: rows as u32,
        rows_offset: list_at as u32,
        steps: cap.steps as u32,
    };
    engine.write_slots(engine.ws.slots.forward(1), &[step]);
    let slot = Some(engine.slot(engine.ws.slots.forward(1)));
    time_dispatches(engine, reps, |engine, pass| {
        let step = (1, StepRows::Listed(rows));
        engine.dispatch_layer_forward(pass, &engine.ws.binds.layers[0], slot, step);
    })
}

/// Times one GEMM of layer 0's backward pass (or the readout's) over a full-length
/// batch in which every row runs to the last step, timed as [`time_layer_forward`]
/// times its step. The dh GEMM is that of step 0, where every row takes the gate
/// deltas of step 1, with the cell backward. Needs sequences of at least 2 steps.
/// Overwrites the scheduler state of the last batch and the backward pass's values
/// at step 0.
pub fn time_backward_gemm(
    engine: &mut Engine,
    form: BackwardGemm,
    reps: usize,
) -> Result<DispatchTiming> {
    let cap = engine.cfg.capacity;
    ensure(cap.steps > 1 && reps > 0, || {
        format!(
            "cannot time the backward GEMMs over {} steps x {reps}",
            cap.steps
        )
    })?;
    let tstar = vec![cap.steps as u32 - 1; cap.batch];
    engine
        .ctx
        .queue
        .write_buffer(&engine.ws.buf.tstar, 0, bytemuck::cast_slice(&tstar));
    engine.write_loss_step_list(cap.steps, &tstar);
    engine.write_replay_lists(cap.steps, &ReplayPlan::new(&tstar));
    let (slot, bind, grad) = backward_gemm(engine, form);
    let slot = Some(engine.slot(slot));
    time_dispatches(engine, reps, |engine, pass| match grad {
        None => engine.dispatch_layer_backward(pass, &engine.ws.binds.layers[0], slot, cap.batch),
        Some((rows, cols, _)) if form == BackwardGemm::InputGrad => {
            let layer = &engine.ws.binds.layers[0];
            engine.dispatch_input_grad(pass, "weight gradient", layer, slot, rows, cols)
        }
        Some((rows, cols, _)) => {
            engine.dispatch_grad_gemm(pass, "weight gradient", bind, slot, rows, cols)
        }
    })
}

/// Floating-point operations (2 per multiply-add) of the GEMM that
/// [`time_backward_gemm`] times.
pub fn backward_gemm_flops(engine: &Engine, form: BackwardGemm) -> f64 {
    let (b, m) = (engine.cfg.capacity.batch, &engine.cfg.model);
    let multiply_adds = match backward_gemm(engine, form).2 {
        // The dh GEMM of a layer below another also takes the gate deltas from
        // above.
        None => b * 4 * m.hidden_size * m.layers.min(2) * m.hidden_size,
        Some((rows, cols, pairs)) => rows * cols * pairs,
    };
    2.0 * multiply_adds as f64
}

/// The step slot and bind group of a backward GEMM of layer 0 over a full-length batch,
/// and for a weight gradient its output rows, output columns and pairs.
fn backward_gemm(
    engine: &Engine,
    form: BackwardGemm,
) -> (usize, &wgpu::BindGroup, Option<(usize, usize, usize)>) {
    let (cap, m) = (engine.cfg.capacity, &engine.cfg.model);
    let (b, t, h) = (cap.batch, cap.steps, m.hidden_size);
    let input = if engine.cfg.sparse_input {
        0
    } else {
        m.input_size
    };
    let (slots, layer) = (&engine.ws.slots, &engine.ws.binds.layers[0]);
    match form {
        BackwardGemm::Dh => (slots.backward(0), &layer.dh_backward, None),
        BackwardGemm::InputGrad => (
            slots.all_pairs(),
            &layer.grad_ih,
            Some((4 * h, input + 1, b * t)),
        ),
        BackwardGemm::RecurrentGrad => (
            slots.recurrent_pairs(),
            &layer.grad_hh,
            Some((4 * h, h, b * (t - 1))),
        ),
        BackwardGemm::ReadoutGrad => (
            slots.loss_steps(),
            &engine.ws.binds.grad_readout,
            Some((m.classes, h + 1, b)),
        ),
    }
}

/// `reps` passes of `record` in one command buffer, submitted once, after a warm-up:
/// the encoding, submission and wait times, each divided by `reps`.
fn time_dispatches(
    engine: &Engine,
    reps: usize,
    record: impl Fn(&Engine, &mut wgpu::ComputePass),
) -> Result<DispatchTiming> {
    let run = |reps: usize| -> Result<DispatchTiming> {
        let start = std::time::Instant::now();
        let mut encoder = engine
            .ctx
            .device
            .create_command_encoder(&Default::default());
        {
            let mut pass = engine.begin_pass(&mut encoder);
            for _ in 0..reps {
                record(engine, &mut pass);
            }
        }
        engine.end_pass(&mut encoder);
        let commands = encoder.finish();
        let encoded = std::time::Instant::now();
        engine.ctx.queue.submit([commands]);
        let submitted = std::time::Instant::now();
        engine.ctx.wait()?;
        let per = |d: std::time::Duration| d.as_secs_f64() / reps as f64;
        Ok(DispatchTiming {
            encode_s: per(encoded - start),
            submit_s: per(submitted - encoded),
            wait_s: per(submitted.elapsed()),
        })
    };
    run(1)?; // warm-up
    run(reps)
}

/// Seconds of one Adam step over all parameters (submitted and waited for), averaged
/// over `reps`. Changes the parameters.
pub fn time_adam(engine: &mut Engine, reps: usize) -> Result<f64> {
    let start = std::time::Instant::now();
    for _ in 0..reps.max(1) {
        let mut encoder = engine
            .ctx
            .device
            .create_command_encoder(&Default::default());
        {
            let mut pass = engine.begin_pass(&mut encoder);
            engine.encode_adam(&mut pass);
        }
        engine.end_pass(&mut encoder);
        engine.ctx.queue.submit([encoder.finish()]);
        engine.ctx.wait()?;
    }
    Ok(start.elapsed().as_secs_f64() / reps.max(1) as f64)
}

/// Seconds of one scheduler round trip (submit a copy of the loss steps, map the
/// staging buffer, read it), averaged over `reps`.
pub fn time_round_trip(engine: &Engine, reps: usize) -> Result<f64> {
    let bytes = (engine.cfg.capacity.batch * 4) as u64;
    let start = std::time::Instant::now();
    for _ in 0..reps.max(1) {
        let mut encoder = engine
            .ctx
            .device
            .create_command_encoder(&Default::default());
        encoder.copy_buffer_to_buffer(&engine.ws.buf.tstar, 0, &engine.ws.buf.staging, 0, bytes);
        engine.ctx.queue.submit([encoder.finish()]);
        engine
            .ctx
            .read_staging::<u32>(&engine.ws.buf.staging, engine.cfg.capacity.batch)?;
    }
    Ok(start.elapsed().as_secs_f64() / reps.max(1) as f64)
}
