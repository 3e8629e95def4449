//! Resuming (docs/runs.md, 'Resuming'): what `--resume` continues (the settings saved
//! in the run directory, to more epochs if asked), the checks that the directory's
//! files agree with each other and with the settings given, and the refusal of a
//! folder that holds a run to start anew in, or one that cannot be trained.

use super::config::{ALWAYS_WRITTEN, RunConfig, config_json};
use super::directory::{CHECKPOINT_FILE, CONFIG_FILE, METRICS_FILE, SNAPSHOT_FILE};
use super::metrics::read_metrics_lines;
use crate::checkpoint::{self, Checkpoint};
use crate::error::{Error, Result};
use crate::words::count;
use std::path::Path;

/// Refuses to train what cannot be trained: an ensemble (`cfg` is one, as a resumed
/// run's settings are those saved with it, or `out` holds one), or a snapshot that a
/// run with `--lr-cycles` kept (training it would overwrite its model).
pub fn refuse_untrainable(cfg: &RunConfig, out: &Path) -> Result<()> {
    let holds_ensemble = out.join(CONFIG_FILE).exists()
        && RunConfig::load(out).is_ok_and(|saved| saved.ensemble_of.is_some());
    if cfg.ensemble_of.is_some() || holds_ensemble {
        return Err(Error::file(
            out,
            "holds an ensemble made by `rankcode ensemble`, which cannot be trained; \
             train its member runs instead",
        ));
    }
    if out.join(SNAPSHOT_FILE).exists() {
        return Err(Error::file(
            out,
            "holds a snapshot that a run with --lr-cycles kept, which cannot be trained; \
             resume the run it belongs to instead",
        ));
    }
    Ok(())
}

/// Refuses to start a new run in `out` when it holds one.
pub(super) fn refuse_existing_run(out: &Path) -> Result<()> {
    if out.join(CONFIG_FILE).exists() {
        return Err(Error::file(
            out,
            "already holds a run; pass --resume to continue it, or choose another --out",
        ));
    }
    Ok(())
}

/// The settings saved with the run in `out` that `--resume` continues, to `epochs`
/// epochs if given ([`RunConfig::continued_to`]), or the error that `out` holds no
/// run, holds one that cannot be trained, has a `config.json` without a setting that
/// every version writes ([`ALWAYS_WRITTEN`]), has trained more epochs, or
/// has a schedule that cannot take them.
pub fn saved_run_to_resume(out: &Path, epochs: Option<usize>) -> Result<RunConfig> {
    let config_path = out.join(CONFIG_FILE);
    if !config_path.exists() {
        return Err(Error::file(
            out,
            "holds no run to resume (no config.json); drop --resume to start one",
        ));
    }
    let saved = RunConfig::load(out)?;
    refuse_untrainable(&saved, out)?;
    let damaged: Vec<String> = missing_settings(&saved, out)?
        .into_iter()
        .map(|(key, _)| key)
        .filter(|key| ALWAYS_WRITTEN.contains(&key.as_str()))
        .collect();
    if !damaged.is_empty() {
        return Err(Error::file(
            config_path,
            format!(
                "lacks {}, which every version of rankcode writes: the file was damaged or \
                 edited, and resuming would use defaults the run may not have had; restore \
                 them (null for none)",
                damaged.join(", ")
            ),
        ));
    }
    let Some(epochs) = epochs else {
        return Ok(saved);
    };
    let cannot = |why: String| {
        Error::file(
            &config_path,
            format!("the run there cannot take --epochs {epochs}: {why}"),
        )
    };
    // A last line cut short is no epoch trained to its end.
    let trained = read_metrics_lines(&out.join(METRICS_FILE))?
        .0
        .last()
        .map_or(0, |r| r.epoch);
    if epochs < trained {
        return Err(cannot(format!(
            "it has trained {} already (see metrics.jsonl)",
            count(trained, "epoch")
        )));
    }
    saved.continued_to(epochs).map_err(cannot)
}

/// Prepares `out` for a new run (`train_run` has refused one that holds a run) or
/// loads what a resumed run continues from.
pub(super) fn open_run_dir(
    cfg: &RunConfig,
    out: &Path,
    resume: bool,
) -> Result<Option<Checkpoint>> {
    let cannot = |what: &str, e: std::io::Error| Error::file_caused(out, what, e);
    let config_path = out.join(CONFIG_FILE);
    if !resume {
        std::fs::create_dir_all(out)
            .map_err(|e| cannot("cannot create the output directory", e))?;
        cfg.save(out)?;
        return Ok(None);
    }
    let saved = saved_run_to_resume(out, Some(cfg.epochs))?;
    // The cadence changes no result and the data may have moved: both may differ.
    let comparable = |c: &RunConfig| RunConfig {
        readback_every: 1,
        data_dir: None,
        ..c.clone()
    };
    let differences = setting_differences(&comparable(&saved), &comparable(cfg));
    if !differences.is_empty() {
        return Err(Error::file(
            config_path,
            format!(
                "the run there was made with other settings ({}); resume it with the same settings",
                differences.join("; ")
            ),
        ));
    }
    let removed = crate::files::remove_stale_temporaries(out)?;
    if removed > 0 {
        log::info!(
            "removed {removed} temporary files that an interrupted write left in {}",
            out.display()
        );
    }
    // Settings that versions before them did not write (saved_run_to_resume refused
    // the others): the run goes on with their defaults, which config.json then states.
    let defaulted = missing_settings(&saved, out)?;
    for (key, value) in &defaulted {
        log::warn!(
            "{}: has no {key} (written by an older rankcode); the run goes on with {value}",
            config_path.display()
        );
    }
    // More epochs, another cadence or a moved folder: the run is saved as it goes on.
    if RunConfig::load(out)? != *cfg || !defaulted.is_empty() {
        cfg.save(out)?;
    }
    if out.join(CHECKPOINT_FILE).exists() {
        Ok(Some(checkpoint::load_checkpoint(out, &cfg.model)?))
    } else {
        Ok(None)
    }
}

/// The settings that this version writes to `config.json` but the one in `dir`
/// lacks (nested ones joined by dots; a missing section counts once), each with the
/// value it was loaded with: serde fills them in with defaults without a word.
fn missing_settings(cfg: &RunConfig, dir: &Path) -> Result<Vec<(String, serde_json::Value)>> {
    /// Adds the keys of `written` absent from `found`, under `name`, to `out`.
    fn walk(
        name: &str,
        written: &serde_json::Value,
        found: &serde_json::Value,
        out: &mut Vec<(String, serde_json::Value)>,
    ) {
        let serde_json::Value::Object(keys) = written else {
            return;
        };
        for (key, value) in keys {
            let nested = match name {
                "" => key.clone(),
                _ => format!("{name}.{key}"),
            };
            match found.get(key) {
                Some(inner) => walk(&nested, value, inner, out),
                None => out.push((nested, value.clone())),
            }
        }
    }
    let path = dir.join(CONFIG_FILE);
    let found: serde_json::Value = serde_json::from_slice(&crate::files::read(&path)?)
        .map_err(|e| Error::file_caused(&path, "not valid JSON", e))?;
    let mut missing = Vec::new();
    walk("", &config_json(cfg), &found, &mut missing);
    Ok(missing)
}

/// The settings in which `given` differs from `saved`, as `name: saved value, given
/// value` with the names of `config.json` (nested ones joined by dots).
fn setting_differences(saved: &RunConfig, given: &RunConfig) -> Vec<String> {
    fn walk(
        name: &str,
        saved: &serde_json::Value,
        given: &serde_json::Value,
        out: &mut Vec<String>,
    ) {
        match (saved, given) {
            (serde_json::Value::Object(s), serde_json::Value::Object(g)) => {
                let keys: std::collections::BTreeSet<&String> = s.keys().chain(g.keys()).collect();
                let null = serde_json::Value::Null;
                for key in keys {
                    let nested = match name {
                        "" => key.clone(),
                        _ => format!("{name}.{key}"),
                    };
                    walk(
                        &nested,
                        s.get(key).unwrap_or(&null),
                        g.get(key).unwrap_or(&null),
                        out,
                    );
                }
            }
            _ if saved != given => out.push(format!("{name}: {saved} in the run, {given} now")),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk("", &config_json(saved), &config_json(given), &mut out);
    out
}

/// Checks that the Adam steps of checkpoint `ck` in `out` are those of its epochs of
/// `batches` training batches each (one step a batch): a checkpoint whose epoch was
/// edited, or a run whose training data changed since, is refused.
#[doc(hidden)]
pub fn check_checkpoint_steps(out: &Path, ck: &Checkpoint, batches: usize) -> Result<()> {
    let expected = ck.epoch * batches;
    if ck.optimizer.steps as usize == expected {
        return Ok(());
    }
    Err(Error::file(
        out.join(CHECKPOINT_FILE),
        format!(
            "says it was written after epoch {}, but its Adam state has taken {} steps, not \
             the {expected} of {} of {batches} batches each: its epoch was edited, or the \
             training data is not what the run trained on",
            ck.epoch,
            ck.optimizer.steps,
            count(ck.epoch, "epoch"),
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_has_taken_one_adam_step_a_batch_of_its_epochs() {
        let ck = |epoch: usize, steps: u32| Checkpoint {
            epoch,
            params: Vec::new(),
            optimizer: crate::engine::OptimizerState {
                steps,
                m: Vec::new(),
                v: Vec::new(),
            },
        };
        let dir = Path::new("run");
        check_checkpoint_steps(dir, &ck(3, 12), 4).unwrap();
        let err = check_checkpoint_steps(dir, &ck(2, 12), 4)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("checkpoint.safetensors: says it was written after epoch 2, but its Adam state has taken 12 steps, not the 8 of 2 epochs of 4 batches each"),
            "{err}"
        );
    }
}
