//! The rank-coding decision rule on the host, in f64 (docs/design.md, 'The decision
//! rule'). The readout shader applies the same rule on the GPU; on the host it is
//! applied here: by the threshold sweep (`epoch::theta_sweep`), by `classify` and by
//! the CPU reference. (The Bayes-optimal policy of `bayes.rs` applies a first crossing
//! of its own score, a posterior, not of a model's outputs.)
//!
//! - A step spikes when the score of its largest logit reaches theta. Scores rise with
//!   the logits, so that is when any unit's score reaches theta; the shader tests the
//!   largest logit alone too.
//! - The decision step is the first step that spikes (the first crossing), or the last
//!   step when none does ("not fired").
//! - The prediction is the unit with the largest logit at the decision step, the first
//!   on ties: logits rather than scores decide, since f32 sigmoids saturate at 1.0.

use super::config::Readout;

/// The logistic function, in f64 (the CPU reference's gates use it too).
pub(crate) fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// The output scores of a logit vector: sigmoids or a softmax.
pub fn scores(readout: Readout, z: &[f64]) -> Vec<f64> {
    match readout {
        Readout::Sigmoid => z.iter().map(|&v| sigmoid(v)).collect(),
        Readout::Softmax => {
            let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = z.iter().map(|&v| (v - m).exp()).collect();
            let s: f64 = e.iter().sum();
            e.iter().map(|v| v / s).collect()
        }
    }
}

/// Index of the largest value (the first one on ties).
pub fn argmax(v: &[f64]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

/// The unit with the largest logit in `z` and its score: the candidate prediction of
/// a step and the score that decides whether the step spikes.
pub fn top(readout: Readout, z: &[f64]) -> (usize, f64) {
    let best = argmax(z);
    (best, scores(readout, z)[best])
}

/// Whether a step whose largest logit has score `score` spikes at threshold `theta`.
pub fn spikes(score: f64, theta: f32) -> bool {
    score >= theta as f64
}

/// The first crossing: the first step, in order, whose score (of its largest logit)
/// spikes at `theta`; none if no step does.
pub fn first_crossing(scores: impl IntoIterator<Item = f64>, theta: f32) -> Option<usize> {
    scores.into_iter().position(|score| spikes(score, theta))
}

/// The decision step of a row whose first crossing is `first_spike` and whose last
/// step is `last`: the first spike, else the last step.
pub fn decision_step(first_spike: Option<usize>, last: usize) -> usize {
    first_spike.unwrap_or(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_crossing_is_the_first_step_that_reaches_theta() {
        assert_eq!(first_crossing([0.1, 0.5, 0.9, 0.95], 0.5), Some(1));
        assert_eq!(first_crossing([0.5, 0.1], 0.5), Some(0), "t = 0 counts");
        assert_eq!(first_crossing([0.1, 0.49], 0.5), None);
        assert_eq!(decision_step(None, 7), 7);
        assert_eq!(decision_step(Some(2), 7), 2);
    }

    #[test]
    fn the_top_unit_is_the_largest_logit_and_the_first_on_ties() {
        let z = [1.0, 3.0, 3.0, -2.0];
        for readout in [Readout::Sigmoid, Readout::Softmax] {
            let (unit, score) = top(readout, &z);
            assert_eq!(unit, 1);
            let all = scores(readout, &z);
            assert_eq!(score, all.iter().cloned().fold(f64::MIN, f64::max));
            // A step spikes exactly when some unit's score reaches theta.
            for theta in [0.1f32, 0.5, 0.9, 0.99] {
                assert_eq!(spikes(score, theta), all.iter().any(|&y| y >= theta as f64));
            }
        }
        // Saturated sigmoids tie at 1.0: the logits still decide.
        let (unit, score) = top(Readout::Sigmoid, &[40.0, 50.0]);
        assert_eq!((unit, score), (1, 1.0));
    }
}
