//! Trained runs of one task joined into a new run directory that holds their
//! logit-averaging ensemble as one model (the parameters: [`crate::model::ensemble`]).
//!
//! The directory is an ordinary run for `eval`, `classify` and `plot`: `config.json`
//! (the first member's settings, the merged model, the threshold it runs at and the
//! members in `ensemble_of`), `model.safetensors` and, for audio tasks, `features.json`.
//! It has no training state, and `train --resume` refuses it.

use crate::checkpoint::{self, RunConfig};
use crate::error::{Error, Result};
use crate::model::ensemble::{Member, merge, mismatch};
use crate::run::default_theta;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// One run of an ensemble, as `config.json` records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnsembleMember {
    /// The run directory, as it was given.
    pub run: PathBuf,
    /// Its LSTM units per layer: the block of the ensemble's units that are its.
    pub hidden_size: usize,
}

fn file_error(path: &Path, problem: String) -> Error {
    Error::File {
        path: path.to_path_buf(),
        problem,
    }
}

/// Writes the ensemble of `runs` into the new run directory `out`, to run at `theta`
/// (default: the members' own threshold, which must then be the same for all); returns
/// its configuration.
pub fn write_ensemble(runs: &[PathBuf], out: &Path, theta: Option<f32>) -> Result<RunConfig> {
    if runs.len() < 2 {
        return Err(Error::InvalidConfig(format!(
            "an ensemble needs at least two runs, got {}",
            runs.len()
        )));
    }
    let mut members = Vec::with_capacity(runs.len());
    for run in runs {
        let cfg = RunConfig::load(run)?;
        let params = checkpoint::load_model(run, &cfg.model)?;
        members.push((run, cfg, params));
    }
    let (first_run, first, _) = &members[0];
    let features = match first.task.is_audio() {
        true => Some(checkpoint::load_feature_spec(first_run)?),
        false => None,
    };
    for (run, cfg, _) in &members[1..] {
        let against = |why: String| {
            file_error(
                run,
                format!(
                    "cannot join an ensemble with {}: {why}",
                    first_run.display()
                ),
            )
        };
        if cfg.task != first.task {
            return Err(against(format!(
                "it is a run of task {}, not {}",
                cfg.task.name(),
                first.task.name()
            )));
        }
        if let Some(why) = mismatch(&first.model, &cfg.model) {
            return Err(against(why));
        }
        if let Some(features) = &features
            && (cfg.frontend != first.frontend || checkpoint::load_feature_spec(run)? != *features)
        {
            return Err(against(
                "its audio front end or feature statistics (features.json) differ".into(),
            ));
        }
    }
    let theta = match theta {
        Some(theta) => theta,
        None => members_theta(&members)?,
    };
    let (model, params) = merge(
        &members
            .iter()
            .map(|(_, cfg, params)| Member {
                model: &cfg.model,
                params,
            })
            .collect::<Vec<_>>(),
    )?;
    let cfg = RunConfig {
        model,
        rc: crate::model::RcConfig { theta, ..first.rc },
        theta_warmup: None,
        select_within_budget: None,
        ensemble_of: Some(
            members
                .iter()
                .map(|(run, cfg, _)| EnsembleMember {
                    run: run.to_path_buf(),
                    hidden_size: cfg.model.hidden_size,
                })
                .collect(),
        ),
        ..first.clone()
    };
    cfg.validate()?;
    std::fs::create_dir_all(out)
        .map_err(|e| file_error(out, format!("cannot create the output directory: {e}")))?;
    if out.join(checkpoint::CONFIG_FILE).exists() {
        return Err(file_error(
            out,
            "already holds a run; choose another --out".into(),
        ));
    }
    checkpoint::save_model(out, &cfg.model, &params)?;
    if let Some(features) = &features {
        checkpoint::save_feature_spec(out, features)?;
    }
    // The configuration goes last: it is what makes the directory a run.
    cfg.save(out)?;
    Ok(cfg)
}

/// The threshold every member runs at by default, if they agree on one.
fn members_theta(members: &[(&PathBuf, RunConfig, Vec<f32>)]) -> Result<f32> {
    let thetas = members
        .iter()
        .map(|(run, cfg, _)| default_theta(run, cfg))
        .collect::<Result<Vec<f32>>>()?;
    if thetas.iter().all(|&t| t == thetas[0]) {
        return Ok(thetas[0]);
    }
    Err(Error::InvalidConfig(format!(
        "the runs run at different thresholds ({}); choose the ensemble's with --theta",
        thetas
            .iter()
            .map(|t| t.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )))
}
