//! Benchmarks behind every speed claim (`rankcode bench`): GEMM throughput against a
//! plain GEMM ceiling, forward/backward/Adam throughput, the scheduler's round trip,
//! and rank coding against end-of-sequence training on a controlled distribution of
//! decision steps, with its realised speedup set against the ideal T / mean(t* + 1).
//!
//! Decision steps are controlled by a hand-built model (see [`controlled_params`])
//! whose every sequence fires exactly when its input channel 0 switches on; the cost
//! of a step does not depend on the weights' values, so timings are representative.

use crate::data::{Batch, Inputs};
use crate::engine::{BackwardGemm, Capacity, Engine, EngineConfig, Overlap, timing};
use crate::error::Result;
use crate::gpu::GpuContext;
use crate::gpu::matmul::{PlainGemm, PlainKernel};
use crate::gpu::profile::ProfiledWork;
use crate::model::{AdamConfig, ModelConfig, ParamLayout, RcConfig, Readout, TrainMode};
use crate::rng::Rng;
use serde::Serialize;
use std::sync::Arc;
use std::time::Instant;

pub mod peers;

/// A model shape and batch to benchmark.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Preset {
    pub name: &'static str,
    pub model: ModelConfig,
    pub batch: usize,
    pub steps: usize,
    /// Inputs with few events per step (one in 20 on), through the sparse layer-0 path,
    /// as temporal MNIST.
    pub sparse: bool,
}

impl Preset {
    /// Checks that the shape and batch are in range, as an engine does, before
    /// anything is allocated for them (the controlled parameters of 100,000 hidden
    /// units would take 160 GB).
    pub fn validate(&self) -> Result<()> {
        engine_config(self, TrainMode::Rc, 1, self.sparse).validate()
    }
}

fn shape(input: usize, hidden: usize, classes: usize) -> ModelConfig {
    ModelConfig {
        input_size: input,
        hidden_size: hidden,
        layers: 1,
        classes,
        readout: Readout::Sigmoid,
    }
}

/// The task shapes: the toy tasks (noise-vs-signal, hidden 125 as the authors),
/// temporal MNIST (784 -> 125, 20 steps) and speech (40 mel bands, 100 frames, hidden 256).
pub fn presets() -> Vec<Preset> {
    vec![
        Preset {
            name: "toy",
            model: shape(1, 125, 2),
            batch: 128,
            steps: 40,
            sparse: false,
        },
        Preset {
            name: "mnist",
            model: shape(784, 125, 10),
            batch: 256,
            steps: 20,
            sparse: true,
        },
        Preset {
            name: "speech",
            model: shape(40, 256, 12),
            batch: 256,
            steps: 100,
            sparse: false,
        },
    ]
}

/// Parameters under which hidden unit 0 switches on at the first step where input 0
/// is 1 (and stays on), and every output unit then crosses any threshold below 0.999;
/// before that, outputs stay below 0.01. All other weights are zero.
pub fn controlled_params(model: &ModelConfig) -> Vec<f32> {
    let layout = ParamLayout::new(model);
    let h = model.hidden_size;
    let mut p = vec![0f32; layout.total];
    for (k, lo) in layout.layers.iter().enumerate() {
        let input = model.layer_input(k);
        // Input 0 of layer k > 0 is hidden unit 0 below it (0 or about 0.76).
        let w = if k == 0 { 20.0 } else { 30.0 };
        for (gate, weight, bias) in [(0, w, -10.0), (1, 0.0, 10.0), (2, w, 0.0), (3, 0.0, 10.0)] {
            p[lo.w_ih + (gate * h) * input] = weight;
            p[lo.b_ih + gate * h] = bias;
        }
    }
    for c in 0..model.classes {
        p[layout.readout_w + c * h] = 20.0;
        p[layout.readout_b + c] = -5.0;
    }
    p
}

/// A batch whose row b fires at `decisions[b]` (never, for `None`) under
/// [`controlled_params`]; the other inputs are random 0/1 values, on with probability
/// 1/2, or 1/20 when `sparse`.
pub fn controlled_batch(
    model: &ModelConfig,
    steps: usize,
    decisions: &[Option<usize>],
    sparse: bool,
    seed: u64,
) -> Batch {
    let one_in = if sparse { 20 } else { 2 };
    let (b, input) = (decisions.len(), model.input_size);
    let mut rng = Rng::new(seed);
    let mut x = vec![0f32; steps * b * input];
    for t in 0..steps {
        for (row, d) in decisions.iter().enumerate() {
            let at = (t * b + row) * input;
            x[at] = matches!(d, Some(s) if t >= *s) as u8 as f32;
            for v in &mut x[at + 1..at + input] {
                *v = (rng.below(one_in) == 0) as u8 as f32;
            }
        }
    }
    let labels = (0..b).map(|_| rng.below(model.classes) as u32).collect();
    Batch {
        steps,
        batch: b,
        input,
        inputs: Inputs::Dense(x),
        labels,
    }
}

/// Decision steps uniform over the first quarter of the sequence, 10% never firing.
pub fn decision_distribution(batch: usize, steps: usize, seed: u64) -> Vec<Option<usize>> {
    let mut rng = Rng::new(seed);
    let span = (steps / 4).max(1);
    (0..batch)
        .map(|_| {
            if rng.below(10) == 0 {
                None
            } else {
                Some(rng.below(span))
            }
        })
        .collect()
}

/// Gate GEMM throughput, best of [`GEMM_ROUNDS`] alternating timings of each kernel.
#[derive(Debug, Clone, Serialize)]
pub struct GemmFigures {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub step_gemm_gflops: f64,
    /// The engine's blocking on plain dense matrices of the same sizes.
    pub dense_gemm_gflops: f64,
    /// step GEMM / dense GEMM throughput.
    pub ratio: f64,
    /// `tiled_gemm` (gemm.wgsl) at the same sizes: the best our shaders reach there.
    pub tiled_gemm_gflops: f64,
    /// The GEMMs of the backward pass over a full-length batch (every row to the last
    /// step) on the dense input path, best of [`GEMM_ROUNDS`] alternating timings.
    pub backward: Vec<BackwardGemmFigure>,
}

/// One GEMM of the backward pass.
#[derive(Debug, Clone, Serialize)]
pub struct BackwardGemmFigure {
    pub form: &'static str,
    pub flops: f64,
    pub gflops: f64,
}

/// The best our GEMM shaders reach on plain `[size x size] x [size x size]` matrices,
/// best of [`GEMM_ROUNDS`] alternating timings of each kernel.
#[derive(Debug, Clone, Serialize)]
pub struct GemmCeiling {
    pub size: usize,
    /// `tiled_gemm` of gemm.wgsl.
    pub tiled_gemm_gflops: f64,
    /// `dense_gemm` (`dense_gemm_direct` on CPU adapters): the engine's blocking.
    pub dense_gemm_gflops: f64,
    /// The larger of the two.
    pub gemm_ceiling_gflops: f64,
}

/// The size of [`gemm_ceiling`]'s matrices.
pub const CEILING_SIZE: usize = 1024;

/// Dispatches in one timed submission of a GEMM of `flops`: about 1 GFLOP of work,
/// at most `most`.
fn gemm_reps(flops: f64, most: usize) -> usize {
    ((1e9 / flops) as usize).clamp(1, most.max(1))
}

/// One timing of every [`PlainKernel`] on `gemm`, in turn, `reps` dispatches each:
/// lowers `best` (seconds a dispatch, in the order of `PlainKernel::ALL`) where faster.
fn time_plain_kernels(
    ctx: &GpuContext,
    gemm: &PlainGemm,
    reps: usize,
    best: &mut [f64; 2],
) -> Result<()> {
    for (b, kernel) in best.iter_mut().zip(PlainKernel::ALL) {
        *b = b.min(gemm.seconds(ctx, kernel, reps)?);
    }
    Ok(())
}

/// The ceiling of our GEMM shaders, at [`CEILING_SIZE`] cubed.
pub fn gemm_ceiling(ctx: &GpuContext) -> Result<GemmCeiling> {
    let n = CEILING_SIZE;
    let gemm = PlainGemm::with_values(ctx, n, n, n);
    let mut best = [f64::MAX; 2];
    for _ in 0..GEMM_ROUNDS {
        time_plain_kernels(ctx, &gemm, 1, &mut best)?;
    }
    let [dense, tiled] = best.map(|s| gemm.flops() / s / 1e9);
    Ok(GemmCeiling {
        size: n,
        tiled_gemm_gflops: tiled,
        dense_gemm_gflops: dense,
        gemm_ceiling_gflops: tiled.max(dense),
    })
}

/// One dispatch of the forward gate GEMM over a number of live rows: what a step of a
/// batch costs as its rows decide (a trained model's last steps run one or two rows).
#[derive(Debug, Clone, Serialize)]
pub struct LiveRowsFigure {
    pub rows: usize,
    /// Best of the rounds, milliseconds a dispatch (submit and wait).
    pub gate_gemm_ms: f64,
}

/// 1, 2, 4, ... below `batch`, then `batch`.
fn live_row_counts(batch: usize) -> Vec<usize> {
    let mut counts: Vec<usize> = std::iter::successors(Some(1), |n| Some(n * 2))
        .take_while(|&n| n < batch)
        .collect();
    counts.push(batch);
    counts
}

#[derive(Debug, Clone, Serialize)]
pub struct RcVsEos {
    /// Mean of (t* + 1) of the controlled batch.
    pub mean_decision_step: f64,
    /// T / mean(t* + 1).
    pub ideal_speedup: f64,
    /// Seconds per training batch (forward, loss, backward, gradients; no Adam).
    pub rc_batch_s: f64,
    pub eos_batch_s: f64,
    /// Median over the alternations of (end-of-sequence batch time / the RC batch time
    /// of the same alternation): pairs measured close together share the machine's
    /// drift. Not exactly eos_batch_s / rc_batch_s, the medians of each side.
    pub realised_speedup: f64,
    /// realised / ideal.
    pub efficiency: f64,
    /// Lowest and highest efficiency of a single pair: the spread of the measurement.
    pub efficiency_range: [f64; 2],
    /// What an RC batch and an end-of-sequence batch ask of the GPU and the host.
    pub rc_pipeline: PipelineFigures,
    pub eos_pipeline: PipelineFigures,
}

/// The hardware-independent figures of one training batch (forward, loss, backward,
/// gradients), which decide its speed on a GPU where a step takes microseconds, and
/// how busy the adapter was during it.
#[derive(Debug, Clone, Serialize)]
pub struct PipelineFigures {
    pub dispatches: usize,
    pub submits: usize,
    pub readbacks: usize,
    /// A profiled batch: None where the adapter has no timestamp queries in passes.
    pub busy: Option<GpuBusy>,
}

/// The wall time of a batch and the GPU time of its dispatches (timestamp queries).
/// The rest, wall minus GPU, is time the GPU waited: for the host (scheduling,
/// uploads, readbacks) and for work outside the timed passes (copies, and reading the
/// timestamps back, which profiling adds).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct GpuBusy {
    pub wall_s: f64,
    pub gpu_s: f64,
}

impl GpuBusy {
    /// The GPU's share of the wall time.
    pub fn share(&self) -> f64 {
        self.gpu_s / self.wall_s
    }
}

/// The pipeline figures of a training batch of `p` in `mode` on `batch`: the counts of
/// its report, then one profiled batch after a warm-up.
fn pipeline_figures(
    ctx: &Arc<GpuContext>,
    p: &Preset,
    mode: TrainMode,
    batch: &Batch,
) -> Result<PipelineFigures> {
    let mut e = engine(ctx, p, mode, 1, p.sparse)?;
    let report = e.compute_gradients(batch)?;
    let busy = match e.enable_profiling() {
        Err(_) => None,
        Ok(()) => {
            e.compute_gradients(batch)?;
            e.take_profile()?;
            let start = Instant::now();
            e.compute_gradients(batch)?;
            let wall_s = start.elapsed().as_secs_f64();
            let profile = e.take_profile()?.expect("profiling is enabled");
            Some(GpuBusy {
                wall_s,
                gpu_s: profile.total_seconds(),
            })
        }
    };
    Ok(PipelineFigures {
        dispatches: report.dispatches,
        submits: report.submits,
        readbacks: report.readbacks,
        busy,
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct CadenceFigure {
    pub readback_every: usize,
    /// Whether the next chunk ran while the host read one back.
    pub overlap_readback: bool,
    pub rc_batch_s: f64,
    pub readbacks: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConfigReport {
    pub preset: Preset,
    /// GPU memory of the workspace (stored prefix included), bytes.
    pub memory_bytes: u64,
    pub gemm: GemmFigures,
    /// The gate GEMM of the preset's own input path (sparse or dense) at step 1, by the
    /// number of live rows.
    pub gate_gemm_by_live_rows: Vec<LiveRowsFigure>,
    /// Full-length forward pass, sequences per second.
    pub forward_seq_per_s: f64,
    /// Forward + backward + gradients (end-of-sequence, full length), sequences per second.
    pub train_seq_per_s: f64,
    /// One Adam step over all parameters, milliseconds.
    pub adam_ms: f64,
    /// One scheduler round trip (copy, submit, map, read), milliseconds.
    pub round_trip_ms: f64,
    /// One forward step of the batch (full pass / T), milliseconds.
    pub forward_step_ms: f64,
    /// round trip / (forward step + round trip).
    pub round_trip_share: f64,
    pub rc_vs_eos: RcVsEos,
    pub cadence: Vec<CadenceFigure>,
}

/// Alternating rounds of the step and plain GEMM timings; the best of each is reported.
const GEMM_ROUNDS: usize = 5;
/// Rounds of the gate GEMM timing at each count of live rows; the best is reported.
const LIVE_ROWS_ROUNDS: usize = 3;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Median wall time of `reps` calls of `f` after one warm-up call.
fn median_seconds(reps: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    f()?;
    let mut times = Vec::with_capacity(reps);
    for _ in 0..reps.max(1) {
        let start = Instant::now();
        f()?;
        times.push(start.elapsed().as_secs_f64());
    }
    Ok(median(times))
}

fn engine(
    ctx: &Arc<GpuContext>,
    p: &Preset,
    mode: TrainMode,
    k: usize,
    sparse: bool,
) -> Result<Engine> {
    let cfg = engine_config(p, mode, k, sparse);
    Engine::new(ctx.clone(), cfg, &controlled_params(&p.model))
}

/// The engine settings of every benchmark of preset `p`: training `mode` at theta
/// 0.95 and beta 0, a readback every `k` steps, sparse layer-0 input if `sparse`.
pub fn engine_config(p: &Preset, mode: TrainMode, k: usize, sparse: bool) -> EngineConfig {
    EngineConfig::new(
        p.model,
        Capacity {
            batch: p.batch,
            steps: p.steps,
        },
    )
    .with_rc(RcConfig {
        theta: 0.95,
        beta: 0.0,
        mode,
        loss_from_step: None,
    })
    .with_readback_every(k)
    .with_sparse_input(sparse)
}

/// GPU time per kind of dispatch of RC training batches.
#[derive(Debug, Clone, Serialize)]
pub struct TrainingBatchProfile {
    pub batches: usize,
    #[serde(flatten)]
    pub work: ProfiledWork,
}

/// Times every dispatch of `reps` RC training batches of the controlled batch, as
/// `train --clip-grad-norm 1` runs them (readback every step, clipping, Adam), after
/// one warm-up batch. The controlled parameters are restored before each batch, so
/// that every batch decides as the controlled distribution says.
pub fn profile_training_batch(
    ctx: &Arc<GpuContext>,
    p: &Preset,
    batch: &Batch,
    reps: usize,
) -> Result<TrainingBatchProfile> {
    let cfg = engine_config(p, TrainMode::Rc, 1, p.sparse).with_adam(AdamConfig {
        max_grad_norm: Some(1.0),
        ..AdamConfig::default()
    });
    cfg.validate()?;
    let params = controlled_params(&p.model);
    let mut engine = Engine::new(ctx.clone(), cfg, &params)?;
    engine.enable_profiling()?;
    let train = |engine: &mut Engine| -> Result<()> {
        engine.set_params(&params)?;
        engine.train_batch(batch).map(|_| ())
    };
    train(&mut engine)?;
    engine.take_profile()?;
    let start = Instant::now();
    for _ in 0..reps.max(1) {
        train(&mut engine)?;
    }
    let wall_s = start.elapsed().as_secs_f64();
    let profile = engine.take_profile()?.expect("profiling is enabled");
    Ok(TrainingBatchProfile {
        batches: reps.max(1),
        work: ProfiledWork::new(profile, wall_s),
    })
}

/// The controlled batch of a preset.
pub fn preset_batch(p: &Preset) -> Batch {
    let decisions = decision_distribution(p.batch, p.steps, 7);
    controlled_batch(&p.model, p.steps, &decisions, p.sparse, 8)
}

/// Runs every measurement of one preset; `reps` timed repetitions each.
/// `progress` hears the name of each part of the measurement as it starts (on a
/// software adapter the larger presets take minutes).
pub fn bench_preset(
    ctx: &Arc<GpuContext>,
    p: &Preset,
    reps: usize,
    progress: &mut dyn FnMut(&str),
) -> Result<ConfigReport> {
    p.validate()?;
    let m = &p.model;
    let batch = preset_batch(p);
    let mut rc = engine(ctx, p, TrainMode::Rc, 1, p.sparse)?;
    let mut eos = engine(ctx, p, TrainMode::Eos, 1, p.sparse)?;

    let (gm, gn, gk) = (p.batch, 4 * m.hidden_size, m.input_size + m.hidden_size);
    let flops = 2.0 * (gm * gn * gk) as f64;
    let most_reps = (reps * 4).max(4);
    // The GEMM figures are for the dense gate GEMM (a sparse engine's covers only the
    // recurrent part), submit and wait, as the plain GEMM's: the best of GEMM_ROUNDS
    // alternating timings of each, the least disturbed run of a kernel on a shared
    // machine, taken under the same conditions for both.
    progress("GEMM timings");
    let mut dense = engine(ctx, p, TrainMode::Eos, 1, false)?;
    dense.evaluate_full(&batch)?;
    let plain = PlainGemm::with_values(ctx, gm, gn, gk);
    let plain_reps = gemm_reps(plain.flops(), most_reps);
    let (mut step_gemm_s, mut plain_s) = (f64::MAX, [f64::MAX; 2]);
    for _ in 0..GEMM_ROUNDS {
        let t = timing::time_layer_forward(&mut dense, p.batch, most_reps)?;
        step_gemm_s = step_gemm_s.min(t.submit_s + t.wait_s);
        time_plain_kernels(ctx, &plain, plain_reps, &mut plain_s)?;
    }
    drop(plain);
    let [dense_gflops, tiled_gflops] = plain_s.map(|s| flops / s / 1e9);
    progress("backward GEMM timings");
    let mut backward: Vec<(f64, f64)> = vec![(f64::MAX, 0.0); BackwardGemm::ALL.len()];
    for _ in 0..GEMM_ROUNDS {
        for (best, form) in backward.iter_mut().zip(BackwardGemm::ALL) {
            let flops = timing::backward_gemm_flops(&dense, form);
            let t = timing::time_backward_gemm(&mut dense, form, gemm_reps(flops, most_reps))?;
            *best = (best.0.min(t.submit_s + t.wait_s), flops);
        }
    }
    drop(dense);
    let step_gemm_gflops = flops / step_gemm_s / 1e9;
    let gemm = GemmFigures {
        m: gm,
        n: gn,
        k: gk,
        step_gemm_gflops,
        dense_gemm_gflops: dense_gflops,
        ratio: step_gemm_gflops / dense_gflops,
        tiled_gemm_gflops: tiled_gflops,
        backward: BackwardGemm::ALL
            .iter()
            .zip(backward)
            .map(|(form, (s, flops))| BackwardGemmFigure {
                form: form.name(),
                flops,
                gflops: flops / s / 1e9,
            })
            .collect(),
    };

    progress("gate GEMM by live rows");
    let mut by_live_rows = Vec::new();
    for rows in live_row_counts(p.batch) {
        let mut best = f64::MAX;
        for _ in 0..LIVE_ROWS_ROUNDS {
            let t = timing::time_layer_forward(&mut rc, rows, most_reps)?;
            best = best.min(t.submit_s + t.wait_s);
        }
        by_live_rows.push(LiveRowsFigure {
            rows,
            gate_gemm_ms: best * 1e3,
        });
    }

    progress("forward passes");
    let forward_s = median_seconds(reps, || eos.evaluate_full(&batch).map(|_| ()))?;
    // RC and end-of-sequence batches alternate, so that drift in the machine's speed
    // (large on a software adapter) hits both alike.
    let (mut rc_times, mut eos_times) = (Vec::new(), Vec::new());
    let pairs = reps.max(5);
    for pair in 1..=pairs {
        progress(&format!(
            "RC and end-of-sequence training batches, pair {pair} of {pairs}"
        ));
        rc_times.push(median_seconds(1, || {
            rc.compute_gradients(&batch).map(|_| ())
        })?);
        eos_times.push(median_seconds(1, || {
            eos.compute_gradients(&batch).map(|_| ())
        })?);
    }
    let pair_speedups: Vec<f64> = eos_times
        .iter()
        .zip(&rc_times)
        .map(|(e, r)| e / r)
        .collect();
    let report = rc.compute_gradients(&batch)?;
    let mean_decision = report.steps_processed as f64 / p.batch as f64;
    let ideal = p.steps as f64 / mean_decision;
    let lowest = pair_speedups.iter().copied().fold(f64::MAX, f64::min);
    let highest = pair_speedups.iter().copied().fold(0.0, f64::max);
    let realised = median(pair_speedups);
    let eos_s = median(eos_times);
    progress("dispatches, submits and GPU time of a batch");
    let rc_pipeline = pipeline_figures(ctx, p, TrainMode::Rc, &batch)?;
    let eos_pipeline = pipeline_figures(ctx, p, TrainMode::Eos, &batch)?;

    let mut cadence = Vec::new();
    for (k, overlap) in [
        (1, Overlap::Off),
        (1, Overlap::On),
        (2, Overlap::Auto),
        (4, Overlap::Auto),
        (8, Overlap::Auto),
    ] {
        progress(&format!("readback every {k} steps"));
        let mut e = engine(ctx, p, TrainMode::Rc, k, p.sparse)?;
        e.set_overlap_readback(overlap);
        let overlap = e.overlaps_readback();
        let readbacks = e.compute_gradients(&batch)?.readbacks;
        let s = median_seconds(reps, || e.compute_gradients(&batch).map(|_| ()))?;
        cadence.push(CadenceFigure {
            readback_every: k,
            overlap_readback: overlap,
            rc_batch_s: s,
            readbacks,
        });
    }

    progress("round trip and Adam");
    let round_trip = timing::time_round_trip(&rc, reps.max(10))?;
    let step = forward_s / p.steps as f64;
    let adam_s = timing::time_adam(&mut eos, reps.max(10))?;
    Ok(ConfigReport {
        preset: *p,
        memory_bytes: rc.memory_bytes(),
        gemm,
        gate_gemm_by_live_rows: by_live_rows,
        forward_seq_per_s: p.batch as f64 / forward_s,
        train_seq_per_s: p.batch as f64 / eos_s,
        adam_ms: adam_s * 1e3,
        round_trip_ms: round_trip * 1e3,
        forward_step_ms: step * 1e3,
        round_trip_share: round_trip / (step + round_trip),
        rc_vs_eos: RcVsEos {
            mean_decision_step: mean_decision,
            ideal_speedup: ideal,
            rc_batch_s: median(rc_times),
            eos_batch_s: eos_s,
            realised_speedup: realised,
            efficiency: realised / ideal,
            efficiency_range: [lowest / ideal, highest / ideal],
            rc_pipeline,
            eos_pipeline,
        },
        cadence,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::reference;

    #[test]
    fn live_row_counts_double_up_to_the_batch() {
        assert_eq!(live_row_counts(1), [1]);
        assert_eq!(live_row_counts(8), [1, 2, 4, 8]);
        assert_eq!(live_row_counts(100), [1, 2, 4, 8, 16, 32, 64, 100]);
    }

    #[test]
    fn controlled_model_fires_where_asked() {
        let m = ModelConfig {
            layers: 2,
            ..shape(5, 7, 3)
        };
        let decisions = [Some(0), Some(3), None, Some(5), Some(1)];
        let batch = controlled_batch(&m, 6, &decisions, false, 1);
        let rc = RcConfig {
            theta: 0.95,
            beta: 0.0,
            mode: TrainMode::Rc,
            loss_from_step: None,
        };
        let out = reference::run_batch(&m, &rc, &controlled_params(&m), &batch, false);
        let got: Vec<Option<usize>> = out.rows.iter().map(|r| r.first_spike).collect();
        assert_eq!(got, decisions);
    }

    #[test]
    fn the_distribution_covers_the_first_quarter() {
        let d = decision_distribution(1000, 40, 3);
        assert!(d.iter().flatten().all(|&t| t < 10));
        let never = d.iter().filter(|x| x.is_none()).count();
        assert!((50..150).contains(&never), "{never}");
    }
}
