//! Tasks and datasets, turned into batches of host tensors. Never touches the GPU.

pub mod task;
pub mod toy;

use crate::error::{Error, Result};

/// A batch of B sequences of T steps with I features each, time-major:
/// `x[(t * B + b) * I + i]`, and one class label per sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub steps: usize,
    pub batch: usize,
    pub input: usize,
    pub x: Vec<f32>,
    pub labels: Vec<u32>,
}

impl Batch {
    /// Checks the tensor sizes agree with the declared shape and labels are < `classes`.
    pub fn validate(&self, classes: usize) -> Result<()> {
        if self.steps == 0 || self.batch == 0 || self.input == 0 {
            return Err(Error::ShapeMismatch(format!(
                "batch has a zero size: {} steps, {} sequences, {} inputs",
                self.steps, self.batch, self.input
            )));
        }
        if self.x.len() != self.steps * self.batch * self.input || self.labels.len() != self.batch {
            return Err(Error::ShapeMismatch(format!(
                "batch tensors hold {} values and {} labels, expected {} x {} x {} values and {} labels",
                self.x.len(),
                self.labels.len(),
                self.steps,
                self.batch,
                self.input,
                self.batch
            )));
        }
        if let Some(bad) = self.labels.iter().find(|&&l| l as usize >= classes) {
            return Err(Error::ShapeMismatch(format!(
                "label {bad} is out of range for a model with {classes} classes"
            )));
        }
        if self.x.iter().any(|v| !v.is_finite()) {
            return Err(Error::ShapeMismatch(
                "batch input holds NaN or infinite values".into(),
            ));
        }
        Ok(())
    }

    /// Input vector of sequence `b` at step `t`.
    pub fn input_at(&self, t: usize, b: usize) -> &[f32] {
        let at = (t * self.batch + b) * self.input;
        &self.x[at..at + self.input]
    }
}

/// A labelled set of equal-length sequences, sequence-major: sequence n at
/// `x[n * T * I..(n + 1) * T * I]`, step t of it at offset `t * I`.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    pub steps: usize,
    pub input: usize,
    pub classes: usize,
    pub x: Vec<f32>,
    pub labels: Vec<u32>,
}

impl Dataset {
    /// Number of sequences.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when there are no sequences.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Builds a dataset from per-sequence `[T * I]` vectors.
    pub fn from_sequences(
        seqs: Vec<Vec<f32>>,
        labels: Vec<u32>,
        steps: usize,
        input: usize,
        classes: usize,
    ) -> Self {
        debug_assert!(seqs.iter().all(|s| s.len() == steps * input));
        Dataset {
            steps,
            input,
            classes,
            x: seqs.concat(),
            labels,
        }
    }

    /// Sequence `n`, `[T * I]`.
    pub fn sequence(&self, n: usize) -> &[f32] {
        let len = self.steps * self.input;
        &self.x[n * len..(n + 1) * len]
    }

    /// The time-major batch of the sequences at `indices`, in that order.
    pub fn batch(&self, indices: &[usize]) -> Batch {
        let (steps, input, b) = (self.steps, self.input, indices.len());
        let mut x = vec![0.0; steps * b * input];
        for (row, &n) in indices.iter().enumerate() {
            let seq = self.sequence(n);
            for t in 0..steps {
                let dst = (t * b + row) * input;
                x[dst..dst + input].copy_from_slice(&seq[t * input..(t + 1) * input]);
            }
        }
        let labels = indices.iter().map(|&n| self.labels[n]).collect();
        Batch {
            steps,
            batch: b,
            input,
            x,
            labels,
        }
    }

    /// This dataset followed by `other` (same shape).
    pub fn concat(mut self, other: &Dataset) -> Self {
        assert_eq!(
            (self.steps, self.input, self.classes),
            (other.steps, other.input, other.classes)
        );
        self.x.extend_from_slice(&other.x);
        self.labels.extend_from_slice(&other.labels);
        self
    }

    /// The first `n` sequences (all of them if there are fewer).
    pub fn truncated(mut self, n: usize) -> Self {
        let n = n.min(self.len());
        self.x.truncate(n * self.steps * self.input);
        self.labels.truncate(n);
        self
    }

    /// The whole dataset as one batch.
    pub fn all(&self) -> Batch {
        self.batch(&(0..self.len()).collect::<Vec<_>>())
    }
}
