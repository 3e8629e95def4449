//! The tasks rankcode trains on, each with its fixed protocol (DESIGN §2): shapes,
//! splits and the data behind them.

use super::{Dataset, mnist, toy};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Environment variable naming the folder that holds the data sets (`mnist/`, ...).
pub const DATA_ENV: &str = "RANKCODE_DATA";
/// Where the data sets are when neither `--data` nor the variable says otherwise.
pub const DEFAULT_DATA_ROOT: &str = "../shared/datasets";

/// A task by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Task {
    /// 25 random bits; label 1 iff they hold a run of 5 identical bits.
    SeqSpotting,
    /// 40 steps of a weak +-0.05 signal in Gaussian noise of random strength.
    NoiseVsSignal,
    /// Temporally encoded MNIST digits: 784 pixel events in 20 time bins.
    Mnist,
}

/// A part of a task's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Val,
    Test,
}

/// The shape of a task's sequences.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskShape {
    pub steps: usize,
    pub input: usize,
    pub classes: usize,
}

/// Sequences per split of the generated toy tasks. Each split has its own fixed
/// seed, so every run sees the same validation and test sets.
const TOY_SIZES: [(Split, usize, u64); 3] = [
    (Split::Train, 8192, 101),
    (Split::Val, 2048, 202),
    (Split::Test, 4096, 303),
];

impl Task {
    /// The name used on the command line and in files.
    pub fn name(self) -> &'static str {
        match self {
            Task::SeqSpotting => "seq-spotting",
            Task::NoiseVsSignal => "noise-vs-signal",
            Task::Mnist => "mnist",
        }
    }

    /// The folder a file-based task reads: `given` (from `--data`), else
    /// `$RANKCODE_DATA/<task folder>`, else `../shared/datasets/<task folder>`.
    /// `None` for generated tasks.
    pub fn data_dir(self, given: Option<&Path>) -> Option<PathBuf> {
        let folder = match self {
            Task::SeqSpotting | Task::NoiseVsSignal => return None,
            Task::Mnist => "mnist",
        };
        Some(match given {
            Some(dir) => dir.to_path_buf(),
            None => std::env::var_os(DATA_ENV)
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_ROOT))
                .join(folder),
        })
    }

    /// True when a step's input has few nonzeros, so layer 0 should take it sparse.
    pub fn sparse_input(self) -> bool {
        self == Task::Mnist
    }

    /// Steps, input features and classes.
    pub fn shape(self) -> TaskShape {
        match self {
            Task::SeqSpotting => TaskShape {
                steps: toy::SPOTTING_STEPS,
                input: 1,
                classes: 2,
            },
            Task::NoiseVsSignal => TaskShape {
                steps: toy::NOISE_STEPS,
                input: 1,
                classes: 2,
            },
            Task::Mnist => TaskShape {
                steps: mnist::STEPS,
                input: 28 * 28,
                classes: mnist::CLASSES,
            },
        }
    }

    /// Loads (or generates) one split. `data_dir` is `--data`, if given (see
    /// [`Self::data_dir`]); the generated tasks ignore it.
    pub fn load(self, split: Split, data_dir: Option<&Path>) -> Result<Dataset> {
        let (_, n, seed) = TOY_SIZES
            .iter()
            .copied()
            .find(|s| s.0 == split)
            .expect("every split is listed");
        let data = match self {
            Task::SeqSpotting => toy::seq_spotting(n, seed),
            Task::NoiseVsSignal => toy::noise_vs_signal(n, seed),
            Task::Mnist => {
                mnist::load(&self.data_dir(data_dir).expect("a file-based task"), split)?
            }
        };
        let shape = self.shape();
        if (data.steps, data.input, data.classes) != (shape.steps, shape.input, shape.classes) {
            return Err(Error::File {
                path: self.data_dir(data_dir).unwrap_or_default(),
                problem: format!(
                    "holds sequences of {} steps x {} inputs, {} classes; the {} task needs {} x {}, {} classes",
                    data.steps,
                    data.input,
                    data.classes,
                    self.name(),
                    shape.steps,
                    shape.input,
                    shape.classes
                ),
            });
        }
        Ok(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_match_the_shape_and_differ() {
        for task in [Task::SeqSpotting, Task::NoiseVsSignal] {
            let shape = task.shape();
            let train = task.load(Split::Train, None).unwrap();
            let test = task.load(Split::Test, None).unwrap();
            assert_eq!(
                (train.steps, train.input, train.classes),
                (shape.steps, shape.input, shape.classes)
            );
            assert_ne!(train.sequence(0), test.sequence(0));
            assert_eq!(
                test,
                task.load(Split::Test, None).unwrap(),
                "splits are fixed"
            );
        }
    }
}
