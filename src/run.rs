//! A training run end to end: builds the engine for a [`RunConfig`], trains epoch by
//! epoch with a validation pass after each, checkpoints atomically after every
//! epoch, resumes from the last checkpoint, and evaluates the test split at the end.

use crate::checkpoint::{self, Checkpoint, RunConfig};
use crate::data::Dataset;
use crate::data::audio_augment::AudioAugment;
use crate::data::task::Split;
use crate::engine::{BatchReport, Capacity, Engine, EngineConfig};
use crate::error::{Error, Result};
use crate::gpu::GpuContext;
use crate::gpu::profile::ProfiledWork;
use crate::model::ensemble::recurrent_blocks_hold;
use crate::model::{RcConfig, TrainMode, init_params};
use crate::rng::Rng;
use crate::train::{self, EvalReport, SweepPoint};
use crate::words::count;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::Arc;

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub val_accuracy: f64,
    pub val_mean_decision_step: f64,
    /// The learning rate of this epoch (see `--lr-schedule`); absent from the lines
    /// of runs made before rates were recorded (they ran at a constant `--lr`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr: Option<f64>,
    /// The threshold this epoch trained with, where a theta warm-up set it (validation
    /// always uses the run's theta).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_theta: Option<f32>,
    /// With a step budget (`--select-max-decision-step`): the most accurate threshold
    /// of the validation sweep that decides within the budget (absent when none does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_within_budget: Option<SweepPoint>,
    /// Training steps computed this epoch (sum of t* + 1 over sequences).
    pub steps_processed: usize,
    /// Training wall time of this epoch (validation excluded).
    pub wall_s: f64,
}

/// Callbacks of a run, for progress display and for stopping early.
pub trait RunObserver {
    /// After every training batch.
    fn on_batch(&mut self, _epoch: usize, _batch: usize, _batches: usize, _report: &BatchReport) {}
    /// After every epoch, once its checkpoint is written; `Break` ends the run there
    /// (as a crash would, but cleanly).
    fn on_epoch(&mut self, _record: &EpochRecord) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
    /// Whether to time every dispatch of the run (timestamp queries; the run fails at
    /// the start on an adapter without them) and report it with `on_kernel_profile`.
    fn profile_kernels(&self) -> bool {
        false
    }
    /// With `profile_kernels`, twice an epoch, before `on_epoch`: the GPU time per kind of
    /// dispatch of its training batches, then of its validation pass, with the wall
    /// time of each.
    fn on_kernel_profile(&mut self, _epoch: usize, _part: RunPart, _work: &ProfiledWork) {}
}

/// The parts of an epoch that a kernel profile covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunPart {
    Training,
    Validation,
}

impl RunPart {
    pub fn name(self) -> &'static str {
        match self {
            RunPart::Training => "training",
            RunPart::Validation => "validation",
        }
    }
}

/// An observer that does nothing.
pub struct Quiet;
impl RunObserver for Quiet {}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// Every epoch of the run, resumed ones included.
    pub epochs: Vec<EpochRecord>,
    /// The test evaluation (what `test.json` holds), when the run reached its last epoch.
    pub test: Option<TestReport>,
    /// Epochs trained by this call (0 when a resumed run had nothing left to do).
    pub trained_now: usize,
    /// The epoch whose weights `model.safetensors` holds (see [`selection_score`]),
    /// and which the test evaluation used.
    pub model_epoch: Option<usize>,
}

/// `test.json`: the test evaluation of the selected model, with what selected it.
#[derive(Debug, Clone, Serialize)]
pub struct TestReport {
    /// The epoch whose weights were tested (`model.safetensors`).
    pub model_epoch: Option<usize>,
    /// With a step budget: the budget (`train --select-max-decision-step`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_decision_step: Option<f64>,
    /// With a step budget: that epoch's validation point, whose threshold was tested.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub val_within_budget: Option<SweepPoint>,
    #[serde(flatten)]
    pub report: EvalReport,
}

/// Model selection for a decision-time budget (`train --select-max-decision-step`):
/// after every epoch the threshold is swept on validation, and the run keeps the
/// epoch, and the threshold, most accurate there within a mean decision step of
/// `max_decision_step`; the test split is evaluated once, at that threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepBudget {
    /// The largest mean decision step (1-based, as reported) allowed on validation.
    pub max_decision_step: f64,
    /// The thresholds swept, FROM:TO:N (see [`parse_theta_sweep`]).
    pub theta_sweep: String,
}

impl StepBudget {
    /// The swept thresholds.
    pub fn thetas(&self) -> Result<Vec<f32>> {
        parse_theta_sweep(&self.theta_sweep)
    }

    pub fn validate(&self) -> Result<()> {
        crate::error::ensure(
            self.max_decision_step.is_finite() && self.max_decision_step >= 1.0,
            || {
                format!(
                    "--select-max-decision-step must be at least 1 (a decision at the first step), not {}",
                    self.max_decision_step
                )
            },
        )?;
        self.thetas().map(|_| ())
    }
}

/// What model selection ranks an epoch by, compared in order: its best validation
/// accuracy within the step budget (only runs with one have it; an epoch with no
/// threshold within the budget ranks below every epoch with one), then its validation
/// accuracy at the run's threshold.
fn selection_score(record: &EpochRecord) -> (Option<f64>, f64) {
    (
        record.val_within_budget.map(|p| p.accuracy),
        record.val_accuracy,
    )
}

/// Whether `candidate` ranks above `current` (an equal later epoch does not).
fn selects_over(candidate: &EpochRecord, current: Option<&EpochRecord>) -> bool {
    current.is_none_or(|c| selection_score(candidate) > selection_score(c))
}

/// The epoch with the best [`selection_score`] (the first of equals).
fn best_epoch(records: &[EpochRecord]) -> Option<&EpochRecord> {
    records.iter().fold(
        None,
        |best, r| if selects_over(r, best) { Some(r) } else { best },
    )
}

/// The threshold the test split is evaluated at: the one chosen on validation for the
/// selected epoch under a step budget, else the run's.
fn test_theta(cfg: &RunConfig, selected: Option<&EpochRecord>) -> f32 {
    let Some(budget) = &cfg.select_within_budget else {
        return cfg.rc.theta;
    };
    match selected.and_then(|r| r.val_within_budget) {
        Some(p) => p.theta,
        None => {
            log::warn!(
                "no swept threshold decided within a mean of {} steps on validation at any epoch; \
                 kept the epoch most accurate at --theta {} and testing there",
                budget.max_decision_step,
                cfg.rc.theta
            );
            cfg.rc.theta
        }
    }
}

/// Seed of epoch `epoch`'s batch order (and image shifts): a function of the run seed
/// and the epoch only, so that a resumed run sees the same batches as an uninterrupted
/// one.
fn epoch_rng(seed: u64, epoch: usize) -> Rng {
    Rng::new(seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// What an epoch trains on: `train`, or a copy whose images are each moved by a random
/// shift of up to `augment_shift` pixels, then have each pixel dropped with probability
/// `augment_drop`, or whose audio clips have their `augment_audio` draws applied. The
/// epoch's generator draws the augmentations first, then the batch order.
fn epoch_training_data<'a>(
    train: &'a Dataset,
    augment_shift: Option<usize>,
    augment_drop: Option<f64>,
    augment_audio: Option<&AudioAugment>,
    rng: &mut Rng,
) -> Result<Cow<'a, Dataset>> {
    let mut data = Cow::Borrowed(train);
    if let Some(max_shift) = augment_shift {
        data = Cow::Owned(data.randomly_shifted(max_shift, rng)?);
    }
    if let Some(rate) = augment_drop {
        data = Cow::Owned(data.with_pixels_dropped(rate, rng)?);
    }
    if let Some(augment) = augment_audio {
        data = Cow::Owned(data.audio_augmented(augment, rng)?);
    }
    Ok(data)
}

/// The whole records of `metrics.jsonl`, and the number of its last line when that
/// line was cut short (its JSON ends before it is whole: a write that a crash
/// stopped). Any other line that does not read is an error.
fn read_metrics_lines(path: &Path) -> Result<(Vec<EpochRecord>, Option<usize>)> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), None)),
        Err(e) => return Err(Error::file_caused(path, "cannot read", e)),
    };
    parse_metrics_lines(path, &text)
}

/// [`read_metrics_lines`] of the text of a `metrics.jsonl`; `path` names it in errors.
/// Public for the fuzz targets only.
#[doc(hidden)]
pub fn parse_metrics_lines(path: &Path, text: &str) -> Result<(Vec<EpochRecord>, Option<usize>)> {
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .collect();
    let mut records = Vec::with_capacity(lines.len());
    for (k, &(i, line)) in lines.iter().enumerate() {
        match serde_json::from_str(line) {
            Ok(r) => records.push(r),
            Err(e) if e.is_eof() && k + 1 == lines.len() => return Ok((records, Some(i + 1))),
            Err(e) => return Err(Error::file_caused(path, format!("line {}", i + 1), e)),
        }
    }
    Ok((records, None))
}

/// The records of `metrics.jsonl` in the run directory `out` that a run resumed after
/// the epoch of its checkpoint (`None`: it has none) keeps: those up to that epoch. A
/// last line cut short holds the record of the epoch after the last whole one: past
/// the checkpoint's epoch, it is dropped (with a warning) like every record there, as
/// the resumed run trains that epoch again; up to it, it is an error. The metrics and
/// the checkpoint must agree ([`check_metrics_agree`]).
fn read_metrics(out: &Path, checkpoint: Option<usize>) -> Result<Vec<EpochRecord>> {
    let path = out.join(checkpoint::METRICS_FILE);
    let up_to_epoch = checkpoint.unwrap_or(0);
    let (records, cut) = read_metrics_lines(&path)?;
    if let Some(line) = cut {
        let epoch = records.last().map_or(1, |r| r.epoch + 1);
        if epoch <= up_to_epoch {
            return Err(Error::file(
                path,
                format!(
                    "line {line} is cut short; it holds the record of epoch {epoch}, which the \
                     checkpoint has trained"
                ),
            ));
        }
        log::warn!(
            "{}: line {line} was cut short; it lies past epoch {up_to_epoch}, which the run \
             resumes after, and is dropped",
            path.display()
        );
    }
    check_metrics_agree(out, &records, checkpoint)?;
    Ok(records
        .into_iter()
        .filter(|r| r.epoch <= up_to_epoch)
        .collect())
}

/// Checks that the whole `records` of `metrics.jsonl` in `out` are those of epochs 1,
/// 2, ... and agree with the epoch of its checkpoint (`None`: there is none). Each
/// epoch's record is written before its checkpoint, so the metrics hold the
/// checkpoint's epoch, or one more when a crash came between the two writes (that
/// record is then dropped, with a warning, and its epoch trained again). Fewer records,
/// more, a checkpoint of epoch 0 (one is written only after an epoch), or trained
/// epochs without a checkpoint mean that a file was replaced, deleted or edited:
/// refused, naming both. Public (hidden) for the fuzz targets only.
#[doc(hidden)]
pub fn check_metrics_agree(
    out: &Path,
    records: &[EpochRecord],
    checkpoint: Option<usize>,
) -> Result<()> {
    let metrics = out.join(checkpoint::METRICS_FILE);
    let refuse = |problem: String| Error::file(&metrics, problem);
    if let Some((i, r)) = records.iter().enumerate().find(|(i, r)| r.epoch != i + 1) {
        return Err(refuse(format!(
            "record {} is of epoch {}, where epoch {}'s belongs: its records are not those \
             of epochs 1, 2, ... in order",
            i + 1,
            r.epoch,
            i + 1
        )));
    }
    let recorded = records.len();
    let ck = checkpoint::CHECKPOINT_FILE;
    match checkpoint {
        None if recorded > 1 => Err(refuse(format!(
            "records {} but {ck} is missing; restore it, or start the run anew in another --out",
            count(recorded, "epoch")
        ))),
        None if recorded == 0 && out.join(checkpoint::MODEL_FILE).exists() => Err(Error::file(
            &out.join(checkpoint::MODEL_FILE),
            format!(
                "holds trained weights, but {ck} is missing and metrics.jsonl records no \
                     epoch; restore them, or start the run anew in another --out"
            ),
        )),
        Some(0) => Err(Error::file(
            &out.join(ck),
            format!(
                "says it was written after epoch 0, but a checkpoint is written only after an \
                 epoch (metrics.jsonl records {}): it was edited",
                count(recorded, "epoch")
            ),
        )),
        Some(epoch) if recorded < epoch => Err(refuse(format!(
            "records {} but {ck} was written after epoch {epoch}: the metrics are older than \
             the checkpoint",
            count(recorded, "epoch")
        ))),
        Some(epoch) if recorded > epoch + 1 => Err(refuse(format!(
            "records {} but {ck} was written after epoch {epoch}: the checkpoint is older than \
             the metrics",
            count(recorded, "epoch")
        ))),
        _ if recorded > checkpoint.unwrap_or(0) => {
            let after = match checkpoint {
                Some(epoch) => format!("{ck} was written after epoch {epoch}"),
                None => format!("there is no {ck}"),
            };
            log::warn!(
                "{}: holds the record of epoch {recorded}, but {after}: a crash came between \
                 the two writes (or the checkpoint was replaced); the record is dropped and \
                 epoch {recorded} trained again",
                metrics.display()
            );
            Ok(())
        }
        _ => Ok(()),
    }
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
        &out.join(checkpoint::CHECKPOINT_FILE),
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

fn write_metrics(path: &Path, records: &[EpochRecord]) -> Result<()> {
    let text: String = records
        .iter()
        .map(|r| serde_json::to_string(r).expect("record serialises") + "\n")
        .collect();
    crate::files::write_atomic(path, text.as_bytes())
}

/// Builds the engine of a run with `params`.
pub fn build_engine(ctx: Arc<GpuContext>, cfg: &RunConfig, params: &[f32]) -> Result<Engine> {
    let shape = cfg.shape();
    let ecfg = EngineConfig {
        model: cfg.model,
        rc: cfg.rc,
        adam: cfg.adam,
        capacity: Capacity {
            batch: cfg.batch,
            steps: shape.steps,
        },
        readback_every: cfg.readback_every,
        sparse_input: cfg.task.sparse_input(),
        recurrent_block: recurrent_block(cfg, params),
    };
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

/// Refuses to train what cannot be trained: an ensemble (`cfg` is one, as a resumed
/// run's settings are those saved with it, or `out` holds one), or a snapshot that a
/// run with `--lr-cycles` kept (training it would overwrite its model).
pub fn refuse_untrainable(cfg: &RunConfig, out: &Path) -> Result<()> {
    let holds_ensemble = out.join(checkpoint::CONFIG_FILE).exists()
        && RunConfig::load(out).is_ok_and(|saved| saved.ensemble_of.is_some());
    if cfg.ensemble_of.is_some() || holds_ensemble {
        return Err(Error::file(
            out,
            "holds an ensemble made by `rankcode ensemble`, which cannot be trained; \
             train its member runs instead",
        ));
    }
    if out.join(checkpoint::SNAPSHOT_FILE).exists() {
        return Err(Error::file(
            out,
            "holds a snapshot that a run with --lr-cycles kept, which cannot be trained; \
             resume the run it belongs to instead",
        ));
    }
    Ok(())
}

/// Refuses to start a new run in `out` when it holds one.
fn refuse_existing_run(out: &Path) -> Result<()> {
    if out.join(checkpoint::CONFIG_FILE).exists() {
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
/// every version writes ([`checkpoint::ALWAYS_WRITTEN`]), has trained more epochs, or
/// has a schedule that cannot take them.
pub fn saved_run_to_resume(out: &Path, epochs: Option<usize>) -> Result<RunConfig> {
    let config_path = out.join(checkpoint::CONFIG_FILE);
    if !config_path.exists() {
        return Err(Error::file(
            out,
            "holds no run to resume (no config.json); drop --resume to start one",
        ));
    }
    let saved = RunConfig::load(out)?;
    refuse_untrainable(&saved, out)?;
    let damaged: Vec<String> = saved
        .missing_settings(out)?
        .into_iter()
        .map(|(key, _)| key)
        .filter(|key| checkpoint::ALWAYS_WRITTEN.contains(&key.as_str()))
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
    let trained = read_metrics_lines(&out.join(checkpoint::METRICS_FILE))?
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
fn open_run_dir(cfg: &RunConfig, out: &Path, resume: bool) -> Result<Option<Checkpoint>> {
    let cannot = |what: &str, e: std::io::Error| Error::file_caused(out, what, e);
    let config_path = out.join(checkpoint::CONFIG_FILE);
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
    let defaulted = saved.missing_settings(out)?;
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
    if out.join(checkpoint::CHECKPOINT_FILE).exists() {
        Ok(Some(checkpoint::load_checkpoint(out, &cfg.model)?))
    } else {
        Ok(None)
    }
}

/// A run's settings as the JSON of `config.json`, read back from its text, so that
/// numbers read as they are written there (an f32 threshold as 0.8, not as the f64
/// nearest to it).
pub fn config_json(cfg: &RunConfig) -> serde_json::Value {
    serde_json::from_str(&serde_json::to_string(cfg).expect("config serialises"))
        .expect("config reads back")
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

/// Trains `cfg` into `out` (see the module docs); with `resume`, continues the run
/// found there from its last checkpoint.
pub fn train_run(
    ctx: Arc<GpuContext>,
    cfg: &RunConfig,
    out: &Path,
    resume: bool,
    observer: &mut dyn RunObserver,
) -> Result<RunOutcome> {
    // Before any data is read.
    refuse_untrainable(cfg, out)?;
    if !resume {
        refuse_existing_run(out)?;
    }
    cfg.validate()?;
    if let Some(w) = cfg.theta_warmup.filter(|w| w.epochs >= cfg.epochs) {
        log::warn!(
            "the theta warm-up reaches --theta {} at epoch {}, after the run's {}",
            cfg.rc.theta,
            w.epochs + 1,
            count(cfg.epochs, "epoch")
        );
    }
    // A resumed audio run keeps the feature statistics it started with.
    let saved_spec = if resume && out.join(checkpoint::FEATURES_FILE).is_file() {
        Some(checkpoint::load_feature_spec(out)?)
    } else {
        None
    };
    let fresh_spec = saved_spec.is_none();
    let data = cfg.open_data(saved_spec)?;
    let mut train_data = data.load(Split::Train)?;
    if let Some(n) = cfg.train_limit {
        train_data = train_data.truncated(n);
    }
    if cfg.train_limit.is_some_and(|n| n > train_data.len()) {
        log::warn!(
            "--train-size is larger than the {} training sequences; using them all",
            train_data.len()
        );
    }
    let val_data = data.load(Split::Val)?;
    let test_data = data.load(Split::Test)?;
    // Everything that can fail on the settings fails before the run directory is touched.
    let mut engine = build_engine(ctx, cfg, &init_params(&cfg.model, cfg.seed))?;
    if observer.profile_kernels() {
        engine.enable_profiling()?;
    }
    let resumed = open_run_dir(cfg, out, resume)?;
    if let Some(spec) = data.feature_spec().filter(|_| fresh_spec) {
        checkpoint::save_feature_spec(out, spec)?;
    }
    let metrics_path = out.join(checkpoint::METRICS_FILE);
    // A new run starts afresh whatever an earlier one left there.
    let mut records = match resume {
        true => read_metrics(out, resumed.as_ref().map(|ck| ck.epoch))?,
        false => Vec::new(),
    };
    let mut first_epoch = 1;
    if let Some(ck) = &resumed {
        check_checkpoint_steps(out, ck, train_data.len().div_ceil(cfg.batch))?;
        engine.set_params(&ck.params)?;
        engine.set_optimizer_state(&ck.optimizer)?;
        first_epoch = ck.epoch + 1;
        log::info!("resuming {} after epoch {}", out.display(), ck.epoch);
    }
    // model.safetensors holds the weights of the epoch with the best validation score
    // (the first of equals): model selection on the validation split.
    let budget = cfg.select_within_budget.as_ref();
    let budget_thetas = budget.map(StepBudget::thetas).transpose()?;
    let mut best = best_epoch(&records).cloned();
    let mut best_params = match best {
        Some(_) => Some(checkpoint::load_model(out, &cfg.model)?),
        None => None,
    };
    let trained_now = (cfg.epochs + 1).saturating_sub(first_epoch);
    // Validation applies the rank-coding rule whatever the training mode.
    let eval_rc = RcConfig {
        mode: TrainMode::Rc,
        ..cfg.rc
    };
    for epoch in first_epoch..=cfg.epochs {
        let mut rng = epoch_rng(cfg.seed, epoch);
        let lr = cfg.lr(epoch);
        engine.set_learning_rate(lr)?;
        let train_rc = cfg.training_rc(epoch);
        engine.set_rc(train_rc)?;
        let epoch_data = epoch_training_data(
            &train_data,
            cfg.augment_shift,
            cfg.augment_drop,
            cfg.augment_audio.as_ref(),
            &mut rng,
        )?;
        let batches = epoch_data.len().div_ceil(cfg.batch);
        let mut index = 0;
        let e = train::train_epoch(&mut engine, &epoch_data, cfg.batch, epoch, &mut rng, |r| {
            index += 1;
            observer.on_batch(epoch, index, batches, r);
        })
        .map_err(|e| match e {
            Error::NonFinite(what) if epoch > 1 => Error::NonFinite(format!(
                "epoch {epoch}, {what}; the last good checkpoint (epoch {}) is kept in {}",
                epoch - 1,
                out.display()
            )),
            Error::NonFinite(what) => {
                Error::NonFinite(format!("epoch 1, {what}; no checkpoint was written"))
            }
            other => other,
        })?;
        if let Some(profile) = engine.take_profile()? {
            let work = ProfiledWork::new(profile, e.wall_s);
            observer.on_kernel_profile(epoch, RunPart::Training, &work);
        }
        let validation_start = std::time::Instant::now();
        engine.set_rc(eval_rc)?;
        let val = train::evaluate(&mut engine, &val_data, cfg.batch, false)?;
        let val_within_budget = match (budget, &budget_thetas) {
            (Some(b), Some(thetas)) => {
                let sweep = train::theta_sweep(&mut engine, &val_data, cfg.batch, thetas)?;
                train::best_within(&sweep, b.max_decision_step)
            }
            _ => None,
        };
        if let Some(profile) = engine.take_profile()? {
            let wall_s = validation_start.elapsed().as_secs_f64();
            let work = ProfiledWork::new(profile, wall_s);
            observer.on_kernel_profile(epoch, RunPart::Validation, &work);
        }
        let record = EpochRecord {
            epoch,
            train_loss: e.train_loss,
            train_accuracy: e.train_accuracy,
            val_accuracy: val.accuracy,
            val_mean_decision_step: val.mean_decision_step,
            lr: Some(lr as f64),
            train_theta: cfg.theta_warmup.map(|_| train_rc.theta),
            val_within_budget,
            steps_processed: e.steps_processed,
            wall_s: e.wall_s,
        };
        // Metrics first: on resume, lines past the checkpoint's epoch are dropped, so a
        // crash between the two writes loses nothing.
        records.push(record.clone());
        write_metrics(&metrics_path, &records)?;
        let params = engine.params()?;
        if selects_over(&record, best.as_ref()) {
            checkpoint::save_model(out, &cfg.model, &params)?;
            best = Some(record.clone());
            best_params = Some(params.clone());
        }
        if cfg.ends_lr_cycle(epoch) {
            save_snapshot(cfg, out, &record, &params)?;
        }
        let ck = Checkpoint {
            epoch,
            params,
            optimizer: engine.optimizer_state()?,
        };
        checkpoint::save_checkpoint(out, &cfg.model, &ck)?;
        if observer.on_epoch(&record).is_break() {
            return Ok(RunOutcome {
                epochs: records,
                test: None,
                trained_now: epoch + 1 - first_epoch,
                model_epoch: best.map(|b| b.epoch),
            });
        }
    }
    if let Some(params) = &best_params {
        engine.set_params(params)?;
    }
    engine.set_rc(RcConfig {
        theta: test_theta(cfg, best.as_ref()),
        ..eval_rc
    })?;
    let test = TestReport {
        model_epoch: best.as_ref().map(|b| b.epoch),
        max_decision_step: cfg
            .select_within_budget
            .as_ref()
            .map(|b| b.max_decision_step),
        val_within_budget: best.as_ref().and_then(|b| b.val_within_budget),
        report: train::evaluate(&mut engine, &test_data, cfg.batch, true)?,
    };
    let json = serde_json::to_string_pretty(&test).expect("report serialises");
    crate::files::write_atomic(&out.join(checkpoint::TEST_FILE), json.as_bytes())?;
    Ok(RunOutcome {
        epochs: records,
        model_epoch: test.model_epoch,
        test: Some(test),
        trained_now,
    })
}

/// Keeps the model of the epoch of `record`, the last of an `--lr-cycles` cycle, as a
/// run directory of its own under the run's [`checkpoint::SNAPSHOTS_DIR`]: the run's
/// settings and these weights, which `eval` and `ensemble` read like any run, and the
/// epoch's metrics record as [`checkpoint::SNAPSHOT_FILE`].
///
/// The snapshot is written whole into a hidden folder beside it, then renamed into
/// place, so that a crash never leaves a part of one that reads as a run.
fn save_snapshot(cfg: &RunConfig, out: &Path, record: &EpochRecord, params: &[f32]) -> Result<()> {
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
    let features = out.join(checkpoint::FEATURES_FILE);
    if features.is_file() {
        std::fs::copy(&features, partial.join(checkpoint::FEATURES_FILE))
            .map_err(|e| io(&features, "copy", e))?;
    }
    let json = serde_json::to_string_pretty(record).expect("record serialises");
    crate::files::write_atomic(&partial.join(checkpoint::SNAPSHOT_FILE), json.as_bytes())?;
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
pub fn snapshot_dir(out: &Path, epoch: usize) -> std::path::PathBuf {
    out.join(checkpoint::SNAPSHOTS_DIR)
        .join(format!("epoch-{epoch}"))
}

/// Loads a trained run from `dir` (its `config.json` and `model.safetensors`) into a
/// new engine.
pub fn load_trained(ctx: Arc<GpuContext>, dir: &Path) -> Result<(RunConfig, Engine)> {
    let cfg = RunConfig::load(dir)?;
    let params = checkpoint::load_model(dir, &cfg.model)?;
    let engine = build_engine(ctx, &cfg, &params)?;
    Ok((cfg, engine))
}

/// The threshold a finished run selected within its step budget (`test.json`'s
/// `val_within_budget`; for a snapshot, its epoch's in `snapshot.json`), if it was
/// made with one and found one.
fn selected_theta(dir: &Path, cfg: &RunConfig) -> Result<Option<f32>> {
    let Some(path) = [checkpoint::TEST_FILE, checkpoint::SNAPSHOT_FILE]
        .iter()
        .map(|f| dir.join(f))
        .find(|p| p.is_file())
    else {
        return Ok(None);
    };
    if cfg.select_within_budget.is_none() {
        return Ok(None);
    }
    let text =
        std::fs::read_to_string(&path).map_err(|e| Error::file_caused(&path, "cannot read", e))?;
    let report: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| Error::file_caused(&path, "not valid JSON", e))?;
    match &report["val_within_budget"] {
        serde_json::Value::Null => Ok(None),
        point => match point["theta"].as_f64() {
            Some(theta) => Ok(Some(theta as f32)),
            None => Err(Error::file(path, "val_within_budget has no numeric theta")),
        },
    }
}

/// The threshold a run is evaluated at unless told otherwise: the one it selected
/// within its step budget, once it has finished, else its own.
pub fn default_theta(dir: &Path, cfg: &RunConfig) -> Result<f32> {
    Ok(selected_theta(dir, cfg)?.unwrap_or(cfg.rc.theta))
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

/// Evenly spaced thresholds from a `FROM:TO:N` specification (both ends included).
pub fn parse_theta_sweep(spec: &str) -> Result<Vec<f32>> {
    let bad = |why: &str| {
        Error::InvalidConfig(format!(
            "theta sweep '{spec}': {why} (expected FROM:TO:N, e.g. 0.5:0.99:20)"
        ))
    };
    let parts: Vec<&str> = spec.split(':').collect();
    if parts.len() != 3 {
        return Err(bad("three fields needed"));
    }
    let from: f32 = parts[0]
        .trim()
        .parse()
        .map_err(|_| bad("FROM is not a number"))?;
    let to: f32 = parts[1]
        .trim()
        .parse()
        .map_err(|_| bad("TO is not a number"))?;
    let n: usize = parts[2]
        .trim()
        .parse()
        .map_err(|_| bad("N is not a whole number"))?;
    // In f64, rounded to 6 decimals, so that the thresholds print as typed (0.8925,
    // not 0.89250004); the checks apply to the rounded ends.
    let round = |t: f64| (t * 1e6).round() / 1e6;
    let (from, to) = (round(from as f64), round(to as f64));
    if !(from > 0.0 && to < 1.0 && from <= to) {
        return Err(bad(
            "thresholds must satisfy 0 < FROM <= TO < 1, to 6 decimals",
        ));
    }
    if n == 0 || n > 10_000 || (n == 1 && from != to) {
        return Err(bad("N must be between 1 and 10000 (1 only when FROM = TO)"));
    }
    Ok((0..n)
        .map(|i| {
            if n == 1 {
                from
            } else {
                from + (to - from) * i as f64 / (n - 1) as f64
            }
        })
        .map(|t| round(t) as f32)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn theta_sweeps_parse_and_bad_ones_are_refused() {
        assert_eq!(parse_theta_sweep("0.5:0.9:3").unwrap(), vec![0.5, 0.7, 0.9]);
        assert_eq!(parse_theta_sweep("0.8:0.8:1").unwrap(), vec![0.8]);
        for bad in [
            "0.5:0.9",
            "0:0.9:3",
            "0.5:1:3",
            "0.9:0.5:3",
            "0.5:0.9:0",
            "a:0.9:3",
            "0.5:0.9:1",
            "0.3:0.9999996:5",
            "0.0000004:0.5:5",
        ] {
            assert!(
                parse_theta_sweep(bad)
                    .unwrap_err()
                    .to_string()
                    .contains("theta sweep"),
                "{bad}"
            );
        }
    }

    #[test]
    fn metrics_lines_without_a_learning_rate_read_and_write_back_unchanged() {
        let dir = std::env::temp_dir().join(format!("rankcode-metrics-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(checkpoint::METRICS_FILE);
        let old = r#"{"epoch":1,"train_loss":0.5,"train_accuracy":0.75,"val_accuracy":0.7,"val_mean_decision_step":3.5,"steps_processed":100,"wall_s":1.5}"#;
        std::fs::write(&path, format!("{old}\n")).unwrap();
        let records = read_metrics(&dir, Some(1)).unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].lr, None);
        write_metrics(&path, &records).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{old}\n"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_cut_last_metrics_line_is_dropped_when_past_the_checkpoint() {
        let dir = crate::files::test_dir("metrics-cut");
        let path = dir.join(checkpoint::METRICS_FILE);
        let line = |epoch: usize| {
            format!(
                r#"{{"epoch":{epoch},"train_loss":0.5,"train_accuracy":0.75,"val_accuracy":0.7,"val_mean_decision_step":3.5,"steps_processed":100,"wall_s":1.5}}"#
            )
        };
        let whole = format!("{}\n{}\n", line(1), line(2));
        let cut = &line(3)[..40];
        std::fs::write(&path, format!("{whole}{cut}")).unwrap();
        // Resumed after epoch 2 (or 1), the run trains epoch 3 again.
        let epochs = |up_to| -> Vec<usize> {
            let records = read_metrics(&dir, Some(up_to)).unwrap();
            records.iter().map(|r| r.epoch).collect()
        };
        assert_eq!(epochs(2), [1, 2]);
        assert_eq!(epochs(1), [1]);
        let (records, cut_line) = read_metrics_lines(&path).unwrap();
        assert_eq!((records.len(), cut_line), (2, Some(3)));
        // Resumed after epoch 3, the record of an epoch it keeps is lost.
        let err = read_metrics(&dir, Some(3)).unwrap_err().to_string();
        assert!(
            err.contains("metrics.jsonl: line 3 is cut short") && err.contains("epoch 3"),
            "{err}"
        );
        // A line cut short that is not the last, or a last line that is whole but
        // not a record, is no crash's doing.
        for text in [
            format!("{}\n{cut}\n{}\n", line(1), line(2)),
            format!("{whole}[3]\n"),
        ] {
            std::fs::write(&path, text).unwrap();
            assert!(read_metrics(&dir, Some(1)).is_err());
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn metrics_and_checkpoint_must_agree_on_the_epochs_trained() {
        let dir = crate::files::test_dir("metrics-agree");
        let records =
            |n: usize| -> Vec<EpochRecord> { (1..=n).map(|e| record(e, 0.5, None)).collect() };
        let check = |n: usize, ck: Option<usize>| {
            check_metrics_agree(&dir, &records(n), ck).map_err(|e| e.to_string())
        };
        // The checkpoint's epoch, or one more record: a crash between the two writes.
        for (n, ck) in [(0, None), (1, None), (2, Some(2)), (3, Some(2))] {
            assert!(check(n, ck).is_ok(), "{n} records, checkpoint {ck:?}");
        }
        let refused = |n: usize, ck: Option<usize>, needle: &str| {
            let err = check(n, ck).unwrap_err();
            assert!(
                err.contains(needle),
                "{n} records, checkpoint {ck:?}: {err}"
            );
        };
        refused(
            3,
            None,
            "metrics.jsonl: records 3 epochs but checkpoint.safetensors is missing",
        );
        refused(
            1,
            Some(0),
            "checkpoint.safetensors: says it was written after epoch 0",
        );
        refused(
            4,
            Some(2),
            "metrics.jsonl: records 4 epochs but checkpoint.safetensors was written after \
             epoch 2: the checkpoint is older than the metrics",
        );
        refused(
            1,
            Some(2),
            "metrics.jsonl: records 1 epoch but checkpoint.safetensors was written after \
             epoch 2: the metrics are older",
        );
        let mut skipped = records(3);
        skipped.remove(1);
        let err = check_metrics_agree(&dir, &skipped, Some(3))
            .unwrap_err()
            .to_string();
        assert!(err.contains("record 2 is of epoch 3"), "{err}");
        // Trained weights without a checkpoint or a record.
        std::fs::write(dir.join(checkpoint::MODEL_FILE), b"weights").unwrap();
        refused(0, None, "model.safetensors: holds trained weights");
        let _ = std::fs::remove_dir_all(&dir);
    }

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

    #[test]
    fn augmented_epochs_shift_then_drop_pixels_drawn_from_the_epoch_seed() {
        // 50 images of 4 x 4 with one bright pixel each, at (1, 1).
        let mut times = vec![1u8; 50 * 16];
        for image in times.chunks_mut(16) {
            image[5] = 0;
        }
        let train = Dataset::from_event_times(times, vec![0; 50], 2, 16, 1).with_image_size(4, 4);
        let plain = epoch_training_data(&train, None, None, None, &mut epoch_rng(1, 1)).unwrap();
        assert!(matches!(plain, Cow::Borrowed(_)));
        let moved = epoch_training_data(&train, Some(1), None, None, &mut epoch_rng(1, 1)).unwrap();
        let moved_images = (0..50).filter(|&n| moved.sequence(n) != train.sequence(n));
        // 8 of the 9 offsets move the image.
        assert!(moved_images.count() > 30);
        let again = epoch_training_data(&train, Some(1), None, None, &mut epoch_rng(1, 1)).unwrap();
        assert_eq!(again, moved);
        let next_epoch =
            epoch_training_data(&train, Some(1), None, None, &mut epoch_rng(1, 2)).unwrap();
        assert_ne!(next_epoch, moved);
        // Drops come after the shifts: the moved images lose some of their bright pixels.
        let both =
            epoch_training_data(&train, Some(1), Some(0.5), None, &mut epoch_rng(1, 1)).unwrap();
        // Step 0's events of image n (the background's are at step 1).
        let has_bright = |d: &Dataset, n: usize| d.sequence(n)[..16].contains(&1.0);
        let kept = (0..50).filter(|&n| has_bright(&both, n)).count();
        assert!((10..=40).contains(&kept), "{kept} of 50 bright pixels kept");
        for n in (0..50).filter(|&n| has_bright(&both, n)) {
            assert_eq!(both.sequence(n), moved.sequence(n), "image {n}");
        }
    }

    fn record(epoch: usize, val_accuracy: f64, within: Option<f64>) -> EpochRecord {
        EpochRecord {
            epoch,
            train_loss: 0.0,
            train_accuracy: 0.0,
            val_accuracy,
            val_mean_decision_step: 2.0,
            lr: None,
            train_theta: None,
            val_within_budget: within.map(|accuracy| SweepPoint {
                theta: 0.5,
                accuracy,
                mean_decision_step: 1.5,
                not_fired: 0.0,
            }),
            steps_processed: 0,
            wall_s: 0.0,
        }
    }

    #[test]
    fn a_step_budget_ranks_epochs_by_their_accuracy_within_it() {
        let best = |records: &[EpochRecord]| best_epoch(records).map(|r| r.epoch);
        // Without a budget no epoch has a point within one.
        let plain = [
            record(1, 0.90, None),
            record(2, 0.97, None),
            record(3, 0.97, None),
        ];
        assert_eq!(best(&plain), Some(2));
        let budgeted = [
            record(1, 0.90, None),
            record(2, 0.97, Some(0.80)),
            record(3, 0.95, Some(0.85)),
            record(4, 0.96, Some(0.85)),
        ];
        assert_eq!(
            best(&budgeted),
            Some(4),
            "equal within the budget: better at theta"
        );
        assert_eq!(best(&budgeted[..3]), Some(3));
        // An epoch with no threshold within the budget ranks below every other; among
        // such epochs, the accuracy at the run's threshold decides.
        assert_eq!(
            best(&[record(1, 0.99, None), record(2, 0.5, Some(0.1))]),
            Some(2)
        );
        assert_eq!(
            best(&[record(1, 0.9, None), record(2, 0.95, None)]),
            Some(2)
        );
        assert_eq!(best(&[]), None);
    }

    #[test]
    fn a_step_budget_is_at_least_one_step_over_a_valid_sweep() {
        let ok = StepBudget {
            max_decision_step: 1.0,
            theta_sweep: "0.3:0.99:70".into(),
        };
        ok.validate().unwrap();
        assert_eq!(ok.thetas().unwrap().len(), 70);
        for steps in [0.5, f64::NAN, f64::INFINITY] {
            let err = StepBudget {
                max_decision_step: steps,
                ..ok.clone()
            }
            .validate()
            .unwrap_err()
            .to_string();
            assert!(err.contains("at least 1"), "{err}");
        }
        let err = StepBudget {
            theta_sweep: "0.9:0.3:5".into(),
            ..ok
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert!(err.contains("theta sweep"), "{err}");
    }

    #[test]
    fn epoch_order_depends_on_seed_and_epoch_only() {
        assert_eq!(epoch_rng(3, 2).next_u64(), epoch_rng(3, 2).next_u64());
        assert_ne!(epoch_rng(3, 2).next_u64(), epoch_rng(3, 3).next_u64());
    }
}

/// The deterministic fuzz smoke test (the short, seeded version of `fuzz/`'s
/// `metrics` target that runs with the test suite).
#[cfg(test)]
mod fuzz_smoke {
    use super::*;
    use crate::mutate::no_panics;

    /// Seeds: a byte for the checkpoint's epoch (255: none), then a `metrics.jsonl`
    /// (`fuzz/seeds/metrics`).
    const SEEDS: [&[u8]; 4] = [
        include_bytes!("../fuzz/seeds/metrics/one-epoch"),
        include_bytes!("../fuzz/seeds/metrics/crash-between-writes"),
        include_bytes!("../fuzz/seeds/metrics/cut-last-line"),
        include_bytes!("../fuzz/seeds/metrics/no-checkpoint"),
    ];

    #[test]
    fn mutated_metrics_are_read_or_refused_without_panicking() {
        let out = Path::new("/nonexistent/run");
        let path = out.join(checkpoint::METRICS_FILE);
        let ok = no_panics("metrics.jsonl", &SEEDS, 28, 5000, |b| {
            let Some((&first, rest)) = b.split_first() else {
                return false;
            };
            let Ok(text) = std::str::from_utf8(rest) else {
                return false;
            };
            let checkpoint = (first != 255).then_some(usize::from(first));
            let Ok((records, _)) = parse_metrics_lines(&path, text) else {
                return false;
            };
            let _ = best_epoch(&records);
            check_metrics_agree(out, &records, checkpoint).is_ok()
        });
        assert!(ok > 50, "{ok} inputs read");
    }
}
