//! The GPU engine against the f64 CPU reference, on awkward sizes (batch, hidden and
//! input sizes that are not multiples of the 16 and 64 wide workgroups).

mod common;

use common::*;
use rankcode::data::{Batch, Dataset, Inputs};
use rankcode::engine::{BatchReport, Capacity, Overlap};
use rankcode::epoch::{self, SweepPoint};
use rankcode::gpu::matmul::{GemmShapes, StepQuadsShape};
use rankcode::model::reference::{self, BatchOutcome};
use rankcode::model::{ModelConfig, RcConfig, Readout, TrainMode};

/// Checks everything the GPU reports for a batch against the reference.
fn assert_matches_reference(gpu: &BatchReport, cpu: &BatchOutcome, batch: &Batch) {
    let loss_steps: Vec<u32> = cpu.rows.iter().map(|r| r.loss_step as u32).collect();
    assert_eq!(gpu.loss_steps, loss_steps, "loss steps t*");
    let decisions: Vec<u32> = cpu.rows.iter().map(|r| r.decision_step as u32).collect();
    assert_eq!(gpu.decision_step, decisions, "decision steps");
    let predictions: Vec<u32> = cpu.rows.iter().map(|r| r.prediction as u32).collect();
    assert_eq!(gpu.prediction, predictions, "predictions");
    let processed: usize = cpu.rows.iter().map(|r| r.loss_step + 1).sum();
    assert_eq!(gpu.steps_processed, processed, "steps processed");
    let fired = cpu.rows.iter().filter(|r| r.first_spike.is_some()).count();
    assert_eq!(gpu.fired, fired);
    let correct = cpu
        .rows
        .iter()
        .zip(&batch.labels)
        .filter(|(r, l)| r.prediction == **l as usize)
        .count();
    assert_eq!(gpu.correct, correct);
    assert!(
        (gpu.loss - cpu.loss).abs() <= 1e-4 * cpu.loss.abs().max(1.0),
        "loss gpu {} cpu {}",
        gpu.loss,
        cpu.loss
    );
}

/// Trains nothing; compares forward outputs, logits at every computed step and gradients.
fn check_gradients(
    cfg: ModelConfig,
    mode: TrainMode,
    beta: f32,
    batch: &Batch,
    params: &[f32],
    theta: f32,
    sparse_input: bool,
) {
    let rc = RcConfig {
        theta,
        beta,
        mode,
        loss_from_step: None,
    };
    check_gradients_with(cfg, rc, batch, params, sparse_input);
}

/// [`check_gradients`] with any rank-coding settings.
fn check_gradients_with(
    cfg: ModelConfig,
    rc: RcConfig,
    batch: &Batch,
    params: &[f32],
    sparse_input: bool,
) {
    let cap = Capacity {
        batch: batch.batch + 3,
        steps: batch.steps + 2,
    };
    // Dirty every stored step first (an end-of-sequence pass on other data), so that
    // anything read beyond a row's own prefix would show up in the comparison.
    let other = random_batch(batch.steps, batch.batch, cfg.input_size, cfg.classes, 999);
    let eos = RcConfig {
        mode: TrainMode::Eos,
        ..rc
    };
    let mut eng = engine_with(cfg, eos, cap, 1, params, sparse_input);
    eng.compute_gradients(&other).unwrap();
    eng.set_rc(rc).unwrap();
    let gpu = eng.compute_gradients(batch).unwrap();
    let cpu = reference::run_batch(&cfg, &rc, params, batch, true);
    assert_matches_reference(&gpu, &cpu, batch);
    for t in 0..batch.steps {
        let logits = eng.logits_at(t, batch.batch).unwrap();
        for (b, row) in cpu.rows.iter().enumerate() {
            if t <= row.loss_step {
                let got = &logits[b * cfg.classes..(b + 1) * cfg.classes];
                assert_close(&format!("logits t={t} b={b}"), got, &row.logits[t], 1e-4);
            }
        }
    }
    assert_close("gradients", &eng.grads().unwrap(), &cpu.grads, 2e-3);
}

#[test]
fn rc_gradients_match_reference_with_mixed_decision_steps() {
    let cfg = model(7, 19, 1, 3, Readout::Sigmoid);
    let batch = random_batch(11, 37, 7, 3, 11);
    let params = random_params(&cfg, 0.6, 12);
    let theta = mixed_theta(&cfg, &params, &batch);
    check_gradients(cfg, TrainMode::Rc, 0.25, &batch, &params, theta, false);
}

/// Two layers of 17 on 5 inputs, a softmax of 4; 21 rows of 9 steps, and a theta at
/// which their decision steps are mixed.
fn two_layer_softmax_fixture() -> (ModelConfig, Batch, Vec<f32>, f32) {
    let cfg = model(5, 17, 2, 4, Readout::Softmax);
    let batch = random_batch(9, 21, 5, 4, 21);
    let params = random_params(&cfg, 0.8, 22);
    let theta = mixed_theta(&cfg, &params, &batch);
    (cfg, batch, params, theta)
}

/// `layers` layers of 19 sigmoid-read units on 37 sparse event inputs (about 1 in 8
/// on, as temporal MNIST); 21 rows of 7 steps, and a theta at which their decision
/// steps are mixed.
fn sparse_event_fixture(layers: usize) -> (ModelConfig, Batch, Vec<f32>, f32) {
    let cfg = model(37, 19, layers, 3, Readout::Sigmoid);
    let mut batch = random_batch(7, 21, 37, 3, 101);
    let mut rng = rankcode::rng::Rng::new(102);
    for v in batch.dense_mut() {
        *v = (rng.below(8) == 0) as u8 as f32;
    }
    let params = random_params(&cfg, 0.6, 103);
    let theta = mixed_theta(&cfg, &params, &batch);
    (cfg, batch, params, theta)
}

#[test]
fn rc_gradients_match_reference_two_layers_softmax() {
    let (cfg, batch, params, theta) = two_layer_softmax_fixture();
    check_gradients(cfg, TrainMode::Rc, 0.1, &batch, &params, theta, false);
}

#[test]
fn end_of_sequence_gradients_match_reference() {
    let cfg = model(3, 35, 2, 2, Readout::Sigmoid);
    let batch = random_batch(8, 19, 3, 2, 31);
    let params = random_params(&cfg, 0.7, 32);
    check_gradients(cfg, TrainMode::Eos, 0.3, &batch, &params, 0.9, false);
}

/// The loss averaged over the steps from the third to t*: dL/dz at every one of them
/// reaches the readout and the top layer's dh, in both modes, dense and sparse input.
#[test]
fn gradients_match_reference_with_the_loss_over_steps() {
    let (cfg, batch, params, theta) = two_layer_softmax_fixture();
    for mode in [TrainMode::Rc, TrainMode::Eos] {
        let rc = RcConfig {
            theta,
            beta: 0.1,
            mode,
            loss_from_step: Some(3),
        };
        check_gradients_with(cfg, rc, &batch, &params, false);
    }
    let (cfg, batch, params, theta) = sparse_event_fixture(1);
    let rc = RcConfig {
        theta,
        beta: 0.2,
        mode: TrainMode::Rc,
        loss_from_step: Some(2),
    };
    check_gradients_with(cfg, rc, &batch, &params, true);
}

#[test]
fn all_rows_fire_at_step_zero() {
    let cfg = model(4, 13, 1, 3, Readout::Sigmoid);
    let batch = random_batch(6, 18, 4, 3, 41);
    let params = random_params(&cfg, 0.5, 42);
    // Every sigmoid unit starts near 0.5, so a low threshold fires every row at t = 0.
    let rc = RcConfig {
        theta: 0.05,
        beta: 0.2,
        mode: TrainMode::Rc,
        loss_from_step: None,
    };
    let cpu = reference::run_batch(&cfg, &rc, &params, &batch, false);
    assert!(cpu.rows.iter().all(|r| r.first_spike == Some(0)));
    check_gradients(cfg, TrainMode::Rc, 0.2, &batch, &params, 0.05, false);
    let mut eng = engine(
        cfg,
        rc,
        Capacity {
            batch: 18,
            steps: 6,
        },
        1,
        &params,
    );
    eng.set_overlap_readback(Overlap::On);
    let overlapped = eng.compute_gradients(&batch).unwrap();
    let overlapped_grads = eng.grads().unwrap();
    eng.set_overlap_readback(Overlap::Off);
    let waited = eng.compute_gradients(&batch).unwrap();
    assert_eq!(
        waited.readbacks, 1,
        "one step, one readback, then the batch is done"
    );
    assert_eq!(
        overlapped.readbacks, 2,
        "step 1 went out before step 0's mask was read, with every row decided"
    );
    assert_eq!(waited.steps_processed, 18);
    let counts_apart = |r: &BatchReport| BatchReport {
        readbacks: 0,
        submits: 0,
        dispatches: 0,
        ..r.clone()
    };
    assert_eq!(counts_apart(&overlapped), counts_apart(&waited));
    assert_eq!(bits(&overlapped_grads), bits(&eng.grads().unwrap()));
}

#[test]
fn rows_that_never_fire_run_to_the_end() {
    let cfg = model(2, 9, 1, 2, Readout::Sigmoid);
    let batch = random_batch(7, 5, 2, 2, 51);
    let params = random_params(&cfg, 0.1, 52);
    let rc = RcConfig {
        theta: 0.999,
        beta: 0.0,
        mode: TrainMode::Rc,
        loss_from_step: None,
    };
    let cpu = reference::run_batch(&cfg, &rc, &params, &batch, false);
    assert!(cpu.rows.iter().all(|r| r.first_spike.is_none()));
    check_gradients(cfg, TrainMode::Rc, 0.0, &batch, &params, 0.999, false);
}

#[test]
fn evaluation_matches_reference_and_full_pass_gives_eos_accuracy() {
    let cfg = model(7, 19, 1, 3, Readout::Sigmoid);
    let batch = random_batch(10, 29, 7, 3, 61);
    let params = random_params(&cfg, 0.6, 62);
    let theta = mixed_theta(&cfg, &params, &batch);
    let rc = RcConfig {
        theta,
        beta: 0.0,
        mode: TrainMode::Rc,
        loss_from_step: None,
    };
    let mut eng = engine(
        cfg,
        rc,
        Capacity {
            batch: 29,
            steps: 10,
        },
        1,
        &params,
    );
    let gpu = eng.evaluate(&batch).unwrap();
    let cpu = reference::run_batch(&cfg, &rc, &params, &batch, false);
    assert_matches_reference(&gpu, &cpu, &batch);
    let full = eng.evaluate_full(&batch).unwrap();
    let eos = reference::run_batch(
        &cfg,
        &RcConfig {
            mode: TrainMode::Eos,
            ..rc
        },
        &params,
        &batch,
        false,
    );
    assert_eq!(full.eos_rows, 29);
    let eos_correct = eos
        .rows
        .iter()
        .zip(&batch.labels)
        .filter(|(r, l)| rankcode::model::decision::argmax(&r.logits[9]) == **l as usize)
        .count();
    assert_eq!(full.eos_correct, eos_correct);
    assert_eq!(
        full.decision_step, gpu.decision_step,
        "the full pass sees the same first spikes"
    );
    assert_eq!(full.steps_processed, 29 * 10);
}

/// A two-layer model, a batch of 33 rows that decide at mixed steps (so that rows
/// retire until the narrow GEMM blocks take over), its parameters, settings and
/// capacity.
fn mixed_decisions() -> (ModelConfig, Batch, Vec<f32>, RcConfig, Capacity) {
    let cfg = model(6, 21, 2, 3, Readout::Sigmoid);
    let batch = random_batch(12, 33, 6, 3, 71);
    let params = random_params(&cfg, 0.6, 72);
    let rc = RcConfig {
        theta: mixed_theta(&cfg, &params, &batch),
        beta: 0.1,
        mode: TrainMode::Rc,
        loss_from_step: None,
    };
    let cap = Capacity {
        batch: 40,
        steps: 12,
    };
    (cfg, batch, params, rc, cap)
}

#[test]
fn readback_cadence_changes_no_result_and_runs_are_bitwise_repeatable() {
    let (cfg, batch, params, rc, cap) = mixed_decisions();
    let train = |k: usize, overlap: bool| {
        let mut eng = engine(cfg, rc, cap, k, &params);
        eng.set_overlap_readback(if overlap { Overlap::On } else { Overlap::Off });
        let reports: Vec<BatchReport> = (0..3).map(|_| eng.train_batch(&batch).unwrap()).collect();
        (reports, eng.params().unwrap())
    };
    let (r1, p1) = train(1, true);
    let (r3, p3) = train(3, true);
    let (r1_waited, p1_waited) = train(1, false);
    // One chunk: every step after the first planned on the GPU, one readback.
    let (r_one, p_one) = train(cap.steps, false);
    let (again, p_again) = train(1, true);
    assert!(
        r1[0].readbacks > r3[0].readbacks,
        "K = 3 reads back less often"
    );
    assert_eq!(r_one[0].readbacks, 1);
    for r in r1.iter().chain(&r3).chain(&r1_waited).chain(&r_one) {
        // A submit a readback, and one for the loss, backward pass and Adam.
        assert_eq!(r.submits, r.readbacks + 1, "{r:?}");
        assert!(r.dispatches > r.submits, "{r:?}");
    }
    // Only how often and how far ahead the host reads back moves the counts.
    let strip = |r: &[BatchReport]| {
        r.iter()
            .map(|r| BatchReport {
                readbacks: 0,
                submits: 0,
                dispatches: 0,
                ..r.clone()
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&r1), strip(&r3));
    assert_eq!(strip(&r1), strip(&r1_waited));
    assert_eq!(strip(&r1), strip(&r_one));
    assert_eq!(bits(&p1), bits(&p3));
    assert_eq!(bits(&p1), bits(&p_one));
    assert_eq!(bits(&p1), bits(&p1_waited));
    assert_eq!(r1, again);
    assert_eq!(bits(&p1), bits(&p_again));
    assert_ne!(p1, params, "training changed the parameters");
}

#[test]
fn profiling_times_every_dispatch_and_changes_no_result() {
    let (cfg, batch, params, rc, cap) = mixed_decisions();
    let train = |profile: bool| {
        let mut eng = engine(cfg, rc, cap, 1, &params);
        if profile {
            eng.enable_profiling()
                .expect("timestamp queries on the test adapter");
        }
        let start = std::time::Instant::now();
        let reports: Vec<BatchReport> = (0..2).map(|_| eng.train_batch(&batch).unwrap()).collect();
        let wall_s = start.elapsed().as_secs_f64();
        let profile = eng.take_profile().unwrap();
        (reports, eng.params().unwrap(), profile.map(|p| (p, wall_s)))
    };
    let (plain, plain_params, none) = train(false);
    let (reports, profiled_params, profile) = train(true);
    assert_eq!(none, None, "no profile unless enabled");
    assert_eq!(reports, plain);
    assert_eq!(bits(&profiled_params), bits(&plain_params));

    let (profile, wall_s) = profile.unwrap();
    assert_eq!(profile.untimed, 0);
    let gpu_s = profile.total_seconds();
    assert!(
        0.0 < gpu_s && gpu_s <= wall_s,
        "{gpu_s} s of GPU time in {wall_s} s"
    );
    let calls = |what: &str| -> u64 {
        let of = |what: &str| -> u64 {
            let found = profile.dispatches.iter().find(|d| d.what == what);
            found.map_or(0, |d| d.calls)
        };
        of(what) + of(&format!("{what} (narrow)"))
    };
    // With readbacks after every step, each readback ends one forward step.
    let forward_steps: usize = reports.iter().map(|r| r.readbacks).sum();
    let backward_steps: usize = reports
        .iter()
        .map(|r| *r.loss_steps.iter().max().unwrap() as usize + 1)
        .sum();
    // The direct form runs the cell in the step GEMMs' epilogue, the staged form in
    // dispatches of its own.
    let (forward, backward): (&[&str], &[&str]) = if common::ctx().direct_gemm {
        (&["gates GEMM and cell"], &["dh GEMM and cell backward"])
    } else {
        (&["gates GEMM", "cell"], &["dh GEMM", "cell backward"])
    };
    let narrow = format!("{} (narrow)", forward[0]);
    assert!(
        profile.dispatches.iter().any(|d| d.what == forward[0])
            && profile.dispatches.iter().any(|d| d.what == narrow),
        "the batch retires rows until the narrow blocks take over: {profile:?}"
    );
    let layers = cfg.layers as u64;
    for what in forward {
        assert_eq!(calls(what), layers * forward_steps as u64, "{what}");
    }
    assert_eq!(calls("readout and threshold"), forward_steps as u64);
    for what in backward {
        assert_eq!(calls(what), layers * backward_steps as u64, "{what}");
    }
    for once_a_batch in ["loss and dL/dz", "readout weight gradient", "Adam"] {
        assert_eq!(calls(once_a_batch), 2, "{once_a_batch}");
    }
    for once_a_layer in ["input weight gradient", "recurrent weight gradient"] {
        assert_eq!(calls(once_a_layer), 2 * layers, "{once_a_layer}");
    }
    assert_eq!(calls("gradient norm"), 0, "no clipping, no norm");
    // A kind of dispatch whose timestamps were never written, or were read from
    // another's queries, would show no time.
    let untimed: Vec<&str> = profile
        .dispatches
        .iter()
        .filter(|d| !(d.seconds.is_finite() && d.seconds > 0.0))
        .map(|d| d.what)
        .collect();
    assert!(
        untimed.is_empty(),
        "dispatches that took no time: {untimed:?}"
    );
    assert!(
        profile
            .dispatches
            .windows(2)
            .all(|w| w[0].seconds >= w[1].seconds),
        "longest first"
    );
}

#[test]
fn dispatches_past_the_queries_of_a_pass_are_counted_untimed() {
    let cfg = model(2, 3, 1, 2, Readout::Sigmoid);
    let rc = RcConfig {
        theta: 0.9,
        beta: 0.0,
        mode: TrainMode::Eos,
        loss_from_step: None,
    };
    let cap = Capacity { batch: 1, steps: 2 };
    let mut eng = engine(cfg, rc, cap, 1, &random_params(&cfg, 0.5, 5));
    eng.enable_profiling().unwrap();
    // A layer's forward step is one dispatch in the direct form (the cell in the GEMM's
    // epilogue), two in the staged form (the GEMM, then the cell).
    let per_step: u64 = if common::ctx().direct_gemm { 1 } else { 2 };
    // A warm-up pass of one step, then one of 5,000: a pass holds 4,096 timestamps,
    // the first where it begins.
    rankcode::engine::timing::time_layer_forward(&mut eng, 1, 5000).unwrap();
    let profile = eng.take_profile().unwrap().unwrap();
    assert_eq!(profile.untimed, per_step * 5000 - 4095);
    assert_eq!(profile.dispatches.len() as u64, per_step, "{profile:?}");
    let calls: u64 = profile.dispatches.iter().map(|d| d.calls).sum();
    assert_eq!(calls, per_step + 4095);
}

/// Eight Adam steps on the GPU and on the CPU reference: (GPU parameters, reference
/// parameters, GPU losses).
fn adam_run(adam: rankcode::model::AdamConfig) -> (Vec<f32>, Vec<f64>, Vec<f64>) {
    let cfg = model(3, 11, 1, 2, Readout::Sigmoid);
    let batch = random_batch(5, 24, 3, 2, 81);
    let params = random_params(&cfg, 0.3, 82);
    let rc = RcConfig {
        theta: 0.95,
        beta: 0.0,
        mode: TrainMode::Eos,
        loss_from_step: None,
    };
    let ecfg = rankcode::engine::EngineConfig::new(
        cfg,
        Capacity {
            batch: 24,
            steps: 5,
        },
    )
    .with_rc(rc)
    .with_adam(adam);
    let mut eng = rankcode::engine::Engine::new(ctx(), ecfg, &params).unwrap();
    let mut p: Vec<f64> = params.iter().map(|&v| v as f64).collect();
    let (mut m, mut v) = (vec![0.0; p.len()], vec![0.0; p.len()]);
    let mut losses = Vec::new();
    for step in 1..=8 {
        let gpu = eng.train_batch(&batch).unwrap();
        let p32: Vec<f32> = p.iter().map(|&x| x as f32).collect();
        let cpu = reference::run_batch(&cfg, &rc, &p32, &batch, true);
        assert!(
            (gpu.loss - cpu.loss).abs() < 1e-3 * cpu.loss,
            "step {step}: gpu {} cpu {}",
            gpu.loss,
            cpu.loss
        );
        reference::adam_step(&adam, step, &mut p, &mut m, &mut v, &cpu.grads);
        losses.push(gpu.loss);
    }
    (eng.params().unwrap(), p, losses)
}

#[test]
fn adam_steps_follow_the_reference_and_reduce_the_loss() {
    let adam = rankcode::model::AdamConfig {
        lr: 0.02,
        ..Default::default()
    };
    let (gpu, cpu, losses) = adam_run(adam);
    assert_close("parameters after Adam", &gpu, &cpu, 1e-3);
    assert!(losses[7] < losses[0] * 0.95, "loss went {:?}", losses);

    // A clip well below the gradients' norm: every step is scaled, by a different
    // factor, which moves the parameters elsewhere than unclipped Adam does.
    let clipped = rankcode::model::AdamConfig {
        max_grad_norm: Some(0.01),
        ..adam
    };
    let (gpu_clipped, cpu_clipped, _) = adam_run(clipped);
    assert_close(
        "parameters after clipped Adam",
        &gpu_clipped,
        &cpu_clipped,
        1e-3,
    );
    let moved = cpu
        .iter()
        .zip(&cpu_clipped)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    // About 20 times the tolerance of the comparison above (about 3e-4 here).
    assert!(
        moved > 5e-3,
        "clipping changed the parameters by only {moved:e}"
    );

    // A clip above every gradient's norm scales by exactly 1: the same bits as no clip.
    let loose = rankcode::model::AdamConfig {
        max_grad_norm: Some(1e6),
        ..adam
    };
    let (gpu_loose, _, _) = adam_run(loose);
    assert_eq!(bits(&gpu_loose), bits(&gpu));

    // Decoupled weight decay (AdamW) as the reference does it: 8 steps at
    // lr * weight_decay = 0.01 shrink the parameters by about 8% against plain Adam.
    let decayed = rankcode::model::AdamConfig {
        weight_decay: 0.5,
        ..adam
    };
    let (gpu_decayed, cpu_decayed, _) = adam_run(decayed);
    assert_close("parameters after AdamW", &gpu_decayed, &cpu_decayed, 1e-3);
    let norm = |p: &[f64]| p.iter().map(|x| x * x).sum::<f64>().sqrt();
    let shrink = norm(&cpu_decayed) / norm(&cpu);
    assert!(
        (0.88..0.96).contains(&shrink),
        "AdamW kept {shrink} of the norm"
    );
}

/// The squared gradient norm that clipping divides by is summed in the order
/// adam.wgsl documents, so that it is the same bits on every adapter and at every
/// width of the kernels: 256 partial sums, sum t of the squares of elements t, t +
/// 256, ... in turn, then a tree that adds partial t + w into partial t for w = 128,
/// 64, ..., 1. Two layers, 70,493 parameters: not a multiple of 4, so the kernel's
/// vec4 loads end in the buffer's zero padding.
#[test]
fn the_gradient_norm_is_summed_in_its_documented_order() {
    let cfg = model(37, 70, 2, 3, Readout::Softmax);
    let total = rankcode::model::ParamLayout::new(&cfg).total;
    assert_ne!(total % 4, 0, "{total} parameters");
    let params = random_params(&cfg, 0.6, 203);
    let batch = fixture(&cfg, 40);
    let adam = rankcode::model::AdamConfig {
        max_grad_norm: Some(1e-3),
        ..Default::default()
    };
    let rc = RcConfig {
        theta: 0.9,
        beta: 0.0,
        mode: TrainMode::Rc,
        loss_from_step: None,
    };
    let cap = Capacity {
        batch: batch.batch,
        steps: batch.steps,
    };
    let ecfg = rankcode::engine::EngineConfig::new(cfg, cap)
        .with_rc(rc)
        .with_adam(adam);
    let mut eng = rankcode::engine::Engine::new(ctx(), ecfg, &params).unwrap();
    eng.train_batch(&batch).unwrap();
    let grads = eng.grads().unwrap();
    let mut part = [0.0f32; 256];
    for (i, g) in grads.iter().enumerate() {
        part[i % 256] += g * g;
    }
    let mut width = 128;
    while width > 0 {
        for t in 0..width {
            part[t] += part[t + width];
        }
        width /= 2;
    }
    let gpu = eng.grad_norm_squared().unwrap();
    assert!(part[0] > 0.0);
    assert_eq!(
        gpu.to_bits(),
        part[0].to_bits(),
        "{gpu} against {}",
        part[0]
    );
}

/// The step GEMM computes the live rows that fit in one narrow block (16 x 64 staged,
/// 32 x 64 direct) in narrow blocks and more in wide ones; a row's values must not
/// depend on which: the same rows alone (narrow blocks) and with 4 more (wide blocks)
/// give the same bits at every step.
#[test]
fn narrow_and_wide_gemm_blocks_give_the_same_bits() {
    let narrow_rows = GemmShapes::of_form(ctx().direct_gemm).narrow.block_rows();
    let (few, many) = (narrow_rows, narrow_rows + 4);
    let cfg = model(5, 23, 2, 3, Readout::Sigmoid);
    let params = random_params(&cfg, 0.5, 61);
    let (steps, input) = (6, 5);
    let wide = random_batch(steps, many, input, 3, 62);
    let narrow = Batch {
        batch: few,
        inputs: Inputs::Dense(
            (0..steps)
                .flat_map(|t| wide.dense()[t * many * input..(t * many + few) * input].to_vec())
                .collect(),
        ),
        labels: wide.labels[..few].to_vec(),
        ..wide.clone()
    };
    let rc = RcConfig {
        theta: 0.95,
        beta: 0.0,
        mode: TrainMode::Eos,
        loss_from_step: None,
    };
    let cap = Capacity { batch: many, steps };
    let mut eng = engine(cfg, rc, cap, 1, &params);
    eng.evaluate_full(&wide).unwrap();
    let from_wide = eng.batch_logits(steps, few).unwrap();
    eng.evaluate_full(&narrow).unwrap();
    let from_narrow = eng.batch_logits(steps, few).unwrap();
    assert_eq!(bits(&from_wide), bits(&from_narrow));
}

#[test]
fn bad_input_is_refused_with_a_clear_error() {
    let cfg = model(3, 8, 1, 2, Readout::Sigmoid);
    let params = random_params(&cfg, 0.3, 91);
    let rc = RcConfig::default();
    let mut eng = engine(cfg, rc, Capacity { batch: 4, steps: 5 }, 1, &params);
    let cases: Vec<(Batch, &str)> = vec![
        (random_batch(5, 4, 2, 2, 1), "input features"),
        (random_batch(6, 4, 3, 2, 1), "capacity"),
        (random_batch(5, 5, 3, 2, 1), "capacity"),
        (
            Batch {
                labels: vec![0, 1, 2, 0],
                ..random_batch(5, 4, 3, 2, 1)
            },
            "label 2",
        ),
        (
            Batch {
                inputs: Inputs::Dense(vec![0.0; 3]),
                ..random_batch(5, 4, 3, 2, 1)
            },
            "expected",
        ),
        (
            Batch {
                inputs: Inputs::Dense(vec![f32::NAN; 60]),
                ..random_batch(5, 4, 3, 2, 1)
            },
            "NaN",
        ),
        (
            Batch {
                inputs: Inputs::EventTimes(vec![4; 11]),
                ..random_batch(5, 4, 3, 2, 1)
            },
            "expected",
        ),
        (
            Batch {
                inputs: Inputs::EventTimes(vec![5; 12]),
                ..random_batch(5, 4, 3, 2, 1)
            },
            "past the last of 5 steps",
        ),
    ];
    for (batch, needle) in cases {
        let err = eng.train_batch(&batch).unwrap_err().to_string();
        assert!(err.contains(needle), "expected '{needle}' in: {err}");
    }
    // An empty dataset: nothing to train on or to report on.
    let empty = Dataset::from_sequences(Vec::new(), Vec::new(), 5, 3, 2);
    let mut rng = rankcode::rng::Rng::new(1);
    let refusals = [
        epoch::train_epoch(&mut eng, &empty, 4, 1, &mut rng, |_| {}).map(|_| ()),
        epoch::evaluate(&mut eng, &empty, 4, true).map(|_| ()),
        epoch::theta_sweep(&mut eng, &empty, 4, &[0.5]).map(|_| ()),
    ];
    for refusal in refusals {
        let err = refusal.unwrap_err().to_string();
        assert!(err.contains("no sequences to"), "{err}");
    }
    assert!(
        eng.set_params(&params[1..])
            .unwrap_err()
            .to_string()
            .contains("parameters")
    );
    assert!(
        eng.set_rc(RcConfig { theta: 1.5, ..rc })
            .unwrap_err()
            .to_string()
            .contains("theta")
    );
    assert!(
        eng.set_rc(RcConfig { beta: -1.0, ..rc })
            .unwrap_err()
            .to_string()
            .contains("beta")
    );
    assert!(eng.set_readback_every(0).is_err());
    use rankcode::engine::{Engine, EngineConfig};
    let base = EngineConfig::new(cfg, Capacity { batch: 4, steps: 5 }).with_rc(rc);
    for bad in [
        base.with_capacity(Capacity { batch: 0, steps: 5 }),
        base.with_capacity(Capacity { batch: 4, steps: 0 }),
        base.with_capacity(Capacity {
            batch: 1 << 16,
            steps: 5,
        }),
        base.with_capacity(Capacity {
            batch: 1 << 20,
            steps: 5,
        }),
        base.with_model(ModelConfig {
            hidden_size: 0,
            ..cfg
        }),
        base.with_readback_every(0),
    ] {
        assert!(Engine::new(ctx(), bad, &params).is_err(), "{bad:?}");
    }
    // A model too large for the adapter's buffers is refused before any allocation.
    let huge = base
        .with_model(ModelConfig {
            hidden_size: 4096,
            ..cfg
        })
        .with_capacity(Capacity {
            batch: 4096,
            steps: 4096,
        });
    let err = Engine::new(ctx(), huge, &rankcode::model::init_params(&huge.model, 1))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("bytes"), "{err}");
}

/// The two forms of the GEMMs (step and weight gradient), staged through workgroup
/// memory and direct, give the same bits: logits at every step, decisions and
/// gradients, over two layers of an awkward width, rows that retire at mixed steps
/// (wide blocks, then narrow ones), with dense and sparse input. The direct form's
/// gate GEMM, `step_cell_forward`, reads the weights' [K][N] copy in vec4s: 280 columns,
/// one block of 256 and a partial one, and row blocks of 16 and of 4.
#[test]
fn staged_and_direct_gemms_give_the_same_bits() {
    same_bits_staged_and_direct(model(37, 70, 2, 3, Readout::Softmax));
}

/// As [`staged_and_direct_gemms_give_the_same_bits`], with layer inputs of a multiple
/// of 4 (36 and 68), whose input weight gradients the direct form computes in
/// `grad_gemm_quads` (vec4 loads): 272 gradient rows and 37 and 69 columns, the bias
/// column included, partial blocks of 32 x 128 in both directions.
#[test]
fn staged_and_quad_gemms_give_the_same_bits() {
    same_bits_staged_and_direct(model(36, 68, 2, 3, Readout::Softmax));
}

/// As [`staged_and_direct_gemms_give_the_same_bits`], with two inputs (the toy tasks
/// have one to three), whose input weight gradient, 3 columns with the bias, the
/// direct form computes in `grad_gemm_narrow` (280 gradient rows: a partial
/// workgroup); so it does a sparse layer 0's bias column in every test of this kind.
#[test]
fn staged_and_narrow_gradients_give_the_same_bits() {
    same_bits_staged_and_direct(model(2, 70, 2, 3, Readout::Softmax));
}

/// As [`staged_and_direct_gemms_give_the_same_bits`], with 5 units a layer: the step
/// GEMMs' one invocation of a partial block (32 columns for 20 gate columns, 16 for 5
/// units).
#[test]
fn staged_and_direct_gemms_of_few_units_give_the_same_bits() {
    same_bits_staged_and_direct(model(37, 5, 2, 3, Readout::Softmax));
}

fn same_bits_staged_and_direct(cfg: ModelConfig) {
    // 130 rows: more than one wide block of either form, and narrow blocks as rows
    // retire. 3 rows: narrow blocks throughout, those of the direct form's gate GEMM
    // (`step_cell_forward`, 4 rows) included.
    // The threshold that spreads the decisions of the 130 rows serves both.
    let params = random_params(&cfg, 0.6, 203);
    let theta = mixed_theta(&cfg, &params, &fixture(&cfg, 130));
    for rows in [130, 3] {
        same_bits_staged_and_direct_over(cfg, &params, theta, &fixture(&cfg, rows));
    }
}

/// A batch of `rows` rows over 12 steps, two inputs in three zero.
fn fixture(cfg: &ModelConfig, rows: usize) -> Batch {
    let mut batch = random_batch(12, rows, cfg.input_size, 3, 201);
    let mut rng = rankcode::rng::Rng::new(202);
    for v in batch.dense_mut().iter_mut().filter(|_| rng.below(3) != 0) {
        *v = 0.0; // sparse enough for either path
    }
    batch
}

fn same_bits_staged_and_direct_over(cfg: ModelConfig, params: &[f32], theta: f32, batch: &Batch) {
    let (steps, rows) = (batch.steps, batch.batch);
    for sparse_input in [false, true] {
        // K = 1 reads the loss steps back after every step; K = steps plans every step
        // after the first on the GPU (`plan_next_step`), indirect dispatches included.
        let run = |direct: bool, k: usize| {
            let rc = RcConfig {
                theta,
                beta: 0.0,
                mode: TrainMode::Rc,
                loss_from_step: None,
            };
            let cap = Capacity { batch: rows, steps };
            let ctx = ctx_with_direct_gemm(direct);
            let mut eng = engine_on(ctx, cfg, rc, cap, k, params, sparse_input);
            let report = eng.compute_gradients(batch).unwrap();
            let logits: Vec<u32> = (0..steps)
                .flat_map(|t| bits(&eng.logits_at(t, rows).unwrap()))
                .collect();
            (report.decision_step, logits, bits(&eng.grads().unwrap()))
        };
        let (staged, direct) = (run(false, 1), run(true, 1));
        let (staged_planned, direct_planned) = (run(false, steps), run(true, steps));
        let decided = &staged.0;
        // Live rows at step t: those deciding at t or later. The forward pass ends in
        // narrow blocks of both forms.
        let live = |t: usize| decided.iter().filter(|&&d| d as usize >= t).count();
        if rows > GemmShapes::DIRECT.wide.block_rows() {
            let narrow_rows = GemmShapes::STAGED.narrow.block_rows();
            assert!(
                (0..steps).any(|t| (1..=narrow_rows).contains(&live(t))),
                "a step with a narrow block of either form: {decided:?}"
            );
        } else {
            assert!(live(0) <= StepQuadsShape::NARROW_ROWS);
        }
        let what = format!("{rows} rows, sparse {sparse_input}");
        assert_eq!(staged.0, direct.0, "decisions, {what}");
        assert_eq!(staged.1, direct.1, "logits, {what}");
        assert_eq!(staged.2, direct.2, "gradients, {what}");
        for (form, planned) in [("staged", &staged_planned), ("direct", &direct_planned)] {
            assert_eq!(
                &staged, planned,
                "the {form} form's steps planned on the GPU, {what}"
            );
        }
    }
}

/// The direct form's gate and dh GEMMs read their weights from copies that every
/// forward pass refreshes (`weight_copy.wgsl`, laid out as `WeightCopies` says): after
/// a batch they hold the parameters, element for element, and after new parameters
/// and another batch, the new ones. Two layers of awkward widths (inputs 37 and 70,
/// 280 gate rows, dh rows of 70 padded to 72) and a readout of 3; and of 68 units,
/// whose dh GEMMs read their weights from the parameters (rows of 68 start at
/// multiples of 4 there), so that only the gate GEMMs' are copied.
#[test]
fn the_weight_copies_are_the_parameters_of_each_pass() {
    use rankcode::engine::WeightCopies;
    let dh_copied = |cfg: &ModelConfig| {
        WeightCopies::new(cfg)
            .layers
            .iter()
            .map(|at| at.dh.is_some())
            .collect::<Vec<_>>()
    };
    let padded = model(37, 70, 2, 3, Readout::Softmax);
    assert_eq!(WeightCopies::new(&padded).dh_row, 72);
    assert_eq!(dh_copied(&padded), [true, true]);
    weight_copies_follow_the_parameters(padded);
    let in_place = model(37, 68, 2, 3, Readout::Softmax);
    assert_eq!(dh_copied(&in_place), [false, false]);
    weight_copies_follow_the_parameters(in_place);
}

fn weight_copies_follow_the_parameters(cfg: ModelConfig) {
    use rankcode::engine::WeightCopies;
    let layout = rankcode::model::ParamLayout::new(&cfg);
    let copies = WeightCopies::new(&cfg);
    let h = cfg.hidden_size;
    let expected = |params: &[f32]| -> Vec<f32> {
        let mut copy = vec![0.0; copies.len];
        for (k, (lo, at)) in layout.layers.iter().zip(&copies.layers).enumerate() {
            let input = cfg.layer_input(k);
            // [4H][K] transposed, the gates interleaved: element (kk, 4u + g) of the
            // copy is row g H + u, column kk.
            let mut row = 0;
            for (base, k_len) in [(lo.w_ih, input), (lo.w_hh, h)] {
                for kk in 0..k_len {
                    for (u, g) in (0..h).flat_map(|u| (0..4).map(move |g| (u, g))) {
                        let from = params[base + (g * h + u) * k_len + kk];
                        copy[at.gates + (row + kk) * 4 * h + 4 * u + g] = from;
                    }
                }
                row += k_len;
            }
            // [4H][H] and the weights from above as they are, rows padded, where the
            // dh GEMM does not read them from the parameters.
            let Some(dh) = at.dh else { continue };
            let above = match layout.layers.get(k + 1) {
                Some(next) => (next.w_ih, 4 * h),
                None => (layout.readout_w, cfg.classes),
            };
            let mut row = 0;
            for (base, rows) in [(lo.w_hh, 4 * h), above] {
                for r in 0..rows {
                    for u in 0..h {
                        copy[dh + (row + r) * copies.dh_row + u] = params[base + r * h + u];
                    }
                }
                row += rows;
            }
        }
        copy
    };
    let batch = random_batch(5, 9, cfg.input_size, 3, 31);
    let rc = RcConfig {
        theta: 0.5,
        beta: 0.0,
        mode: TrainMode::Rc,
        loss_from_step: None,
    };
    let cap = Capacity { batch: 9, steps: 5 };
    let first = random_params(&cfg, 0.6, 32);
    let second = random_params(&cfg, 0.6, 33);
    // With sparse input layer 0's input weights are not copied: sparse_gates reads
    // them from the parameters.
    let input_part = copies.layers[0].gates..copies.layers[0].gates + cfg.input_size * 4 * h;
    for sparse in [false, true] {
        let expected = |params: &[f32]| {
            let mut copy = expected(params);
            if sparse {
                copy[input_part.clone()].fill(0.0);
            }
            copy
        };
        let mut eng = engine_on(ctx_with_direct_gemm(true), cfg, rc, cap, 1, &first, sparse);
        eng.compute_gradients(&batch).unwrap();
        assert_eq!(bits(&eng.weight_copies().unwrap()), bits(&expected(&first)));
        eng.set_params(&second).unwrap();
        eng.evaluate(&batch).unwrap();
        assert_eq!(
            bits(&eng.weight_copies().unwrap()),
            bits(&expected(&second)),
            "sparse {sparse}"
        );
        let staged = engine_on(ctx_with_direct_gemm(false), cfg, rc, cap, 1, &first, sparse);
        assert!(staged.weight_copies().unwrap().is_empty());
    }
}

/// Temporal-coded batches (event times, as temporal MNIST stores its images) on the
/// sparse path: the reference's results, in lists sized for their events (one per
/// input and sequence); a denser batch grows the lists, and matches too.
#[test]
fn event_time_batches_take_the_sparse_path_and_denser_ones_grow_its_lists() {
    let cfg = model(37, 19, 1, 3, Readout::Sigmoid);
    let (steps, rows) = (7, 21);
    let mut rng = rankcode::rng::Rng::new(111);
    let batch = Batch {
        inputs: Inputs::EventTimes((0..rows * 37).map(|_| rng.below(steps) as u8).collect()),
        ..random_batch(steps, rows, 37, 3, 112)
    };
    let params = random_params(&cfg, 0.6, 113);
    let rc = RcConfig {
        theta: mixed_theta(&cfg, &params, &batch),
        beta: 0.2,
        mode: TrainMode::Rc,
        loss_from_step: None,
    };
    let mut eng = engine_with(cfg, rc, Capacity { batch: rows, steps }, 1, &params, true);
    let before = eng.memory_bytes();
    let gpu = eng.compute_gradients(&batch).unwrap();
    let cpu = reference::run_batch(&cfg, &rc, &params, &batch, true);
    assert_matches_reference(&gpu, &cpu, &batch);
    assert_close("gradients", &eng.grads().unwrap(), &cpu.grads, 2e-3);
    assert_eq!(eng.memory_bytes(), before, "the events fit the lists");
    // Every input nonzero at every step: 7 times the events.
    let dense = random_batch(steps, rows, 37, 3, 114);
    let gpu = eng.compute_gradients(&dense).unwrap();
    assert!(eng.memory_bytes() > before, "the lists grew");
    let cpu = reference::run_batch(&cfg, &rc, &params, &dense, true);
    assert_matches_reference(&gpu, &cpu, &dense);
    assert_close("gradients", &eng.grads().unwrap(), &cpu.grads, 2e-3);
}

/// Sparse event inputs (a few ones per step, as temporal MNIST) through the sparse
/// layer-0 path: the same decisions, logits and gradients as the reference.
#[test]
fn sparse_input_path_matches_reference() {
    let (cfg, batch, params, theta) = sparse_event_fixture(2);
    check_gradients(cfg, TrainMode::Rc, 0.2, &batch, &params, theta, true);
}

#[test]
fn threshold_sweeps_match_the_reference_at_every_threshold() {
    // 37 sequences in batches of 16 (a short last one); thresholds up to one that
    // mixes decisions at t = 0, later ones and rows that never fire (so the sweep's
    // pass at it cuts rows short), unsorted; the fired mask read back every step and
    // every third step.
    let (steps, input, classes, rows) = (9, 3, 4, 37);
    for (readout, k) in [(Readout::Sigmoid, 1), (Readout::Softmax, 3)] {
        let cfg = model(input, 11, 1, classes, readout);
        let params = random_params(&cfg, 0.8, 21);
        let all = random_batch(steps, rows, input, classes, 22);
        let mixed = mixed_theta(&cfg, &params, &all);
        let thetas = [0.6 * mixed, mixed, 0.01, 0.8 * mixed];
        let sequences = (0..rows)
            .map(|b| {
                (0..steps)
                    .flat_map(|t| all.input_at(t, b).to_vec())
                    .collect()
            })
            .collect();
        let data = Dataset::from_sequences(sequences, all.labels.clone(), steps, input, classes);
        let rc = RcConfig {
            theta: 0.5,
            beta: 0.0,
            mode: TrainMode::Rc,
            loss_from_step: None,
        };
        let cap = Capacity { batch: 16, steps };
        let mut eng = engine(cfg, rc, cap, k, &params);
        let sweep = epoch::theta_sweep(&mut eng, &data, 16, &thetas).unwrap();
        assert_eq!(eng.config().rc, rc, "the engine's threshold is restored");
        // The same sweep read from the full pass (eval with the accuracy at T-1).
        let (_, from_full_pass) =
            epoch::evaluate_and_sweep(&mut eng, &data, 16, true, Some(&thetas)).unwrap();
        assert_eq!(from_full_pass.as_ref(), Some(&sweep), "{readout:?}");
        for (point, &theta) in sweep.iter().zip(&thetas) {
            let cpu = reference::run_batch(&cfg, &RcConfig { theta, ..rc }, &params, &all, false);
            let n = rows as f64;
            let count = |f: &dyn Fn(&reference::RowOutcome, u32) -> usize| {
                cpu.rows
                    .iter()
                    .zip(&all.labels)
                    .map(|(r, &l)| f(r, l))
                    .sum::<usize>() as f64
            };
            let expected = SweepPoint {
                theta,
                accuracy: count(&|r, l| (r.prediction == l as usize) as usize) / n,
                mean_decision_step: count(&|r, _| r.decision_step + 1) / n,
                not_fired: 1.0 - count(&|r, _| r.first_spike.is_some() as usize) / n,
            };
            assert_eq!(*point, expected, "{readout:?}, theta {theta}");
        }
        let top = sweep[1];
        assert!(
            top.not_fired > 0.0 && top.not_fired < 1.0 && top.mean_decision_step < steps as f64,
            "rows cut short and rows run to the end at the largest threshold: {top:?}"
        );
        assert_eq!(sweep[2].not_fired, 0.0, "{:?}", sweep[2]);
    }
}

/// An ensemble's zero blocks: skipping them (`recurrent_block`) gives bitwise the same
/// logits as computing them, and both match the reference, with dense and sparse
/// layer-0 inputs.
#[test]
fn an_ensembles_zero_blocks_are_skipped_with_the_same_results() {
    use rankcode::engine::{Engine, EngineConfig};
    use rankcode::model::ensemble::{MemberModel, merge};
    // Three members of 70 units, two layers: 210 units, so some 32- and 64-column
    // blocks lie in one member, skipping the chunks of 16 outside it, and others
    // straddle members or gates.
    let member = model(6, 70, 2, 3, Readout::Softmax);
    let member_params: Vec<Vec<f32>> = (0..3)
        .map(|m| random_params(&member, 0.7, 300 + m))
        .collect();
    let members: Vec<MemberModel> = member_params
        .iter()
        .map(|params| MemberModel {
            model: &member,
            params,
        })
        .collect();
    let (cfg, params) = merge(&members).unwrap();
    // More rows than a narrow block holds: wide blocks of either form, then narrow ones.
    let mut batch = random_batch(9, 40, 6, 3, 310);
    let mut rng = rankcode::rng::Rng::new(311);
    for v in batch.dense_mut() {
        *v = (rng.below(3) == 0) as u8 as f32;
    }
    let theta = mixed_theta(&cfg, &params, &batch);
    let rc = RcConfig {
        theta,
        beta: 0.0,
        mode: TrainMode::Rc,
        loss_from_step: None,
    };
    let cpu = reference::run_batch(&cfg, &rc, &params, &batch, false);
    let config = |sparse_input, recurrent_block| {
        EngineConfig::new(
            cfg,
            Capacity {
                batch: batch.batch,
                steps: batch.steps,
            },
        )
        .with_rc(rc)
        .with_sparse_input(sparse_input)
        .with_recurrent_block(recurrent_block)
    };
    for sparse_input in [false, true] {
        let run = |recurrent_block| {
            let ecfg = config(sparse_input, recurrent_block);
            let mut eng = Engine::new(ctx(), ecfg, &params).unwrap();
            // Every row live at every step: the GEMM of full-height blocks.
            eng.evaluate_full(&batch).unwrap();
            let full = eng.batch_logits(batch.steps, batch.batch).unwrap();
            // Rows retiring: the narrow blocks once few are left.
            let report = eng.evaluate(&batch).unwrap();
            let logits = eng.batch_logits(batch.steps, batch.batch).unwrap();
            (report, logits, full)
        };
        let (all_blocks, all_logits, all_full) = run(0);
        let (skipping, logits, full) = run(70);
        assert_eq!(
            bits(&full),
            bits(&all_full),
            "full pass, sparse {sparse_input}"
        );
        assert_eq!(skipping.decision_step, all_blocks.decision_step);
        assert_eq!(skipping.prediction, all_blocks.prediction);
        let c = cfg.classes;
        for (b, row) in cpu.rows.iter().enumerate() {
            assert_eq!(skipping.decision_step[b] as usize, row.decision_step);
            for t in 0..=row.loss_step {
                let at = (t * batch.batch + b) * c;
                let (got, full) = (&logits[at..at + c], &all_logits[at..at + c]);
                assert_eq!(bits(got), bits(full), "sparse {sparse_input} t={t} b={b}");
                assert_close(&format!("logits t={t} b={b}"), got, &row.logits[t], 1e-4);
            }
        }
    }
    let mut skipping = Engine::new(ctx(), config(false, 70), &params).unwrap();
    let err = skipping.compute_gradients(&batch).unwrap_err();
    assert!(err.to_string().contains("forward passes only"), "{err}");
    let err = Engine::new(ctx(), config(false, 20), &params)
        .err()
        .expect("210 units in blocks of 20");
    assert!(err.to_string().contains("do not tile 210 units"), "{err}");
}

#[test]
fn the_peers_workload_decides_where_drawn() {
    use rankcode::bench::{Preset, peers};
    let ctx = common::ctx();
    let small = Preset {
        name: "small",
        batch: 16,
        steps: 9,
        ..peers::workloads()[0]
    };
    let f = peers::bench_workload(&ctx, &small, 1, &mut |_| {}).unwrap();
    let drawn = peers::decisions(16, 9, 17);
    let mean = drawn.iter().flatten().map(|&s| s + 1).sum::<usize>() as f64 / 16.0;
    assert_eq!(f.mean_decision_step, mean);
    assert_eq!(f.ideal_speedup, 9.0 / mean);
    assert!(f.full_seq_per_s > 0.0 && f.rc_seq_per_s > 0.0 && f.realised_speedup > 0.0);
}
