//! A run's settings: [`RunConfig`], everything a run is built from, saved as its
//! `config.json`; their validation; and what they make of each epoch (its training
//! threshold, its learning rate, whether it ends a learning-rate cycle).

use super::directory::{CONFIG_FILE, not_a_run};
use super::selection::StepBudget;
use crate::data::audio::FeatureSpec;
use crate::data::audio_augment::AudioAugment;
use crate::data::augment::{Distortion, Elastic, Sampling};
use crate::data::frontend::FrontendConfig;
use crate::data::fsdd::SpeakerSplit;
use crate::data::task::{Task, TaskData, TaskShape};
use crate::error::{Error, Result};
use crate::files::{read, write_atomic};
use crate::model::{AdamConfig, LrSchedule, ModelConfig, RcConfig, ThetaWarmup, TrainMode};
use crate::words::count;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

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
    /// ending in a snapshot of the model ([`super::snapshots`]); none: one cycle, no
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
    /// Image tasks: rotate each training image by a random angle of up to this many
    /// degrees either way, drawn anew every epoch before the shift.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub augment_rotate: Option<f64>,
    /// Image tasks: scale each training image by a random factor in [1 - this,
    /// 1 + this], drawn anew every epoch before the shift.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub augment_scale: Option<f64>,
    /// Image tasks: distort each training image elastically, drawn anew every epoch
    /// after the rotation and scaling, before the shift.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub augment_elastic: Option<Elastic>,
    /// Image tasks: how the rotation, scaling and elastic distortion read the image
    /// between pixels; set (and written) only with one of them on. Without it they
    /// take the nearest pixel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub augment_sampling: Option<Sampling>,
    /// Model selection for a decision-time budget (none: the epoch most accurate on
    /// validation at `rc.theta`, tested at `rc.theta`).
    #[serde(default)]
    pub select_within_budget: Option<StepBudget>,
    /// An ensemble made by `rankcode ensemble`: its member runs, in the order of their
    /// blocks of units (none: a trained run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ensemble_of: Option<Vec<EnsembleMember>>,
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

/// One run of an ensemble (`RunConfig::ensemble_of`), as `config.json` records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnsembleMember {
    /// The run directory (absolute).
    pub run: PathBuf,
    /// Its LSTM units per layer: the block of the ensemble's units that are its.
    pub hidden_size: usize,
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

    /// What resamples each training image every epoch (`--augment-rotate`,
    /// `--augment-scale`, `--augment-elastic`, read by `--augment-sampling`); none when
    /// all three are off.
    pub fn image_distortion(&self) -> Option<Distortion> {
        let distortion = Distortion {
            max_degrees: self.augment_rotate.unwrap_or(0.0),
            max_scale: self.augment_scale.unwrap_or(0.0),
            elastic: self.augment_elastic,
            sampling: self.augment_sampling.unwrap_or_default(),
        };
        (!distortion.is_identity()).then_some(distortion)
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
        if let Some(degrees) = self.augment_rotate {
            crate::error::ensure(self.task == Task::Mnist, || {
                "--augment-rotate applies to image tasks only (--task mnist)".into()
            })?;
            crate::error::ensure(degrees > 0.0 && degrees <= 180.0, || {
                format!(
                    "--augment-rotate must be above 0 and at most 180 degrees, not {degrees} \
                     (leave it out for no rotations)"
                )
            })?;
        }
        if let Some(fraction) = self.augment_scale {
            crate::error::ensure(self.task == Task::Mnist, || {
                "--augment-scale applies to image tasks only (--task mnist)".into()
            })?;
            crate::error::ensure(fraction > 0.0 && fraction < 1.0, || {
                format!(
                    "--augment-scale must be above 0 and below 1, not {fraction} (leave it \
                     out for no scaling)"
                )
            })?;
        }
        if let Some(elastic) = &self.augment_elastic {
            crate::error::ensure(self.task == Task::Mnist, || {
                "--augment-elastic applies to image tasks only (--task mnist)".into()
            })?;
            elastic.validate()?;
        }
        if let Some(sampling) = self.augment_sampling {
            crate::error::ensure(self.image_distortion().is_some(), || {
                format!(
                    "--augment-sampling {} chooses how --augment-rotate, --augment-scale and \
                     --augment-elastic read the image: give one of them, or leave \
                     --augment-sampling out",
                    sampling.name()
                )
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
            crate::error::ensure(split.val.as_ref() != Some(&split.test), || {
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

/// A run's settings as the JSON of `config.json`, read back from its text, so that
/// numbers read as they are written there (an f32 threshold as 0.8, not as the f64
/// nearest to it).
pub fn config_json(cfg: &RunConfig) -> serde_json::Value {
    serde_json::from_str(&serde_json::to_string(cfg).expect("config serialises"))
        .expect("config reads back")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::test_dir;

    #[test]
    fn a_file_that_is_not_a_config_is_refused_naming_it() {
        let dir = test_dir("config-bad");
        std::fs::write(dir.join(CONFIG_FILE), b"{\"task\": 3}").unwrap();
        let err = RunConfig::load(&dir).unwrap_err().to_string();
        assert!(err.contains(CONFIG_FILE), "{err}");
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
        assert_eq!(cfg.augment_rotate, None);
        assert_eq!(cfg.augment_scale, None);
        assert_eq!(cfg.augment_elastic, None);
        assert_eq!(cfg.augment_sampling, None);
        assert_eq!(cfg.image_distortion(), None);
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

    #[test]
    fn the_sampling_is_recorded_with_a_distortion_and_refused_without_one() {
        let toy: RunConfig = serde_json::from_str(OLD_CONFIG).unwrap();
        let rotated = RunConfig {
            augment_rotate: Some(10.0),
            ..mnist_config(&toy)
        };
        // A file with a distortion and no sampling (written before there was a choice)
        // samples the nearest pixel.
        rotated.validate().unwrap();
        assert_eq!(
            rotated.image_distortion().map(|d| d.sampling),
            Some(Sampling::Nearest)
        );
        assert!(config_json(&rotated).get("augment_sampling").is_none());
        for sampling in Sampling::ALL {
            let chosen = RunConfig {
                augment_sampling: Some(sampling),
                ..rotated.clone()
            };
            chosen.validate().unwrap();
            assert_eq!(
                chosen.image_distortion().map(|d| d.sampling),
                Some(sampling)
            );
            let json = config_json(&chosen);
            assert_eq!(json["augment_sampling"], sampling.name());
            let back: RunConfig = serde_json::from_value(json).unwrap();
            assert_eq!(back, chosen);
        }
        // Without a distortion there is nothing to sample, on MNIST or elsewhere.
        for plain in [mnist_config(&toy), toy] {
            let err = RunConfig {
                augment_sampling: Some(Sampling::Bilinear),
                ..plain
            }
            .validate()
            .unwrap_err()
            .to_string();
            assert!(
                err.contains("--augment-sampling bilinear chooses how --augment-rotate"),
                "{err}"
            );
        }
    }

    #[test]
    fn image_distortions_apply_to_mnist_only_within_their_ranges() {
        let toy: RunConfig = serde_json::from_str(OLD_CONFIG).unwrap();
        let elastic = Elastic {
            alpha: 34.0,
            sigma: 4.0,
        };
        let mnist = RunConfig {
            augment_rotate: Some(10.0),
            augment_scale: Some(0.1),
            augment_elastic: Some(elastic),
            ..mnist_config(&toy)
        };
        mnist.validate().unwrap();
        assert_eq!(
            mnist.image_distortion(),
            Some(Distortion {
                max_degrees: 10.0,
                max_scale: 0.1,
                elastic: Some(elastic),
                sampling: Sampling::Nearest,
            })
        );
        // config.json records them, and reads them back.
        let json = config_json(&mnist);
        assert_eq!(json["augment_rotate"], 10.0);
        assert_eq!(json["augment_scale"], 0.1);
        assert_eq!(json["augment_elastic"]["alpha"], 34.0);
        assert_eq!(json["augment_elastic"]["sigma"], 4.0);
        let back: RunConfig = serde_json::from_value(json).unwrap();
        assert_eq!(back, mnist);
        // A run without them writes none of them.
        let plain = config_json(&mnist_config(&toy));
        assert!(plain.get("augment_rotate").is_none() && plain.get("augment_elastic").is_none());
        let bad = |cfg: RunConfig| cfg.validate().unwrap_err().to_string();
        for degrees in [0.0, -5.0, 181.0, f64::NAN, f64::INFINITY] {
            let err = bad(RunConfig {
                augment_rotate: Some(degrees),
                ..mnist.clone()
            });
            assert!(
                err.contains("--augment-rotate must be above 0 and at most 180 degrees"),
                "{err}"
            );
        }
        for fraction in [0.0, -0.1, 1.0, 1.5, f64::NAN] {
            let err = bad(RunConfig {
                augment_scale: Some(fraction),
                ..mnist.clone()
            });
            assert!(
                err.contains("--augment-scale must be above 0 and below 1"),
                "{err}"
            );
        }
        for (alpha, sigma, problem) in [
            (0.0, 4.0, "ALPHA must be above 0"),
            (34.0, 0.0, "SIGMA must be above 0"),
            (34.0, -2.0, "SIGMA must be above 0"),
        ] {
            let err = bad(RunConfig {
                augment_elastic: Some(Elastic { alpha, sigma }),
                ..mnist.clone()
            });
            assert!(
                err.contains("--augment-elastic") && err.contains(problem),
                "{err}"
            );
        }
        for (toy, flag) in [
            (
                RunConfig {
                    augment_rotate: Some(10.0),
                    ..toy.clone()
                },
                "--augment-rotate",
            ),
            (
                RunConfig {
                    augment_scale: Some(0.1),
                    ..toy.clone()
                },
                "--augment-scale",
            ),
            (
                RunConfig {
                    augment_elastic: Some(elastic),
                    ..toy
                },
                "--augment-elastic",
            ),
        ] {
            let err = bad(toy);
            assert!(
                err.contains(&format!(
                    "{flag} applies to image tasks only (--task mnist)"
                )),
                "{err}"
            );
        }
    }
}

/// The deterministic fuzz smoke test (the short, seeded version of `fuzz/`'s
/// `run_config` target that runs with the test suite).
#[cfg(test)]
mod fuzz_smoke {
    use super::*;
    use crate::mutate::no_panics;
    use crate::run::features::feature_spec_from_json;

    /// The `config.json` of a tiny run (seq-spotting, 3 hidden units, 1 epoch).
    const CONFIG: &[u8] = include_bytes!("../../fuzz/seeds/run_config/config.json");

    /// A `features.json` of 13 MFCCs and 10 classes, made by hand.
    const FEATURES: &[u8] = include_bytes!("../../fuzz/seeds/run_config/features.json");

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
}
