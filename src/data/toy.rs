//! The two toy tasks of the paper (docs/design.md, 'Tasks'), generated from a seed.

use super::Dataset;
use crate::rng::Rng;

/// Steps of a seq-spotting sequence.
pub const SPOTTING_STEPS: usize = 25;
/// Length of the run of identical bits that makes a sequence positive.
pub const SPOTTING_RUN: usize = 5;
/// Steps of a noise-vs-signal sequence.
pub const NOISE_STEPS: usize = 40;
/// The signal of a noise-vs-signal sequence: +/- this at every step.
pub const NOISE_SIGNAL: f64 = 0.05;
/// The range of a noise-vs-signal sequence's noise standard deviation, drawn uniformly.
pub const NOISE_STD_RANGE: (f64, f64) = (0.05, 0.25);

/// seq-spotting: 25 random bits; label 1 iff the sequence holds a run of 5 identical bits.
pub fn seq_spotting(n: usize, seed: u64) -> Dataset {
    let mut rng = Rng::new(seed);
    let mut seqs = Vec::with_capacity(n);
    let mut labels = Vec::with_capacity(n);
    for _ in 0..n {
        let bits: Vec<f32> = (0..SPOTTING_STEPS)
            .map(|_| rng.bit() as u8 as f32)
            .collect();
        labels.push(first_run_end(&bits, SPOTTING_RUN).is_some() as u32);
        seqs.push(bits);
    }
    Dataset::from_sequences(seqs, labels, SPOTTING_STEPS, 1, 2)
}

/// The step at which the first run of `run` identical values ends, if any.
pub fn first_run_end(bits: &[f32], run: usize) -> Option<usize> {
    let mut len = 0;
    for t in 0..bits.len() {
        len = if t > 0 && bits[t] == bits[t - 1] {
            len + 1
        } else {
            1
        };
        if len == run {
            return Some(t);
        }
    }
    None
}

/// For each positive seq-spotting sequence of `data`, the earliest step at which its
/// label is known: the end of its first run (0-based). `None` for negatives.
pub fn spotting_ideal_steps(data: &super::Dataset) -> Vec<Option<usize>> {
    (0..data.len())
        .map(|n| first_run_end(&data.sequence(n), SPOTTING_RUN))
        .collect()
}

/// noise-vs-signal: x_t = s * [`NOISE_SIGNAL`] + noise, s = +1 (label 1) or -1
/// (label 0), noise Gaussian with a std drawn per sequence uniformly from
/// [`NOISE_STD_RANGE`].
pub fn noise_vs_signal(n: usize, seed: u64) -> Dataset {
    let mut rng = Rng::new(seed);
    let mut seqs = Vec::with_capacity(n);
    let mut labels = Vec::with_capacity(n);
    for _ in 0..n {
        let label = rng.bit() as u32;
        let s = if label == 1 { 1.0 } else { -1.0 };
        let std = rng.uniform_in(NOISE_STD_RANGE.0, NOISE_STD_RANGE.1);
        seqs.push(
            (0..NOISE_STEPS)
                .map(|_| (s * NOISE_SIGNAL + std * rng.normal()) as f32)
                .collect(),
        );
        labels.push(label);
    }
    Dataset::from_sequences(seqs, labels, NOISE_STEPS, 1, 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_detection() {
        assert_eq!(first_run_end(&[0., 1., 1., 1., 1., 1., 0.], 5), Some(5));
        assert_eq!(first_run_end(&[0., 0., 0., 0., 0.], 5), Some(4));
        assert_eq!(first_run_end(&[0., 1., 0., 1., 1., 1., 1.], 5), None);
    }

    #[test]
    fn spotting_is_about_half_positive_and_labels_are_right() {
        let b = seq_spotting(2000, 1).all();
        b.validate(2).unwrap();
        let pos = b.labels.iter().filter(|&&l| l == 1).count() as f64 / 2000.0;
        assert!((0.45..0.70).contains(&pos), "positive share {pos}");
        let seq0: Vec<f32> = (0..SPOTTING_STEPS).map(|t| b.input_at(t, 0)[0]).collect();
        assert_eq!(b.labels[0], first_run_end(&seq0, 5).is_some() as u32);
    }

    #[test]
    fn ideal_steps_are_the_ends_of_first_runs() {
        let d = seq_spotting(200, 9);
        let ideal = spotting_ideal_steps(&d);
        for (n, step) in ideal.iter().enumerate() {
            assert_eq!(step.is_some(), d.labels[n] == 1);
            if let Some(t) = step {
                let s = d.sequence(n);
                assert!(s[t - 4..=*t].iter().all(|&b| b == s[*t]));
            }
        }
    }

    #[test]
    fn noise_vs_signal_mean_follows_label() {
        let b = noise_vs_signal(1000, 2).all();
        b.validate(2).unwrap();
        let mut agree = 0;
        for s in 0..b.batch {
            let mean: f32 = (0..NOISE_STEPS).map(|t| b.input_at(t, s)[0]).sum::<f32>() / 40.0;
            agree += ((mean > 0.0) == (b.labels[s] == 1)) as usize;
        }
        assert!(agree > 900, "{agree}");
    }
}
