//! The tasks rankcode trains on, each with its fixed protocol (DESIGN §2): shapes,
//! splits and the data behind them.

use super::audio::{self, Corpus, FeatureExtractor, FeatureSpec};
use super::frontend::FrontendConfig;
use super::speech_commands::Words;
use super::{Dataset, fsdd, mnist, speech_commands, toy};
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
    /// Free Spoken Digit Dataset: spoken digits 0-9, as front-end frames of 1 s clips.
    Fsdd,
    /// Google Speech Commands, the 35 words of v0.02, as front-end frames of 1 s clips.
    SpeechCommands,
    /// Google Speech Commands, the standard 12 classes: ten commands, _unknown_, _silence_.
    #[value(name = "speech-commands-12")]
    #[serde(rename = "speech-commands-12")]
    SpeechCommands12,
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
            Task::Fsdd => "fsdd",
            Task::SpeechCommands => "speech-commands",
            Task::SpeechCommands12 => "speech-commands-12",
        }
    }

    /// The clip length of an audio task: Speech Commands clips are 1 s; FSDD's
    /// recordings are trimmed to the word (median 0.43 s), so 0.6 s keeps 90% of
    /// them whole without a long tail of silence, which an end-of-sequence model
    /// would have to carry its answer through.
    pub fn default_clip_ms(self) -> u32 {
        match self {
            Task::Fsdd => 600,
            _ => 1000,
        }
    }

    /// True for the spoken-word tasks, whose sequences are front-end frames.
    pub fn is_audio(self) -> bool {
        matches!(
            self,
            Task::Fsdd | Task::SpeechCommands | Task::SpeechCommands12
        )
    }

    /// The folder a file-based task reads: `given` (from `--data`), else
    /// `$RANKCODE_DATA/<task folder>`, else `../shared/datasets/<task folder>`.
    /// `None` for generated tasks.
    pub fn data_dir(self, given: Option<&Path>) -> Option<PathBuf> {
        let folder = match self {
            Task::SeqSpotting | Task::NoiseVsSignal => return None,
            Task::Mnist => "mnist",
            Task::Fsdd => "fsdd",
            Task::SpeechCommands | Task::SpeechCommands12 => "speech_commands",
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

    /// Steps, input features and classes; the audio tasks' depend on the front end.
    pub fn shape(self, frontend: &FrontendConfig) -> TaskShape {
        let audio = |classes| TaskShape {
            steps: frontend.frames(),
            input: frontend.feature_size(),
            classes,
        };
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
            Task::Fsdd => audio(fsdd::CLASSES),
            Task::SpeechCommands => audio(Words::All35.classes()),
            Task::SpeechCommands12 => audio(Words::Commands12.classes()),
        }
    }

    /// The clips of an audio task's corpus; `None` for the other tasks.
    pub fn corpus(self, data_dir: Option<&Path>) -> Result<Option<Corpus>> {
        let Some(dir) = self.data_dir(data_dir).filter(|_| self.is_audio()) else {
            return Ok(None);
        };
        Ok(Some(match self {
            Task::Fsdd => fsdd::corpus(&dir)?,
            Task::SpeechCommands => speech_commands::corpus(&dir, Words::All35)?,
            _ => speech_commands::corpus(&dir, Words::Commands12)?,
        }))
    }

    /// What classifying new audio needs (front end, training statistics, class
    /// names); `None` for the tasks that do not take audio.
    pub fn feature_spec(
        self,
        data_dir: Option<&Path>,
        frontend: &FrontendConfig,
    ) -> Result<Option<FeatureSpec>> {
        let Some(corpus) = self.corpus(data_dir)? else {
            return Ok(None);
        };
        audio::feature_spec(&corpus, &FeatureExtractor::new(frontend.clone())?).map(Some)
    }

    /// Loads (or generates) one split. `data_dir` is `--data`, if given (see
    /// [`Self::data_dir`]); the generated tasks ignore it, and only the audio tasks
    /// use the front end.
    pub fn load(
        self,
        split: Split,
        data_dir: Option<&Path>,
        frontend: &FrontendConfig,
    ) -> Result<Dataset> {
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
            Task::Fsdd | Task::SpeechCommands | Task::SpeechCommands12 => {
                let corpus = self.corpus(data_dir)?.expect("an audio task");
                let extractor = FeatureExtractor::new(frontend.clone())?;
                let spec = audio::feature_spec(&corpus, &extractor)?;
                let classes = corpus.classes.len();
                audio::dataset(corpus.split(split), &extractor, &spec.norm, classes)?
            }
        };
        let shape = self.shape(frontend);
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
            let frontend = FrontendConfig::default();
            let shape = task.shape(&frontend);
            let train = task.load(Split::Train, None, &frontend).unwrap();
            let test = task.load(Split::Test, None, &frontend).unwrap();
            assert_eq!(
                (train.steps, train.input, train.classes),
                (shape.steps, shape.input, shape.classes)
            );
            assert_ne!(train.sequence(0), test.sequence(0));
            assert_eq!(
                test,
                task.load(Split::Test, None, &frontend).unwrap(),
                "splits are fixed"
            );
        }
    }
}
