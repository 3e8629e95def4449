//! Tasks and datasets, turned into batches of host tensors. Never touches the GPU.

pub mod audio;
pub mod audio_augment;
pub mod augment;
pub mod frontend;
pub mod fsdd;
pub mod idx;
pub mod mnist;
pub mod onset;
pub mod speech_commands;
pub mod task;
pub mod toy;
pub mod wav;

use crate::error::{Error, Result};

/// A batch of B sequences of T steps with I features each, and one class label per
/// sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub steps: usize,
    pub batch: usize,
    pub input: usize,
    pub inputs: Inputs,
    pub labels: Vec<u32>,
}

/// The inputs of a [`Batch`].
#[derive(Debug, Clone, PartialEq)]
pub enum Inputs {
    /// Values, time-major: `[(t * B + b) * I + i]`.
    Dense(Vec<f32>),
    /// Temporal coding (as `Dataset` stores temporal MNIST): input i of sequence b is 1
    /// at step `[b * I + i]` and 0 at every other step. The engine's sparse layer-0 path
    /// reads these times as they are; a dense path densifies them ([`Batch::dense`]).
    EventTimes(Vec<u8>),
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
        let (values, expected) = match &self.inputs {
            Inputs::Dense(x) => (x.len(), self.steps * self.batch * self.input),
            Inputs::EventTimes(times) => (times.len(), self.batch * self.input),
        };
        if values != expected || self.labels.len() != self.batch {
            return Err(Error::ShapeMismatch(format!(
                "batch tensors hold {values} input values and {} labels, expected {expected} values for {} x {} x {} and {} labels",
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
        match &self.inputs {
            Inputs::Dense(x) if x.iter().any(|v| !v.is_finite()) => {
                return Err(Error::InvalidData(
                    "the input holds NaN or infinite values".into(),
                ));
            }
            Inputs::EventTimes(times) if times.iter().any(|&t| t as usize >= self.steps) => {
                return Err(Error::InvalidData(format!(
                    "an input event falls past the last of {} steps",
                    self.steps
                )));
            }
            _ => {}
        }
        Ok(())
    }

    /// Standard-normal inputs and uniform labels from a seed (tests and benchmarks).
    pub fn random(steps: usize, batch: usize, input: usize, classes: usize, seed: u64) -> Self {
        let mut rng = crate::rng::Rng::new(seed);
        let x = (0..steps * batch * input)
            .map(|_| rng.normal() as f32)
            .collect();
        let labels = (0..batch).map(|_| rng.below(classes) as u32).collect();
        Batch {
            steps,
            batch,
            input,
            inputs: Inputs::Dense(x),
            labels,
        }
    }

    /// Input vector of sequence `b` at step `t`.
    pub fn input_at(&self, t: usize, b: usize) -> Vec<f32> {
        let i = self.input;
        match &self.inputs {
            Inputs::Dense(x) => x[(t * self.batch + b) * i..][..i].to_vec(),
            Inputs::EventTimes(times) => times[b * i..(b + 1) * i]
                .iter()
                .map(|&s| (s as usize == t) as u8 as f32)
                .collect(),
        }
    }

    /// The inputs as time-major values, `[(t * B + b) * I + i]`: borrowed when they
    /// are dense, built from the event times otherwise.
    pub fn dense(&self) -> std::borrow::Cow<'_, [f32]> {
        match &self.inputs {
            Inputs::Dense(x) => std::borrow::Cow::Borrowed(x),
            Inputs::EventTimes(times) => {
                let (b, i) = (self.batch, self.input);
                let mut x = vec![0.0; self.steps * b * i];
                for (at, &t) in times.iter().enumerate() {
                    let (row, k) = (at / i, at % i);
                    x[(t as usize * b + row) * i + k] = 1.0;
                }
                std::borrow::Cow::Owned(x)
            }
        }
    }

    /// The dense values, for changing them in place (tests); panics on event times.
    pub fn dense_mut(&mut self) -> &mut Vec<f32> {
        match &mut self.inputs {
            Inputs::Dense(x) => x,
            Inputs::EventTimes(_) => panic!("the batch holds event times, not values"),
        }
    }
}

/// How a dataset stores its sequences.
#[derive(Debug, Clone, PartialEq)]
enum Source {
    /// Dense values, sequence-major: sequence n at `[n * T * I..(n + 1) * T * I]`,
    /// step t of it at offset `t * I`.
    Dense(Vec<f32>),
    /// Event times: each of the I inputs of a sequence is 1 at exactly one step and 0
    /// otherwise (temporal coding); `[n * I + i]` is that step. Sequences are built
    /// on the fly, so a 60,000-image set takes 47 MB, not 3.7 GB.
    EventTimes(Vec<u8>),
}

/// A labelled set of equal-length sequences.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    pub steps: usize,
    pub input: usize,
    pub classes: usize,
    pub labels: Vec<u32>,
    /// Rows and columns when each sequence's inputs are the pixels of an image, row by
    /// row (MNIST); what [`augment`] needs to move them.
    pub image_size: Option<(usize, usize)>,
    source: Source,
    /// The pixel bytes the event times were encoded from, image after image, row by
    /// row (MNIST): what [`augment`] resamples to rotate, scale or distort an image.
    /// None for other data, and for a copy whose times were moved or dropped.
    pixels: Option<Vec<u8>>,
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

    /// True when the sequences are stored as dense values (not as event times).
    pub fn is_dense(&self) -> bool {
        matches!(self.source, Source::Dense(_))
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
            labels,
            image_size: None,
            source: Source::Dense(seqs.concat()),
            pixels: None,
        }
    }

    /// Builds a dataset whose input i of sequence n is 1 at step `times[n * I + i]` only.
    pub fn from_event_times(
        times: Vec<u8>,
        labels: Vec<u32>,
        steps: usize,
        input: usize,
        classes: usize,
    ) -> Self {
        debug_assert!(
            times.len() == labels.len() * input && times.iter().all(|&t| (t as usize) < steps)
        );
        Dataset {
            steps,
            input,
            classes,
            labels,
            image_size: None,
            source: Source::EventTimes(times),
            pixels: None,
        }
    }

    /// The same sequences, declared to be `rows` x `cols` images (row by row).
    pub fn with_image_size(self, rows: usize, cols: usize) -> Self {
        assert_eq!(
            rows * cols,
            self.input,
            "an image must have one pixel per input"
        );
        Dataset {
            image_size: Some((rows, cols)),
            ..self
        }
    }

    /// The same sequences with the pixel bytes their event times were encoded from,
    /// one byte per input and sequence, in the order of the times.
    pub fn with_pixels(self, pixels: Vec<u8>) -> Self {
        assert_eq!(
            pixels.len(),
            self.len() * self.input,
            "a pixel byte per input and sequence"
        );
        Dataset {
            pixels: Some(pixels),
            ..self
        }
    }

    /// True when the dataset holds the pixel bytes its event times were encoded from.
    pub fn has_pixels(&self) -> bool {
        self.pixels.is_some()
    }

    /// Values stored per sequence.
    fn stride(&self) -> usize {
        match self.source {
            Source::Dense(_) => self.steps * self.input,
            Source::EventTimes(_) => self.input,
        }
    }

    /// Sequence `n` as dense `[T * I]` values.
    pub fn sequence(&self, n: usize) -> Vec<f32> {
        let (steps, input) = (self.steps, self.input);
        match &self.source {
            Source::Dense(x) => x[n * steps * input..(n + 1) * steps * input].to_vec(),
            Source::EventTimes(times) => {
                let mut seq = vec![0.0; steps * input];
                for (i, &t) in times[n * input..(n + 1) * input].iter().enumerate() {
                    seq[t as usize * input + i] = 1.0;
                }
                seq
            }
        }
    }

    /// The batch of the sequences at `indices`, in that order: time-major values, or
    /// the event times as the dataset stores them.
    pub fn batch(&self, indices: &[usize]) -> Batch {
        let (steps, input, b) = (self.steps, self.input, indices.len());
        let inputs = match &self.source {
            Source::Dense(dense) => {
                let mut x = vec![0.0; steps * b * input];
                for (row, &n) in indices.iter().enumerate() {
                    let seq = &dense[n * steps * input..(n + 1) * steps * input];
                    for t in 0..steps {
                        let dst = (t * b + row) * input;
                        x[dst..dst + input].copy_from_slice(&seq[t * input..(t + 1) * input]);
                    }
                }
                Inputs::Dense(x)
            }
            Source::EventTimes(times) => Inputs::EventTimes(
                indices
                    .iter()
                    .flat_map(|&n| &times[n * input..(n + 1) * input])
                    .copied()
                    .collect(),
            ),
        };
        let labels = indices.iter().map(|&n| self.labels[n]).collect();
        Batch {
            steps,
            batch: b,
            input,
            inputs,
            labels,
        }
    }

    /// This dataset followed by `other` (same shape and storage).
    pub fn concat(mut self, other: &Dataset) -> Self {
        assert_eq!(
            (self.steps, self.input, self.classes),
            (other.steps, other.input, other.classes)
        );
        match (&mut self.source, &other.source) {
            (Source::Dense(a), Source::Dense(b)) => a.extend_from_slice(b),
            (Source::EventTimes(a), Source::EventTimes(b)) => a.extend_from_slice(b),
            _ => panic!("cannot concatenate datasets of different storage"),
        }
        self.pixels = match (self.pixels.take(), &other.pixels) {
            (Some(mut a), Some(b)) => {
                a.extend_from_slice(b);
                Some(a)
            }
            _ => None,
        };
        self.labels.extend_from_slice(&other.labels);
        self
    }

    /// Sequences `range` only.
    pub fn slice(&self, range: std::ops::Range<usize>) -> Self {
        let stride = self.stride();
        let source = match &self.source {
            Source::Dense(x) => Source::Dense(x[range.start * stride..range.end * stride].to_vec()),
            Source::EventTimes(t) => {
                Source::EventTimes(t[range.start * stride..range.end * stride].to_vec())
            }
        };
        let pixels = self
            .pixels
            .as_ref()
            .map(|p| p[range.start * self.input..range.end * self.input].to_vec());
        Dataset {
            labels: self.labels[range].to_vec(),
            source,
            pixels,
            ..*self
        }
    }

    /// The first `n` sequences (all of them if there are fewer).
    pub fn truncated(self, n: usize) -> Self {
        self.slice(0..n.min(self.len()))
    }

    /// The whole dataset as one batch.
    pub fn all(&self) -> Batch {
        self.batch(&(0..self.len()).collect::<Vec<_>>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_times_make_one_hot_steps_and_slices_keep_order() {
        // Two sequences of 3 steps, 2 inputs.
        let d = Dataset::from_event_times(vec![0, 2, 1, 1], vec![4, 5], 3, 2, 6);
        assert_eq!(d.sequence(0), vec![1., 0., 0., 0., 0., 1.]);
        let b = d.batch(&[1, 0]);
        assert_eq!(b.input_at(1, 0), &[1., 1.]);
        assert_eq!(b.input_at(0, 1), &[1., 0.]);
        assert_eq!(b.labels, vec![5, 4]);
        let tail = d.slice(1..2);
        assert_eq!((tail.len(), tail.sequence(0)), (1, d.sequence(1)));
        assert_eq!(d.clone().concat(&tail).len(), 3);
    }

    #[test]
    fn pixel_bytes_follow_their_images_through_slices_and_concatenation() {
        let d = Dataset::from_event_times(vec![0, 2, 1, 1, 2, 0], vec![4, 5, 6], 3, 2, 7)
            .with_pixels(vec![255, 0, 128, 128, 0, 255]);
        assert!(d.has_pixels());
        let tail = d.slice(1..3);
        assert_eq!(tail.pixels.as_deref(), Some(&[128, 128, 0, 255][..]));
        let joined = d.slice(0..1).concat(&tail);
        assert_eq!(joined, d);
        // Data without them joined to data with them: none for the whole.
        let plain = Dataset::from_event_times(vec![1, 1], vec![4], 3, 2, 7);
        assert!(!plain.has_pixels());
        assert!(!d.clone().concat(&plain).has_pixels());
        assert_eq!(d.truncated(1).pixels.as_deref(), Some(&[255, 0][..]));
    }
}
