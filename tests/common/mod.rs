//! Shared fixtures of the GPU tests: the context, random models and batches with a
//! known spread of decision steps, and tolerant comparisons.
#![allow(dead_code)]

use rankcode::data::Batch;
use rankcode::engine::{Capacity, Engine, EngineConfig};
use rankcode::gpu::GpuContext;
use rankcode::model::reference::{self, BatchOutcome};
use rankcode::model::{ModelConfig, ParamLayout, RcConfig, Readout, TrainMode};
use rankcode::rng::Rng;
use std::sync::{Arc, OnceLock};

/// The one GPU context of this test binary. Fails loudly when there is no adapter:
/// GPU tests never pass by skipping.
pub fn ctx() -> Arc<GpuContext> {
    static CTX: OnceLock<Arc<GpuContext>> = OnceLock::new();
    CTX.get_or_init(|| {
        let _ = env_logger::builder().is_test(true).try_init();
        let ctx = GpuContext::new()
            .unwrap_or_else(|e| panic!("GPU tests need an adapter and found none: {e}"));
        eprintln!("GPU tests run on adapter: {}", ctx.adapter_summary());
        Arc::new(ctx)
    })
    .clone()
}

/// A context of its own, with the GEMM form chosen (`GpuContext::direct_gemm`).
pub fn ctx_with_direct_gemm(direct: bool) -> Arc<GpuContext> {
    let mut ctx = GpuContext::new()
        .unwrap_or_else(|e| panic!("GPU tests need an adapter and found none: {e}"));
    ctx.direct_gemm = direct;
    Arc::new(ctx)
}

pub fn model(
    input: usize,
    hidden: usize,
    layers: usize,
    classes: usize,
    readout: Readout,
) -> ModelConfig {
    ModelConfig {
        input_size: input,
        hidden_size: hidden,
        layers,
        classes,
        readout,
    }
}

/// Random inputs and labels.
pub fn random_batch(steps: usize, batch: usize, input: usize, classes: usize, seed: u64) -> Batch {
    Batch::random(steps, batch, input, classes, seed)
}

/// Parameters uniform in [-scale, scale]: large enough that outputs cross thresholds.
pub fn random_params(cfg: &ModelConfig, scale: f64, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    (0..ParamLayout::new(cfg).total)
        .map(|_| rng.uniform_in(-scale, scale) as f32)
        .collect()
}

/// The spread of loss steps a fixture has: (at t = 0, in between, never fired).
pub fn spread(outcome: &BatchOutcome, steps: usize) -> (usize, usize, usize) {
    let at_zero = outcome
        .rows
        .iter()
        .filter(|r| r.first_spike == Some(0))
        .count();
    let never = outcome
        .rows
        .iter()
        .filter(|r| r.first_spike.is_none())
        .count();
    let between = outcome
        .rows
        .iter()
        .filter(|r| matches!(r.first_spike, Some(t) if t > 0 && t < steps - 1))
        .count();
    (at_zero, between, never)
}

/// A theta, half-way between two observed scores, for which the batch has rows that
/// spike at t = 0, rows that spike later and rows that never spike (as many of the
/// rarest kind as possible).
pub fn mixed_theta(cfg: &ModelConfig, params: &[f32], batch: &Batch) -> f32 {
    let rc = RcConfig {
        theta: 0.5,
        beta: 0.0,
        mode: TrainMode::Eos,
        loss_from_step: None,
    };
    let out = reference::run_batch(cfg, &rc, params, batch, false);
    let max_score = |z: &[f64]| {
        rankcode::model::decision::scores(cfg.readout, z)
            .into_iter()
            .fold(0.0, f64::max)
    };
    // Per row: best score at t = 0 and over all steps.
    let rows: Vec<(f64, f64)> = out
        .rows
        .iter()
        .map(|r| {
            (
                max_score(&r.logits[0]),
                r.logits.iter().map(|z| max_score(z)).fold(0.0, f64::max),
            )
        })
        .collect();
    let mut values: Vec<f64> = rows.iter().flat_map(|&(a, b)| [a, b]).collect();
    values.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let mut best = (0, 0.0);
    for w in values.windows(2) {
        let theta = 0.5 * (w[0] + w[1]);
        if w[1] - w[0] < 1e-4 || theta <= 0.0 || theta >= 1.0 {
            continue;
        }
        let zero = rows.iter().filter(|r| r.0 >= theta).count();
        let never = rows.iter().filter(|r| r.1 < theta).count();
        let later = rows.len() - zero - never;
        let rarest = zero.min(never).min(later);
        if rarest > best.0 {
            best = (rarest, theta);
        }
    }
    assert!(
        best.0 > 0,
        "no theta gives a mixed spread of decision steps for this fixture"
    );
    best.1 as f32
}

pub fn engine(cfg: ModelConfig, rc: RcConfig, cap: Capacity, k: usize, params: &[f32]) -> Engine {
    engine_with(cfg, rc, cap, k, params, false)
}

/// [`engine`], optionally taking layer 0's input through the sparse path.
pub fn engine_with(
    cfg: ModelConfig,
    rc: RcConfig,
    cap: Capacity,
    k: usize,
    params: &[f32],
    sparse: bool,
) -> Engine {
    engine_on(ctx(), cfg, rc, cap, k, params, sparse)
}

/// [`engine_with`] on a given context.
pub fn engine_on(
    ctx: Arc<GpuContext>,
    cfg: ModelConfig,
    rc: RcConfig,
    cap: Capacity,
    k: usize,
    params: &[f32],
    sparse: bool,
) -> Engine {
    let ecfg = EngineConfig::new(cfg, cap)
        .with_rc(rc)
        .with_readback_every(k)
        .with_sparse_input(sparse);
    Engine::new(ctx, ecfg, params).expect("engine")
}

/// The bit patterns of `v`, for comparisons that must be exact.
pub fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Asserts |gpu - cpu| <= atol + rtol * |cpu| element-wise, with atol relative to the
/// largest reference magnitude (f32 against f64).
pub fn assert_close(what: &str, gpu: &[f32], cpu: &[f64], rtol: f64) {
    assert_eq!(gpu.len(), cpu.len(), "{what}: lengths");
    let scale = cpu.iter().fold(0f64, |m, v| m.max(v.abs())).max(1e-12);
    let atol = rtol * scale * 0.1;
    let mut worst = (0.0, 0);
    for (i, (&g, &c)) in gpu.iter().zip(cpu).enumerate() {
        let err = (g as f64 - c).abs() / (atol + rtol * c.abs());
        if err > worst.0 {
            worst = (err, i);
        }
    }
    let i = worst.1;
    assert!(
        worst.0 <= 1.0,
        "{what}: element {i} gpu {} cpu {} (scale {scale:e}, {:.2}x tolerance)",
        gpu[i],
        cpu[i],
        worst.0
    );
}
