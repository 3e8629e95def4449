//! The tasks rankcode trains on, each with its fixed protocol (docs/design.md, 'Tasks'): shapes,
//! splits and the data behind them.

use super::audio::{self, Corpus, FeatureExtractor, FeatureSpec};
use super::frontend::FrontendConfig;
use super::fsdd::SpeakerSplit;
use super::speech_commands::Words;
use super::{Dataset, fsdd, mnist, speech_commands, toy};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Environment variable naming the folder that holds the data sets (`mnist/`, ...).
pub const DATA_ENV: &str = "RANKCODE_DATA";
/// Where the data sets are when neither `--data` nor the variable says otherwise.
pub const DEFAULT_DATA_ROOT: &str = "../shared/datasets";

/// A task by name ([`Task::about`] says what each is).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Task {
    SeqSpotting,
    NoiseVsSignal,
    Mnist,
    Fsdd,
    SpeechCommands,
    #[serde(rename = "speech-commands-12")]
    SpeechCommands12,
}

/// A part of a task's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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

/// The size and seed of a split of the generated toy tasks.
pub fn toy_split(split: Split) -> (usize, u64) {
    let (_, n, seed) = TOY_SIZES
        .iter()
        .copied()
        .find(|s| s.0 == split)
        .expect("every split is listed");
    (n, seed)
}

impl Task {
    /// Every task, in the order of the command line's list.
    pub const ALL: [Task; 6] = [
        Task::SeqSpotting,
        Task::NoiseVsSignal,
        Task::Mnist,
        Task::Fsdd,
        Task::SpeechCommands,
        Task::SpeechCommands12,
    ];

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

    /// What the task is, in a line.
    pub fn about(self) -> &'static str {
        match self {
            Task::SeqSpotting => "25 random bits; label 1 iff they hold a run of 5 identical bits",
            Task::NoiseVsSignal => {
                "40 steps of a weak +-0.05 signal in Gaussian noise of random strength"
            }
            Task::Mnist => "Temporally encoded MNIST digits: 784 pixel events in 20 time bins",
            Task::Fsdd => {
                "Free Spoken Digit Dataset: spoken digits 0-9, as front-end frames of 0.6 s clips"
            }
            Task::SpeechCommands => {
                "Google Speech Commands, the 35 words of v0.02, as front-end frames of 1 s clips"
            }
            Task::SpeechCommands12 => {
                "Google Speech Commands, the standard 12 classes: ten commands, _unknown_, \
                 _silence_"
            }
        }
    }

    /// The front end of an audio task, before the user's changes. Speech Commands
    /// clips are 1 s of 16 kHz audio. FSDD's recordings are 8 kHz, so its mel bands
    /// stop at 4 kHz (above it there is only resampling residue), and they are
    /// trimmed to the word (median 0.43 s): 0.6 s keeps 90% of them whole without a
    /// long tail of silence, which an end-of-sequence model would have to carry its
    /// answer through.
    pub fn default_frontend(self) -> FrontendConfig {
        match self {
            Task::Fsdd => FrontendConfig {
                clip_ms: 600,
                f_max: 4000.0,
                ..FrontendConfig::default()
            },
            _ => FrontendConfig::default(),
        }
    }

    /// The speaker of a recording of this task, from its file name: FSDD's
    /// `{digit}_{speaker}_{take}.wav`, or Speech Commands' `{speaker}_nohash_{n}.wav`.
    pub fn speaker_of(self, path: &Path) -> Option<String> {
        let name = path.file_name()?.to_str()?;
        match self {
            Task::Fsdd => fsdd::parse_name(name).map(|(_, speaker, _)| speaker.to_string()),
            Task::SpeechCommands | Task::SpeechCommands12 => name
                .split_once("_nohash_")
                .map(|(speaker, _)| speaker.to_string()),
            _ => None,
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

    /// Refuses a data folder (`--data`) for a task that generates its data, where it
    /// would be ignored.
    pub fn check_data_folder(self, given: Option<&Path>) -> Result<()> {
        match given {
            Some(dir) if self.data_dir(None).is_none() => Err(Error::InvalidConfig(format!(
                "--data {}: {} generates its data and reads no folder",
                dir.display(),
                self.name()
            ))),
            _ => Ok(()),
        }
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

    /// The clips of an audio task's corpus, in the task's own splits or, for FSDD,
    /// split `by_speaker`; `None` for the other tasks.
    pub fn corpus(
        self,
        data_dir: Option<&Path>,
        by_speaker: Option<&SpeakerSplit>,
    ) -> Result<Option<Corpus>> {
        let Some(dir) = self.data_dir(data_dir).filter(|_| self.is_audio()) else {
            return Ok(None);
        };
        Ok(Some(match self {
            Task::Fsdd => fsdd::corpus(&dir, by_speaker)?,
            Task::SpeechCommands => speech_commands::corpus(&dir, Words::All35)?,
            _ => speech_commands::corpus(&dir, Words::Commands12)?,
        }))
    }

    /// Opens the task's data. For the audio tasks this lists the corpus and takes the
    /// feature statistics from `spec` (those a run was trained with, from its
    /// `features.json`), or computes them from the training split when `spec` is
    /// `None`. `data_dir` is `--data`, if given (see [`Self::data_dir`]); `by_speaker`
    /// splits FSDD by speaker (see [`Self::corpus`]).
    pub fn open(
        self,
        data_dir: Option<&Path>,
        frontend: &FrontendConfig,
        by_speaker: Option<&SpeakerSplit>,
        spec: Option<FeatureSpec>,
    ) -> Result<TaskData> {
        let dir = self.data_dir(data_dir);
        let audio = match self.corpus(data_dir, by_speaker)? {
            None => None,
            Some(corpus) => {
                let dir = dir.clone().expect("an audio task reads files");
                let extractor = FeatureExtractor::new(frontend.clone())?;
                let spec = match spec {
                    Some(spec) => {
                        check_spec(&spec, frontend, &corpus, &dir)?;
                        spec
                    }
                    None => {
                        if corpus.train.is_empty() {
                            // Split by speaker and validated on the training voices'
                            // takes 0-4, a folder of those takes alone trains nothing.
                            let hint = match by_speaker {
                                Some(split) if split.val.is_none() => {
                                    " (validation takes the training speakers' takes 0-4: \
                                     give more takes, or --speaker-val next-speaker)"
                                }
                                _ => "",
                            };
                            return Err(Error::file(
                                dir,
                                format!(
                                    "holds no training recordings to take feature statistics \
                                     from{hint}"
                                ),
                            ));
                        }
                        audio::feature_spec(&corpus, &extractor)?
                    }
                };
                Some(AudioData {
                    corpus,
                    extractor,
                    spec,
                })
            }
        };
        Ok(TaskData {
            task: self,
            data_dir: dir,
            frontend: frontend.clone(),
            audio,
        })
    }

    /// Loads (or generates) one split; see [`Self::open`].
    pub fn load(
        self,
        split: Split,
        data_dir: Option<&Path>,
        frontend: &FrontendConfig,
    ) -> Result<Dataset> {
        self.open(data_dir, frontend, None, None)?.load(split)
    }
}

/// Checks that saved feature statistics fit the front end and the corpus.
fn check_spec(
    spec: &FeatureSpec,
    frontend: &FrontendConfig,
    corpus: &Corpus,
    dir: &Path,
) -> Result<()> {
    if spec.frontend != *frontend {
        return Err(Error::ShapeMismatch(
            "the saved feature description (features.json) was made with another front end \
             than the run's configuration"
                .into(),
        ));
    }
    if spec.classes != corpus.classes {
        return Err(Error::file(
            dir,
            format!(
                "its classes ({}) are not the ones the run was trained on ({})",
                corpus.classes.join(", "),
                spec.classes.join(", ")
            ),
        ));
    }
    Ok(())
}

/// The corpus, front end and feature statistics of an audio task.
struct AudioData {
    corpus: Corpus,
    extractor: FeatureExtractor,
    spec: FeatureSpec,
}

/// A task's data, opened once (see [`Task::open`]): splits load from it without
/// recomputing the feature statistics.
pub struct TaskData {
    task: Task,
    data_dir: Option<PathBuf>,
    frontend: FrontendConfig,
    audio: Option<AudioData>,
}

impl TaskData {
    /// False for a split of an audio corpus that holds no recordings (a folder of
    /// recordings of new speakers is all training, for example).
    pub fn holds(&self, split: Split) -> bool {
        self.audio
            .as_ref()
            .is_none_or(|a| !a.corpus.split(split).is_empty())
    }

    /// The speaker of each sequence of `split` of an audio task, in order, as its
    /// file name says (`None` where it says none, as for clips of silence); `None`
    /// for the other tasks.
    pub fn speakers(&self, split: Split) -> Option<Vec<Option<String>>> {
        let audio = self.audio.as_ref()?;
        let clips = audio.corpus.split(split);
        Some(
            clips
                .iter()
                .map(|c| self.task.speaker_of(&c.path))
                .collect(),
        )
    }

    /// The feature description of an audio task (front end, training statistics,
    /// class names): what classifying new audio needs.
    pub fn feature_spec(&self) -> Option<&FeatureSpec> {
        self.audio.as_ref().map(|a| &a.spec)
    }

    /// Loads (or generates) one split.
    pub fn load(&self, split: Split) -> Result<Dataset> {
        let task = self.task;
        let (n, seed) = toy_split(split);
        let dir = || self.data_dir.clone().unwrap_or_default();
        let data = match (task, &self.audio) {
            (Task::SeqSpotting, _) => toy::seq_spotting(n, seed),
            (Task::NoiseVsSignal, _) => toy::noise_vs_signal(n, seed),
            (Task::Mnist, _) => mnist::load(&dir(), split)?,
            (_, Some(a)) => {
                let clips = a.corpus.split(split);
                if clips.is_empty() {
                    return Err(Error::file(
                        dir(),
                        format!("holds no {split:?} recordings").to_lowercase(),
                    ));
                }
                audio::dataset(clips, &a.extractor, &a.spec.norm, a.corpus.classes.len())?
            }
            (_, None) => unreachable!("audio tasks open with their corpus"),
        };
        let shape = task.shape(&self.frontend);
        if (data.steps, data.input, data.classes) != (shape.steps, shape.input, shape.classes) {
            return Err(Error::file(
                dir(),
                format!(
                    "holds sequences of {} steps x {} inputs, {} classes; the {} task needs {} x {}, {} classes",
                    data.steps,
                    data.input,
                    data.classes,
                    task.name(),
                    shape.steps,
                    shape.input,
                    shape.classes
                ),
            ));
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

    #[test]
    fn a_data_folder_is_refused_only_where_the_task_generates_its_data() {
        let dir = Path::new("some/folder");
        let err = Task::SeqSpotting.check_data_folder(Some(dir)).unwrap_err();
        assert!(
            err.to_string().contains("some/folder") && err.to_string().contains("seq-spotting"),
            "{err}"
        );
        assert!(Task::NoiseVsSignal.check_data_folder(Some(dir)).is_err());
        assert!(Task::SeqSpotting.check_data_folder(None).is_ok());
        for task in [Task::Mnist, Task::Fsdd, Task::SpeechCommands] {
            assert!(task.check_data_folder(Some(dir)).is_ok());
        }
    }
}
