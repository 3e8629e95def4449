//! A run directory's life (docs/runs.md): a training run end to end, [`train_run`],
//! and everything that reads or writes a run's folder.
//!
//! [`train_run`] builds the engine for a [`RunConfig`], trains epoch by epoch
//! ([`crate::epoch`]) with a validation pass after each, checkpoints atomically after
//! every epoch, resumes from the last checkpoint, and evaluates the test split at the
//! end. The parts, one job each:
//!
//! - [`config`]: the run's settings, `config.json`;
//! - [`directory`]: the names of the run directory's files (the safetensors files'
//!   reading and writing: [`crate::checkpoint`]);
//! - [`metrics`]: `metrics.jsonl`, a record per epoch;
//! - [`features`]: `features.json`, an audio run's front end and feature statistics;
//! - [`resume`]: what `--resume` continues, and the checks that the files agree;
//! - [`selection`]: which epoch, and which threshold, a run keeps (step budgets);
//! - [`snapshots`]: the models kept at the end of `--lr-cycles` cycles;
//! - [`ensemble`]: trained runs joined into one model in a new run directory;
//! - [`inference`]: a run's model in an engine, for training or for inference.

pub mod config;
pub mod directory;
pub mod ensemble;
pub mod features;
pub mod inference;
pub mod metrics;
pub mod resume;
pub mod selection;
pub mod snapshots;

pub use config::{EnsembleMember, RunConfig};
pub use metrics::EpochRecord;
pub use selection::StepBudget;

use crate::checkpoint::{self, Checkpoint};
use crate::data::Dataset;
use crate::data::audio_augment::AudioAugment;
use crate::data::augment::Distortion;
use crate::data::task::Split;
use crate::engine::BatchReport;
use crate::epoch::{self, EvalReport, SweepPoint};
use crate::error::{Error, Result};
use crate::gpu::GpuContext;
use crate::gpu::profile::ProfiledWork;
use crate::model::{RcConfig, TrainMode, init_params};
use crate::rng::Rng;
use crate::words::count;
use directory::{FEATURES_FILE, METRICS_FILE, TEST_FILE};
use features::{load_feature_spec, save_feature_spec};
use inference::build_engine;
use metrics::{read_metrics, write_metrics};
use resume::{check_checkpoint_steps, open_run_dir, refuse_existing_run, refuse_untrainable};
use selection::{best_epoch, selects_over, test_theta};
use serde::Serialize;
use snapshots::save_snapshot;
use std::borrow::Cow;
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::Arc;

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
    /// The epoch whose weights `model.safetensors` holds (see [`selection`]),
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

/// Seed of epoch `epoch`'s batch order (and image shifts): a function of the run seed
/// and the epoch only, so that a resumed run sees the same batches as an uninterrupted
/// one.
fn epoch_rng(seed: u64, epoch: usize) -> Rng {
    Rng::new(seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// What an epoch trains on: `train`, or a copy whose images are each resampled by a
/// random draw of `distortion` (rotated and scaled, then elastically distorted), then
/// moved by a random shift of up to `augment_shift` pixels, then have each pixel
/// dropped with probability `augment_drop`; or whose audio clips have their
/// `augment_audio` draws applied. The epoch's generator draws the augmentations
/// first, in that order, then the batch order.
fn epoch_training_data<'a>(
    train: &'a Dataset,
    distortion: Option<&Distortion>,
    augment_shift: Option<usize>,
    augment_drop: Option<f64>,
    augment_audio: Option<&AudioAugment>,
    rng: &mut Rng,
) -> Result<Cow<'a, Dataset>> {
    let mut data = Cow::Borrowed(train);
    if let Some(distortion) = distortion {
        data = Cow::Owned(data.distorted(distortion, rng)?);
    }
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
    let saved_spec = if resume && out.join(FEATURES_FILE).is_file() {
        Some(load_feature_spec(out)?)
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
        save_feature_spec(out, spec)?;
    }
    let metrics_path = out.join(METRICS_FILE);
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
            cfg.image_distortion().as_ref(),
            cfg.augment_shift,
            cfg.augment_drop,
            cfg.augment_audio.as_ref(),
            &mut rng,
        )?;
        let batches = epoch_data.len().div_ceil(cfg.batch);
        let mut index = 0;
        let e = epoch::train_epoch(&mut engine, &epoch_data, cfg.batch, epoch, &mut rng, |r| {
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
        let val = epoch::evaluate(&mut engine, &val_data, cfg.batch, false)?;
        let val_within_budget = match (budget, &budget_thetas) {
            (Some(b), Some(thetas)) => {
                let sweep = epoch::theta_sweep(&mut engine, &val_data, cfg.batch, thetas)?;
                epoch::best_within(&sweep, b.max_decision_step)
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
        theta: test_theta(
            cfg.select_within_budget.as_ref(),
            cfg.rc.theta,
            best.as_ref(),
        ),
        ..eval_rc
    })?;
    let test = TestReport {
        model_epoch: best.as_ref().map(|b| b.epoch),
        max_decision_step: cfg
            .select_within_budget
            .as_ref()
            .map(|b| b.max_decision_step),
        val_within_budget: best.as_ref().and_then(|b| b.val_within_budget),
        report: epoch::evaluate(&mut engine, &test_data, cfg.batch, true)?,
    };
    let json = serde_json::to_string_pretty(&test).expect("report serialises");
    crate::files::write_atomic(&out.join(TEST_FILE), json.as_bytes())?;
    Ok(RunOutcome {
        epochs: records,
        model_epoch: test.model_epoch,
        test: Some(test),
        trained_now,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::mnist;

    #[test]
    fn augmented_epochs_shift_then_drop_pixels_drawn_from_the_epoch_seed() {
        // 50 images of 4 x 4 with one bright pixel each, at (1, 1).
        let mut times = vec![1u8; 50 * 16];
        for image in times.chunks_mut(16) {
            image[5] = 0;
        }
        let train = Dataset::from_event_times(times, vec![0; 50], 2, 16, 1).with_image_size(4, 4);
        let plain =
            epoch_training_data(&train, None, None, None, None, &mut epoch_rng(1, 1)).unwrap();
        assert!(matches!(plain, Cow::Borrowed(_)));
        let moved =
            epoch_training_data(&train, None, Some(1), None, None, &mut epoch_rng(1, 1)).unwrap();
        let moved_images = (0..50).filter(|&n| moved.sequence(n) != train.sequence(n));
        // 8 of the 9 offsets move the image.
        assert!(moved_images.count() > 30);
        let again =
            epoch_training_data(&train, None, Some(1), None, None, &mut epoch_rng(1, 1)).unwrap();
        assert_eq!(again, moved);
        let next_epoch =
            epoch_training_data(&train, None, Some(1), None, None, &mut epoch_rng(1, 2)).unwrap();
        assert_ne!(next_epoch, moved);
        // Drops come after the shifts: the moved images lose some of their bright pixels.
        let both =
            epoch_training_data(&train, None, Some(1), Some(0.5), None, &mut epoch_rng(1, 1))
                .unwrap();
        // Step 0's events of image n (the background's are at step 1).
        let has_bright = |d: &Dataset, n: usize| d.sequence(n)[..16].contains(&1.0);
        let kept = (0..50).filter(|&n| has_bright(&both, n)).count();
        assert!((10..=40).contains(&kept), "{kept} of 50 bright pixels kept");
        for n in (0..50).filter(|&n| has_bright(&both, n)) {
            assert_eq!(both.sequence(n), moved.sequence(n), "image {n}");
        }
    }

    #[test]
    fn distorted_epochs_resample_the_images_before_the_shift_and_the_drop() {
        // 20 images of 6 x 6 whose pixel bytes are kept: a bright bar down column 2.
        let mut pixels = vec![0u8; 20 * 36];
        for image in pixels.chunks_mut(36) {
            for r in 1..5 {
                image[r * 6 + 2] = 255;
            }
        }
        let times = pixels.iter().map(|&v| mnist::temporal_bin(v)).collect();
        let train = Dataset::from_event_times(times, vec![0; 20], mnist::STEPS, 36, 1)
            .with_image_size(6, 6)
            .with_pixels(pixels);
        let distortion = Distortion {
            max_degrees: 30.0,
            ..Distortion::default()
        };
        let all = epoch_training_data(
            &train,
            Some(&distortion),
            Some(1),
            Some(0.2),
            None,
            &mut epoch_rng(1, 1),
        )
        .unwrap();
        let mut rng = epoch_rng(1, 1);
        let expected = train
            .distorted(&distortion, &mut rng)
            .unwrap()
            .randomly_shifted(1, &mut rng)
            .unwrap()
            .with_pixels_dropped(0.2, &mut rng)
            .unwrap();
        assert_eq!(*all, expected);
        assert_ne!(*all, train);
    }

    #[test]
    fn epoch_order_depends_on_seed_and_epoch_only() {
        assert_eq!(epoch_rng(3, 2).next_u64(), epoch_rng(3, 2).next_u64());
        assert_ne!(epoch_rng(3, 2).next_u64(), epoch_rng(3, 3).next_u64());
    }
}
