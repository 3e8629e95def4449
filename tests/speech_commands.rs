//! A Google Speech Commands corpus in the real layout, built inside the test from FSDD
//! recordings (resampled to 16 kHz and padded to 1 s, with split lists and a noise
//! folder), read by the loader for both tasks, then run end to end through the
//! command line: train, eval, classify (files and standard input).
//!
//! FSDD is read from `$RANKCODE_DATA/fsdd`, else `../shared/datasets/fsdd`. When it is
//! missing the tests fail under CI (CI=true) and are skipped loudly elsewhere.

use rankcode::data::audio::{Clip, FeatureExtractor};
use rankcode::data::frontend::FrontendConfig;
use rankcode::data::speech_commands::{COMMANDS, WORDS_35};
use rankcode::data::task::{Split, Task};
use rankcode::data::wav;
use rankcode::rng::Rng;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// FSDD digits to the words their folders get: six command words and four other
/// words (unknown in the 12-class task).
const WORD_OF_DIGIT: [&str; 10] = [
    "yes", "no", "up", "down", "left", "right", "six", "seven", "eight", "nine",
];
const SPEAKERS: [&str; 2] = ["george", "jackson"];
/// Takes per speaker and digit: take 0 is test, take 1 validation, the rest training.
const TAKES: u32 = 5;

fn fsdd_dir() -> Option<PathBuf> {
    let dir = Task::Fsdd.data_dir(None).unwrap();
    if dir.exists() {
        return Some(dir);
    }
    let msg = format!("FSDD not found at {} (set RANKCODE_DATA)", dir.display());
    assert!(std::env::var_os("CI").is_none(), "{msg}");
    eprintln!("SKIPPED: {msg}");
    None
}

fn write_wav_16k(path: &Path, samples: &[f32]) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for &s in samples {
        w.write_sample((s.clamp(-1.0, 1.0) * 32767.0) as i16)
            .unwrap();
    }
    w.finalize().unwrap();
}

/// The corpus, built once per test binary in a temporary folder.
fn corpus_dir() -> Option<&'static Path> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| {
        let fsdd = fsdd_dir()?;
        let root = std::env::temp_dir().join(format!("rankcode-gsc-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let (mut val, mut test) = (String::new(), String::new());
        for (digit, word) in WORD_OF_DIGIT.iter().enumerate() {
            std::fs::create_dir_all(root.join(word)).unwrap();
            for speaker in SPEAKERS {
                for take in 0..TAKES {
                    let src = fsdd
                        .join("recordings")
                        .join(format!("{digit}_{speaker}_{take}.wav"));
                    let mut audio = wav::load_wav(&src, 16_000).unwrap();
                    audio.samples.resize(16_000, 0.0);
                    let entry = format!("{word}/{speaker}_nohash_{take}.wav");
                    write_wav_16k(&root.join(&entry), &audio.samples);
                    match take {
                        0 => test.push_str(&format!("{entry}\n")),
                        1 => val.push_str(&format!("{entry}\n")),
                        _ => {}
                    }
                }
            }
        }
        std::fs::write(root.join("validation_list.txt"), val).unwrap();
        std::fs::write(root.join("testing_list.txt"), test).unwrap();
        let noise = root.join("_background_noise_");
        std::fs::create_dir_all(&noise).unwrap();
        let mut rng = Rng::new(7);
        // 12 s: each split cuts its silence from its own part (test: the last 1.2 s).
        let white: Vec<f32> = (0..192_000).map(|_| 0.1 * rng.normal() as f32).collect();
        write_wav_16k(&noise.join("white_noise.wav"), &white);
        std::fs::write(noise.join("README.md"), "not a recording\n").unwrap();
        Some(root)
    })
    .as_deref()
}

#[test]
fn the_35_word_task_labels_words_and_splits_by_the_lists() {
    let Some(dir) = corpus_dir() else { return };
    let corpus = Task::SpeechCommands
        .corpus(Some(dir), None)
        .unwrap()
        .unwrap();
    assert_eq!(corpus.classes, WORDS_35);
    let per_split = (WORD_OF_DIGIT.len() * SPEAKERS.len()) as u32;
    assert_eq!(corpus.test.len() as u32, per_split);
    assert_eq!(corpus.val.len() as u32, per_split);
    assert_eq!(corpus.train.len() as u32, per_split * (TAKES - 2));
    for clip in corpus.test.iter().chain(&corpus.train) {
        let word = clip.path.parent().unwrap().file_name().unwrap();
        assert_eq!(WORDS_35[clip.label as usize], word.to_str().unwrap());
    }
    let take_of = |c: &Clip| c.path.file_name().unwrap().to_str().unwrap().to_owned();
    assert!(corpus.test.iter().all(|c| take_of(c).ends_with("_0.wav")));
    assert!(corpus.val.iter().all(|c| take_of(c).ends_with("_1.wav")));
}

#[test]
fn the_12_class_task_adds_unknown_and_silence() {
    let Some(dir) = corpus_dir() else { return };
    let corpus = Task::SpeechCommands12
        .corpus(Some(dir), None)
        .unwrap()
        .unwrap();
    assert_eq!(corpus.classes[..2], ["_silence_", "_unknown_"]);
    assert_eq!(corpus.classes[2..], COMMANDS);
    // Silence offsets (ms) each split may use: its own part of the 12 s noise file.
    for (clips, takes, offsets) in [
        (&corpus.train, TAKES - 2, 0..=8_600),
        (&corpus.test, 1, 10_800..=11_000),
    ] {
        let commands = 6 * SPEAKERS.len() * takes as usize;
        let extra = (commands as f64 * 0.1).ceil() as usize;
        let count = |label| clips.iter().filter(|c| c.label == label).count();
        assert_eq!(count(0), extra, "silence clips");
        assert_eq!(count(1), extra, "unknown clips");
        assert_eq!(clips.len(), commands + 2 * extra);
        for c in clips.iter().filter(|c| c.label == 0) {
            assert!(c.path.ends_with("_background_noise_/white_noise.wav"));
            assert!(offsets.contains(&c.offset_ms), "offset {}", c.offset_ms);
        }
        for c in clips.iter().filter(|c| c.label >= 2) {
            let word = c.path.parent().unwrap().file_name().unwrap();
            assert_eq!(corpus.classes[c.label as usize], word.to_str().unwrap());
        }
    }
    // Seeded: the same corpus twice.
    assert_eq!(
        corpus,
        Task::SpeechCommands12
            .corpus(Some(dir), None)
            .unwrap()
            .unwrap()
    );
    // Features: 98 frames of 40 log-mel bands, normalised with training statistics.
    let frontend = FrontendConfig::default();
    let train = Task::SpeechCommands12
        .load(Split::Train, Some(dir), &frontend)
        .unwrap();
    assert_eq!((train.steps, train.input, train.classes), (98, 40, 12));
    let all = train.all();
    let x = all.dense();
    let mean = x.iter().map(|&v| v as f64).sum::<f64>() / x.len() as f64;
    assert!(mean.abs() < 1e-3, "training features have mean {mean}");
}

#[test]
fn features_are_cached_by_content_and_config() {
    let Some(fsdd) = fsdd_dir() else { return };
    let cache = std::env::temp_dir().join(format!("rankcode-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cache);
    let corpus = Task::Fsdd.corpus(Some(&fsdd), None).unwrap().unwrap();
    let clip = &corpus.test[0];
    let cached =
        FeatureExtractor::with_cache(FrontendConfig::default(), Some(cache.clone())).unwrap();
    let first = cached.clip(clip).unwrap();
    let entries = || {
        walk(&cache)
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "f32"))
            .collect::<Vec<_>>()
    };
    assert_eq!(entries().len(), 1);
    assert_eq!(
        cached.clip(clip).unwrap(),
        first,
        "read back from the cache"
    );
    // A damaged entry is recomputed, not trusted: cut short, or a value changed.
    std::fs::write(&entries()[0], b"junk").unwrap();
    assert_eq!(cached.clip(clip).unwrap(), first);
    let mut bytes = std::fs::read(&entries()[0]).unwrap();
    bytes[0..4].copy_from_slice(&123f32.to_le_bytes());
    std::fs::write(&entries()[0], &bytes).unwrap();
    assert_eq!(cached.clip(clip).unwrap(), first);
    // Another front end is another entry, and the same values as without a cache.
    let mfcc = FrontendConfig {
        mfcc: Some(13),
        ..FrontendConfig::default()
    };
    let with = FeatureExtractor::with_cache(mfcc.clone(), Some(cache.clone())).unwrap();
    let without = FeatureExtractor::with_cache(mfcc, None).unwrap();
    assert_eq!(with.clip(clip).unwrap(), without.clip(clip).unwrap());
    assert_eq!(entries().len(), 2);
    std::fs::remove_dir_all(&cache).unwrap();
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn rankcode(args: &[&str], cache: &Path, stdin: Option<&[u8]>) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rankcode"))
        .args(args)
        .env("RANKCODE_CACHE", cache)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or_default()).unwrap();
    drop(input);
    let o = child.wait_with_output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (o.status.success(), text(&o.stdout), text(&o.stderr))
}

#[test]
fn train_eval_and_classify_run_end_to_end_on_the_real_layout() {
    let Some(dir) = corpus_dir() else { return };
    let work = std::env::temp_dir().join(format!("rankcode-gsc-run-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let cache = work.join("cache");
    let out = work.join("run");
    let (data, out_s) = (dir.to_str().unwrap(), out.to_str().unwrap());
    let (ok, _, err) = rankcode(
        &[
            "train",
            "--task",
            "speech-commands-12",
            "--data",
            data,
            "--out",
            out_s,
            "--hidden",
            "8",
            "--batch",
            "16",
            "--epochs",
            "1",
            "--readout",
            "softmax",
            "--theta",
            "0.5",
        ],
        &cache,
        None,
    );
    assert!(ok, "train failed: {err}");
    for file in [
        "config.json",
        "model.safetensors",
        "features.json",
        "test.json",
    ] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    let (ok, json, err) = rankcode(
        &[
            "eval",
            "--checkpoint",
            out_s,
            "--json",
            "--theta-sweep",
            "0.3:0.9:3",
        ],
        &cache,
        None,
    );
    assert!(ok, "eval failed: {err}");
    let eval: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        eval["sequences"],
        6 * 2 + 2 * 2,
        "12 commands + unknown + silence"
    );
    assert_eq!(eval["steps"], 98);
    assert_eq!(eval["sweep"].as_array().unwrap().len(), 3);

    let yes = dir.join("yes/george_nohash_0.wav");
    let (ok, lines, err) = rankcode(
        &[
            "classify",
            "--checkpoint",
            out_s,
            "--json",
            yes.to_str().unwrap(),
            "-",
        ],
        &cache,
        Some(&std::fs::read(dir.join("no/jackson_nohash_0.wav")).unwrap()),
    );
    assert!(ok, "classify failed: {err}");
    let lines: Vec<serde_json::Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["file"], "-");
    for d in &lines {
        let frame = d["decision_frame"].as_u64().unwrap();
        assert!(frame < 98);
        let ms = d["decision_ms"].as_f64().unwrap();
        assert!((ms - (frame as f64 * 10.0 + 25.0)).abs() < 1e-3, "{d}");
        assert!((d["audio_ms"].as_f64().unwrap() - 1000.0).abs() < 1e-3);
        let label = d["label"].as_str().unwrap();
        assert!(["_silence_", "_unknown_"].contains(&label) || COMMANDS.contains(&label));
    }
    // Bad input: a file that is not a WAV, a run that is not an audio run.
    let junk = work.join("junk.wav");
    std::fs::write(&junk, b"not a wav at all").unwrap();
    let (ok, _, err) = rankcode(
        &["classify", "--checkpoint", out_s, junk.to_str().unwrap()],
        &cache,
        None,
    );
    assert!(
        !ok && err.contains("junk.wav") && !err.contains("panicked"),
        "{err}"
    );
    std::fs::remove_dir_all(&work).unwrap();
}

/// FSDD split by speaker, end to end: a run trained on three speakers (one of them
/// the validation split, one the test split), then evaluated whole on a folder of two
/// speakers it never heard, holding only takes 0-4, with accuracy per speaker. Its
/// recordings are takes 0-3 only, which the default validation (the training voices'
/// takes 0-4) would take whole: refused, naming the way out.
#[test]
fn fsdd_trains_by_speaker_and_evaluates_a_folder_of_new_speakers() {
    let Some(fsdd) = fsdd_dir() else { return };
    let work = std::env::temp_dir().join(format!("rankcode-fsdd-speakers-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    let (known, new) = (work.join("known"), work.join("new"));
    let copy = |to: &Path, speakers: &[&str], takes: std::ops::Range<u32>| {
        std::fs::create_dir_all(to).unwrap();
        for speaker in speakers {
            for digit in 0..10 {
                for take in takes.clone() {
                    let name = format!("{digit}_{speaker}_{take}.wav");
                    std::fs::copy(fsdd.join("recordings").join(&name), to.join(&name)).unwrap();
                }
            }
        }
    };
    copy(&known, &["george", "jackson", "lucas"], 0..4);
    copy(&new, &["nicolas", "yweweler"], 0..5);
    let cache = work.join("cache");
    let out = work.join("run");
    let train = |speaker_val: &[&str]| {
        let args = [
            "train",
            "--task",
            "fsdd",
            "--fold",
            "2",
            "--data",
            known.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--hidden",
            "8",
            "--epochs",
            "1",
        ];
        rankcode(&[&args[..], speaker_val].concat(), &cache, None)
    };
    let (ok, _, err) = train(&[]);
    assert!(!ok && err.contains("--speaker-val next-speaker"), "{err}");
    let (ok, _, err) = train(&["--speaker-val", "next-speaker"]);
    assert!(ok, "train failed: {err}");
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(
        config["speaker_split"]["test"], "jackson",
        "fold 2 of george, jackson, lucas"
    );
    assert_eq!(config["speaker_split"]["val"], "lucas");
    let (ok, json, err) = rankcode(
        &[
            "eval",
            "--checkpoint",
            out.to_str().unwrap(),
            "--data",
            new.to_str().unwrap(),
            "--split",
            "all",
            "--no-full-pass",
            "--json",
        ],
        &cache,
        None,
    );
    assert!(ok, "eval of new speakers failed: {err}");
    let eval: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(eval["sequences"], 100);
    let speakers = eval["per_speaker"].as_array().unwrap();
    let names: Vec<&str> = speakers
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["nicolas", "yweweler"]);
    assert!(speakers.iter().all(|s| s["sequences"] == 50));
    let mean = speakers
        .iter()
        .map(|s| s["accuracy"].as_f64().unwrap())
        .sum::<f64>()
        / 2.0;
    assert!(
        (mean - eval["accuracy"].as_f64().unwrap()).abs() < 1e-9,
        "equal groups"
    );
    // The other split of a folder without the run's speakers holds nothing to test.
    let (ok, _, err) = rankcode(
        &[
            "eval",
            "--checkpoint",
            out.to_str().unwrap(),
            "--data",
            new.to_str().unwrap(),
        ],
        &cache,
        None,
    );
    assert!(!ok && err.contains("holds no test recordings"), "{err}");
    let _ = std::fs::remove_dir_all(&work);
}
