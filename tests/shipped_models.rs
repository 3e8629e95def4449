//! The models shipped in `assets/models/`, as a new user meets them on a fresh clone:
//! they load and agree with their own records, `classify` runs the FSDD model on new
//! audio with no data set anywhere, `eval` of the MNIST model asks for a data folder
//! rather than read the one of the machine that trained it, and neither command
//! writes into the model's directory.
//!
//! One test reads the real MNIST test split, from `$RANKCODE_DATA/mnist`, else
//! `../shared/datasets/mnist`: the shipped model must reproduce its `test.json`. When
//! the files are missing it fails under CI (CI=true) and is skipped loudly elsewhere.

use rankcode::checkpoint;
use rankcode::data::task::Task;
use rankcode::model::{ParamLayout, Readout};
use rankcode::run::RunConfig;
use rankcode::run::directory;
use rankcode::run::features::load_feature_spec;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::SystemTime;

fn shipped(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("assets/models")
        .join(name)
}

fn rankcode(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rankcode"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rankcode-shipped-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Each file of `dir` with its length and modification time: a command that writes
/// into the directory changes it.
fn listing(dir: &Path) -> Vec<(String, u64, SystemTime)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let meta = e.metadata().unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                meta.len(),
                meta.modified().unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

/// A copy of a shipped model whose `config.json` records a data folder that does not
/// exist, as on any machine but the one that trained it.
fn moved_copy(name: &str) -> PathBuf {
    let dir = temp(name);
    for e in std::fs::read_dir(shipped(name)).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
    }
    let path = dir.join(directory::CONFIG_FILE);
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    cfg["data_dir"] = format!("/no/such/datasets/{name}").into();
    std::fs::write(&path, serde_json::to_string_pretty(&cfg).unwrap()).unwrap();
    dir
}

fn test_record(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join(directory::TEST_FILE)).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// A made-up spoken "word" at 8 kHz: 0.1 s of silence, then 0.4 s of a falling
/// two-formant tone under a smooth envelope, then silence.
fn write_word(path: &Path) {
    let rate = 8000;
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    let (onset, length) = (0.1f64, 0.4f64);
    let mut phase = [0f64; 2];
    for i in 0..(rate as usize * 6 / 10) {
        let t = i as f64 / rate as f64;
        let u = (t - onset) / length;
        let sample = if (0.0..1.0).contains(&u) {
            let envelope = (std::f64::consts::PI * u).sin().powi(2);
            let pitch = [700.0 - 300.0 * u, 1800.0 + 400.0 * u];
            let mut s = 0.0;
            for (p, f) in phase.iter_mut().zip(pitch) {
                *p += 2.0 * std::f64::consts::PI * f / rate as f64;
                s += p.sin();
            }
            0.3 * envelope * s
        } else {
            0.0
        };
        w.write_sample((sample * 32767.0) as i16).unwrap();
    }
    w.finalize().unwrap();
}

#[test]
fn the_shipped_models_load_and_agree_with_their_records() {
    for (name, task) in [("mnist", Task::Mnist), ("fsdd", Task::Fsdd)] {
        let dir = shipped(name);
        let cfg = RunConfig::load(&dir).unwrap();
        assert_eq!(cfg.task, task, "{name}");
        // The weights, with every tensor's checksum verified.
        let params = checkpoint::load_model(&dir, &cfg.model).unwrap();
        assert_eq!(params.len(), ParamLayout::new(&cfg.model).total, "{name}");
        assert!(params.iter().all(|p| p.is_finite()), "{name}");
        // A model to run, not a run to resume: no Adam state (three times the weights).
        assert!(!dir.join(directory::CHECKPOINT_FILE).exists(), "{name}");
        // eval and classify default to the threshold chosen on validation.
        let record = test_record(&dir);
        let chosen = record["val_within_budget"]["theta"].as_f64().unwrap() as f32;
        assert_eq!(
            rankcode::run::inference::default_theta(&dir, &cfg).unwrap(),
            chosen
        );
        assert_eq!(record["theta"].as_f64().unwrap() as f32, chosen);
    }
    let mnist = RunConfig::load(&shipped("mnist")).unwrap();
    assert_eq!(
        (mnist.model.input_size, mnist.model.classes),
        (784, 10),
        "temporal MNIST: 784 pixel events a step, 10 digits"
    );
    // The FSDD model carries what classifying new audio needs: the front end, the
    // training split's statistics and the class names.
    let dir = shipped("fsdd");
    let cfg = RunConfig::load(&dir).unwrap();
    let spec = load_feature_spec(&dir).unwrap();
    assert_eq!(spec.frontend, cfg.frontend);
    assert_eq!(
        spec.classes,
        (0..10).map(|d| d.to_string()).collect::<Vec<_>>()
    );
    assert_eq!(cfg.model.readout, Readout::Softmax);
    assert!(
        cfg.speaker_split.is_some(),
        "the recipe splits FSDD by speaker"
    );
}

#[test]
fn classify_runs_the_shipped_fsdd_model_with_no_data_set() {
    let work = temp("classify");
    let word = work.join("word.wav");
    write_word(&word);
    let silence = work.join("silence.wav");
    {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 16_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(&silence, spec).unwrap();
        for _ in 0..4000 {
            w.write_sample(0i16).unwrap();
        }
        w.finalize().unwrap();
    }
    let files = [word.to_str().unwrap(), silence.to_str().unwrap()];
    // The shipped directory as it is (here its recorded data folder may exist), then
    // a copy whose data folder does not: classify reads no data set either way.
    let model = shipped("fsdd");
    let before = listing(&model);
    let moved = moved_copy("fsdd");
    let mut outputs = Vec::new();
    for dir in [&model, &moved] {
        let o = rankcode(
            &[
                &["classify", "--checkpoint", dir.to_str().unwrap(), "--json"],
                &files[..],
            ]
            .concat(),
        );
        assert!(o.status.success(), "classify failed: {}", text(&o.stderr));
        let lines: Vec<serde_json::Value> = text(&o.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        for (d, (file, audio_ms)) in lines.iter().zip([(files[0], 600.0), (files[1], 250.0)]) {
            assert_eq!(d["file"], file);
            let label = d["label"].as_str().unwrap();
            assert!(
                label.len() == 1 && label.as_bytes()[0].is_ascii_digit(),
                "{d}"
            );
            let frame = d["decision_frame"].as_u64().unwrap();
            assert!(frame < 58, "a 0.6 s clip has 58 frames: {d}");
            let ms = d["decision_ms"].as_f64().unwrap();
            assert!((ms - (frame as f64 * 10.0 + 25.0)).abs() < 1e-3, "{d}");
            assert!(
                (d["audio_ms"].as_f64().unwrap() - audio_ms).abs() < 1e-3,
                "{d}"
            );
        }
        outputs.push(lines);
    }
    assert_eq!(
        outputs[0], outputs[1],
        "the data folder changes no decision"
    );
    assert_eq!(
        listing(&model),
        before,
        "classify wrote into {}",
        model.display()
    );
    std::fs::remove_dir_all(&work).unwrap();
    std::fs::remove_dir_all(&moved).unwrap();
}

#[test]
fn eval_of_the_shipped_mnist_model_asks_for_a_data_folder() {
    let moved = moved_copy("mnist");
    let o = rankcode(&["eval", "--checkpoint", moved.to_str().unwrap()]);
    let err = text(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("/no/such/datasets/mnist, which does not exist here")
            && err.contains("--data DIR")
            && !err.contains("panicked"),
        "{err}"
    );
    let o = rankcode(&[
        "eval",
        "--checkpoint",
        moved.to_str().unwrap(),
        "--data",
        "/no/such/folder",
    ]);
    let err = text(&o.stderr);
    assert!(
        !o.status.success() && err.contains("/no/such/folder/t10k-images-idx3-ubyte: missing"),
        "{err}"
    );
    std::fs::remove_dir_all(&moved).unwrap();
}

#[test]
fn eval_of_the_shipped_mnist_model_reproduces_its_test_record() {
    let data = Task::Mnist.data_dir(None).unwrap();
    if !data.exists() {
        let msg = format!("MNIST not found at {} (set RANKCODE_DATA)", data.display());
        assert!(std::env::var_os("CI").is_none(), "{msg}");
        eprintln!("SKIPPED: {msg}");
        return;
    }
    let model = shipped("mnist");
    let before = listing(&model);
    let o = rankcode(&[
        "eval",
        "--checkpoint",
        model.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--no-full-pass",
        "--json",
    ]);
    assert!(o.status.success(), "eval failed: {}", text(&o.stderr));
    let eval: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let record = test_record(&model);
    assert_eq!(eval["theta"], record["theta"]);
    assert_eq!(eval["sequences"], 10_000);
    // The same decisions up to a few sequences whose score sits within rounding of
    // theta on another adapter.
    let close = |key: &str, tol: f64| {
        let (got, want) = (eval[key].as_f64().unwrap(), record[key].as_f64().unwrap());
        assert!((got - want).abs() <= tol, "{key}: {got}, test.json {want}");
    };
    close("accuracy", 5e-4);
    close("mean_decision_step", 5e-3);
    assert_eq!(
        listing(&model),
        before,
        "eval wrote into {}",
        model.display()
    );
}
