//! A run's model in an engine: built from the run's settings for training, or loaded
//! from its directory for inference, by default at the threshold the run selected.

use super::config::RunConfig;
use super::selection::selected_theta;
use crate::checkpoint;
use crate::engine::{Capacity, Engine, EngineConfig};
use crate::error::Result;
use crate::gpu::GpuContext;
use crate::model::ensemble::recurrent_blocks_hold;
use std::path::Path;
use std::sync::Arc;

/// Builds the engine of a run with `params`.
pub fn build_engine(ctx: Arc<GpuContext>, cfg: &RunConfig, params: &[f32]) -> Result<Engine> {
    let shape = cfg.shape();
    let ecfg = EngineConfig::new(
        cfg.model,
        Capacity {
            batch: cfg.batch,
            steps: shape.steps,
        },
    )
    .with_rc(cfg.rc)
    .with_adam(cfg.adam)
    .with_readback_every(cfg.readback_every)
    .with_sparse_input(cfg.task.sparse_input())
    .with_recurrent_block(recurrent_block(cfg, params));
    Engine::new(ctx, ecfg, params)
}

/// The width of an ensemble's members when they share one and its recurrent weights
/// are blocks of that size on the diagonal (checked on the weights, not taken from the
/// config): the forward pass then skips the zero blocks. 0 (compute them all) for any
/// other run.
fn recurrent_block(cfg: &RunConfig, params: &[f32]) -> usize {
    match cfg.ensemble_of.as_deref() {
        Some([first, rest @ ..])
            if rest.iter().all(|m| m.hidden_size == first.hidden_size)
                && recurrent_blocks_hold(&cfg.model, params, first.hidden_size) =>
        {
            first.hidden_size
        }
        _ => 0,
    }
}

/// Loads a trained run from `dir` (its `config.json` and `model.safetensors`) into a
/// new engine.
pub fn load_trained(ctx: Arc<GpuContext>, dir: &Path) -> Result<(RunConfig, Engine)> {
    let cfg = RunConfig::load(dir)?;
    let params = checkpoint::load_model(dir, &cfg.model)?;
    let engine = build_engine(ctx, &cfg, &params)?;
    Ok((cfg, engine))
}

/// The threshold a run is evaluated at unless told otherwise: the one it selected
/// within its step budget, once it has finished, else its own.
pub fn default_theta(dir: &Path, cfg: &RunConfig) -> Result<f32> {
    Ok(selected_theta(dir, cfg.select_within_budget.as_ref())?.unwrap_or(cfg.rc.theta))
}

/// Loads a trained run for inference with the rank-coding rule at `theta` (default:
/// the threshold the run selected within its step budget, once it has finished, else
/// its own), whatever mode it was trained in; returns the threshold.
pub fn load_for_inference(
    ctx: Arc<GpuContext>,
    dir: &Path,
    theta: Option<f32>,
) -> Result<(RunConfig, Engine, f32)> {
    let (cfg, mut engine) = load_trained(ctx, dir)?;
    let theta = match theta {
        Some(t) => t,
        None => default_theta(dir, &cfg)?,
    };
    engine.set_rc(crate::model::RcConfig {
        theta,
        mode: crate::model::TrainMode::Rc,
        ..cfg.rc
    })?;
    Ok((cfg, engine, theta))
}
