//! Criterion benchmarks of the kernels on the adapter rankcode picks (see its name in
//! the output): the step GEMM's encode, submit and wait times separately (as wgpu's
//! own benchmarks do), a plain GEMM, a scheduler round trip, whole training batches
//! in RC and end-of-sequence mode at the toy shape, an MNIST-shaped training batch
//! that decides at the first step, and the full forward pass of an MNIST-shaped
//! ensemble with its zero blocks computed and skipped.
//!
//!     cargo bench --bench kernels

use criterion::{Criterion, criterion_group, criterion_main};
use rankcode::bench::{controlled_batch, controlled_params, decision_distribution, presets};
use rankcode::engine::{Capacity, Engine, EngineConfig, timing};
use rankcode::gpu::{GpuContext, matmul};
use rankcode::model::ensemble::{MemberModel, merge};
use rankcode::model::{ModelConfig, ParamLayout, RcConfig, Readout, TrainMode};
use std::sync::Arc;
use std::time::Duration;

fn engine(ctx: &Arc<GpuContext>, mode: TrainMode) -> (Engine, rankcode::data::Batch) {
    let p = presets()[0];
    let cfg = EngineConfig::new(
        p.model,
        Capacity {
            batch: p.batch,
            steps: p.steps,
        },
    )
    .with_rc(RcConfig {
        mode,
        ..RcConfig::default()
    });
    let decisions = decision_distribution(p.batch, p.steps, 1);
    let batch = controlled_batch(&p.model, p.steps, &decisions, false, 2);
    (
        Engine::new(ctx.clone(), cfg, &controlled_params(&p.model)).expect("engine"),
        batch,
    )
}

fn kernels(c: &mut Criterion) {
    let ctx = Arc::new(GpuContext::new().expect("a GPU adapter (or lavapipe) is needed"));
    eprintln!("adapter: {}", ctx.adapter_summary());
    let (mut eos, batch) = engine(&ctx, TrainMode::Eos);
    let (mut rc, _) = engine(&ctx, TrainMode::Rc);
    eos.evaluate_full(&batch).expect("forward");
    let rows = batch.batch;
    let mut group = c.benchmark_group("step_gemm_toy");
    group.sample_size(10);
    for (phase, pick) in [
        (
            "encode",
            (|t: rankcode::engine::DispatchTiming| t.encode_s) as fn(_) -> f64,
        ),
        ("submit", |t| t.submit_s),
        ("wait", |t| t.wait_s),
    ] {
        group.bench_function(phase, |b| {
            b.iter_custom(|iters| {
                let t = timing::time_layer_forward(&mut eos, rows, iters as usize).expect("timing");
                Duration::from_secs_f64(pick(t) * iters as f64)
            })
        });
    }
    group.finish();
    let (m, n, k) = (
        rows,
        4 * presets()[0].model.hidden_size,
        1 + presets()[0].model.hidden_size,
    );
    c.bench_function("dense_gemm_toy", |b| {
        b.iter_custom(|iters| {
            Duration::from_secs_f64(
                matmul::dense_gemm_seconds(&ctx, m, n, k, iters as usize).expect("gemm")
                    * iters as f64,
            )
        })
    });
    c.bench_function("round_trip", |b| {
        b.iter_custom(|iters| {
            Duration::from_secs_f64(
                timing::time_round_trip(&rc, iters as usize).expect("round trip") * iters as f64,
            )
        })
    });
    let mut group = c.benchmark_group("train_batch_toy");
    group.sample_size(10);
    group.bench_function("rc", |b| {
        b.iter(|| rc.compute_gradients(&batch).expect("rc"))
    });
    group.bench_function("eos", |b| {
        b.iter(|| eos.compute_gradients(&batch).expect("eos"))
    });
    group.finish();
    mnist_first_step_training(c, &ctx);
    ensemble_forward(c, &ctx);
}

/// MNIST-shaped sparse events: one pixel in 20 on at every step of every row, as
/// temporal MNIST has.
fn mnist_events(steps: usize, rows: usize) -> rankcode::data::Batch {
    let x = (0..steps * rows * 784)
        .map(|i| (i % 20 == 3) as u8 as f32)
        .collect();
    rankcode::data::Batch {
        steps,
        batch: rows,
        input: 784,
        inputs: rankcode::data::Inputs::Dense(x),
        labels: vec![0; rows],
    }
}

/// The forward and backward pass of a batch that decides at the first step, as every
/// row does in the first epochs of the MNIST runs (`--theta-warmup 0.1:4`) and most
/// rows do later: hidden 256, batch 128, softmax at theta 0.1, which any softmax
/// reaches. Its cost is the sparse input's gates and weight gradient, the cell, the
/// readout and the bias gradients, with no recurrent part.
fn mnist_first_step_training(c: &mut Criterion, ctx: &Arc<GpuContext>) {
    let (steps, rows) = (20, 128);
    let model = ModelConfig {
        input_size: 784,
        hidden_size: 256,
        layers: 1,
        classes: 10,
        readout: Readout::Softmax,
    };
    let cfg = EngineConfig::new(model, Capacity { batch: rows, steps })
        .with_rc(RcConfig {
            theta: 0.1,
            ..RcConfig::default()
        })
        .with_sparse_input(true);
    let params = rankcode::model::init_params(&model, 1);
    let mut engine = Engine::new(ctx.clone(), cfg, &params).expect("engine");
    let batch = mnist_events(steps, rows);
    let mut group = c.benchmark_group("mnist_h256_b128");
    group.sample_size(10);
    group.bench_function("first_step_gradients", |b| {
        b.iter(|| {
            let report = engine.compute_gradients(&batch).expect("gradients");
            assert_eq!(report.steps_processed, rows, "every row decides at t = 0");
        })
    });
    group.finish();
}

/// A full forward pass (every step of every row) of five hidden-256 members joined into
/// one 1280-unit model on MNIST-shaped sparse events, computing the recurrent zero
/// blocks (`recurrent_block` 0) and skipping them (256). A step costs the same
/// whatever the weights' values.
fn ensemble_forward(c: &mut Criterion, ctx: &Arc<GpuContext>) {
    let (members, width, steps, rows) = (5, 256, 4, 64);
    // Members of equal weights, joined as `rankcode ensemble` joins them.
    let member = ModelConfig {
        input_size: 784,
        hidden_size: width,
        layers: 1,
        classes: 10,
        readout: Readout::Softmax,
    };
    let member_params = vec![0.01; ParamLayout::new(&member).total];
    let joined = vec![
        MemberModel {
            model: &member,
            params: &member_params,
        };
        members
    ];
    let (model, params) = merge(&joined).expect("an ensemble");
    let batch = mnist_events(steps, rows);
    let mut group = c.benchmark_group("ensemble_forward_5x256");
    group.sample_size(10);
    for (name, recurrent_block) in [("all_blocks", 0), ("zero_blocks_skipped", width)] {
        let cfg = EngineConfig::new(model, Capacity { batch: rows, steps })
            .with_sparse_input(true)
            .with_recurrent_block(recurrent_block);
        let mut engine = Engine::new(ctx.clone(), cfg, &params).expect("engine");
        group.bench_function(name, |b| {
            b.iter(|| engine.evaluate_full(&batch).expect("forward"))
        });
    }
    group.finish();
}

criterion_group!(benches, kernels);
criterion_main!(benches);
