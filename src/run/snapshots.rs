//! Snapshots (docs/runs.md, 'Learning-rate cycles and snapshots'): the models that a
//! run with `--lr-cycles` keeps at the end of each cycle, each a run directory of its
//! own under the run's `snapshots/`, which `eval` and `ensemble` read like any run.

use super::config::RunConfig;
use super::directory::{FEATURES_FILE, SNAPSHOT_FILE, SNAPSHOTS_DIR};
use super::metrics::EpochRecord;
use crate::checkpoint;
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// Keeps the model of the epoch of `record`, the last of an `--lr-cycles` cycle, as a
/// run directory of its own under the run's [`SNAPSHOTS_DIR`]: the run's
/// settings and these weights, which `eval` and `ensemble` read like any run, and the
/// epoch's metrics record as [`SNAPSHOT_FILE`].
///
/// The snapshot is written whole into a hidden folder beside it, then renamed into
/// place, so that a crash never leaves a part of one that reads as a run.
pub(super) fn save_snapshot(
    cfg: &RunConfig,
    out: &Path,
    record: &EpochRecord,
    params: &[f32],
) -> Result<()> {
    let dir = snapshot_dir(out, record.epoch);
    let partial = dir.with_file_name(format!(".epoch-{}.partial", record.epoch));
    let io = |path: &Path, what: &str, e: std::io::Error| {
        Error::file_caused(path, format!("cannot {what}"), e)
    };
    if partial.exists() {
        std::fs::remove_dir_all(&partial).map_err(|e| io(&partial, "remove", e))?;
    }
    std::fs::create_dir_all(&partial).map_err(|e| io(&partial, "create", e))?;
    cfg.save(&partial)?;
    checkpoint::save_model(&partial, &cfg.model, params)?;
    // An audio run's feature statistics, which its model reads its input with.
    let features = out.join(FEATURES_FILE);
    if features.is_file() {
        std::fs::copy(&features, partial.join(FEATURES_FILE))
            .map_err(|e| io(&features, "copy", e))?;
    }
    let json = serde_json::to_string_pretty(record).expect("record serialises");
    crate::files::write_atomic(&partial.join(SNAPSHOT_FILE), json.as_bytes())?;
    // A snapshot of this epoch already there is one a resumed run wrote before a crash.
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| io(&dir, "replace", e))?;
    }
    std::fs::rename(&partial, &dir).map_err(|e| io(&dir, "create", e))?;
    log::info!(
        "epoch {} ends a learning-rate cycle: model kept in {}",
        record.epoch,
        dir.display()
    );
    Ok(())
}

/// The directory of the snapshot a run with `--lr-cycles` keeps at `epoch`.
pub fn snapshot_dir(out: &Path, epoch: usize) -> PathBuf {
    out.join(SNAPSHOTS_DIR).join(format!("epoch-{epoch}"))
}
