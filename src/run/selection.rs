//! Model selection: which epoch's weights a run keeps as `model.safetensors`, and at
//! which threshold it is tested and then run. Without a step budget, the epoch most
//! accurate on validation at the run's threshold; with one (docs/runs.md, 'Step
//! budgets'), the epoch, and the threshold, most accurate on validation within a mean
//! decision step of the budget.

use super::directory::{SNAPSHOT_FILE, TEST_FILE};
use super::metrics::EpochRecord;
use crate::epoch::parse_theta_sweep;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

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
pub(super) fn selects_over(candidate: &EpochRecord, current: Option<&EpochRecord>) -> bool {
    current.is_none_or(|c| selection_score(candidate) > selection_score(c))
}

/// The epoch with the best [`selection_score`] (the first of equals).
pub(super) fn best_epoch(records: &[EpochRecord]) -> Option<&EpochRecord> {
    records.iter().fold(
        None,
        |best, r| if selects_over(r, best) { Some(r) } else { best },
    )
}

/// The threshold the test split is evaluated at: the one chosen on validation for the
/// `selected` epoch under a step `budget`, else the run's `theta`.
pub(super) fn test_theta(
    budget: Option<&StepBudget>,
    theta: f32,
    selected: Option<&EpochRecord>,
) -> f32 {
    let Some(budget) = budget else {
        return theta;
    };
    match selected.and_then(|r| r.val_within_budget) {
        Some(p) => p.theta,
        None => {
            log::warn!(
                "no swept threshold decided within a mean of {} steps on validation at any epoch; \
                 kept the epoch most accurate at --theta {} and testing there",
                budget.max_decision_step,
                theta
            );
            theta
        }
    }
}

/// The threshold a finished run selected within its step budget (`test.json`'s
/// `val_within_budget`; for a snapshot, its epoch's in `snapshot.json`), if it was
/// made with one (`budget`) and found one.
pub(super) fn selected_theta(dir: &Path, budget: Option<&StepBudget>) -> Result<Option<f32>> {
    let Some(path) = [TEST_FILE, SNAPSHOT_FILE]
        .iter()
        .map(|f| dir.join(f))
        .find(|p| p.is_file())
    else {
        return Ok(None);
    };
    if budget.is_none() {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::metrics::tests::record;

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
}
