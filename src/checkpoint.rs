//! A training run's files, written atomically (temp file + rename), and their loading
//! with errors that name the file and the problem.
//!
//! A run directory holds:
//! - `config.json`: everything needed to rebuild the model and the task;
//! - `model.safetensors`: the parameters of the epoch with the best validation accuracy
//!   (model selection; with a step budget, the best within it), under PyTorch
//!   state-dict names;
//! - `checkpoint.safetensors`: parameters, Adam moments and the epoch, in one file so
//!   that a resumed run never mixes two epochs;
//! - `metrics.jsonl`: one JSON object per epoch; `test.json`: the final evaluation, of
//!   the selected epoch (`model_epoch`) at the threshold it was tested at (`theta`);
//! - `features.json` (audio tasks): the front end, the training split's feature
//!   statistics and the class names, which classifying new audio needs.
//!
//! Both safetensors files carry SHA-256 checksums of their tensors and metadata,
//! checked on every load ([`verify_checksums`]).
//!
//! An ensemble's directory (`rankcode ensemble`) holds only `config.json`,
//! `model.safetensors` and, for audio tasks, `features.json`.

use crate::data::audio::FeatureSpec;
use crate::data::audio_augment::AudioAugment;
use crate::data::frontend::FrontendConfig;
use crate::data::fsdd::SpeakerSplit;
use crate::data::task::{Task, TaskData, TaskShape};
use crate::engine::OptimizerState;
use crate::error::{Error, Result};
use crate::files::write_atomic;
use crate::model::{
    AdamConfig, LrSchedule, ModelConfig, ParamLayout, RcConfig, ThetaWarmup, TrainMode,
};
use crate::words::count;
use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub const CONFIG_FILE: &str = "config.json";
pub const MODEL_FILE: &str = "model.safetensors";
pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";
pub const METRICS_FILE: &str = "metrics.jsonl";
pub const TEST_FILE: &str = "test.json";
pub const FEATURES_FILE: &str = "features.json";
/// Where a run with `--lr-cycles` keeps the model of each cycle's last epoch, as run
/// directories of their own (`snapshots/epoch-8`, ...) that `eval` and `ensemble` read.
pub const SNAPSHOTS_DIR: &str = "snapshots";
/// In a snapshot directory: the metrics record of the epoch it kept.
pub const SNAPSHOT_FILE: &str = "snapshot.json";

/// Everything a run is built from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    pub task: Task,
    pub model: ModelConfig,
    pub rc: RcConfig,
    pub adam: AdamConfig,
    /// How the learning rate changes over the epochs.
    #[serde(default)]
    pub lr_schedule: LrSchedule,
    /// Cosine cycles of equal length the epochs are split into (`--lr-cycles`), each
    /// ending in a snapshot of the model ([`SNAPSHOTS_DIR`]); none: one cycle, no
    /// snapshots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr_cycles: Option<usize>,
    /// A training threshold that rises to `rc.theta` over the first epochs (none:
    /// `rc.theta` throughout). Validation and test always use `rc.theta`.
    #[serde(default)]
    pub theta_warmup: Option<ThetaWarmup>,
    /// Sequences per batch.
    pub batch: usize,
    pub epochs: usize,
    pub seed: u64,
    /// Steps between fired-mask readbacks (changes no result).
    pub readback_every: usize,
    /// Where file-based tasks read their data.
    pub data_dir: Option<PathBuf>,
    /// Train on the first N training sequences only (quick experiments, tests).
    #[serde(default)]
    pub train_limit: Option<usize>,
    /// Image tasks: move each training image by a random shift of up to this many
    /// pixels each way, drawn anew every epoch (validation and test are not moved).
    #[serde(default)]
    pub augment_shift: Option<usize>,
    /// Image tasks: drop each pixel of a training image (make it background) with this
    /// probability, drawn anew every epoch after the shift.
    #[serde(default)]
    pub augment_drop: Option<f64>,
    /// Model selection for a decision-time budget (none: the epoch most accurate on
    /// validation at `rc.theta`, tested at `rc.theta`).
    #[serde(default)]
    pub select_within_budget: Option<crate::run::StepBudget>,
    /// An ensemble made by `rankcode ensemble`: its member runs, in the order of their
    /// blocks of units (none: a trained run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ensemble_of: Option<Vec<crate::ensemble::EnsembleMember>>,
    /// The audio front end (used by the spoken-word tasks only).
    #[serde(default)]
    pub frontend: FrontendConfig,
    /// FSDD: the speakers of the test and validation splits, the others training
    /// (leave-one-speaker-out); none: the split by take, every speaker in every split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speaker_split: Option<SpeakerSplit>,
    /// Audio tasks: what is drawn for each training clip every epoch (none: the clips
    /// as they are).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub augment_audio: Option<AudioAugment>,
}

/// The settings of `config.json` (nested ones joined by dots) that every version of
/// rankcode has written (see the first sessions' file in the tests): a file without
/// one was damaged or edited, not written by an older version.
pub const ALWAYS_WRITTEN: &[&str] = &[
    "task",
    "model",
    "model.input_size",
    "model.hidden_size",
    "model.layers",
    "model.classes",
    "model.readout",
    "rc",
    "rc.theta",
    "rc.beta",
    "rc.mode",
    "adam",
    "adam.lr",
    "adam.beta1",
    "adam.beta2",
    "adam.eps",
    "batch",
    "epochs",
    "seed",
    "readback_every",
    "data_dir",
    "train_limit",
];

/// What a checkpoint restores.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// Epochs completed.
    pub epoch: usize,
    pub params: Vec<f32>,
    pub optimizer: OptimizerState,
}

/// The error for a path that holds no run.
fn not_a_run(dir: &Path) -> Error {
    let what = if !dir.exists() {
        "does not exist"
    } else if !dir.is_dir() {
        "is not a run directory (it is a file)"
    } else {
        "is not a rankcode run directory (it has no config.json)"
    };
    Error::file(dir, what)
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::file_caused(path, "cannot read", e))
}

impl RunConfig {
    /// The rank-coding settings that epoch `epoch` (1-based) trains with: the run's,
    /// at the warm-up's threshold while it lasts.
    pub fn training_rc(&self, epoch: usize) -> RcConfig {
        match &self.theta_warmup {
            Some(warmup) => warmup.training_rc(self.rc, epoch),
            None => self.rc,
        }
    }

    /// The learning rate of epoch `epoch` (1-based) under the run's schedule.
    pub fn lr(&self, epoch: usize) -> f32 {
        self.lr_schedule
            .lr(self.adam.lr, epoch, self.lr_cycle_epochs())
    }

    /// This run continued to `epochs` epochs, as a resume with `--epochs` makes it:
    /// a run at a constant rate takes any number; one with `--lr-cycles` takes whole
    /// cycles of its length, and its cycle count follows (so its past epochs keep their
    /// rates and snapshots); one annealed over its epochs only its own number. The
    /// problem, if `epochs` does not fit the schedule.
    pub fn continued_to(&self, epochs: usize) -> std::result::Result<RunConfig, String> {
        let cycle = self.lr_cycle_epochs();
        match (self.lr_schedule, self.lr_cycles) {
            (LrSchedule::Constant, _) => Ok(RunConfig {
                epochs,
                ..self.clone()
            }),
            (LrSchedule::Cosine, None) if epochs == self.epochs => Ok(self.clone()),
            (LrSchedule::Cosine, Some(_)) if epochs >= cycle && epochs.is_multiple_of(cycle) => {
                Ok(RunConfig {
                    epochs,
                    lr_cycles: Some(epochs / cycle),
                    ..self.clone()
                })
            }
            (LrSchedule::Cosine, None) => Err(format!(
                "it anneals its learning rate over {}; resume it with --epochs {}",
                count(self.epochs, "epoch"),
                self.epochs
            )),
            (LrSchedule::Cosine, Some(_)) => Err(format!(
                "it anneals its learning rate in cycles of {}; resume it with \
                 --epochs {}, or {} to add a cycle",
                count(cycle, "epoch"),
                self.epochs,
                self.epochs + cycle
            )),
        }
    }

    /// How a finished run takes more epochs (for the note that it has nothing left
    /// to train).
    pub fn how_to_extend(&self) -> String {
        let cycle = self.lr_cycle_epochs();
        match (self.lr_schedule, self.lr_cycles) {
            (LrSchedule::Constant, _) => "pass a larger --epochs to extend it".into(),
            (LrSchedule::Cosine, None) => format!(
                "it anneals its learning rate over {}, so it cannot be extended",
                count(self.epochs, "epoch")
            ),
            (LrSchedule::Cosine, Some(_)) => format!(
                "pass --epochs {} to add a cycle of {}",
                self.epochs + cycle,
                count(cycle, "epoch")
            ),
        }
    }

    /// The epochs of one learning-rate cycle: the run's, or a share of them with
    /// `--lr-cycles`.
    fn lr_cycle_epochs(&self) -> usize {
        (self.epochs / self.lr_cycles.unwrap_or(1).max(1)).max(1)
    }

    /// Whether epoch `epoch` ends one of the run's `--lr-cycles`, whose model is then
    /// kept as a snapshot (never without `--lr-cycles`).
    pub fn ends_lr_cycle(&self, epoch: usize) -> bool {
        self.lr_cycles.is_some() && epoch.is_multiple_of(self.lr_cycle_epochs())
    }

    /// The shape of the task's sequences under this run's front end.
    pub fn shape(&self) -> TaskShape {
        self.task.shape(&self.frontend)
    }

    /// Opens the run's data; `spec` is the feature description saved with the run,
    /// if there is one (see [`Task::open`]).
    pub fn open_data(&self, spec: Option<FeatureSpec>) -> Result<TaskData> {
        self.task.open(
            self.data_dir.as_deref(),
            &self.frontend,
            self.speaker_split.as_ref(),
            spec,
        )
    }

    /// Writes `config.json` into `dir`.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let json = serde_json::to_string_pretty(self).expect("config serialises");
        write_atomic(&dir.join(CONFIG_FILE), json.as_bytes())
    }

    /// Reads and validates `config.json` from `dir`.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(CONFIG_FILE);
        if !path.is_file() {
            return Err(not_a_run(dir));
        }
        Self::from_json(&path, &read(&path)?)
    }

    /// Parses and validates the bytes of a `config.json` as [`Self::load`] does;
    /// `path` names them in errors.
    pub fn from_json(path: &Path, bytes: &[u8]) -> Result<Self> {
        let cfg: RunConfig = serde_json::from_slice(bytes)
            .map_err(|e| Error::file_caused(path, "not a rankcode run configuration", e))?;
        cfg.validate()
            .map_err(|e| Error::file_caused(path, "", e))?;
        Ok(cfg)
    }

    /// The settings that this version writes to `config.json` but the one in `dir`
    /// lacks (nested ones joined by dots; a missing section counts once), each with the
    /// value it was loaded with: serde fills them in with defaults without a word.
    pub fn missing_settings(&self, dir: &Path) -> Result<Vec<(String, serde_json::Value)>> {
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
        let found: serde_json::Value = serde_json::from_slice(&read(&path)?)
            .map_err(|e| Error::file_caused(&path, "not valid JSON", e))?;
        let mut missing = Vec::new();
        walk("", &crate::run::config_json(self), &found, &mut missing);
        Ok(missing)
    }

    /// Checks every setting, and that the model fits the task.
    pub fn validate(&self) -> Result<()> {
        self.model.validate()?;
        self.rc.validate()?;
        self.adam.validate()?;
        if let Some(warmup) = &self.theta_warmup {
            warmup.validate()?;
            crate::error::ensure(self.rc.mode == TrainMode::Rc, || {
                "a theta warm-up applies to rank-coding training only (--mode rc)".into()
            })?;
            crate::error::ensure(warmup.start < self.rc.theta, || {
                format!(
                    "theta warm-up: the starting threshold {} must be below --theta {}",
                    warmup.start, self.rc.theta
                )
            })?;
        }
        crate::error::ensure(
            self.batch > 0 && self.batch <= crate::engine::schedule::MAX_ROWS,
            || {
                format!(
                    "batch size must be between 1 and {}",
                    crate::engine::schedule::MAX_ROWS
                )
            },
        )?;
        crate::error::ensure(self.epochs > 0, || "epochs must be at least 1".into())?;
        crate::error::ensure(self.readback_every > 0, || {
            "--readback-every must be at least 1".into()
        })?;
        crate::error::ensure(self.train_limit != Some(0), || {
            "--train-size must be at least 1".into()
        })?;
        if let Some(shift) = self.augment_shift {
            crate::error::ensure(self.task == Task::Mnist, || {
                "--augment-shift applies to image tasks only (--task mnist)".into()
            })?;
            crate::error::ensure(shift > 0, || {
                "--augment-shift must be at least 1 pixel (leave it out for no shifts)".into()
            })?;
        }
        if let Some(rate) = self.augment_drop {
            crate::error::ensure(self.task == Task::Mnist, || {
                "--augment-drop applies to image tasks only (--task mnist)".into()
            })?;
            crate::error::ensure(rate > 0.0 && rate < 1.0, || {
                format!("--augment-drop must be above 0 and below 1, not {rate}")
            })?;
        }
        if let Some(cycles) = self.lr_cycles {
            crate::error::ensure(self.lr_schedule == LrSchedule::Cosine, || {
                "--lr-cycles restarts a cosine schedule: it needs --lr-schedule cosine".into()
            })?;
            crate::error::ensure(cycles >= 1 && self.epochs.is_multiple_of(cycles), || {
                format!(
                    "--lr-cycles {cycles} must divide the run's {} into equal cycles",
                    count(self.epochs, "epoch")
                )
            })?;
        }
        if let Some(budget) = &self.select_within_budget {
            budget.validate()?;
        }
        if self.task.is_audio() {
            self.frontend.validate()?;
        }
        if let Some(augment) = &self.augment_audio {
            crate::error::ensure(self.task.is_audio(), || {
                "audio augmentation applies to the audio tasks only (fsdd, speech-commands, \
                 speech-commands-12)"
                    .into()
            })?;
            let shape = self.shape();
            augment.validate(shape.steps, shape.input)?;
        }
        if let Some(split) = &self.speaker_split {
            crate::error::ensure(self.task == Task::Fsdd, || {
                "a split by speaker applies to FSDD only (--task fsdd)".into()
            })?;
            crate::error::ensure(split.test != split.val, || {
                format!("the test and validation speakers are both {}", split.test)
            })?;
        }
        let shape = self.shape();
        if shape.input != self.model.input_size || shape.classes != self.model.classes {
            return Err(Error::ShapeMismatch(format!(
                "task {} has {} inputs and {} classes, the model {} and {}",
                self.task.name(),
                shape.input,
                shape.classes,
                self.model.input_size,
                self.model.classes
            )));
        }
        Ok(())
    }
}

/// Writes `features.json` into `dir`.
pub fn save_feature_spec(dir: &Path, spec: &FeatureSpec) -> Result<()> {
    let json = serde_json::to_string_pretty(spec).expect("feature spec serialises");
    write_atomic(&dir.join(FEATURES_FILE), json.as_bytes())
}

/// Reads `features.json` from the run in `dir`.
pub fn load_feature_spec(dir: &Path) -> Result<FeatureSpec> {
    let path = dir.join(FEATURES_FILE);
    if !dir.join(CONFIG_FILE).is_file() {
        return Err(not_a_run(dir));
    }
    if !path.is_file() {
        return Err(Error::file(
            dir,
            "has no features.json: it is not a run of an audio task",
        ));
    }
    feature_spec_from_json(&path, &read(&path)?)
}

/// Parses and checks the bytes of a `features.json` as [`load_feature_spec`] does;
/// `path` names them in errors.
pub fn feature_spec_from_json(path: &Path, bytes: &[u8]) -> Result<FeatureSpec> {
    let spec: FeatureSpec = serde_json::from_slice(bytes)
        .map_err(|e| Error::file_caused(path, "not a rankcode feature description", e))?;
    spec.frontend
        .validate()
        .map_err(|e| Error::file_caused(path, "", e))?;
    let n = spec.frontend.feature_size();
    let finite = spec.norm.mean.iter().all(|m| m.is_finite())
        && spec.norm.std.iter().all(|s| s.is_finite() && *s > 0.0);
    if spec.norm.mean.len() != n || spec.norm.std.len() != n || spec.classes.is_empty() || !finite {
        return Err(Error::file(
            path,
            format!(
                "its statistics are not {n} finite values (positive spreads), or it names no class"
            ),
        ));
    }
    Ok(spec)
}

fn f32_bytes(v: &[f32]) -> &[u8] {
    bytemuck::cast_slice(v)
}

/// The prefix of the metadata keys that hold checksums: `sha256:NAME` holds the
/// SHA-256 (hex) of the bytes of tensor `NAME`, and [`METADATA_CHECKSUM`] that of the
/// file's other metadata. Files written before checksums were stored have none.
const CHECKSUM_PREFIX: &str = "sha256:";
/// The metadata key of the checksum of the other metadata entries (the epoch and the
/// optimizer steps of a checkpoint), over [`metadata_bytes`].
const METADATA_CHECKSUM: &str = "sha256:__metadata__";

/// The SHA-256 of `bytes`, in hex.
fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The metadata entries that are not checksums, as the bytes [`METADATA_CHECKSUM`]
/// covers: `key=value` lines in key order.
fn metadata_bytes(meta: &HashMap<String, String>) -> Vec<u8> {
    let entries: std::collections::BTreeMap<&String, &String> = meta
        .iter()
        .filter(|(k, _)| !k.starts_with(CHECKSUM_PREFIX))
        .collect();
    entries
        .iter()
        .map(|(k, v)| format!("{k}={v}\n"))
        .collect::<String>()
        .into_bytes()
}

/// Serialises named f32 tensors (and string metadata) to safetensors bytes, with a
/// checksum of every tensor and of the metadata (string metadata only: the tensors'
/// names, types and layout stay those PyTorch loads).
fn to_safetensors(
    tensors: Vec<(String, Vec<usize>, &[f32])>,
    mut meta: HashMap<String, String>,
) -> Vec<u8> {
    meta.insert(METADATA_CHECKSUM.into(), sha256_hex(&metadata_bytes(&meta)));
    for (name, _, data) in &tensors {
        meta.insert(
            format!("{CHECKSUM_PREFIX}{name}"),
            sha256_hex(f32_bytes(data)),
        );
    }
    let views: Vec<(String, TensorView)> = tensors
        .into_iter()
        .map(|(name, shape, data)| {
            let view =
                TensorView::new(Dtype::F32, shape, f32_bytes(data)).expect("shape matches data");
            (name, view)
        })
        .collect();
    let bytes = safetensors::serialize(views, Some(meta)).expect("safetensors serialisation");
    with_sorted_header(&bytes)
}

/// Safetensors `bytes` with the keys of their header in sorted order: the serialiser
/// writes the metadata from a `HashMap`, in an order that changes from one call to
/// the next, and the same weights must make the same file, byte for byte. The header
/// is padded with spaces to a multiple of 8 bytes, as the format aligns its data.
fn with_sorted_header(bytes: &[u8]) -> Vec<u8> {
    let len = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
    // serde_json's maps keep their keys sorted (its `preserve_order` feature is off), so
    // reading the header and writing it again sorts it, nested maps included;
    // `checkpoint_round_trips_exactly` checks that the same contents make the same bytes.
    let header: serde_json::Value =
        serde_json::from_slice(&bytes[8..8 + len]).expect("the header just written reads");
    let mut json = serde_json::to_vec(&header).expect("the header serialises");
    json.resize(json.len().div_ceil(8) * 8, b' ');
    let mut out = Vec::with_capacity(8 + json.len() + bytes.len() - 8 - len);
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(&bytes[8 + len..]);
    out
}

/// The model's tensors under their PyTorch names.
fn named_params<'a>(
    layout: &ParamLayout,
    params: &'a [f32],
) -> Vec<(String, Vec<usize>, &'a [f32])> {
    layout
        .slots
        .iter()
        .map(|s| (s.name.clone(), s.shape.clone(), &params[s.range()]))
        .collect()
}

/// Reads tensor `name` of `shape` as f32 values.
fn read_tensor(st: &SafeTensors, path: &Path, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
    let t = st
        .tensor(name)
        .map_err(|_| Error::file(path, format!("has no tensor '{name}'")))?;
    if t.dtype() != Dtype::F32 {
        return Err(Error::file(
            path,
            format!("tensor '{name}' is {:?}, expected F32", t.dtype()),
        ));
    }
    if t.shape() != shape {
        return Err(Error::file(
            path,
            format!(
                "tensor '{name}' has shape {:?}, the model needs {shape:?}",
                t.shape()
            ),
        ));
    }
    Ok(t.data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

/// Parses the safetensors bytes read from `path` and checks them against the
/// checksums in their metadata, if they have any (files written before checksums were
/// stored have none, and are accepted as they are); returns the tensors and the
/// metadata.
fn parse_safetensors<'a>(
    path: &Path,
    bytes: &'a [u8],
) -> Result<(SafeTensors<'a>, HashMap<String, String>)> {
    let invalid = |e: safetensors::SafeTensorError| {
        Error::file_caused(path, "not a valid safetensors file", e)
    };
    let st = SafeTensors::deserialize(bytes).map_err(invalid)?;
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(invalid)?;
    let meta = header.metadata().clone().unwrap_or_default();
    verify_checksums(&st, &meta, path)?;
    Ok((st, meta))
}

/// Checks every tensor of `st`, and the metadata, against their checksums in `meta`,
/// when it holds any: a file with checksums must have one for every tensor and for
/// the metadata, and all must match.
fn verify_checksums(st: &SafeTensors, meta: &HashMap<String, String>, path: &Path) -> Result<()> {
    if !meta.keys().any(|k| k.starts_with(CHECKSUM_PREFIX)) {
        return Ok(());
    }
    let check = |what: &str, key: &str, bytes: &[u8]| -> Result<()> {
        match meta.get(key) {
            Some(sum) if *sum == sha256_hex(bytes) => Ok(()),
            Some(_) => Err(Error::file(
                path,
                format!("{what} is damaged: its bytes do not match their SHA-256 checksum"),
            )),
            None => Err(Error::file(
                path,
                format!("{what} has no checksum, although the file's other parts do"),
            )),
        }
    };
    check("the metadata", METADATA_CHECKSUM, &metadata_bytes(meta))?;
    let mut names: Vec<String> = st.names().into_iter().map(String::from).collect();
    names.sort();
    for name in names {
        let tensor = st
            .tensor(&name)
            .map_err(|e| Error::file_caused(path, format!("tensor '{name}'"), e))?;
        check(
            &format!("tensor '{name}'"),
            &format!("{CHECKSUM_PREFIX}{name}"),
            tensor.data(),
        )?;
    }
    Ok(())
}

/// Reads every parameter tensor of `model` from the safetensors bytes at `path`.
fn read_params(st: &SafeTensors, path: &Path, model: &ModelConfig) -> Result<Vec<f32>> {
    let layout = ParamLayout::new(model);
    let mut params = vec![0f32; layout.total];
    for slot in &layout.slots {
        params[slot.range()].copy_from_slice(&read_tensor(st, path, &slot.name, &slot.shape)?);
    }
    if params.iter().any(|v| !v.is_finite()) {
        return Err(Error::file(path, "holds NaN or infinite parameters"));
    }
    Ok(params)
}

/// Writes the parameters as `model.safetensors` (PyTorch-loadable) into `dir`.
pub fn save_model(dir: &Path, model: &ModelConfig, params: &[f32]) -> Result<()> {
    let bytes = to_safetensors(
        named_params(&ParamLayout::new(model), params),
        HashMap::new(),
    );
    write_atomic(&dir.join(MODEL_FILE), &bytes)
}

/// Reads `model.safetensors` from `dir`, checking names and shapes against `model`.
pub fn load_model(dir: &Path, model: &ModelConfig) -> Result<Vec<f32>> {
    let path = dir.join(MODEL_FILE);
    model_from_bytes(&path, &read(&path)?, model)
}

/// The parameters of `model` from the bytes of a `model.safetensors`, checked as
/// [`load_model`] checks them; `path` names them in errors.
pub fn model_from_bytes(path: &Path, bytes: &[u8], model: &ModelConfig) -> Result<Vec<f32>> {
    read_params(&parse_safetensors(path, bytes)?.0, path, model)
}

/// Writes the resumable checkpoint (parameters, Adam state, epoch) into `dir`.
pub fn save_checkpoint(dir: &Path, model: &ModelConfig, ck: &Checkpoint) -> Result<()> {
    let layout = ParamLayout::new(model);
    let mut tensors = named_params(&layout, &ck.params);
    tensors.push((
        "optimizer.adam_m".into(),
        vec![layout.total],
        &ck.optimizer.m,
    ));
    tensors.push((
        "optimizer.adam_v".into(),
        vec![layout.total],
        &ck.optimizer.v,
    ));
    let meta = HashMap::from([
        ("epoch".to_string(), ck.epoch.to_string()),
        ("adam_steps".to_string(), ck.optimizer.steps.to_string()),
    ]);
    write_atomic(&dir.join(CHECKPOINT_FILE), &to_safetensors(tensors, meta))
}

/// Reads the resumable checkpoint from `dir`.
pub fn load_checkpoint(dir: &Path, model: &ModelConfig) -> Result<Checkpoint> {
    let path = dir.join(CHECKPOINT_FILE);
    checkpoint_from_bytes(&path, &read(&path)?, model)
}

/// The checkpoint of `model` from the bytes of a `checkpoint.safetensors`, checked as
/// [`load_checkpoint`] checks them; `path` names them in errors.
pub fn checkpoint_from_bytes(path: &Path, bytes: &[u8], model: &ModelConfig) -> Result<Checkpoint> {
    let (st, meta) = parse_safetensors(path, bytes)?;
    let params = read_params(&st, path, model)?;
    let total = params.len();
    let m = read_tensor(&st, path, "optimizer.adam_m", &[total])?;
    let v = read_tensor(&st, path, "optimizer.adam_v", &[total])?;
    let number = |key: &str| -> Result<u32> {
        meta.get(key).and_then(|v| v.parse().ok()).ok_or_else(|| {
            Error::file(
                path,
                format!("metadata '{key}' is missing or not a 32-bit number"),
            )
        })
    };
    Ok(Checkpoint {
        epoch: number("epoch")? as usize,
        params,
        optimizer: OptimizerState {
            steps: number("adam_steps")?,
            m,
            v,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::test_dir;
    use crate::model::{Readout, init_params};

    fn model(hidden: usize) -> ModelConfig {
        ModelConfig {
            input_size: 2,
            hidden_size: hidden,
            layers: 2,
            classes: 3,
            readout: Readout::Sigmoid,
        }
    }

    #[test]
    fn checkpoint_round_trips_exactly() {
        let dir = test_dir("ck-roundtrip");
        let m = model(5);
        let params = init_params(&m, 3);
        let n = params.len();
        let ck = Checkpoint {
            epoch: 7,
            params: params.clone(),
            optimizer: OptimizerState {
                steps: 42,
                m: vec![0.5; n],
                v: vec![0.25; n],
            },
        };
        save_checkpoint(&dir, &m, &ck).unwrap();
        assert_eq!(load_checkpoint(&dir, &m).unwrap(), ck);
        save_model(&dir, &m, &params).unwrap();
        assert_eq!(load_model(&dir, &m).unwrap(), params);
        // The same contents make the same file, byte for byte (metadata included).
        let bytes = |file: &str| std::fs::read(dir.join(file)).unwrap();
        let (model_bytes, ck_bytes) = (bytes(MODEL_FILE), bytes(CHECKPOINT_FILE));
        save_checkpoint(&dir, &m, &ck).unwrap();
        save_model(&dir, &m, &params).unwrap();
        assert!(bytes(MODEL_FILE) == model_bytes && bytes(CHECKPOINT_FILE) == ck_bytes);
        let names = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect::<Vec<_>>();
        assert!(
            names.iter().all(|n| !n.to_string_lossy().ends_with(".tmp")),
            "{names:?}"
        );
    }

    #[test]
    fn bad_files_get_errors_that_name_them() {
        let dir = test_dir("ck-bad");
        let m = model(5);
        save_model(&dir, &m, &init_params(&m, 1)).unwrap();
        // Another shape.
        let err = load_model(&dir, &model(6)).unwrap_err().to_string();
        assert!(err.contains(MODEL_FILE) && err.contains("shape"), "{err}");
        // Truncated.
        let path = dir.join(MODEL_FILE);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        let err = load_model(&dir, &m).unwrap_err().to_string();
        assert!(
            err.contains(MODEL_FILE) && err.contains("safetensors"),
            "{err}"
        );
        // Missing.
        let err = load_checkpoint(&dir, &m).unwrap_err().to_string();
        assert!(
            err.contains(CHECKPOINT_FILE) && err.contains("cannot read"),
            "{err}"
        );
        // Not a config.
        std::fs::write(dir.join(CONFIG_FILE), b"{\"task\": 3}").unwrap();
        let err = RunConfig::load(&dir).unwrap_err().to_string();
        assert!(err.contains(CONFIG_FILE), "{err}");
    }

    /// Rewrites the safetensors file at `path` with the same tensors and the metadata
    /// that `edit` makes of its own.
    fn rewrite_metadata(path: &Path, edit: impl FnOnce(&mut HashMap<String, String>)) {
        let bytes = std::fs::read(path).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
        let mut meta = header.metadata().clone().unwrap_or_default();
        edit(&mut meta);
        std::fs::write(
            path,
            safetensors::serialize(st.tensors(), Some(meta)).unwrap(),
        )
        .unwrap();
    }

    /// Flips one bit in the data of tensor `name` of the safetensors file at `path`.
    fn flip_bit(path: &Path, name: &str) {
        let mut bytes = std::fs::read(path).unwrap();
        let (header_len, header) = SafeTensors::read_metadata(&bytes).unwrap();
        let at = 8 + header_len + header.info(name).unwrap().data_offsets.0 + 1;
        bytes[at] ^= 0x10;
        std::fs::write(path, bytes).unwrap();
    }

    #[test]
    fn damaged_tensors_and_metadata_are_refused_and_files_without_checksums_accepted() {
        let dir = test_dir("ck-checksums");
        let m = model(5);
        let params = init_params(&m, 3);
        let n = params.len();
        let ck = Checkpoint {
            epoch: 2,
            params: params.clone(),
            optimizer: OptimizerState {
                steps: 8,
                m: vec![0.5; n],
                v: vec![0.25; n],
            },
        };
        let write = || {
            save_checkpoint(&dir, &m, &ck).unwrap();
            save_model(&dir, &m, &params).unwrap();
        };
        let model_path = dir.join(MODEL_FILE);
        let ck_path = dir.join(CHECKPOINT_FILE);
        // One flipped bit in a tensor's data.
        write();
        let tensor = ParamLayout::new(&m).slots[1].name.clone();
        flip_bit(&model_path, &tensor);
        let err = load_model(&dir, &m).unwrap_err().to_string();
        assert!(
            err.contains(MODEL_FILE) && err.contains(&format!("tensor '{tensor}' is damaged")),
            "{err}"
        );
        flip_bit(&ck_path, "optimizer.adam_v");
        let err = load_checkpoint(&dir, &m).unwrap_err().to_string();
        assert!(
            err.contains(CHECKPOINT_FILE) && err.contains("tensor 'optimizer.adam_v' is damaged"),
            "{err}"
        );
        // An edited epoch.
        write();
        rewrite_metadata(&ck_path, |meta| {
            meta.insert("epoch".into(), "0".into());
        });
        let err = load_checkpoint(&dir, &m).unwrap_err().to_string();
        assert!(
            err.contains(CHECKPOINT_FILE) && err.contains("the metadata is damaged"),
            "{err}"
        );
        // A checksum missing from a file that has others.
        write();
        rewrite_metadata(&model_path, |meta| {
            meta.remove(&format!("sha256:{tensor}"));
        });
        let err = load_model(&dir, &m).unwrap_err().to_string();
        assert!(
            err.contains(&format!("tensor '{tensor}' has no checksum")),
            "{err}"
        );
        // Files from before checksums: accepted as they are.
        write();
        for path in [&model_path, &ck_path] {
            rewrite_metadata(path, |meta| meta.retain(|k, _| !k.starts_with("sha256:")));
        }
        assert_eq!(load_checkpoint(&dir, &m).unwrap(), ck);
        assert_eq!(load_model(&dir, &m).unwrap(), params);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A config.json as the first sessions wrote it: no front end, schedule, clip or
    /// warm-up.
    const OLD_CONFIG: &str = r#"{"task": "seq-spotting",
        "model": {"input_size": 1, "hidden_size": 64, "layers": 1, "classes": 2, "readout": "sigmoid"},
        "rc": {"theta": 0.95, "beta": 0.0, "mode": "rc"},
        "adam": {"lr": 0.001, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8},
        "batch": 128, "epochs": 40, "seed": 1, "readback_every": 1,
        "data_dir": null, "train_limit": null}"#;

    #[test]
    fn configs_from_before_the_training_aids_load_with_their_defaults() {
        let dir = test_dir("ck-old-config");
        std::fs::write(dir.join(CONFIG_FILE), OLD_CONFIG).unwrap();
        let cfg = RunConfig::load(&dir).unwrap();
        assert_eq!(cfg.lr_schedule, LrSchedule::Constant);
        assert_eq!(cfg.theta_warmup, None);
        assert_eq!(cfg.adam.max_grad_norm, None);
        assert_eq!(cfg.adam.weight_decay, 0.0);
        assert_eq!(cfg.augment_shift, None);
        assert_eq!(cfg.augment_drop, None);
        assert_eq!(cfg.select_within_budget, None);
        assert_eq!(cfg.frontend, FrontendConfig::default());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_theta_warmup_sets_the_training_threshold_of_rank_coding_runs_only() {
        let plain: RunConfig = serde_json::from_str(OLD_CONFIG).unwrap();
        assert_eq!(plain.training_rc(1), plain.rc);
        let warm = RunConfig {
            theta_warmup: Some(ThetaWarmup {
                start: 0.35,
                epochs: 3,
            }),
            ..plain.clone()
        };
        warm.validate().unwrap();
        assert_eq!(warm.training_rc(1).theta, 0.35);
        assert_eq!(warm.training_rc(4), plain.rc);
        let eos = RunConfig {
            rc: RcConfig {
                mode: TrainMode::Eos,
                ..warm.rc
            },
            ..warm
        };
        let err = eos.validate().unwrap_err().to_string();
        assert!(err.contains("rank-coding training only"), "{err}");
        let falling = RunConfig {
            theta_warmup: Some(ThetaWarmup {
                start: 0.97,
                epochs: 3,
            }),
            ..plain
        };
        let err = falling.validate().unwrap_err().to_string();
        assert!(err.contains("0.97 must be below --theta 0.95"), "{err}");
    }

    #[test]
    fn lr_cycles_need_a_cosine_schedule_split_the_epochs_evenly_and_extend_by_cycles() {
        let constant: RunConfig = serde_json::from_str(OLD_CONFIG).unwrap();
        assert_eq!(constant.lr_cycles, None);
        let cycled = RunConfig {
            lr_schedule: LrSchedule::Cosine,
            epochs: 6,
            lr_cycles: Some(3),
            ..constant.clone()
        };
        cycled.validate().unwrap();
        let ends: Vec<usize> = (1..=6).filter(|&e| cycled.ends_lr_cycle(e)).collect();
        assert_eq!(ends, [2, 4, 6]);
        assert_eq!(cycled.lr(3), cycled.adam.lr);
        assert!(!(1..=6).any(|e| constant.ends_lr_cycle(e)));
        // A cycled run continues by whole cycles; an annealed one only to its end.
        let two_more = cycled.continued_to(10).unwrap();
        assert_eq!((two_more.epochs, two_more.lr_cycles), (10, Some(5)));
        assert!((1..=6).all(|e| two_more.lr(e) == cycled.lr(e)));
        two_more.validate().unwrap();
        assert_eq!(cycled.continued_to(6).unwrap(), cycled);
        for epochs in [0, 1, 7] {
            let err = cycled.continued_to(epochs).unwrap_err();
            assert!(
                err.contains("cycles of 2 epochs") && err.contains("8 to add"),
                "{err}"
            );
        }
        assert_eq!(
            cycled.how_to_extend(),
            "pass --epochs 8 to add a cycle of 2 epochs"
        );
        let annealed = RunConfig {
            lr_cycles: None,
            ..cycled.clone()
        };
        assert_eq!(annealed.continued_to(6).unwrap(), annealed);
        let err = annealed.continued_to(8).unwrap_err();
        assert!(
            err.contains("over 6 epochs; resume it with --epochs 6"),
            "{err}"
        );
        assert!(annealed.how_to_extend().contains("cannot be extended"));
        assert_eq!(constant.continued_to(9).unwrap().epochs, 9);
        for (bad, problem) in [
            (
                RunConfig {
                    lr_cycles: Some(4),
                    ..cycled.clone()
                },
                "divide the run's 6 epochs",
            ),
            (
                RunConfig {
                    lr_cycles: Some(0),
                    ..cycled.clone()
                },
                "divide the run's 6 epochs",
            ),
            (
                RunConfig {
                    lr_schedule: LrSchedule::Constant,
                    ..cycled
                },
                "--lr-schedule cosine",
            ),
        ] {
            let err = bad.validate().unwrap_err().to_string();
            assert!(err.contains(problem), "{err}");
        }
    }

    /// `toy` made a valid MNIST run.
    fn mnist_config(toy: &RunConfig) -> RunConfig {
        let mnist_shape = Task::Mnist.shape(&FrontendConfig::default());
        RunConfig {
            task: Task::Mnist,
            model: ModelConfig {
                input_size: mnist_shape.input,
                classes: mnist_shape.classes,
                ..toy.model
            },
            ..toy.clone()
        }
    }

    #[test]
    fn image_shifts_apply_to_mnist_only_and_are_at_least_a_pixel() {
        let toy: RunConfig = serde_json::from_str(OLD_CONFIG).unwrap();
        let mnist = RunConfig {
            augment_shift: Some(2),
            ..mnist_config(&toy)
        };
        mnist.validate().unwrap();
        let none = RunConfig {
            augment_shift: Some(0),
            ..mnist
        };
        let err = none.validate().unwrap_err().to_string();
        assert!(err.contains("at least 1 pixel"), "{err}");
        let shifted_toy = RunConfig {
            augment_shift: Some(2),
            ..toy
        };
        let err = shifted_toy.validate().unwrap_err().to_string();
        assert!(err.contains("--task mnist"), "{err}");
    }

    #[test]
    fn pixel_drops_apply_to_mnist_only_at_a_rate_between_0_and_1() {
        let toy: RunConfig = serde_json::from_str(OLD_CONFIG).unwrap();
        let mnist = RunConfig {
            augment_drop: Some(0.2),
            ..mnist_config(&toy)
        };
        mnist.validate().unwrap();
        for rate in [0.0, 1.0, f64::NAN] {
            let bad = RunConfig {
                augment_drop: Some(rate),
                ..mnist.clone()
            };
            let err = bad.validate().unwrap_err().to_string();
            assert!(err.contains("above 0 and below 1"), "{err}");
        }
        let dropped_toy = RunConfig {
            augment_drop: Some(0.2),
            ..toy
        };
        let err = dropped_toy.validate().unwrap_err().to_string();
        assert!(err.contains("--task mnist"), "{err}");
    }
}

/// The deterministic fuzz smoke tests (the short, seeded versions of `fuzz/`'s
/// `run_config` and `safetensors` targets that run with the test suite).
#[cfg(test)]
mod fuzz_smoke {
    use super::*;
    use crate::mutate::no_panics;

    /// The `config.json` of a tiny run (seq-spotting, 3 hidden units, 1 epoch).
    const CONFIG: &[u8] = include_bytes!("../fuzz/seeds/run_config/config.json");

    /// A `features.json` of 13 MFCCs and 10 classes, made by hand.
    const FEATURES: &[u8] = include_bytes!("../fuzz/seeds/run_config/features.json");

    #[test]
    fn mutated_configs_are_read_or_refused_without_panicking() {
        let (config, features) = (Path::new("config.json"), Path::new("features.json"));
        assert!(feature_spec_from_json(features, FEATURES).is_ok());
        let ok = no_panics("config.json", &[CONFIG, FEATURES], 28, 5000, |b| {
            let spec = feature_spec_from_json(features, b).is_ok();
            let Ok(cfg) = RunConfig::from_json(config, b) else {
                return spec;
            };
            let _ = (cfg.lr(cfg.epochs), cfg.how_to_extend());
            let _ = cfg.continued_to(cfg.epochs.saturating_add(1));
            true
        });
        assert!(ok > 50, "{ok} inputs read");
    }

    #[test]
    fn mutated_safetensors_are_read_or_refused_without_panicking() {
        let model = RunConfig::from_json(Path::new("config.json"), CONFIG)
            .unwrap()
            .model;
        let seeds: [&[u8]; 2] = [
            include_bytes!("../fuzz/seeds/safetensors/model.safetensors"),
            include_bytes!("../fuzz/seeds/safetensors/checkpoint.safetensors"),
        ];
        let path = Path::new("checkpoint.safetensors");
        let ok = no_panics("safetensors", &seeds, 28, 5000, |b| {
            let params = model_from_bytes(path, b, &model).is_ok();
            checkpoint_from_bytes(path, b, &model).is_ok() || params
        });
        assert!(ok >= 2, "{ok} inputs read");
    }
}
