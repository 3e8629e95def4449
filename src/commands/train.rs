//! `rankcode train`: trains a model on a task into a run directory.

use super::choice::choice;
use anyhow::{Context, Result};
use clap::Args;
use clap::parser::ValueSource;
use indicatif::{ProgressBar, ProgressStyle};
use rankcode::data::audio_augment::AudioAugment;
use rankcode::data::augment::{Elastic, Sampling};
use rankcode::data::frontend::{FrontendConfig, UtteranceNorm};
use rankcode::data::fsdd::{self, SpeakerSplit};
use rankcode::data::task::Task;
use rankcode::engine::BatchReport;
use rankcode::gpu::GpuContext;
use rankcode::gpu::profile::ProfiledWork;
use rankcode::learning_check::not_learning;
use rankcode::model::{LrSchedule, Readout, ThetaWarmup, TrainMode};
use rankcode::recipe::{Recipe, show_optional};
use rankcode::run::config::config_json;
use rankcode::run::resume::{refuse_untrainable, saved_run_to_resume};
use rankcode::run::{EpochRecord, RunConfig, RunObserver, RunPart, train_run};
use std::io::IsTerminal;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// The kernel profiles of `--profile`, one JSON object a line, in the run directory.
const PROFILE_FILE: &str = "kernel-profile.jsonl";

/// A line of [`PROFILE_FILE`].
#[derive(serde::Serialize)]
struct ProfileRecord<'a> {
    epoch: usize,
    part: RunPart,
    #[serde(flatten)]
    work: &'a ProfiledWork,
}

/// How `--split-by` splits FSDD.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SplitBy {
    /// Speaker-disjoint splits (leave-one-speaker-out).
    Speaker,
    /// By take: every speaker in every split.
    Take,
}

/// Where `--speaker-val` takes the validation split of FSDD split by speaker from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum SpeakerVal {
    /// The speaker after the test speaker: a voice the model never trains on.
    NextSpeaker,
    /// Takes 0-4 of the training speakers: one more voice to train on (the default:
    /// 61.2% on the voice never heard against 58.3% with a validation speaker, three
    /// seeds of the five folds, docs/results.md).
    #[default]
    TrainTakes,
}

/// A flag value that can also turn off the task's default: the value, or `none`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OrNone<T>(pub Option<T>);

/// A flag's value (`none` included), or the recipe's where the flag is not given.
fn or_recipe<T>(flag: Option<OrNone<T>>, recipe: Option<T>) -> Option<T> {
    flag.map_or(recipe, |given| given.0)
}

/// Parses `none` or a value that `parse` reads.
fn parse_or_none<T>(
    spec: &str,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<OrNone<T>, String> {
    match spec.trim() {
        "none" => Ok(OrNone(None)),
        value => parse(value).map(|v| OrNone(Some(v))),
    }
}

/// Parses `none` or a number.
fn number_or_none<T: std::str::FromStr>(spec: &str) -> Result<OrNone<T>, String> {
    parse_or_none(spec, |v| {
        v.parse()
            .map_err(|_| format!("'{v}' is neither a number nor 'none'"))
    })
}

/// Parses `none` or a theta warm-up, START:EPOCHS.
fn warmup_or_none(spec: &str) -> Result<OrNone<ThetaWarmup>, String> {
    parse_or_none(spec, |v| {
        ThetaWarmup::parse(v).map_err(|e| match e {
            rankcode::Error::InvalidConfig(why) => why,
            other => other.to_string(),
        })
    })
}

/// Parses `none` or an elastic distortion, ALPHA:SIGMA.
fn elastic_or_none(spec: &str) -> Result<OrNone<Elastic>, String> {
    parse_or_none(spec, |v| {
        Elastic::parse(v).map_err(|e| match e {
            rankcode::Error::InvalidConfig(why) => why,
            other => other.to_string(),
        })
    })
}

/// Each setting without a flag comes from the task's recipe (`rankcode::recipe`); the
/// help text lists them per task ([`with_task_defaults`]).
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// The task to train on (with --resume, the run's own). Every setting not given
    /// below comes from the task's recipe, the best we know for it (docs/results.md).
    #[arg(long, value_parser = choice::<Task>(), required_unless_present = "resume")]
    pub task: Option<Task>,
    /// rc: loss at each sequence's first spike (rank coding); eos: loss at the last step.
    #[arg(long, value_parser = choice::<TrainMode>(), default_value = TrainMode::default().name())]
    pub mode: TrainMode,
    /// Spike threshold on the output scores, in (0, 1).
    #[arg(long)]
    pub theta: Option<f32>,
    /// Train epoch 1 at threshold START, rising linearly to reach --theta at epoch
    /// EPOCHS + 1 (rc mode; validation and test use --theta); `none` for no warm-up.
    /// Helps a model whose last step carries a large input event (MNIST's background)
    /// learn to spike earlier.
    #[arg(long, value_name = "START:EPOCHS", value_parser = warmup_or_none)]
    pub theta_warmup: Option<OrNone<ThetaWarmup>>,
    /// Entropy bonus at the decision step (>= 0): larger values delay spikes.
    #[arg(long)]
    pub beta: Option<f32>,
    /// Average each sequence's loss over its steps from STEP (counted from 1) to its
    /// decision step, not the decision step alone: every prefix from STEP on learns
    /// the answer, at no extra step (rank coding still stops at the decision);
    /// `none`: the decision step alone.
    #[arg(long, value_name = "STEP", value_parser = number_or_none::<usize>)]
    pub loss_from_step: Option<OrNone<usize>>,
    /// LSTM hidden units per layer.
    #[arg(long)]
    pub hidden: Option<usize>,
    /// Stacked LSTM layers.
    #[arg(long)]
    pub layers: Option<usize>,
    /// Output units: one sigmoid per class, or a softmax.
    #[arg(long, value_parser = choice::<Readout>())]
    pub readout: Option<Readout>,
    /// Adam learning rate.
    #[arg(long)]
    pub lr: Option<f32>,
    /// constant: --lr throughout; cosine: annealed from --lr towards 0 over --epochs (over
    /// each cycle with --lr-cycles).
    #[arg(long, value_parser = choice::<LrSchedule>())]
    pub lr_schedule: Option<LrSchedule>,
    /// With --lr-schedule cosine: split the epochs (N must divide them) into N equal
    /// cosine cycles, each restarting at --lr (warm restarts), and keep the model of each
    /// cycle's last epoch in OUT/snapshots/epoch-E: snapshots that `rankcode ensemble`
    /// can join into one model.
    #[arg(long, value_name = "N")]
    pub lr_cycles: Option<usize>,
    /// Clip each batch's gradient to this global L2 norm before the Adam step; `none`:
    /// no clipping.
    #[arg(long, value_name = "NORM", value_parser = number_or_none::<f32>)]
    pub clip_grad_norm: Option<OrNone<f32>>,
    /// Decoupled weight decay (AdamW): each step first shrinks every parameter by
    /// lr * this factor. 0: plain Adam.
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f32,
    /// Sequences per batch.
    #[arg(long)]
    pub batch: Option<usize>,
    /// Passes over the training data. With --resume, extends the run: by whole cycles
    /// with --lr-cycles (their count follows), never with a single cosine schedule.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Seed of the initial weights and the batch order.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Steps between readbacks of the fired mask [default: 1]; the GPU plans the steps in
    /// between (changes no result, only the round trips a batch pays).
    #[arg(long)]
    pub readback_every: Option<usize>,
    /// Train on the first N training sequences only.
    #[arg(long)]
    pub train_size: Option<usize>,
    /// MNIST: move each training image by a random shift of up to PIXELS each way,
    /// drawn anew every epoch (validation and test images are not moved); `none`: no
    /// shifts.
    #[arg(long, value_name = "PIXELS", value_parser = number_or_none::<usize>)]
    pub augment_shift: Option<OrNone<usize>>,
    /// MNIST: make each pixel of a training image background (value 0) with
    /// probability RATE, drawn anew every epoch after the shift (pixel dropout); `none`:
    /// no dropout.
    #[arg(long, value_name = "RATE", value_parser = number_or_none::<f64>)]
    pub augment_drop: Option<OrNone<f64>>,
    /// MNIST: rotate each training image about its centre by a random angle in
    /// [-DEGREES, DEGREES], drawn anew every epoch before the shift (the pixel bytes
    /// resampled as --augment-sampling says); `none`: no rotations.
    #[arg(long, value_name = "DEGREES", value_parser = number_or_none::<f64>)]
    pub augment_rotate: Option<OrNone<f64>>,
    /// MNIST: scale each training image about its centre by a random factor in
    /// [1 - FRACTION, 1 + FRACTION], drawn anew every epoch with the rotation;
    /// `none`: no scaling.
    #[arg(long, value_name = "FRACTION", value_parser = number_or_none::<f64>)]
    pub augment_scale: Option<OrNone<f64>>,
    /// MNIST: distort each training image elastically (Simard et al. 2003), drawn
    /// anew every epoch after the rotation and scaling: displacements uniform in
    /// [-1, 1], smoothed by a Gaussian of SIGMA pixels, times ALPHA pixels; `none`: no
    /// elastic distortion.
    #[arg(long, value_name = "ALPHA:SIGMA", value_parser = elastic_or_none)]
    pub augment_elastic: Option<OrNone<Elastic>>,
    /// MNIST, with --augment-rotate, --augment-scale or --augment-elastic: how they
    /// read the image where a pixel comes from between pixels [default: nearest].
    #[arg(long, value_parser = choice::<Sampling>())]
    pub augment_sampling: Option<Sampling>,
    /// Model selection for a decision-time budget: after every epoch, sweep the
    /// threshold on validation (--select-theta-sweep) and keep the epoch, and the
    /// threshold, most accurate there with a mean decision step (counted from 1: t* + 1)
    /// of at most STEPS; the test split is then evaluated at that threshold (test.json
    /// names it, and `eval` and `classify` default to it). Costs a rank-coded
    /// pass over the validation split at the largest swept threshold every epoch, on
    /// top of the validation pass at --theta. `none`: the epoch most accurate at --theta.
    #[arg(long, value_name = "STEPS", value_parser = number_or_none::<f64>)]
    pub select_max_decision_step: Option<OrNone<f64>>,
    /// The thresholds a step budget (--select-max-decision-step) sweeps, FROM:TO:N
    /// [default: 0.3:0.99:70].
    #[arg(long, value_name = "FROM:TO:N")]
    pub select_theta_sweep: Option<String>,
    /// FSDD: speaker: leave-one-speaker-out (--fold picks the test speaker, the others
    /// train; --speaker-val says where validation comes from); take: FSDD's
    /// convention, takes 0-4 test and 5-9 validation of every speaker [default: speaker].
    #[arg(long, value_enum)]
    pub split_by: Option<SplitBy>,
    /// FSDD split by speaker: fold N tests on the N-th speaker of the data folder, in
    /// name order [default: 1].
    #[arg(long, value_name = "N")]
    pub fold: Option<usize>,
    /// FSDD split by speaker: where the validation split comes from. train-takes: takes
    /// 0-4 of the training speakers, so every other voice trains; next-speaker: the
    /// speaker after the test speaker, a voice the model never trains on [default:
    /// train-takes].
    #[arg(long, value_enum, value_name = "FROM")]
    pub speaker_val: Option<SpeakerVal>,
    /// Audio tasks: move each training clip by up to FRAMES frames either way, drawn
    /// anew every epoch (the edge frames fill the gap); `none` or 0: no shifts.
    #[arg(long, value_name = "FRAMES", value_parser = number_or_none::<usize>)]
    pub augment_frames_shift: Option<OrNone<usize>>,
    /// Audio tasks: scale each training clip's frequency axis by a factor drawn from
    /// [1 - W, 1 + W] every epoch (vocal tract length perturbation); `none` or 0: off.
    #[arg(long, value_name = "W", value_parser = number_or_none::<f64>)]
    pub augment_warp: Option<OrNone<f64>>,
    /// Audio tasks: stretch each training clip in time by a factor drawn from
    /// [1 - R, 1 + R] every epoch; `none` or 0: off.
    #[arg(long, value_name = "R", value_parser = number_or_none::<f64>)]
    pub augment_tempo: Option<OrNone<f64>>,
    /// Audio tasks: set a run of up to BANDS bands of each training clip to the mean,
    /// drawn every epoch (SpecAugment); `none` or 0: off.
    #[arg(long, value_name = "BANDS", value_parser = number_or_none::<usize>)]
    pub augment_freq_mask: Option<OrNone<usize>>,
    /// Audio tasks: set a run of up to FRAMES frames of each training clip to the mean,
    /// drawn every epoch (SpecAugment); `none` or 0: off.
    #[arg(long, value_name = "FRAMES", value_parser = number_or_none::<usize>)]
    pub augment_time_mask: Option<OrNone<usize>>,
    /// Audio tasks: how each clip's own frames normalise its features before the
    /// training split's statistics: none; causal (each frame minus the mean of the
    /// frames up to it: no later audio); whole (each band's mean and deviation over the
    /// clip's audio).
    #[arg(long, value_parser = choice::<UtteranceNorm>())]
    pub utterance_norm: Option<UtteranceNorm>,
    /// Audio tasks: mel bands of the log-mel front end [default: 40].
    #[arg(long)]
    pub mel_bands: Option<usize>,
    /// Audio tasks: use the first N MFCCs (of the log-mel bands) instead of log-mel.
    #[arg(long)]
    pub mfcc: Option<usize>,
    /// Audio tasks: clips are padded with silence or trimmed to this length, in ms
    /// [default: 1000 for speech commands, 600 for FSDD (whose bands stop at 4 kHz)].
    #[arg(long)]
    pub clip_ms: Option<u32>,
    /// Data folder of file-based tasks (default: $RANKCODE_DATA/<folder>, else
    /// ../shared/datasets/<folder>, with folder mnist, fsdd or speech_commands).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// The run directory: config.json, model.safetensors, checkpoint, metrics.jsonl, test.json.
    #[arg(long)]
    pub out: PathBuf,
    /// Continue the run in --out from its last checkpoint (its saved settings are used).
    #[arg(long)]
    pub resume: bool,
    /// Print the test evaluation as JSON at the end.
    #[arg(long)]
    pub json: bool,
    /// Time every dispatch with timestamp queries: after each epoch, print the GPU time
    /// per kernel of its training batches and of its validation pass, and append them
    /// to OUT/kernel-profile.jsonl. Fails on an adapter without timestamp queries.
    #[arg(long)]
    pub profile: bool,
    /// The flags given on the command line (`--hidden`, ...), from clap's value sources
    /// ([`TrainArgs::record_given_flags`]): on resume, those a saved setting overrides
    /// are named as ignored.
    #[arg(skip)]
    pub given: Vec<String>,
}

/// The flag behind each setting of `config.json` that a resumed run keeps as saved.
pub const SETTING_FLAGS: [(&str, &str); 37] = [
    ("task", "--task"),
    ("rc.mode", "--mode"),
    ("rc.theta", "--theta"),
    ("rc.beta", "--beta"),
    ("rc.loss_from_step", "--loss-from-step"),
    ("theta_warmup", "--theta-warmup"),
    ("model.hidden_size", "--hidden"),
    ("model.layers", "--layers"),
    ("model.readout", "--readout"),
    ("adam.lr", "--lr"),
    ("adam.max_grad_norm", "--clip-grad-norm"),
    ("adam.weight_decay", "--weight-decay"),
    ("lr_schedule", "--lr-schedule"),
    ("lr_cycles", "--lr-cycles"),
    ("batch", "--batch"),
    ("seed", "--seed"),
    ("train_limit", "--train-size"),
    ("augment_shift", "--augment-shift"),
    ("augment_drop", "--augment-drop"),
    ("augment_rotate", "--augment-rotate"),
    ("augment_scale", "--augment-scale"),
    ("augment_elastic", "--augment-elastic"),
    ("augment_sampling", "--augment-sampling"),
    ("select_within_budget.theta_sweep", "--select-theta-sweep"),
    (
        "select_within_budget.max_decision_step",
        "--select-max-decision-step",
    ),
    ("frontend.mel_bands", "--mel-bands"),
    ("frontend.mfcc", "--mfcc"),
    ("frontend.clip_ms", "--clip-ms"),
    ("frontend.utterance_norm", "--utterance-norm"),
    ("speaker_split", "--split-by"),
    ("speaker_split", "--fold"),
    ("speaker_split", "--speaker-val"),
    ("augment_audio.shift_frames", "--augment-frames-shift"),
    ("augment_audio.warp", "--augment-warp"),
    ("augment_audio.tempo", "--augment-tempo"),
    ("augment_audio.freq_mask", "--augment-freq-mask"),
    ("augment_audio.time_mask", "--augment-time-mask"),
];

/// The flags among `given` whose values differ from the settings `saved` with a run,
/// as `--flag (value given, value in the run)`: on resume the saved ones apply. The
/// defaults of flags not given are never named.
fn ignored_on_resume(saved: &RunConfig, from_flags: &RunConfig, given: &[String]) -> Vec<String> {
    let (saved, now) = (config_json(saved), config_json(from_flags));
    let at = |json: &serde_json::Value, name: &str| {
        json.pointer(&format!("/{}", name.replace('.', "/")))
            .cloned()
            .unwrap_or_default()
    };
    let show = |value: &serde_json::Value| match value {
        serde_json::Value::Null => "none".to_string(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    SETTING_FLAGS
        .iter()
        .filter(|(_, flag)| given.iter().any(|g| g == flag))
        .filter_map(|&(name, flag)| {
            let (in_run, now) = (at(&saved, name), at(&now, name));
            (in_run != now).then(|| {
                format!(
                    "{flag} ({} given, {} in the run)",
                    show(&now),
                    show(&in_run)
                )
            })
        })
        .collect()
}

/// The data folder of a file-based task (`given`, else the default one), made absolute
/// and saved with the run, so that the run evaluates on the same data from anywhere.
fn data_folder(task: Task, given: Option<&Path>) -> Option<PathBuf> {
    task.data_dir(given)
        .map(|d| std::fs::canonicalize(&d).unwrap_or(d))
}

impl TrainArgs {
    /// Records which flags `matches` (of this command) took from the command line.
    pub fn record_given_flags(&mut self, matches: &clap::ArgMatches) {
        let command = <Self as Args>::augment_args(clap::Command::new("train"));
        self.given = command
            .get_arguments()
            .filter(|a| matches.value_source(a.get_id().as_str()) == Some(ValueSource::CommandLine))
            .filter_map(|a| a.get_long().map(|long| format!("--{long}")))
            .collect();
    }

    /// The settings of a run of `task` from the flags, and the task's recipe for every
    /// setting they do not give.
    pub fn run_config(&self, task: Task) -> anyhow::Result<RunConfig> {
        let base = Recipe::for_task(task);
        let recipe = Recipe {
            hidden: self.hidden.unwrap_or(base.hidden),
            layers: self.layers.unwrap_or(base.layers),
            readout: self.readout.unwrap_or(base.readout),
            lr: self.lr.unwrap_or(base.lr),
            lr_schedule: self.lr_schedule.unwrap_or(base.lr_schedule),
            clip_grad_norm: or_recipe(self.clip_grad_norm, base.clip_grad_norm),
            theta: self.theta.unwrap_or(base.theta),
            theta_warmup: or_recipe(self.theta_warmup, base.theta_warmup),
            beta: self.beta.unwrap_or(base.beta),
            loss_from_step: or_recipe(self.loss_from_step, base.loss_from_step),
            batch: self.batch.unwrap_or(base.batch),
            epochs: self.epochs.unwrap_or(base.epochs),
            augment_shift: or_recipe(self.augment_shift, base.augment_shift),
            augment_drop: or_recipe(self.augment_drop, base.augment_drop),
            augment_rotate: or_recipe(self.augment_rotate, base.augment_rotate),
            augment_scale: or_recipe(self.augment_scale, base.augment_scale),
            augment_elastic: or_recipe(self.augment_elastic, base.augment_elastic),
            select_max_decision_step: or_recipe(
                self.select_max_decision_step,
                base.select_max_decision_step,
            ),
            split_by_speaker: self
                .split_by
                .map_or(base.split_by_speaker, |s| s == SplitBy::Speaker),
            augment_audio: self.audio_augment(base.augment_audio.unwrap_or_default()),
            utterance_norm: self.utterance_norm.unwrap_or(base.utterance_norm),
        };
        if self.mode == TrainMode::Eos
            && let Some(OrNone(Some(_))) = self.theta_warmup
        {
            anyhow::bail!("a theta warm-up applies to rank-coding training only (--mode rc)");
        }
        if let (TrainMode::Rc, Some(warmup), None) =
            (self.mode, recipe.theta_warmup, self.theta_warmup)
            && warmup.start >= recipe.theta
        {
            anyhow::bail!(
                "--theta {} is not above the start of {}'s default warm-up ({}:{}): give a \
                 lower --theta-warmup START:EPOCHS, or --theta-warmup none",
                recipe.theta,
                task.name(),
                warmup.start,
                warmup.epochs
            );
        }
        if !task.is_audio()
            && (self.mel_bands.is_some()
                || self.mfcc.is_some()
                || self.clip_ms.is_some()
                || self.utterance_norm.is_some())
        {
            anyhow::bail!(
                "--mel-bands, --mfcc, --clip-ms and --utterance-norm apply to the audio tasks \
                 only (fsdd, speech-commands, speech-commands-12), not {}",
                task.name()
            );
        }
        let defaults = task.default_frontend();
        let frontend = FrontendConfig {
            mel_bands: self.mel_bands.unwrap_or(defaults.mel_bands),
            mfcc: self.mfcc,
            clip_ms: self.clip_ms.unwrap_or(defaults.clip_ms),
            utterance_norm: recipe.utterance_norm,
            ..defaults
        };
        let mut cfg = recipe.run_config(task, self.mode, frontend);
        cfg.adam.weight_decay = self.weight_decay;
        cfg.lr_cycles = self.lr_cycles;
        cfg.seed = self.seed;
        cfg.readback_every = self.readback_every.unwrap_or(1);
        cfg.data_dir = data_folder(task, self.data.as_deref());
        cfg.train_limit = self.train_size;
        // Given without a distortion, it is refused when the settings are checked.
        cfg.augment_sampling = self.augment_sampling.or(cfg.augment_sampling);
        cfg.speaker_split = self.speaker_split(task, &recipe, cfg.data_dir.as_deref())?;
        match (&mut cfg.select_within_budget, &self.select_theta_sweep) {
            (Some(budget), Some(sweep)) => budget.theta_sweep = sweep.clone(),
            (None, Some(_)) => anyhow::bail!(
                "--select-theta-sweep needs a step budget: give --select-max-decision-step \
                 STEPS ({} has none by default)",
                task.name()
            ),
            (_, None) => {}
        }
        Ok(cfg)
    }
}

impl TrainArgs {
    /// The audio augmentation of the flags, each part not given as in `recipe`'s; none
    /// when every part is off.
    fn audio_augment(&self, recipe: AudioAugment) -> Option<AudioAugment> {
        /// A part's flag (`none`: 0, off), or the recipe's part where it is not given.
        fn part<T: Default>(flag: Option<OrNone<T>>, recipe: T) -> T {
            flag.map_or(recipe, |given| given.0.unwrap_or_default())
        }
        let augment = AudioAugment {
            shift_frames: part(self.augment_frames_shift, recipe.shift_frames),
            warp: part(self.augment_warp, recipe.warp),
            tempo: part(self.augment_tempo, recipe.tempo),
            freq_mask: part(self.augment_freq_mask, recipe.freq_mask),
            time_mask: part(self.augment_time_mask, recipe.time_mask),
        };
        (augment != AudioAugment::default()).then_some(augment)
    }

    /// The speaker split of an FSDD run: fold --fold of the speakers in the data folder,
    /// where the recipe or --split-by asks for one.
    fn speaker_split(
        &self,
        task: Task,
        recipe: &Recipe,
        data_dir: Option<&Path>,
    ) -> anyhow::Result<Option<SpeakerSplit>> {
        if task != Task::Fsdd {
            if self.split_by.is_some() || self.fold.is_some() || self.speaker_val.is_some() {
                anyhow::bail!(
                    "--split-by, --fold and --speaker-val apply to FSDD only (--task fsdd)"
                );
            }
            return Ok(None);
        }
        if !recipe.split_by_speaker {
            if self.fold.is_some() || self.speaker_val.is_some() {
                anyhow::bail!("--fold and --speaker-val shape a split by speaker, not by take");
            }
            return Ok(None);
        }
        let dir = data_dir.context("FSDD reads a data folder")?;
        let speakers = fsdd::speakers(dir)?;
        let val_speaker = self.speaker_val.unwrap_or_default() == SpeakerVal::NextSpeaker;
        SpeakerSplit::fold(&speakers, self.fold.unwrap_or(1), val_speaker)
            .map(Some)
            .map_err(|why| anyhow::anyhow!("--fold: {why}"))
    }
}

/// Shows one setting of a recipe as its flag takes it.
type ShowSetting = fn(&Recipe) -> String;

/// The flags whose defaults come from the task's recipe, each with the setting it
/// shows: the help text of `train` lists their values per task.
const RECIPE_FLAGS: [(&str, ShowSetting); 24] = [
    ("hidden", |r| r.hidden.to_string()),
    ("layers", |r| r.layers.to_string()),
    ("readout", |r| r.readout.name().into()),
    ("lr", |r| r.lr.to_string()),
    ("lr_schedule", |r| r.lr_schedule.name().into()),
    ("clip_grad_norm", |r| show_optional(r.clip_grad_norm)),
    ("theta", |r| r.theta.to_string()),
    ("theta_warmup", |r| {
        show_optional(r.theta_warmup.map(|w| format!("{}:{}", w.start, w.epochs)))
    }),
    ("beta", |r| r.beta.to_string()),
    ("loss_from_step", |r| show_optional(r.loss_from_step)),
    ("batch", |r| r.batch.to_string()),
    ("epochs", |r| r.epochs.to_string()),
    ("augment_shift", |r| show_optional(r.augment_shift)),
    ("augment_drop", |r| show_optional(r.augment_drop)),
    ("augment_rotate", |r| show_optional(r.augment_rotate)),
    ("augment_scale", |r| show_optional(r.augment_scale)),
    ("augment_elastic", |r| {
        show_optional(
            r.augment_elastic
                .map(|e| format!("{}:{}", e.alpha, e.sigma)),
        )
    }),
    ("select_max_decision_step", |r| {
        show_optional(r.select_max_decision_step)
    }),
    ("utterance_norm", |r| r.utterance_norm.name().into()),
    ("augment_frames_shift", |r| {
        show_optional(r.augment_audio.map(|a| a.shift_frames).filter(|&v| v > 0))
    }),
    ("augment_warp", |r| {
        show_optional(r.augment_audio.map(|a| a.warp).filter(|&v| v > 0.0))
    }),
    ("augment_tempo", |r| {
        show_optional(r.augment_audio.map(|a| a.tempo).filter(|&v| v > 0.0))
    }),
    ("augment_freq_mask", |r| {
        show_optional(r.augment_audio.map(|a| a.freq_mask).filter(|&v| v > 0))
    }),
    ("augment_time_mask", |r| {
        show_optional(r.augment_audio.map(|a| a.time_mask).filter(|&v| v > 0))
    }),
];

/// `train` with each recipe flag's help ending in its defaults per task, e.g.
/// `[default: 256 for mnist; 64 for fsdd ...]`.
pub fn with_task_defaults(train: clap::Command) -> clap::Command {
    RECIPE_FLAGS.iter().fold(train, |command, (id, show)| {
        command.mut_arg(*id, |arg| {
            let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
            arg.help(format!("{help} [default: {}]", Recipe::describe(show)))
        })
    })
}

/// Without a terminal, a progress line at most this often within an epoch (seconds;
/// `RANKCODE_PROGRESS_SECS` overrides it).
const PLAIN_PROGRESS_SECS: f64 = 60.0;

fn plain_progress_interval() -> std::time::Duration {
    let default = std::time::Duration::from_secs_f64(PLAIN_PROGRESS_SECS);
    match std::env::var("RANKCODE_PROGRESS_SECS") {
        Err(_) => default,
        Ok(v) => v
            .parse::<f64>()
            .ok()
            .and_then(|s| std::time::Duration::try_from_secs_f64(s).ok())
            .unwrap_or_else(|| {
                log::warn!("RANKCODE_PROGRESS_SECS={v} is not a number of seconds; using {PLAIN_PROGRESS_SECS}");
                default
            }),
    }
}

/// A progress bar per epoch on a terminal; otherwise one log line per epoch, and
/// progress lines within long epochs.
struct Progress {
    bar: Option<ProgressBar>,
    epochs: usize,
    epoch_start: Instant,
    /// When the last plain progress line was printed, and the interval between them.
    last_line: Instant,
    line_every: std::time::Duration,
    sequences: usize,
    steps: usize,
    /// The step budget of model selection, if any.
    budget: Option<f64>,
    /// Where kernel profiles go, with `--profile`.
    profile_file: Option<PathBuf>,
    /// Whether the profiles a stopped run left past its checkpoint are dropped yet.
    profile_file_trimmed: bool,
    /// The run's settings, to tell from its epochs whether it learns.
    config: RunConfig,
    /// Whether the run was warned that it is not learning (once is enough).
    warned_not_learning: bool,
}

impl Progress {
    /// A line above the bar, or on standard error without one.
    fn print(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }
}

impl RunObserver for Progress {
    fn on_batch(&mut self, epoch: usize, batch: usize, batches: usize, r: &BatchReport) {
        if batch == 1 {
            if let Some(bar) = &self.bar {
                bar.reset();
                bar.set_length(batches as u64);
                bar.set_prefix(format!("epoch {epoch}/{}", self.epochs));
            }
            self.epoch_start = Instant::now();
            self.last_line = self.epoch_start;
            self.sequences = 0;
        }
        self.sequences += r.sequences;
        let rate = self.sequences as f64 / self.epoch_start.elapsed().as_secs_f64().max(1e-9);
        let message = format!(
            "loss {:.4}  acc {:.3}  decision {:.1}/{}  {:.0} seq/s",
            r.loss,
            r.correct as f64 / r.sequences as f64,
            r.decision_steps as f64 / r.sequences as f64,
            self.steps,
            rate
        );
        match &self.bar {
            Some(bar) => {
                bar.set_message(message);
                bar.set_position(batch as u64);
            }
            // Long epochs (a large data set on a software adapter) still show signs of life in a log.
            None if self.last_line.elapsed() >= self.line_every && batch < batches => {
                eprintln!(
                    "epoch {epoch}/{}: batch {batch}/{batches}: {message}",
                    self.epochs
                );
                self.last_line = Instant::now();
            }
            None => {}
        }
    }

    fn on_epoch(&mut self, e: &EpochRecord) -> ControlFlow<()> {
        let theta = e
            .train_theta
            .map(|t| format!(" (theta {t:.3})"))
            .unwrap_or_default();
        let within = match (self.budget, e.val_within_budget) {
            (Some(max), Some(p)) => format!(
                " | within {max} steps: {:.4} at {:.2} (theta {})",
                p.accuracy, p.mean_decision_step, p.theta
            ),
            (Some(max), None) => format!(" | no swept theta within {max} steps"),
            (None, _) => String::new(),
        };
        let line = format!(
            "epoch {}/{}{theta}: train loss {:.4} acc {:.4} | val acc {:.4} decision {:.2}/{}{within} | {} steps, {:.1}s",
            e.epoch,
            self.epochs,
            e.train_loss,
            e.train_accuracy,
            e.val_accuracy,
            e.val_mean_decision_step,
            self.steps,
            e.steps_processed,
            e.wall_s
        );
        self.print(&line);
        if !self.warned_not_learning
            && let Some(warning) = not_learning(&self.config, e)
        {
            self.print(&format!("warning: {warning}"));
            self.warned_not_learning = true;
        }
        ControlFlow::Continue(())
    }

    fn profile_kernels(&self) -> bool {
        self.profile_file.is_some()
    }

    fn on_kernel_profile(&mut self, epoch: usize, part: RunPart, work: &ProfiledWork) {
        let heading = format!(
            "epoch {epoch}/{}: kernels of the {} pass",
            self.epochs,
            part.name()
        );
        self.print(&format!("{heading}: {}", work.table().trim_end()));
        let Some(path) = &self.profile_file else {
            return;
        };
        if !self.profile_file_trimmed {
            // A run that stopped after profiling an epoch but before its checkpoint
            // trains that epoch again: its lines go, so each epoch has one set.
            self.profile_file_trimmed = true;
            match rankcode::files::drop_epochs_from(path, epoch) {
                Ok(0) => {}
                Ok(n) => log::info!(
                    "{}: dropped {n} lines of epoch {epoch} and later, left by a run that stopped before its checkpoint",
                    path.display()
                ),
                Err(e) => log::warn!(
                    "cannot drop the profiles of epoch {epoch} and later: {}",
                    rankcode::error::full_message(&e)
                ),
            }
        }
        let record = ProfileRecord { epoch, part, work };
        let line = serde_json::to_string(&record).expect("a profile serialises");
        if let Err(e) = append_line(path, &line) {
            log::warn!("{}: cannot append the kernel profile: {e}", path.display());
        }
    }
}

fn append_line(path: &Path, line: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    writeln!(file, "{line}")
}

pub fn run(args: &TrainArgs) -> Result<()> {
    // Before the GPU, any data or a note on the saved settings.
    let saved = if args.resume {
        Some(saved_run_to_resume(&args.out, args.epochs)?)
    } else {
        None
    };
    let task = args
        .task
        .or(saved.as_ref().map(|s| s.task))
        .context("--task is required to start a run")?;
    let from_flags = args.run_config(task);
    let cfg = match saved {
        None => {
            let cfg = from_flags?;
            refuse_untrainable(&cfg, &args.out)?;
            cfg
        }
        Some(saved) => {
            refuse_untrainable(&saved, &args.out)?;
            // The saved settings (with --epochs, as the schedule continues), except what
            // may change on resume: another readback cadence, a moved data folder.
            match &from_flags {
                Ok(now) => {
                    let ignored = ignored_on_resume(&saved, now, &args.given);
                    if !ignored.is_empty() {
                        eprintln!(
                            "note: --resume continues the run with the settings saved in {} \
                             (only --epochs, --readback-every, --data and --profile apply); \
                             ignored: {}",
                            args.out.display(),
                            ignored.join(", ")
                        );
                    }
                }
                // Flags that would not start a run of their own do not stop a resume.
                Err(e) => log::info!("--resume: the flags given make no run ({e:#}); ignored"),
            }
            log::info!(
                "--resume: using the model and training settings saved in {}",
                args.out.display()
            );
            RunConfig {
                readback_every: args.readback_every.unwrap_or(saved.readback_every),
                // A moved folder, for the task the run trains.
                data_dir: args
                    .data
                    .as_ref()
                    .and(data_folder(saved.task, args.data.as_deref()))
                    .or(saved.data_dir.clone()),
                ..saved
            }
        }
    };
    // The task the run trains: on resume, the saved one.
    cfg.task.check_data_folder(args.data.as_deref())?;
    cfg.validate()?;
    let steps = cfg.shape().steps;
    if let Some(budget) = &cfg.select_within_budget
        && budget.max_decision_step >= steps as f64
    {
        eprintln!(
            "note: --select-max-decision-step {} is at least the task's {steps} steps: every \
             threshold meets it, so the run keeps the most accurate point of each sweep",
            budget.max_decision_step
        );
    }
    let ctx = Arc::new(GpuContext::new()?);
    eprintln!(
        "rankcode train: {} on {} -> {}",
        cfg.task.name(),
        ctx.adapter_summary(),
        args.out.display()
    );
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar
    });
    let mut progress = Progress {
        bar,
        epochs: cfg.epochs,
        epoch_start: Instant::now(),
        last_line: Instant::now(),
        line_every: plain_progress_interval(),
        sequences: 0,
        steps: cfg.shape().steps,
        budget: cfg
            .select_within_budget
            .as_ref()
            .map(|b| b.max_decision_step),
        profile_file: args.profile.then(|| args.out.join(PROFILE_FILE)),
        profile_file_trimmed: false,
        config: cfg.clone(),
        warned_not_learning: false,
    };
    let outcome = train_run(ctx, &cfg, &args.out, args.resume, &mut progress)
        .with_context(|| format!("training into {}", args.out.display()))?;
    if let Some(bar) = &progress.bar {
        bar.finish_and_clear();
    }
    if outcome.trained_now == 0 {
        eprintln!(
            "note: the run in {} already has {}; nothing left to train ({})",
            args.out.display(),
            rankcode::words::count(outcome.epochs.len(), "epoch"),
            cfg.how_to_extend()
        );
    }
    let test = outcome.test.expect("a completed run has a test report");
    if args.json {
        println!("{}", serde_json::to_string_pretty(&test)?);
    } else {
        let r = &test.report;
        let chosen = match (&cfg.select_within_budget, test.val_within_budget) {
            (Some(b), Some(_)) => format!(
                "the best on validation within {} steps; theta {} chosen there",
                b.max_decision_step, r.theta
            ),
            (Some(b), None) => format!(
                "no threshold decided within {} steps on validation; the best at theta {}",
                b.max_decision_step, r.theta
            ),
            (None, _) => format!("the best on validation; theta {}", r.theta),
        };
        println!(
            "test (model of epoch {}, {chosen}): accuracy {:.2}% at mean decision \
             step {:.2}/{} ({:.1}% not fired); accuracy at T-1 {:.2}%",
            test.model_epoch.unwrap_or(0),
            100.0 * r.accuracy,
            r.mean_decision_step,
            r.steps,
            100.0 * r.not_fired,
            100.0 * r.eos_accuracy.unwrap_or(f64::NAN)
        );
        let total: f64 = outcome.epochs.iter().map(|e| e.wall_s).sum();
        println!(
            "training wall time {total:.1}s; results in {}",
            args.out.display()
        );
    }
    Ok(())
}
