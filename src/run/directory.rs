//! The run directory: the files a run keeps in its folder (docs/runs.md, 'The run
//! directory'), each written atomically (temp file + rename). A run directory holds:
//!
//! - `config.json`: everything needed to rebuild the model and the task
//!   ([`super::config`]);
//! - `model.safetensors`: the parameters of the epoch with the best validation accuracy
//!   (model selection, [`super::selection`]; with a step budget, the best within it),
//!   under PyTorch state-dict names;
//! - `checkpoint.safetensors`: parameters, Adam moments and the epoch, in one file so
//!   that a resumed run never mixes two epochs (both safetensors files:
//!   [`crate::checkpoint`]);
//! - `metrics.jsonl`: one JSON object per epoch ([`super::metrics`]); `test.json`: the
//!   final evaluation, of the selected epoch (`model_epoch`) at the threshold it was
//!   tested at (`theta`);
//! - `features.json` (audio tasks): the front end, the training split's feature
//!   statistics and the class names, which classifying new audio needs
//!   ([`super::features`]);
//! - `snapshots/` (runs with `--lr-cycles`): the model of each cycle's last epoch
//!   ([`super::snapshots`]).
//!
//! An ensemble's directory (`rankcode ensemble`, [`super::ensemble`]) holds only
//! `config.json`, `model.safetensors` and, for audio tasks, `features.json`.

pub use crate::checkpoint::{CHECKPOINT_FILE, MODEL_FILE};
use crate::error::Error;
use std::path::Path;

pub const CONFIG_FILE: &str = "config.json";
pub const METRICS_FILE: &str = "metrics.jsonl";
pub const TEST_FILE: &str = "test.json";
pub const FEATURES_FILE: &str = "features.json";

/// Where a run with `--lr-cycles` keeps the model of each cycle's last epoch, as run
/// directories of their own (`snapshots/epoch-8`, ...) that `eval` and `ensemble` read.
pub const SNAPSHOTS_DIR: &str = "snapshots";

/// In a snapshot directory: the metrics record of the epoch it kept.
pub const SNAPSHOT_FILE: &str = "snapshot.json";

/// The error for a path that holds no run.
pub(super) fn not_a_run(dir: &Path) -> Error {
    let what = if !dir.exists() {
        "does not exist"
    } else if !dir.is_dir() {
        "is not a run directory (it is a file)"
    } else {
        "is not a rankcode run directory (it has no config.json)"
    };
    Error::file(dir, what)
}
