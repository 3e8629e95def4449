//! Model and rank-coding configuration, with documented defaults and validation.

use crate::error::{Error, Result, ensure};
use serde::{Deserialize, Serialize};

/// The largest size accepted for any one dimension (input, hidden, classes).
/// Beyond this a single weight matrix no longer fits a GPU buffer binding.
pub const MAX_DIM: usize = 1 << 14;

/// How the C output units turn logits into scores ([`Readout::about`] says how each
/// does).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Readout {
    #[default]
    Sigmoid,
    Softmax,
}

impl Readout {
    /// Every readout.
    pub const ALL: [Readout; 2] = [Readout::Sigmoid, Readout::Softmax];

    /// The name on the command line and in `config.json`.
    pub fn name(self) -> &'static str {
        match self {
            Readout::Sigmoid => "sigmoid",
            Readout::Softmax => "softmax",
        }
    }

    /// What the readout is, in a line.
    pub fn about(self) -> &'static str {
        match self {
            Readout::Sigmoid => {
                "One sigmoid unit per class, loss BCE summed over units (the authors' choice)"
            }
            Readout::Softmax => "Softmax over the units, loss cross-entropy on the logits",
        }
    }

    /// The value written into shader uniforms.
    pub fn shader_code(self) -> u32 {
        match self {
            Readout::Sigmoid => 0,
            Readout::Softmax => 1,
        }
    }
}

/// Where the training loss is taken ([`TrainMode::about`] says where for each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TrainMode {
    #[default]
    Rc,
    Eos,
}

impl TrainMode {
    /// Every mode.
    pub const ALL: [TrainMode; 2] = [TrainMode::Rc, TrainMode::Eos];

    /// The name on the command line and in `config.json`.
    pub fn name(self) -> &'static str {
        match self {
            TrainMode::Rc => "rc",
            TrainMode::Eos => "eos",
        }
    }

    /// What the mode does, in a line.
    pub fn about(self) -> &'static str {
        match self {
            TrainMode::Rc => {
                "Rank coding: loss at each sequence's decision step t*, BPTT from t* only, \
                 and no step after t* is computed"
            }
            TrainMode::Eos => "End of sequence: loss at T-1 for every sequence, full BPTT",
        }
    }
}

/// The shape of the network: stacked LSTM layers and a linear readout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// Features per input step (I).
    pub input_size: usize,
    /// LSTM hidden units per layer (H).
    pub hidden_size: usize,
    /// Number of stacked LSTM layers (1 in the paper).
    pub layers: usize,
    /// Output units, one per class (C).
    pub classes: usize,
    /// Sigmoid units (default) or softmax.
    pub readout: Readout,
}

impl ModelConfig {
    /// Checks every size is in range.
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("input size", self.input_size),
            ("hidden size", self.hidden_size),
            ("classes", self.classes),
        ] {
            ensure(v > 0 && v <= MAX_DIM, || {
                format!("{name} must be between 1 and {MAX_DIM}, got {v}")
            })?;
        }
        ensure(self.layers > 0 && self.layers <= 16, || {
            format!("layers must be between 1 and 16, got {}", self.layers)
        })?;
        ensure(
            self.readout == Readout::Sigmoid || self.classes >= 2,
            || "a softmax readout needs at least 2 classes".to_string(),
        )
    }

    /// Input width of LSTM layer `layer`.
    pub fn layer_input(&self, layer: usize) -> usize {
        if layer == 0 {
            self.input_size
        } else {
            self.hidden_size
        }
    }
}

/// The rank-coding rule and loss settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RcConfig {
    /// Spike threshold on the output scores, in (0, 1). Default 0.95.
    pub theta: f32,
    /// Weight of the entropy bonus at the decision step, >= 0. Default 0.
    pub beta: f32,
    /// RC (loss at t*) or end-of-sequence training.
    pub mode: TrainMode,
    /// With `Some(s)`, each sequence's loss is the mean over its steps from the s-th
    /// (1-based, as decision steps are counted) to its loss step, instead of the loss
    /// step alone (docs/design.md, 'The loss'). Only computed steps carry a loss, so
    /// rank coding still stops at t*. Default `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_from_step: Option<usize>,
}

impl Default for RcConfig {
    fn default() -> Self {
        RcConfig {
            theta: 0.95,
            beta: 0.0,
            mode: TrainMode::Rc,
            loss_from_step: None,
        }
    }
}

impl RcConfig {
    /// `loss_from_step` counted from 0, as the engine's steps are.
    pub fn loss_from_index(&self) -> Option<usize> {
        self.loss_from_step.map(|s| s - 1)
    }

    /// The first step (0-based) whose loss counts for a sequence whose loss step is
    /// `loss_step`: that step itself unless `loss_from_step` starts the loss earlier.
    pub fn first_loss_step(&self, loss_step: usize) -> usize {
        self.loss_from_index()
            .map_or(loss_step, |first| first.min(loss_step))
    }

    /// Checks theta is in (0, 1), beta is finite and non-negative, and the loss
    /// starts at step 1 or later.
    pub fn validate(&self) -> Result<()> {
        ensure(self.theta > 0.0 && self.theta < 1.0, || {
            // A percentage, as accuracies are printed: 95 for 0.95.
            let hint = if self.theta > 1.0 && self.theta < 100.0 {
                format!(" (did you mean {}?)", self.theta / 100.0)
            } else {
                String::new()
            };
            format!("theta must be in (0, 1), got {}{hint}", self.theta)
        })?;
        ensure(self.beta.is_finite() && self.beta >= 0.0, || {
            format!("beta must be finite and >= 0, got {}", self.beta)
        })?;
        ensure(self.loss_from_step != Some(0), || {
            "the loss's first step (--loss-from-step) counts from 1, got 0".to_string()
        })
    }
}

/// Adam hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdamConfig {
    /// Learning rate.
    pub lr: f32,
    /// First-moment decay.
    pub beta1: f32,
    /// Second-moment decay.
    pub beta2: f32,
    /// Denominator epsilon.
    pub eps: f32,
    /// Clip the gradient to this global L2 norm before each step (as PyTorch's
    /// `clip_grad_norm_`); `None`: no clipping.
    #[serde(default)]
    pub max_grad_norm: Option<f32>,
    /// Decoupled weight decay (AdamW, as PyTorch's `AdamW`): each step first scales
    /// every parameter by 1 - lr * weight_decay. 0: plain Adam.
    #[serde(default)]
    pub weight_decay: f32,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            max_grad_norm: None,
            weight_decay: 0.0,
        }
    }
}

impl AdamConfig {
    /// Checks the values are usable.
    pub fn validate(&self) -> Result<()> {
        ensure(self.lr.is_finite() && self.lr > 0.0, || {
            format!("learning rate must be > 0, got {}", self.lr)
        })?;
        ensure(
            (0.0..1.0).contains(&self.beta1) && (0.0..1.0).contains(&self.beta2),
            || {
                format!(
                    "Adam betas must be in [0, 1), got {} and {}",
                    self.beta1, self.beta2
                )
            },
        )?;
        ensure(self.eps > 0.0, || {
            format!("Adam eps must be > 0, got {}", self.eps)
        })?;
        ensure(
            self.weight_decay.is_finite() && self.weight_decay >= 0.0,
            || format!("weight decay must be >= 0, got {}", self.weight_decay),
        )?;
        ensure(
            self.max_grad_norm.is_none_or(|n| n.is_finite() && n > 0.0),
            || {
                format!(
                    "the gradient-norm clip must be > 0, got {}",
                    self.max_grad_norm.unwrap_or_default()
                )
            },
        )
    }

    /// The factor that scales a gradient of global L2 norm `norm` down to at most
    /// `max_grad_norm` (1 without clipping), as PyTorch's `clip_grad_norm_`:
    /// min(1, max / (norm + 1e-6)).
    pub fn clip_coefficient(&self, norm: f64) -> f64 {
        match self.max_grad_norm {
            Some(max) => (max as f64 / (norm + 1e-6)).min(1.0),
            None => 1.0,
        }
    }
}

/// How the learning rate changes over a run's epochs ([`LrSchedule::about`] says how
/// for each).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LrSchedule {
    #[default]
    Constant,
    Cosine,
}

impl LrSchedule {
    /// Every schedule.
    pub const ALL: [LrSchedule; 2] = [LrSchedule::Constant, LrSchedule::Cosine];

    /// The name on the command line and in `config.json`.
    pub fn name(self) -> &'static str {
        match self {
            LrSchedule::Constant => "constant",
            LrSchedule::Cosine => "cosine",
        }
    }

    /// What the schedule does, in a line.
    pub fn about(self) -> &'static str {
        match self {
            LrSchedule::Constant => "The same rate throughout",
            LrSchedule::Cosine => {
                "Cosine annealing from the rate towards 0 over the run's epochs: \
                 lr * (1 + cos(pi * (epoch - 1) / epochs)) / 2 for epochs 1..=epochs. With \
                 `--lr-cycles N`, over each of N equal cycles of epochs in turn (warm restarts)"
            }
        }
    }

    /// The learning rate of `epoch` (1-based) of a run whose schedule repeats every
    /// `cycle_epochs` epochs (the run's epochs, unless it has `--lr-cycles`).
    pub fn lr(self, lr: f32, epoch: usize, cycle_epochs: usize) -> f32 {
        match self {
            LrSchedule::Constant => lr,
            LrSchedule::Cosine => {
                let cycle_epochs = cycle_epochs.max(1);
                let into_cycle = epoch.saturating_sub(1) % cycle_epochs;
                let done = into_cycle as f64 / cycle_epochs as f64;
                (lr as f64 * 0.5 * (1.0 + (std::f64::consts::PI * done).cos())) as f32
            }
        }
    }
}

/// A training threshold that starts low and rises to the run's theta: every sequence
/// decides early at first, so the early outputs get trained, and the ones the model
/// is unsure of move later as the threshold rises. A start at or below 1/C with a
/// softmax readout of C classes makes every sequence decide at t = 0 in epoch 1. In
/// our temporal-MNIST runs without it (softmax, theta 0.95), no output crossed theta
/// before the last step, where the background arrives as one large input event, so
/// rank-coding training stayed end-of-sequence training.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ThetaWarmup {
    /// The training threshold of epoch 1, in (0, 1).
    pub start: f32,
    /// Epochs over which the threshold rises linearly to theta, which applies from
    /// epoch `epochs + 1` on.
    pub epochs: usize,
}

impl ThetaWarmup {
    /// Parses `START:EPOCHS`, e.g. `0.2:4`.
    pub fn parse(spec: &str) -> Result<Self> {
        let bad = |why: &str| {
            Error::InvalidConfig(format!(
                "theta warm-up '{spec}': {why} (expected START:EPOCHS, e.g. 0.2:4)"
            ))
        };
        let (start, epochs) = spec.split_once(':').ok_or_else(|| bad("no ':'"))?;
        let warmup = ThetaWarmup {
            start: start
                .trim()
                .parse()
                .map_err(|_| bad("START is not a number"))?,
            epochs: epochs
                .trim()
                .parse()
                .map_err(|_| bad("EPOCHS is not a whole number"))?,
        };
        match warmup.problem() {
            Some(why) => Err(bad(&why)),
            None => Ok(warmup),
        }
    }

    /// Checks the start is in (0, 1) and the warm-up lasts at least one epoch.
    pub fn validate(&self) -> Result<()> {
        match self.problem() {
            Some(why) => Err(Error::InvalidConfig(format!("theta warm-up: {why}"))),
            None => Ok(()),
        }
    }

    /// What is wrong with these values, if anything.
    fn problem(&self) -> Option<String> {
        if !(self.start > 0.0 && self.start < 1.0) {
            Some(format!(
                "the starting threshold must be in (0, 1), got {}",
                self.start
            ))
        } else if self.epochs < 1 {
            Some("it must last at least 1 epoch".into())
        } else {
            None
        }
    }

    /// The settings epoch `epoch` (1-based) of a run with settings `rc` trains with:
    /// `rc` at the warm-up's threshold.
    pub fn training_rc(&self, rc: RcConfig, epoch: usize) -> RcConfig {
        let done = (epoch.saturating_sub(1) as f64 / self.epochs as f64).min(1.0);
        let theta = self.start as f64 + (rc.theta as f64 - self.start as f64) * done;
        RcConfig {
            theta: theta as f32,
            ..rc
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> ModelConfig {
        ModelConfig {
            input_size: 3,
            hidden_size: 5,
            layers: 1,
            classes: 2,
            readout: Readout::Sigmoid,
        }
    }

    #[test]
    fn valid_configs_pass() {
        model().validate().unwrap();
        RcConfig::default().validate().unwrap();
        AdamConfig::default().validate().unwrap();
    }

    #[test]
    fn bad_sizes_are_refused() {
        for m in [
            ModelConfig {
                hidden_size: 0,
                ..model()
            },
            ModelConfig {
                input_size: MAX_DIM + 1,
                ..model()
            },
            ModelConfig {
                layers: 0,
                ..model()
            },
            ModelConfig {
                classes: 1,
                readout: Readout::Softmax,
                ..model()
            },
        ] {
            assert!(m.validate().is_err(), "{m:?} should be refused");
        }
    }

    #[test]
    fn bad_theta_and_beta_are_refused() {
        for (theta, beta) in [
            (0.0, 0.0),
            (1.0, 0.0),
            (-0.5, 0.0),
            (f32::NAN, 0.0),
            (0.9, -1.0),
            (0.9, f32::INFINITY),
        ] {
            let rc = RcConfig {
                theta,
                beta,
                mode: TrainMode::Rc,
                loss_from_step: None,
            };
            let err = rc.validate().unwrap_err().to_string();
            assert!(err.contains("theta") || err.contains("beta"), "{err}");
        }
    }

    #[test]
    fn the_loss_starts_at_its_first_step_or_at_the_decision_if_that_is_earlier() {
        let rc = |loss_from_step| RcConfig {
            loss_from_step,
            ..RcConfig::default()
        };
        assert_eq!(rc(None).first_loss_step(7), 7);
        // Step 3 counted from 1 is step 2 counted from 0.
        assert_eq!(rc(Some(3)).first_loss_step(7), 2);
        assert_eq!(rc(Some(3)).first_loss_step(2), 2);
        assert_eq!(rc(Some(3)).first_loss_step(1), 1);
        assert_eq!(rc(Some(1)).first_loss_step(5), 0);
        rc(Some(1)).validate().unwrap();
        let err = rc(Some(0)).validate().unwrap_err().to_string();
        assert!(err.contains("counts from 1"), "{err}");
    }

    #[test]
    fn gradient_clipping_follows_pytorch() {
        let clip = AdamConfig {
            max_grad_norm: Some(2.0),
            ..AdamConfig::default()
        };
        assert_eq!(clip.clip_coefficient(1.0), 1.0);
        assert!((clip.clip_coefficient(8.0) - 0.25).abs() < 1e-6);
        assert_eq!(AdamConfig::default().clip_coefficient(1e9), 1.0);
        for bad in [0.0, -1.0, f32::NAN, f32::INFINITY] {
            let err = AdamConfig {
                max_grad_norm: Some(bad),
                ..AdamConfig::default()
            }
            .validate()
            .unwrap_err()
            .to_string();
            assert!(err.contains("clip"), "{err}");
        }
    }

    #[test]
    fn theta_warmup_rises_linearly_to_theta_and_stays_there() {
        let w = ThetaWarmup::parse("0.2:3").unwrap();
        assert_eq!(
            w,
            ThetaWarmup {
                start: 0.2,
                epochs: 3
            }
        );
        let rc = RcConfig {
            theta: 0.95,
            ..RcConfig::default()
        };
        let theta = |e| w.training_rc(rc, e).theta;
        assert_eq!(theta(1), 0.2);
        assert!((theta(2) - 0.45).abs() < 1e-6);
        assert!((theta(3) - 0.7).abs() < 1e-6);
        assert_eq!(theta(4), 0.95);
        assert_eq!(theta(40), 0.95);
        for bad in ["0.2", "x:3", "0.2:y", "0:3", "1:3", "0.2:0", "0.2:-1"] {
            let err = ThetaWarmup::parse(bad).unwrap_err().to_string();
            assert!(err.contains("theta warm-up") && err.contains(bad), "{err}");
        }
    }

    #[test]
    fn cosine_schedule_starts_at_the_rate_and_falls_towards_zero() {
        let lr = |e| LrSchedule::Cosine.lr(0.01, e, 4);
        assert_eq!(lr(1), 0.01);
        assert!((lr(3) - 0.005).abs() < 1e-9);
        assert!((lr(4) - 0.01 * (1.0 + (0.75 * std::f32::consts::PI).cos()) / 2.0).abs() < 1e-9);
        assert!((1..4).all(|e| lr(e + 1) < lr(e)));
        assert_eq!(LrSchedule::Constant.lr(0.01, 4, 4), 0.01);
    }

    #[test]
    fn cosine_cycles_restart_at_the_rate_and_each_anneals_like_a_short_run() {
        let lr = |e| LrSchedule::Cosine.lr(0.01, e, 4);
        for start in [1, 5, 9] {
            assert_eq!(lr(start), 0.01, "epoch {start} starts a cycle");
            assert!((lr(start + 2) - 0.005).abs() < 1e-9);
            assert!(lr(start + 3) < lr(start + 2) && lr(start + 2) < lr(start + 1));
        }
        assert_eq!(LrSchedule::Constant.lr(0.01, 5, 4), 0.01);
    }
}
