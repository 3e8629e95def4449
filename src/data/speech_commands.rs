//! The Google Speech Commands layout (v0.01 and v0.02): one folder of 1 s, 16 kHz
//! WAV clips per word, `validation_list.txt` and `testing_list.txt` naming the
//! validation and test clips (`word/file.wav`, one per line; everything else is
//! training), and `_background_noise_/` with long noise recordings.
//!
//! Two tasks:
//! - 35 words: the 35 words of v0.02 as classes, in alphabetical order (v0.01's 30
//!   words are a subset, so its folders load too, leaving five classes empty).
//! - 12 classes, the standard benchmark: `_silence_`, `_unknown_` and the ten command
//!   words. Every other word is `_unknown_`; as in TensorFlow's reference input
//!   pipeline, each split keeps a random 10% (of its command-word clip count) of
//!   unknown clips, and gets as many `_silence_` clips, cut as 1 s slices from the
//!   background noise files at random offsets, each split from its own part of every
//!   file (train the first 80%, validation the next 10%, test the last 10%), so no
//!   test clip overlaps training audio. The draws are seeded per split, so every run
//!   sees the same sets.

use super::audio::{Clip, Corpus, ensure_not_empty};
use crate::error::{Error, Result};
use crate::rng::Rng;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// The 35 words of Speech Commands v0.02, in class order.
pub const WORDS_35: [&str; 35] = [
    "backward", "bed", "bird", "cat", "dog", "down", "eight", "five", "follow", "forward", "four",
    "go", "happy", "house", "learn", "left", "marvin", "nine", "no", "off", "on", "one", "right",
    "seven", "sheila", "six", "stop", "three", "tree", "two", "up", "visual", "wow", "yes", "zero",
];

/// The ten command words of the 12-class task, in class order after `_silence_` and
/// `_unknown_`.
pub const COMMANDS: [&str; 10] = [
    "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go",
];

/// The noise folder.
pub const NOISE_DIR: &str = "_background_noise_";
/// Share of unknown and of silence clips, against a split's command-word clips.
const EXTRA_SHARE: f64 = 0.10;
/// Length of a `_silence_` clip.
const CLIP_MS: usize = 1000;

/// Which of the two label sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Words {
    All35,
    Commands12,
}

impl Words {
    /// Number of classes.
    pub fn classes(self) -> usize {
        match self {
            Words::All35 => WORDS_35.len(),
            Words::Commands12 => COMMANDS.len() + 2,
        }
    }

    fn class_names(self) -> Vec<String> {
        match self {
            Words::All35 => WORDS_35.iter().map(|w| w.to_string()).collect(),
            Words::Commands12 => ["_silence_", "_unknown_"]
                .iter()
                .chain(COMMANDS.iter())
                .map(|w| w.to_string())
                .collect(),
        }
    }
}

/// Reads a split list into the set of `word/file.wav` entries it names.
fn read_list(dir: &Path, name: &str) -> Result<HashSet<String>> {
    let path = dir.join(name);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        Error::file(
            &path,
            format!("cannot read the split list ({e}); is --data a Speech Commands folder?"),
        )
    })?;
    Ok(text
        .lines()
        .map(|l| l.trim().replace('\\', "/"))
        .filter(|l| !l.is_empty())
        .collect())
}

/// Sorted names of the entries of `dir` that `keep` accepts.
fn sorted_entries(dir: &Path, keep: impl Fn(&Path) -> bool) -> Result<Vec<String>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::file_caused(dir, "cannot list", e))?;
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter(|e| keep(&e.path()))
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    Ok(names)
}

/// Every clip of the corpus as (word, `word/file.wav`, path), in sorted order. For
/// the 35-word task a word folder that is not one of the 35 words is an error (a
/// wrong folder); for the 12-class task it is one more `_unknown_` word.
fn word_clips(dir: &Path, words: Words) -> Result<Vec<(String, String, PathBuf)>> {
    let mut clips = Vec::new();
    for word in sorted_entries(dir, |p| p.is_dir())? {
        if word.starts_with('_') || word.starts_with('.') {
            continue;
        }
        if words == Words::All35 && !WORDS_35.contains(&word.as_str()) {
            return Err(Error::file(
                dir.join(&word),
                "is not one of the 35 Speech Commands words (the 12-class task \
                 counts any other word as _unknown_)",
            ));
        }
        for file in sorted_entries(&dir.join(&word), |p| {
            p.extension().is_some_and(|e| e == "wav")
        })? {
            let path = dir.join(&word).join(&file);
            clips.push((word.clone(), format!("{word}/{file}"), path));
        }
    }
    Ok(clips)
}

/// The part of every noise file that each split (train, val, test) cuts its
/// `_silence_` clips from, as fractions of the file: no test clip overlaps training
/// audio.
const NOISE_PARTS: [(f64, f64); 3] = [(0.0, 0.8), (0.8, 0.9), (0.9, 1.0)];

/// `_silence_` clips of split `split` (0 train, 1 val, 2 test): `count` 1 s slices at
/// random offsets within that split's part of the noise files.
fn silence_clips(
    dir: &Path,
    split: usize,
    count: usize,
    label: u32,
    rng: &mut Rng,
) -> Result<Vec<Clip>> {
    if count == 0 {
        return Ok(Vec::new());
    }
    let noise_dir = dir.join(NOISE_DIR);
    let files = sorted_entries(&noise_dir, |p| p.extension().is_some_and(|e| e == "wav")).map_err(
        |_| {
            Error::file(
                &noise_dir,
                "is missing: the 12-class task cuts its _silence_ clips from it",
            )
        },
    )?;
    // Lengths from the headers (the clips are decoded later).
    let mut sources = Vec::new();
    for file in files {
        let path = noise_dir.join(file);
        let reader = hound::WavReader::open(&path)
            .map_err(|e| Error::file_caused(&path, "cannot read as WAV", e))?;
        let spec = reader.spec();
        let ms = reader.duration() as f64 * 1000.0 / spec.sample_rate.max(1) as f64;
        let (from, to) = NOISE_PARTS[split];
        let (start, end) = ((ms * from).ceil() as usize, (ms * to).floor() as usize);
        if end >= start + CLIP_MS {
            sources.push((path, start, end));
        }
    }
    if sources.is_empty() {
        return Err(Error::file(
            noise_dir,
            "holds no noise recording of 10 s or more: each split cuts its 1 s _silence_ \
             clips from its own part of every file (train the first 80%, validation the \
             next 10%, test the last 10%)",
        ));
    }
    Ok((0..count)
        .map(|_| {
            let (path, start, end) = &sources[rng.below(sources.len())];
            Clip {
                path: path.clone(),
                label,
                offset_ms: (start + rng.below(end - CLIP_MS - start + 1)) as u32,
            }
        })
        .collect())
}

/// Lists the corpus in `dir` for the given label set.
pub fn corpus(dir: &Path, words: Words) -> Result<Corpus> {
    let val_list = read_list(dir, "validation_list.txt")?;
    let test_list = read_list(dir, "testing_list.txt")?;
    let classes = words.class_names();
    let mut known: [Vec<Clip>; 3] = Default::default();
    let mut unknown: [Vec<Clip>; 3] = Default::default();
    let clips = word_clips(dir, words)?;
    for (list, name) in [
        (&val_list, "validation_list.txt"),
        (&test_list, "testing_list.txt"),
    ] {
        let found = clips.iter().filter(|c| list.contains(&c.1)).count();
        if found < list.len() {
            log::warn!(
                "{}: {} of its {} entries name no recording in the folder",
                dir.join(name).display(),
                list.len() - found,
                list.len()
            );
        }
    }
    if words == Words::All35 {
        let empty = WORDS_35
            .iter()
            .filter(|w| !clips.iter().any(|c| c.0 == **w))
            .count();
        if empty > 0 {
            log::warn!(
                "{}: {empty} of the 35 words have no recordings",
                dir.display()
            );
        }
    }
    for (word, entry, path) in clips {
        let split = if test_list.contains(&entry) {
            2
        } else if val_list.contains(&entry) {
            1
        } else {
            0
        };
        match classes.iter().position(|c| *c == word) {
            Some(label) => known[split].push(Clip::file(path, label as u32)),
            None => unknown[split].push(Clip::file(path, 1)),
        }
    }
    let mut built: Vec<Vec<Clip>> = Vec::new();
    for (split, (mut clips, mut unknown)) in known.into_iter().zip(unknown).enumerate() {
        if words == Words::Commands12 {
            let mut rng = Rng::new(0x5eed_0000 + split as u64);
            let extra = (clips.len() as f64 * EXTRA_SHARE).ceil() as usize;
            rng.shuffle(&mut unknown);
            unknown.truncate(extra);
            clips.extend(unknown);
            clips.extend(silence_clips(dir, split, extra, 0, &mut rng)?);
        }
        built.push(clips);
    }
    let [train, val, test]: [Vec<Clip>; 3] = built.try_into().expect("three splits");
    let corpus = Corpus {
        classes,
        train,
        val,
        test,
    };
    ensure_not_empty(&corpus, dir, "Speech Commands")?;
    Ok(corpus)
}
