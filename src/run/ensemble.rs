//! Trained runs of one task joined into a new run directory that holds their
//! logit-averaging ensemble as one model (the parameters: [`crate::model::ensemble`]).
//!
//! The directory is a run for `eval`, `classify` and `plot`: `config.json` (the first
//! member's settings with the merged model, the threshold it runs at and the members
//! in `ensemble_of`), `model.safetensors` and, for audio tasks, `features.json`. It has
//! no training state, and `train` refuses it.

use super::config::{EnsembleMember, RunConfig};
use super::directory::{SNAPSHOT_FILE, TEST_FILE};
use super::features::{load_feature_spec, save_feature_spec};
use super::inference::default_theta;
use crate::checkpoint;
use crate::data::audio::FeatureSpec;
use crate::error::{Error, Result};
use crate::model::ensemble::{MemberModel, merge, mismatch};
use std::path::{Path, PathBuf};

/// A member run as read from its directory.
struct MemberRun {
    dir: PathBuf,
    cfg: RunConfig,
    params: Vec<f32>,
}

impl MemberRun {
    fn load(dir: &Path) -> Result<Self> {
        let cfg = RunConfig::load(dir)?;
        if cfg.ensemble_of.is_some() {
            return Err(Error::file(
                dir,
                "is itself an ensemble: list its runs instead, so that each weighs the same",
            ));
        }
        let params = checkpoint::load_model(dir, &cfg.model)?;
        let finished = [TEST_FILE, SNAPSHOT_FILE];
        if !finished.iter().any(|f| dir.join(f).is_file()) {
            log::warn!(
                "{} has no test.json: its training has not finished, and its model.safetensors \
                 is its best epoch so far",
                dir.display()
            );
        }
        let dir = std::fs::canonicalize(dir).map_err(|e| Error::file_caused(dir, "", e))?;
        Ok(MemberRun { dir, cfg, params })
    }

    /// Why this run cannot join an ensemble with `first` (whose feature description,
    /// for audio tasks, is `features`), if it cannot.
    fn mismatch(
        &self,
        first: &MemberRun,
        features: Option<&FeatureSpec>,
    ) -> Result<Option<String>> {
        let (cfg, first_cfg) = (&self.cfg, &first.cfg);
        if cfg.task != first_cfg.task {
            return Ok(Some(format!(
                "it is a run of task {}, not {}",
                cfg.task.name(),
                first_cfg.task.name()
            )));
        }
        if let Some(why) = mismatch(&first_cfg.model, &cfg.model) {
            return Ok(Some(why));
        }
        if cfg.rc.mode != first_cfg.rc.mode {
            return Ok(Some(format!(
                "it was trained with --mode {}, not {}; members must share the mode",
                cfg.rc.mode.name(),
                first_cfg.rc.mode.name()
            )));
        }
        if cfg.frontend != first_cfg.frontend {
            return Ok(Some("its audio front end differs".into()));
        }
        if let Some(features) = features
            && load_feature_spec(&self.dir)? != *features
        {
            return Ok(Some(
                "its features.json differs (feature statistics or class names): \
                 it was trained on other data"
                    .into(),
            ));
        }
        Ok(None)
    }
}

/// Writes the ensemble of `runs` into `out` (a new or empty directory), to run at
/// `theta` (default: the members' own threshold, which must then be the same for
/// all); returns its configuration.
pub fn write_ensemble(runs: &[PathBuf], out: &Path, theta: Option<f32>) -> Result<RunConfig> {
    if runs.len() < 2 {
        return Err(Error::InvalidConfig(format!(
            "an ensemble needs at least two runs, got {}",
            runs.len()
        )));
    }
    if out.is_file() {
        return Err(Error::file(
            out,
            "is a file; choose a new directory as --out",
        ));
    }
    if out.exists() {
        let empty = std::fs::read_dir(out).map(|mut entries| entries.next().is_none());
        if !matches!(empty, Ok(true)) {
            return Err(Error::file(
                out,
                "exists and is not an empty directory; choose a new --out",
            ));
        }
    }
    let members = runs
        .iter()
        .map(|run| MemberRun::load(run))
        .collect::<Result<Vec<_>>>()?;
    for (i, member) in members.iter().enumerate() {
        if members[..i].iter().any(|earlier| earlier.dir == member.dir) {
            log::warn!(
                "{} is given more than once: it weighs as many times in the mean",
                member.dir.display()
            );
        }
    }
    let first = &members[0];
    let features = match first.cfg.task.is_audio() {
        true => Some(load_feature_spec(&first.dir)?),
        false => None,
    };
    for (member, given) in members.iter().zip(runs).skip(1) {
        if let Some(why) = member.mismatch(first, features.as_ref())? {
            return Err(Error::file(
                given,
                format!("cannot join an ensemble with {}: {why}", runs[0].display()),
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
            .map(|m| MemberModel {
                model: &m.cfg.model,
                params: &m.params,
            })
            .collect::<Vec<_>>(),
    )?;
    let cfg = RunConfig {
        model,
        rc: crate::model::RcConfig {
            theta,
            ..first.cfg.rc
        },
        theta_warmup: None,
        lr_cycles: None,
        select_within_budget: None,
        ensemble_of: Some(
            members
                .iter()
                .map(|m| EnsembleMember {
                    run: m.dir.clone(),
                    hidden_size: m.cfg.model.hidden_size,
                })
                .collect(),
        ),
        ..first.cfg.clone()
    };
    cfg.validate()?;
    std::fs::create_dir_all(out)
        .map_err(|e| Error::file_caused(out, "cannot create the output directory", e))?;
    checkpoint::save_model(out, &cfg.model, &params)?;
    if let Some(features) = &features {
        save_feature_spec(out, features)?;
    }
    // The configuration goes last: it is what makes the directory a run.
    cfg.save(out)?;
    Ok(cfg)
}

/// The threshold every member runs at by default, if they agree on one.
fn members_theta(members: &[MemberRun]) -> Result<f32> {
    let thetas = members
        .iter()
        .map(|m| default_theta(&m.dir, &m.cfg))
        .collect::<Result<Vec<f32>>>()?;
    if thetas.iter().all(|&t| t == thetas[0]) {
        return Ok(thetas[0]);
    }
    Err(Error::InvalidConfig(format!(
        "the runs run at different thresholds ({}: each run's --theta, or for a run \
         selected within a step budget the threshold its test.json names); choose the \
         ensemble's with --theta",
        members
            .iter()
            .zip(&thetas)
            .map(|(m, t)| format!("{} at {t}", m.dir.display()))
            .collect::<Vec<_>>()
            .join(", ")
    )))
}
