//! The Free Spoken Digit Dataset layout: `{digit}_{speaker}_{index}.wav` files (8 kHz
//! mono), in the folder given or in its `recordings/` subfolder.
//!
//! Splits, two ways:
//! - by take, FSDD's own convention: takes 0-4 of each speaker and digit are the test
//!   set; takes 5-9 are held out here as the validation split (model selection), and
//!   takes 10 and above are the training split. Every speaker is in every split, so
//!   the test measures how well a model knows the voices it trained on;
//! - by speaker ([`SpeakerSplit`]), leave-one-speaker-out: one speaker's recordings
//!   are the test split, another's the validation split, and the other speakers'
//!   the training split, so both the model selection and the test are on voices the
//!   model never heard, as in Google Speech Commands. Or, with no validation speaker,
//!   the validation split is takes 0-4 of the training speakers: one more voice to
//!   train on, but model selection on voices the model knows.

use super::audio::{Clip, Corpus, ensure_not_empty};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Classes (digits).
pub const CLASSES: usize = 10;
/// Takes below this index are the test split.
const TEST_TAKES: u32 = 5;
/// Takes below this index (and not test) are the validation split.
const VAL_TAKES: u32 = 10;

/// A speaker-disjoint split: the test speaker's recordings are the test split, the
/// validation speaker's the validation split, and every other speaker's the training
/// split. Without a validation speaker, takes 0-4 of every other speaker are the
/// validation split and their other takes the training split.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpeakerSplit {
    pub test: String,
    pub val: Option<String>,
}

impl SpeakerSplit {
    /// Fold `fold` (1-based) of leave-one-speaker-out over `speakers` (in name order):
    /// speaker `fold` is the test split and, with `val_speaker`, the next one,
    /// cyclically, the validation split. A speaker must be left to train on.
    pub fn fold(
        speakers: &[String],
        fold: usize,
        val_speaker: bool,
    ) -> std::result::Result<Self, String> {
        let n = speakers.len();
        let least = if val_speaker { 3 } else { 2 };
        if n < least {
            let sides = if val_speaker {
                "test, validation, training"
            } else {
                "test, training"
            };
            return Err(format!(
                "a speaker split needs at least {least} speakers ({sides}), the folder has {n}"
            ));
        }
        if fold == 0 || fold > n {
            return Err(format!(
                "fold {fold} does not exist: the folder's {n} speakers ({}) make folds 1 to {n}",
                speakers.join(", ")
            ));
        }
        Ok(SpeakerSplit {
            test: speakers[fold - 1].clone(),
            val: val_speaker.then(|| speakers[fold % n].clone()),
        })
    }
}

/// Digit, speaker and take of an FSDD file name, or `None` if it is not one.
pub fn parse_name(name: &str) -> Option<(u32, &str, u32)> {
    let stem = name.strip_suffix(".wav")?;
    let mut parts = stem.split('_');
    let digit: u32 = parts.next()?.parse().ok()?;
    let speaker = parts.next()?;
    let take: u32 = parts.next()?.parse().ok()?;
    (digit < CLASSES as u32 && !speaker.is_empty() && parts.next().is_none())
        .then_some((digit, speaker, take))
}

/// The folder holding the WAV files: `dir/recordings` if it exists, else `dir`.
fn recordings_dir(dir: &Path) -> PathBuf {
    let sub = dir.join("recordings");
    if sub.is_dir() { sub } else { dir.to_path_buf() }
}

/// Take, speaker, digit and file name of a recording, in the order recordings sort.
type Recording = (u32, String, u32, String);

/// The FSDD file names in `dir`'s recordings folder, each with its digit, speaker and
/// take, in a fixed order (by take, speaker, digit: any prefix holds every speaker and
/// digit alike). WAV files whose names do not follow the FSDD pattern are an error, so
/// a wrong folder is not silently half-read.
fn recordings(dir: &Path) -> Result<(PathBuf, Vec<Recording>)> {
    let folder = recordings_dir(dir);
    let entries = std::fs::read_dir(&folder)
        .map_err(|e| Error::file_caused(&folder, "cannot list the FSDD recordings", e))?;
    let names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.ends_with(".wav"))
        .collect();
    let mut files = Vec::with_capacity(names.len());
    for name in &names {
        let (digit, speaker, take) = parse_name(name).ok_or_else(|| {
            Error::file(
                folder.join(name),
                "is not named {digit}_{speaker}_{index}.wav as FSDD files are",
            )
        })?;
        files.push((take, speaker.to_string(), digit, name.clone()));
    }
    files.sort();
    Ok((folder, files))
}

/// The speakers of the recordings in `dir`, in name order.
pub fn speakers(dir: &Path) -> Result<Vec<String>> {
    let (_, files) = recordings(dir)?;
    let mut speakers: Vec<String> = files.into_iter().map(|(_, s, _, _)| s).collect();
    speakers.sort();
    speakers.dedup();
    Ok(speakers)
}

/// Lists the corpus in `dir`, split by take, or by speaker with `by_speaker` (see the
/// module's documentation), each split in the order of [`recordings`].
pub fn corpus(dir: &Path, by_speaker: Option<&SpeakerSplit>) -> Result<Corpus> {
    let (folder, files) = recordings(dir)?;
    let (mut train, mut val, mut test) = (Vec::new(), Vec::new(), Vec::new());
    for (take, speaker, digit, name) in files {
        let clip = Clip::file(folder.join(name), digit);
        let split = match by_speaker {
            None if take < TEST_TAKES => &mut test,
            None if take < VAL_TAKES => &mut val,
            None => &mut train,
            Some(s) if speaker == s.test => &mut test,
            Some(s) if s.val.as_ref() == Some(&speaker) => &mut val,
            Some(s) if s.val.is_none() && take < TEST_TAKES => &mut val,
            Some(_) => &mut train,
        };
        split.push(clip);
    }
    let corpus = Corpus {
        classes: (0..CLASSES).map(|d| d.to_string()).collect(),
        train,
        val,
        test,
    };
    ensure_not_empty(&corpus, &folder, "FSDD")?;
    Ok(corpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_impostors_do_not() {
        assert_eq!(parse_name("7_george_12.wav"), Some((7, "george", 12)));
        assert_eq!(parse_name("0_yweweler_0.wav"), Some((0, "yweweler", 0)));
        for bad in [
            "12_george_1.wav",
            "7_george.wav",
            "x_george_1.wav",
            "7__1.wav",
            "7_george_1_2.wav",
            "7_george_1.mp3",
        ] {
            assert_eq!(parse_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_shared_corpus_splits_by_take() {
        let dir = super::super::task::Task::Fsdd.data_dir(None).unwrap();
        if !dir.exists() {
            eprintln!("SKIPPED: no FSDD at {}", dir.display());
            return;
        }
        let c = corpus(&dir, None).unwrap();
        // Five speakers x 10 digits x 50 takes.
        assert_eq!((c.test.len(), c.val.len(), c.train.len()), (250, 250, 2000));
        let take = |clip: &Clip| {
            parse_name(clip.path.file_name().unwrap().to_str().unwrap())
                .unwrap()
                .2
        };
        assert!(c.test.iter().all(|clip| take(clip) < 5));
        assert!(c.val.iter().all(|clip| (5..10).contains(&take(clip))));
        assert!(c.train.iter().all(|clip| take(clip) >= 10));
    }

    #[test]
    fn speaker_folds_leave_each_speaker_out_once() {
        let speakers: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let fold = |k| SpeakerSplit::fold(&speakers, k, true);
        assert_eq!(
            fold(1).unwrap(),
            SpeakerSplit {
                test: "a".into(),
                val: Some("b".into())
            }
        );
        assert_eq!(
            fold(3).unwrap(),
            SpeakerSplit {
                test: "c".into(),
                val: Some("a".into())
            }
        );
        assert_eq!(
            SpeakerSplit::fold(&speakers[..2], 2, false).unwrap(),
            SpeakerSplit {
                test: "b".into(),
                val: None
            }
        );
        assert!(fold(0).unwrap_err().contains("folds 1 to 3"));
        assert!(fold(4).unwrap_err().contains("folds 1 to 3"));
        assert!(
            SpeakerSplit::fold(&speakers[..2], 1, true)
                .unwrap_err()
                .contains("at least 3")
        );
    }

    #[test]
    fn no_speaker_is_on_two_sides_of_a_speaker_split() {
        let dir =
            std::env::temp_dir().join(format!("rankcode-fsdd-speakers-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for speaker in ["ann", "bob", "cid", "dee"] {
            for (digit, take) in [(0, 0), (3, 7), (9, 12)] {
                std::fs::write(dir.join(format!("{digit}_{speaker}_{take}.wav")), b"").unwrap();
            }
        }
        let names = speakers(&dir).unwrap();
        assert_eq!(names, ["ann", "bob", "cid", "dee"]);
        for k in 1..=names.len() {
            let split = SpeakerSplit::fold(&names, k, true).unwrap();
            let val = split.val.clone().unwrap();
            let c = corpus(&dir, Some(&split)).unwrap();
            let speaker_of = |clip: &Clip| {
                let name = clip.path.file_name().unwrap().to_str().unwrap();
                parse_name(name).unwrap().1.to_string()
            };
            let take = |clip: &Clip| {
                let name = clip.path.file_name().unwrap().to_str().unwrap();
                parse_name(name).unwrap().2
            };
            let of = |clips: &[Clip]| {
                let mut s: Vec<String> = clips.iter().map(speaker_of).collect();
                s.dedup();
                s
            };
            assert_eq!(of(&c.test), std::slice::from_ref(&split.test));
            assert_eq!(of(&c.val), std::slice::from_ref(&val));
            assert_eq!(c.train.len(), 6, "two speakers of three recordings");
            assert!(of(&c.train).iter().all(|s| *s != split.test && *s != val));
            // Every take of the held-out speakers, none lost.
            assert_eq!(c.test.len() + c.val.len() + c.train.len(), 12);
            // Without a validation speaker: takes 0-4 of the three others validate.
            let split = SpeakerSplit::fold(&names, k, false).unwrap();
            let c = corpus(&dir, Some(&split)).unwrap();
            assert_eq!(of(&c.test), std::slice::from_ref(&split.test));
            assert_eq!((c.val.len(), c.train.len()), (3, 6));
            assert!(c.val.iter().all(|clip| take(clip) < 5));
            assert!(c.train.iter().all(|clip| take(clip) >= 5));
            let mut voices: Vec<String> = c.train.iter().map(speaker_of).collect();
            voices.sort();
            voices.dedup();
            assert_eq!(voices.len(), 3, "{voices:?}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
