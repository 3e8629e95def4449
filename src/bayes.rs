//! The Bayes-optimal threshold policy on noise-vs-signal: the reference curve for the
//! trained models (docs/design.md, "Tasks"; docs/results.md, "noise-vs-signal").
//!
//! After each step the policy holds the exact posterior P(s = +1 | x_0..t), with the
//! unknown noise level marginalised over a fine grid of its uniform prior, and applies
//! the networks' decision rule: decide at the first step where the posterior of
//! either class reaches theta, else at the last step. Only a policy whose threshold
//! changes over time can do a little better.

use crate::data::Dataset;
use crate::data::toy::{NOISE_SIGNAL, NOISE_STD_RANGE};
use crate::epoch::SweepPoint;

/// Points of the grid over the noise level's prior.
const NOISE_GRID: usize = 200;

/// For every sequence of a noise-vs-signal data set, the posterior of label 1 (s = +1)
/// after each step: `[sequence][step]`.
pub fn posteriors(data: &Dataset) -> Vec<Vec<f64>> {
    let (lo, hi) = NOISE_STD_RANGE;
    let sigmas: Vec<f64> = (0..NOISE_GRID)
        .map(|i| lo + (hi - lo) * (i as f64 + 0.5) / NOISE_GRID as f64)
        .collect();
    (0..data.len())
        .map(|n| {
            // Log-likelihoods of the prefix under s = +1 and s = -1, per noise level.
            let (mut plus, mut minus) = (vec![0f64; NOISE_GRID], vec![0f64; NOISE_GRID]);
            data.sequence(n)
                .iter()
                .map(|&x| {
                    let x = x as f64;
                    for (i, &s) in sigmas.iter().enumerate() {
                        let norm = -s.ln();
                        plus[i] += norm - (x - NOISE_SIGNAL).powi(2) / (2.0 * s * s);
                        minus[i] += norm - (x + NOISE_SIGNAL).powi(2) / (2.0 * s * s);
                    }
                    let m = plus
                        .iter()
                        .chain(&minus)
                        .copied()
                        .fold(f64::NEG_INFINITY, f64::max);
                    let p: f64 = plus.iter().map(|v| (v - m).exp()).sum();
                    let q: f64 = minus.iter().map(|v| (v - m).exp()).sum();
                    p / (p + q)
                })
                .collect()
        })
        .collect()
}

/// The policy's accuracy and mean decision step at each threshold in `thetas`, from
/// [`posteriors`] and the sequences' labels.
pub fn sweep(posteriors: &[Vec<f64>], labels: &[u32], thetas: &[f32]) -> Vec<SweepPoint> {
    thetas
        .iter()
        .map(|&theta| {
            let (mut correct, mut steps, mut fired) = (0usize, 0usize, 0usize);
            for (row, &label) in posteriors.iter().zip(labels) {
                let spike = row.iter().position(|&p| p.max(1.0 - p) >= theta as f64);
                let decision = spike.unwrap_or(row.len() - 1);
                correct += ((row[decision] >= 0.5) as u32 == label) as usize;
                steps += decision + 1;
                fired += spike.is_some() as usize;
            }
            let n = posteriors.len().max(1) as f64;
            SweepPoint {
                theta,
                accuracy: correct as f64 / n,
                mean_decision_step: steps as f64 / n,
                not_fired: 1.0 - fired as f64 / n,
            }
        })
        .collect()
}

/// The policy's accuracy when it always waits for the last step.
pub fn last_step_accuracy(posteriors: &[Vec<f64>], labels: &[u32]) -> f64 {
    let correct = posteriors
        .iter()
        .zip(labels)
        .filter(|(row, label)| (row[row.len() - 1] >= 0.5) as u32 == **label)
        .count();
    correct as f64 / posteriors.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::toy;

    #[test]
    fn posteriors_follow_the_evidence() {
        let data = toy::noise_vs_signal(200, 7);
        let post = posteriors(&data);
        assert_eq!(post.len(), 200);
        for (n, row) in post.iter().enumerate() {
            assert_eq!(row.len(), toy::NOISE_STEPS);
            assert!(row.iter().all(|p| (0.0..=1.0).contains(p)));
            // With all the evidence in, the posterior's side is the sign of the sum.
            let sum: f64 = data.sequence(n).iter().map(|&x| x as f64).sum();
            assert_eq!(row[row.len() - 1] >= 0.5, sum >= 0.0, "sequence {n}");
        }
        // All 40 steps of evidence: the task's documented ~97% (docs/results.md).
        let full = last_step_accuracy(&post, &data.labels);
        assert!(full > 0.9, "{full}");
    }

    #[test]
    fn a_higher_threshold_waits_longer_and_is_right_more_often() {
        let data = toy::noise_vs_signal(500, 3);
        let post = posteriors(&data);
        let points = sweep(&post, &data.labels, &[0.6, 0.9, 0.99, 2.0]);
        for pair in points.windows(2) {
            assert!(pair[0].mean_decision_step < pair[1].mean_decision_step);
            assert!(pair[0].accuracy <= pair[1].accuracy + 0.02);
        }
        // A threshold no posterior reaches decides every sequence at the last step.
        let never = points[3];
        assert_eq!(never.mean_decision_step, toy::NOISE_STEPS as f64);
        assert_eq!(never.not_fired, 1.0);
        assert_eq!(never.accuracy, last_step_accuracy(&post, &data.labels));
    }
}
