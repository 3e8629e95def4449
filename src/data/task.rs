//! The tasks rankcode trains on, each with its fixed protocol (DESIGN §2): shapes,
//! splits and the data behind them.

use super::{Dataset, toy};
use crate::error::Result;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// A task by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Task {
    /// 25 random bits; label 1 iff they hold a run of 5 identical bits.
    SeqSpotting,
    /// 40 steps of a weak +-0.05 signal in Gaussian noise of random strength.
    NoiseVsSignal,
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
        }
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
        }
    }

    /// Loads (or generates) one split. `data_dir` is where file-based tasks read from;
    /// the generated tasks ignore it.
    pub fn load(self, split: Split, _data_dir: Option<&Path>) -> Result<Dataset> {
        let (_, n, seed) = TOY_SIZES
            .iter()
            .copied()
            .find(|s| s.0 == split)
            .expect("every split is listed");
        Ok(match self {
            Task::SeqSpotting => toy::seq_spotting(n, seed),
            Task::NoiseVsSignal => toy::noise_vs_signal(n, seed),
        })
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
