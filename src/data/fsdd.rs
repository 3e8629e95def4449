//! The Free Spoken Digit Dataset layout: `{digit}_{speaker}_{index}.wav` files (8 kHz
//! mono), in the folder given or in its `recordings/` subfolder.
//!
//! Splits: FSDD's own convention makes takes 0-4 of each speaker and digit the test
//! set; takes 5-9 are held out here as the validation split (model selection), and
//! takes 10 and above are the training split.

use super::audio::{Clip, Corpus, ensure_not_empty};
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// Classes (digits).
pub const CLASSES: usize = 10;
/// Takes below this index are the test split.
const TEST_TAKES: u32 = 5;
/// Takes below this index (and not test) are the validation split.
const VAL_TAKES: u32 = 10;

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

/// Lists the corpus in `dir`, in a fixed order (by take, speaker, digit). WAV files whose
/// names do not follow the FSDD pattern are an error, so a wrong folder is not
/// silently half-read.
pub fn corpus(dir: &Path) -> Result<Corpus> {
    let folder = recordings_dir(dir);
    let entries = std::fs::read_dir(&folder).map_err(|e| Error::File {
        path: folder.clone(),
        problem: format!("cannot list the FSDD recordings: {e}"),
    })?;
    let names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.ends_with(".wav"))
        .collect();
    let mut files = Vec::with_capacity(names.len());
    for name in &names {
        let (digit, speaker, take) = parse_name(name).ok_or_else(|| Error::File {
            path: folder.join(name),
            problem: "is not named {digit}_{speaker}_{index}.wav as FSDD files are".into(),
        })?;
        files.push((take, speaker, digit, name));
    }
    // Take-major order: any prefix (--train-size) holds every speaker and digit alike.
    files.sort();
    let (mut train, mut val, mut test) = (Vec::new(), Vec::new(), Vec::new());
    for (take, _, digit, name) in files {
        let clip = Clip::file(folder.join(name), digit);
        match take {
            t if t < TEST_TAKES => test.push(clip),
            t if t < VAL_TAKES => val.push(clip),
            _ => train.push(clip),
        }
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
        let c = corpus(&dir).unwrap();
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
}
