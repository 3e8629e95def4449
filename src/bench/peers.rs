//! The workloads of the peer benchmarks (`../shared/peers`: PyTorch's `torch_bench.py`
//! and burn's `burn-lstm-bench`), run by rankcode's engine so that their seq/s compare
//! line for line (`rankcode bench --config peers`; docs/performance.md, "Side by
//! side").
//!
//! Each workload trains batches of one LSTM layer of 125 units with a sigmoid readout
//! and Adam at 3e-4. Every sequence decides at a step drawn uniformly from
//! 0..=floor(2T/3), as the peers draw theirs:
//! - full-length training computes all T steps forward and backward: the peers'
//!   `full` (loss at the drawn step, backward through all T) and `eos` (loss at the
//!   last step) cost the same;
//! - RC training stops each sequence at its step, forward and backward: what the
//!   peers' `cellshrink` does in PyTorch, with an ideal speedup of T / mean(step + 1).
//!
//! The decisions are forced with [`super::controlled_params`]; a step costs the same
//! whatever the weights' values.

use super::{Preset, controlled_batch, controlled_params, engine_config, median};
use crate::engine::Engine;
use crate::error::Result;
use crate::gpu::GpuContext;
use crate::model::{AdamConfig, ModelConfig, Readout, TrainMode};
use crate::rng::Rng;
use serde::Serialize;
use std::sync::Arc;
use std::time::Instant;

/// The learning rate of the peers' Adam.
const PEER_LR: f32 = 3e-4;

/// The peers' workloads, with the input path rankcode uses for each: `nvs` (dense),
/// `mnist` on the dense path as the peers compute it, and `mnist` on rankcode's sparse
/// event path (its inputs are on with probability 1/20, as temporal MNIST's events).
pub fn workloads() -> Vec<Preset> {
    let model = |input, classes| ModelConfig {
        input_size: input,
        hidden_size: 125,
        layers: 1,
        classes,
        readout: Readout::Sigmoid,
    };
    vec![
        Preset {
            name: "nvs",
            model: model(1, 1),
            batch: 128,
            steps: 40,
            sparse: false,
        },
        Preset {
            name: "mnist",
            model: model(784, 10),
            batch: 256,
            steps: 20,
            sparse: false,
        },
        Preset {
            name: "mnist-sparse",
            model: model(784, 10),
            batch: 256,
            steps: 20,
            sparse: true,
        },
    ]
}

/// Decision steps uniform over 0..=floor(2 `steps` / 3).
pub fn decisions(batch: usize, steps: usize, seed: u64) -> Vec<Option<usize>> {
    let mut rng = Rng::new(seed);
    (0..batch)
        .map(|_| Some(rng.below(2 * steps / 3 + 1)))
        .collect()
}

/// FLOPs of training one sequence over all its steps, counted as the peers count them:
/// three times the forward pass's multiply-adds (gates and readout), twice each.
pub fn training_flops(p: &Preset) -> f64 {
    let m = &p.model;
    let h = m.hidden_size;
    let step = 2 * 4 * h * (m.input_size + h) + 2 * h * m.classes;
    3.0 * (p.steps * step) as f64
}

/// Training throughput of one workload.
#[derive(Debug, Clone, Serialize)]
pub struct PeerFigures {
    pub preset: Preset,
    /// Mean of (decision step + 1) over the batch.
    pub mean_decision_step: f64,
    /// T / mean(decision step + 1).
    pub ideal_speedup: f64,
    /// Full-length training (the peers' `full` and `eos`), with Adam.
    pub full_seq_per_s: f64,
    /// `full_seq_per_s` in GFLOP/s, by [`training_flops`].
    pub full_gflops: f64,
    /// Rank-coded training at the drawn steps (the peers' `cellshrink`), with Adam.
    pub rc_seq_per_s: f64,
    /// Median over back-to-back (full, RC) pairs of their time ratio.
    pub realised_speedup: f64,
    /// realised / ideal.
    pub efficiency: f64,
}

/// Times `pairs` back-to-back training batches of each kind (after one of each as a
/// warm-up) on workload `p`.
pub fn bench_workload(
    ctx: &Arc<GpuContext>,
    p: &Preset,
    pairs: usize,
    progress: &mut dyn FnMut(&str),
) -> Result<PeerFigures> {
    let decided = decisions(p.batch, p.steps, 17);
    let batch = controlled_batch(&p.model, p.steps, &decided, p.sparse, 5);
    let engine = |mode| {
        let cfg = engine_config(p, mode, 1, p.sparse).with_adam(AdamConfig {
            lr: PEER_LR,
            ..AdamConfig::default()
        });
        Engine::new(ctx.clone(), cfg, &controlled_params(&p.model))
    };
    let (mut full, mut rc) = (engine(TrainMode::Eos)?, engine(TrainMode::Rc)?);
    full.train_batch(&batch)?;
    let steps_processed = rc.train_batch(&batch)?.steps_processed;
    let (mut full_s, mut rc_s) = (Vec::new(), Vec::new());
    for pair in 1..=pairs {
        progress(&format!(
            "{}: training batches, pair {pair} of {pairs}",
            p.name
        ));
        let start = Instant::now();
        full.train_batch(&batch)?;
        full_s.push(start.elapsed().as_secs_f64());
        let start = Instant::now();
        rc.train_batch(&batch)?;
        rc_s.push(start.elapsed().as_secs_f64());
    }
    let ratios: Vec<f64> = full_s.iter().zip(&rc_s).map(|(f, r)| f / r).collect();
    let mean_decision_step = steps_processed as f64 / p.batch as f64;
    let ideal_speedup = p.steps as f64 / mean_decision_step;
    let realised_speedup = median(ratios);
    let full_seq_per_s = p.batch as f64 / median(full_s);
    Ok(PeerFigures {
        preset: *p,
        mean_decision_step,
        ideal_speedup,
        full_seq_per_s,
        full_gflops: full_seq_per_s * training_flops(p) / 1e9,
        rc_seq_per_s: p.batch as f64 / median(rc_s),
        realised_speedup,
        efficiency: realised_speedup / ideal_speedup,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flops_are_the_peers_own() {
        // ../shared/peers/README.md: 15.15 M (nvs) and 54.69 M (mnist) a sequence.
        let w = workloads();
        assert!((training_flops(&w[0]) / 1e6 - 15.15).abs() < 0.01);
        assert!((training_flops(&w[1]) / 1e6 - 54.69).abs() < 0.01);
    }

    #[test]
    fn decisions_cover_the_first_two_thirds() {
        let d = decisions(4000, 40, 3);
        assert!(d.iter().all(|s| s.is_some_and(|s| s <= 26)));
        let mean = d.iter().flatten().sum::<usize>() as f64 / d.len() as f64;
        assert!((mean - 13.0).abs() < 0.5, "{mean}");
        assert!(d.contains(&Some(0)) && d.contains(&Some(26)));
    }
}
