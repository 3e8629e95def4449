//! Passes over a dataset: a training epoch with shuffled batches, and evaluation with
//! the rank-coding decision rule, at one threshold or a sweep of them (FROM:TO:N,
//! [`parse_theta_sweep`]). Aggregates the per-batch GPU reports. A whole training run
//! around the epochs is [`crate::run`].

use crate::data::Dataset;
use crate::engine::{BatchReport, Engine};
use crate::error::{Error, Result};
use crate::model::{RcConfig, TrainMode, decision};
use crate::rng::Rng;
use serde::Serialize;
use std::time::Instant;

/// Sums of batch reports over an epoch or an evaluation.
#[derive(Debug, Clone, Default)]
struct Totals {
    sequences: usize,
    loss_sum: f64,
    correct: usize,
    fired: usize,
    steps_processed: usize,
    decision_steps: usize,
    eos_correct: usize,
    eos_rows: usize,
    readbacks: usize,
}

impl Totals {
    fn add(&mut self, r: &BatchReport) {
        self.sequences += r.sequences;
        self.loss_sum += r.loss * r.sequences as f64;
        self.correct += r.correct;
        self.fired += r.fired;
        self.steps_processed += r.steps_processed;
        self.decision_steps += r.decision_steps;
        self.eos_correct += r.eos_correct;
        self.eos_rows += r.eos_rows;
        self.readbacks += r.readbacks;
    }

    fn per_sequence(&self, v: f64) -> f64 {
        v / self.sequences.max(1) as f64
    }
}

/// Refuses a dataset without sequences, whose report would be of nothing (an
/// accuracy of 0% at step 0, or NaN); `what` is what would be done with it.
fn refuse_empty(data: &Dataset, what: &str) -> Result<()> {
    if data.is_empty() {
        return Err(Error::InvalidData(format!("no sequences to {what}")));
    }
    Ok(())
}

/// One training epoch.
#[derive(Debug, Clone, Serialize)]
pub struct EpochReport {
    pub epoch: usize,
    pub train_loss: f64,
    pub train_accuracy: f64,
    /// Mean decision step (t* + 1) of the training batches.
    pub train_mean_decision_step: f64,
    /// Steps computed, summed over sequences.
    pub steps_processed: usize,
    pub sequences: usize,
    pub wall_s: f64,
}

/// Rank-coded evaluation of a dataset.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct EvalReport {
    /// The adapter it ran on.
    pub adapter: String,
    /// The spike threshold of the rank-coded pass.
    pub theta: f32,
    /// Accuracy at the decision step.
    pub accuracy: f64,
    /// Mean of (decision step + 1), in steps.
    pub mean_decision_step: f64,
    /// Mean decision step as a fraction of T.
    pub mean_decision_fraction: f64,
    /// Share of sequences with no spike (decided at T-1).
    pub not_fired: f64,
    /// Accuracy of the argmax at T-1 ignoring the threshold (from a full pass).
    pub eos_accuracy: Option<f64>,
    /// Steps computed by the rank-coded pass, summed over sequences.
    pub steps_processed: usize,
    /// Steps a full pass would compute (sequences x T).
    pub steps_full: usize,
    pub sequences: usize,
    pub steps: usize,
    pub wall_s: f64,
    /// Per sequence, in order: the decision step (0-based) and the predicted class.
    #[serde(skip)]
    pub decisions: Vec<(u32, u32)>,
}

/// Accuracy and decision time of one group of an evaluation's sequences (a speaker's).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupReport {
    pub name: String,
    pub sequences: usize,
    pub accuracy: f64,
    /// Mean of (decision step + 1), in steps.
    pub mean_decision_step: f64,
}

/// The decisions of `report` on sequences labelled `labels`, grouped by `groups` (a
/// name per sequence, in order; sequences without one are left out), in name order.
pub fn by_group(
    report: &EvalReport,
    labels: &[u32],
    groups: &[Option<String>],
) -> Vec<GroupReport> {
    let mut sums: std::collections::BTreeMap<&str, (usize, usize, usize)> = Default::default();
    for ((&(step, class), &label), group) in report.decisions.iter().zip(labels).zip(groups) {
        let Some(name) = group else { continue };
        let (n, correct, steps) = sums.entry(name).or_default();
        *n += 1;
        *correct += (class == label) as usize;
        *steps += step as usize + 1;
    }
    sums.into_iter()
        .map(|(name, (n, correct, steps))| GroupReport {
            name: name.to_string(),
            sequences: n,
            accuracy: correct as f64 / n as f64,
            mean_decision_step: steps as f64 / n as f64,
        })
        .collect()
}

/// Batches of `batch_size` indices in a seeded random order (the last may be short).
fn shuffled_batches(n: usize, batch_size: usize, rng: &mut Rng) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..n).collect();
    rng.shuffle(&mut order);
    order.chunks(batch_size).map(|c| c.to_vec()).collect()
}

/// Trains one epoch; `on_batch` sees every batch report (for progress display).
pub fn train_epoch(
    engine: &mut Engine,
    data: &Dataset,
    batch_size: usize,
    epoch: usize,
    rng: &mut Rng,
    mut on_batch: impl FnMut(&BatchReport),
) -> Result<EpochReport> {
    refuse_empty(data, "train on")?;
    let start = Instant::now();
    let mut totals = Totals::default();
    for indices in shuffled_batches(data.len(), batch_size, rng) {
        let report = engine.train_batch(&data.batch(&indices))?;
        on_batch(&report);
        totals.add(&report);
    }
    Ok(EpochReport {
        epoch,
        train_loss: totals.per_sequence(totals.loss_sum),
        train_accuracy: totals.per_sequence(totals.correct as f64),
        train_mean_decision_step: totals.per_sequence(totals.decision_steps as f64),
        steps_processed: totals.steps_processed,
        sequences: totals.sequences,
        wall_s: start.elapsed().as_secs_f64(),
    })
}

/// Evaluates `data` in order with the decision rule; with `with_eos` also runs a full
/// pass for the end-of-sequence accuracy (its time is not counted in `wall_s`).
pub fn evaluate(
    engine: &mut Engine,
    data: &Dataset,
    batch_size: usize,
    with_eos: bool,
) -> Result<EvalReport> {
    Ok(evaluate_and_sweep(engine, data, batch_size, with_eos, None)?.0)
}

/// [`evaluate`], and with `thetas` the threshold sweep ([`theta_sweep`]): read from
/// the full pass's logits when there is one, so it costs no pass of its own.
pub fn evaluate_and_sweep(
    engine: &mut Engine,
    data: &Dataset,
    batch_size: usize,
    with_eos: bool,
    thetas: Option<&[f32]>,
) -> Result<(EvalReport, Option<Vec<SweepPoint>>)> {
    refuse_empty(data, "evaluate")?;
    let indices: Vec<usize> = (0..data.len()).collect();
    let start = Instant::now();
    let mut rc = Totals::default();
    let mut decisions = Vec::with_capacity(data.len());
    for chunk in indices.chunks(batch_size) {
        let report = engine.evaluate(&data.batch(chunk))?;
        decisions.extend(
            report
                .decision_step
                .iter()
                .copied()
                .zip(report.prediction.iter().copied()),
        );
        rc.add(&report);
    }
    let wall_s = start.elapsed().as_secs_f64();
    let (mut eos_accuracy, mut sweep) = (None, None);
    if with_eos {
        let model = engine.config().model;
        let mut full = Totals::default();
        let mut scores = thetas.map(|_| StepScores::new(data));
        for chunk in indices.chunks(batch_size) {
            full.add(&engine.evaluate_full(&data.batch(chunk))?);
            if let Some(scores) = &mut scores {
                let logits = engine.batch_logits(data.steps, chunk.len())?;
                let last_step = vec![data.steps as u32 - 1; chunk.len()];
                scores.add_batch(&logits, &last_step, model.classes, model.readout);
            }
        }
        eos_accuracy = Some(full.eos_correct as f64 / full.eos_rows.max(1) as f64);
        sweep = scores
            .zip(thetas)
            .map(|(scores, thetas)| scores.points(thetas));
    } else if let Some(thetas) = thetas {
        sweep = Some(theta_sweep(engine, data, batch_size, thetas)?);
    }
    let mean_decision_step = rc.per_sequence(rc.decision_steps as f64);
    let report = EvalReport {
        adapter: engine.context().adapter_summary(),
        theta: engine.config().rc.theta,
        accuracy: rc.per_sequence(rc.correct as f64),
        mean_decision_step,
        mean_decision_fraction: mean_decision_step / data.steps as f64,
        not_fired: 1.0 - rc.per_sequence(rc.fired as f64),
        eos_accuracy,
        steps_processed: rc.steps_processed,
        steps_full: data.len() * data.steps,
        sequences: rc.sequences,
        steps: data.steps,
        wall_s,
        decisions,
    };
    Ok((report, sweep))
}

/// One point of a threshold sweep.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct SweepPoint {
    pub theta: f32,
    pub accuracy: f64,
    /// Mean of (decision step + 1).
    pub mean_decision_step: f64,
    pub not_fired: f64,
}

/// The sweep point with the best accuracy among those deciding within `max_step` steps
/// on average (the first of equals), if any does: a threshold chosen on validation
/// for a decision-time budget.
pub fn best_within(sweep: &[SweepPoint], max_step: f64) -> Option<SweepPoint> {
    sweep
        .iter()
        .filter(|p| p.mean_decision_step <= max_step)
        .fold(None, |best: Option<SweepPoint>, &p| match best {
            Some(b) if p.accuracy <= b.accuracy => Some(b),
            _ => Some(p),
        })
}

/// Per row and computed step of a rank-coded pass: the best output score and the
/// predicted class.
struct StepScores {
    steps: usize,
    /// `[row][step]` (best score, argmax class), each row up to its last computed step.
    rows: Vec<Vec<(f64, usize)>>,
    labels: Vec<u32>,
}

impl StepScores {
    fn new(data: &Dataset) -> Self {
        StepScores {
            steps: data.steps,
            rows: Vec::new(),
            labels: data.labels.clone(),
        }
    }

    /// The sweep point of every threshold in `thetas`.
    fn points(&self, thetas: &[f32]) -> Vec<SweepPoint> {
        thetas.iter().map(|&theta| self.point(theta)).collect()
    }

    /// Adds the rows of a batch from its `[steps read, rows, C]` logits, each row up to and
    /// including its `last_step` (the rest of its steps were not computed).
    fn add_batch(
        &mut self,
        logits: &[f32],
        last_step: &[u32],
        classes: usize,
        readout: crate::model::Readout,
    ) {
        let rows = last_step.len();
        for (b, &last) in last_step.iter().enumerate() {
            let per_step = (0..=last as usize)
                .map(|t| {
                    let at = (t * rows + b) * classes;
                    let z: Vec<f64> = logits[at..at + classes].iter().map(|&v| v as f64).collect();
                    let (best, score) = decision::top(readout, &z);
                    (score, best)
                })
                .collect();
            self.rows.push(per_step);
        }
    }

    /// Applies the decision rule with threshold `theta` to every row. A row cut short
    /// spiked at its last step, at a threshold at least `theta`; should the host's
    /// scores, rounded differently from the GPU's, not reach `theta` before, that
    /// last step is its decision.
    fn point(&self, theta: f32) -> SweepPoint {
        let (mut correct, mut steps, mut fired) = (0usize, 0usize, 0usize);
        for (row, &label) in self.rows.iter().zip(&self.labels) {
            let spike = decision::first_crossing(row.iter().map(|&(score, _)| score), theta);
            let cut_short = row.len() < self.steps;
            let step = decision::decision_step(spike, row.len() - 1);
            correct += (row[step].1 == label as usize) as usize;
            steps += step + 1;
            fired += (spike.is_some() || cut_short) as usize;
        }
        let n = self.rows.len().max(1) as f64;
        SweepPoint {
            theta,
            accuracy: correct as f64 / n,
            mean_decision_step: steps as f64 / n,
            not_fired: 1.0 - fired as f64 / n,
        }
    }
}

/// Accuracy against mean decision step for every threshold in `thetas`, from one
/// rank-coded pass over `data` at the largest of them: a score that reaches a
/// threshold has reached every lower one, so each row's first crossing of any swept
/// threshold lies within the steps it computes up to its decision at the largest.
/// Those steps' logits are read back once per batch and the decision rule is applied
/// on the host for each threshold. The engine's own settings are restored.
pub fn theta_sweep(
    engine: &mut Engine,
    data: &Dataset,
    batch_size: usize,
    thetas: &[f32],
) -> Result<Vec<SweepPoint>> {
    refuse_empty(data, "sweep thresholds on")?;
    let Some(top) = thetas.iter().copied().reduce(f32::max) else {
        return Ok(Vec::new());
    };
    let model = engine.config().model;
    let own = engine.config().rc;
    engine.set_rc(RcConfig {
        theta: top,
        mode: TrainMode::Rc,
        ..own
    })?;
    let indices: Vec<usize> = (0..data.len()).collect();
    let mut scores = StepScores::new(data);
    let passes = indices.chunks(batch_size).try_for_each(|chunk| {
        let report = engine.evaluate(&data.batch(chunk))?;
        let steps_used = report
            .decision_step
            .iter()
            .max()
            .map_or(0, |&t| t as usize + 1);
        let logits = engine.batch_logits(steps_used, chunk.len())?;
        scores.add_batch(&logits, &report.decision_step, model.classes, model.readout);
        Ok::<_, crate::error::Error>(())
    });
    engine.set_rc(own)?;
    passes?;
    Ok(scores.points(thetas))
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
    #[test]
    fn sweep_points_apply_the_decision_rule() {
        // Two rows, three steps: row 0 reaches 0.9 at step 1 (class 1, correct);
        // row 1 never exceeds 0.6: at 0.8 it is decided (wrongly) at the end, at 0.55
        // it spikes at once with the right class.
        let s = StepScores {
            steps: 3,
            rows: vec![
                vec![(0.5, 0), (0.9, 1), (0.99, 1)],
                vec![(0.6, 0), (0.55, 1), (0.5, 1)],
            ],
            labels: vec![1, 0],
        };
        let p = s.point(0.8);
        assert_eq!(
            (p.accuracy, p.mean_decision_step, p.not_fired),
            (0.5, (2.0 + 3.0) / 2.0, 0.5)
        );
        let p = s.point(0.55);
        assert_eq!(
            (p.accuracy, p.mean_decision_step, p.not_fired),
            (1.0, (2.0 + 1.0) / 2.0, 0.0)
        );
    }

    use super::*;

    #[test]
    fn a_row_cut_short_decides_at_its_last_step_at_the_latest() {
        // The pass stopped the row at step 1 of 3 (it spiked there at a larger
        // threshold on the GPU); the host's score falls just short of 0.8.
        let s = StepScores {
            steps: 3,
            rows: vec![vec![(0.4, 2), (0.7999, 3)]],
            labels: vec![3],
        };
        let p = s.point(0.8);
        assert_eq!(
            (p.accuracy, p.mean_decision_step, p.not_fired),
            (1.0, 2.0, 0.0)
        );
        let p = s.point(0.3);
        assert_eq!(
            (p.accuracy, p.mean_decision_step, p.not_fired),
            (0.0, 1.0, 0.0)
        );
    }

    #[test]
    fn the_best_point_within_a_budget_is_the_most_accurate_fast_enough_one() {
        let point = |theta, accuracy, mean_decision_step| SweepPoint {
            theta,
            accuracy,
            mean_decision_step,
            not_fired: 0.0,
        };
        let sweep = [
            point(0.5, 0.90, 1.1),
            point(0.6, 0.93, 1.4),
            point(0.7, 0.93, 1.5),
            point(0.8, 0.95, 1.6),
        ];
        assert_eq!(best_within(&sweep, 1.5).unwrap().theta, 0.6);
        assert_eq!(best_within(&sweep, 2.0).unwrap().theta, 0.8);
        assert_eq!(best_within(&sweep, 1.0), None);
    }

    #[test]
    fn shuffled_batches_cover_every_index_once() {
        let mut rng = Rng::new(1);
        let batches = shuffled_batches(10, 4, &mut rng);
        assert_eq!(
            batches.iter().map(|b| b.len()).collect::<Vec<_>>(),
            vec![4, 4, 2]
        );
        let mut all: Vec<usize> = batches.concat();
        all.sort();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
    }

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
}
