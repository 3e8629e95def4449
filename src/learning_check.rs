//! Signs, read from a run's epoch records, that rank-coding training is not doing what
//! it should: the threshold is never reached (every decision falls at the last step,
//! so the run trains as end-of-sequence training), or validation accuracy sits at
//! chance. `train` prints the warning once, while the run goes on.

use crate::model::TrainMode;
use crate::run::{EpochRecord, RunConfig};

/// The first epoch at which a run of `epochs` epochs is judged: the first fifth of a
/// run, and at least 3 epochs, may still decide late while the model learns (FSDD's
/// recipe first decides before the last frame in epoch 6 of 40).
pub fn first_checked_epoch(epochs: usize) -> usize {
    epochs.div_ceil(5).max(3)
}

/// A mean decision step at or above this share of the sequence length: (almost) no
/// validation sequence decides before the last step.
const LATE_SHARE: f64 = 0.99;

/// Validation accuracy within this many points of 1 / classes counts as chance.
const CHANCE_MARGIN: f64 = 0.05;

/// The warning for `record` of a run with settings `cfg`, if its validation pass
/// shows that it is not learning to decide early, or not learning at all. Records of
/// epochs before [`first_checked_epoch`] pass.
pub fn not_learning(cfg: &RunConfig, record: &EpochRecord) -> Option<String> {
    if record.epoch < first_checked_epoch(cfg.epochs) {
        return None;
    }
    let steps = cfg.shape().steps as f64;
    let chance = 1.0 / cfg.model.classes as f64;
    let after = format!("after {}", crate::words::count(record.epoch, "epoch"));
    if cfg.rc.mode == TrainMode::Rc && record.val_mean_decision_step >= LATE_SHARE * steps {
        let warmup = match cfg.theta_warmup {
            Some(_) => "a longer --theta-warmup",
            None => "--theta-warmup 0.1:4",
        };
        return Some(format!(
            "{after} (almost) no validation sequence decides before the last step (mean \
             decision step {:.2} of {steps}): the threshold theta {} is never reached, so \
             rank coding trains as end-of-sequence training. Try {warmup} or a lower --theta",
            record.val_mean_decision_step, cfg.rc.theta
        ));
    }
    if record.val_accuracy <= chance + CHANCE_MARGIN {
        return Some(format!(
            "{after} validation accuracy is {:.1}%, chance for {} classes is {:.1}%: the \
             model is not learning. Try a lower --lr, --clip-grad-norm 1, or check the data",
            100.0 * record.val_accuracy,
            cfg.model.classes,
            100.0 * chance
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::task::Task;
    use crate::recipe::Recipe;

    fn record(epoch: usize, val_accuracy: f64, val_mean_decision_step: f64) -> EpochRecord {
        EpochRecord {
            epoch,
            train_loss: 0.5,
            train_accuracy: 0.5,
            val_accuracy,
            val_mean_decision_step,
            lr: None,
            train_theta: None,
            val_within_budget: None,
            steps_processed: 1,
            wall_s: 1.0,
        }
    }

    /// MNIST's recipe, with 10 epochs: judged from epoch 3.
    fn mnist(mode: TrainMode) -> RunConfig {
        let mut cfg = Recipe::for_task(Task::Mnist).run_config(
            Task::Mnist,
            mode,
            Task::Mnist.default_frontend(),
        );
        cfg.epochs = 10;
        cfg
    }

    #[test]
    fn long_runs_are_judged_after_a_fifth_of_their_epochs() {
        assert_eq!(first_checked_epoch(1), 3);
        assert_eq!(first_checked_epoch(15), 3);
        assert_eq!(first_checked_epoch(16), 4);
        assert_eq!(first_checked_epoch(40), 8);
    }

    #[test]
    fn a_threshold_never_reached_is_named_with_its_cure() {
        // Our first MNIST runs: 92.5% at 20.0 of 20 steps.
        let cfg = mnist(TrainMode::Rc);
        let warning = not_learning(&cfg, &record(3, 0.925, 20.0)).expect("a warning");
        assert!(warning.contains("never reached"), "{warning}");
        assert!(warning.contains("a longer --theta-warmup"), "{warning}");
        // Not before the check, and not for a run that decides early.
        assert_eq!(not_learning(&cfg, &record(2, 0.925, 20.0)), None);
        assert_eq!(not_learning(&cfg, &record(3, 0.925, 19.7)), None);
        assert_eq!(not_learning(&cfg, &record(5, 0.98, 1.5)), None);
        // End-of-sequence training decides at the last step by design.
        assert_eq!(
            not_learning(&mnist(TrainMode::Eos), &record(3, 0.925, 20.0)),
            None
        );
    }

    #[test]
    fn accuracy_at_chance_is_named() {
        let cfg = mnist(TrainMode::Eos);
        let warning = not_learning(&cfg, &record(4, 0.11, 20.0)).expect("a warning");
        assert!(
            warning.contains("chance for 10 classes is 10.0%"),
            "{warning}"
        );
        assert_eq!(not_learning(&cfg, &record(4, 0.16, 20.0)), None);
    }
}
