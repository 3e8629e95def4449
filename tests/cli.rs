//! The command line as a user meets it: bad input gets a clear message and a
//! non-zero exit, never a panic; the main commands run end to end.

use std::path::PathBuf;
use std::process::{Command, Output};

fn rankcode(args: &[&str]) -> Output {
    rankcode_with(args, &[])
}

fn rankcode_with(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rankcode"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("the binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rankcode-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Fails with a message containing `needle`, and without a panic.
fn assert_refused(args: &[&str], needle: &str) {
    let o = rankcode(args);
    let err = stderr(&o);
    assert!(!o.status.success(), "{args:?} should fail");
    assert!(
        err.contains(needle),
        "{args:?}: expected '{needle}' in: {err}"
    );
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
}

#[test]
fn invalid_flags_are_refused_clearly() {
    let out = temp("flags");
    let out = out.to_str().unwrap();
    let train = |extra: &[&'static str]| -> Vec<&str> {
        let mut a = vec!["train", "--task", "seq-spotting", "--out", out];
        a.extend_from_slice(extra);
        a
    };
    assert_refused(&train(&["--theta", "1.5"]), "theta");
    assert_refused(&train(&["--theta", "0"]), "theta");
    assert_refused(&train(&["--theta", "95"]), "got 95 (did you mean 0.95?)");
    assert_refused(&train(&["--beta=-1"]), "beta");
    assert_refused(&train(&["--loss-from-step", "0"]), "--loss-from-step");
    assert_refused(&train(&["--hidden", "0"]), "hidden size");
    assert_refused(&train(&["--batch", "0"]), "batch");
    assert_refused(&train(&["--epochs", "0"]), "epochs");
    assert_refused(&train(&["--lr", "0"]), "learning rate");
    assert_refused(&train(&["--readback-every", "0"]), "readback");
    assert_refused(&train(&["--weight-decay=-0.1"]), "weight decay");
    assert_refused(&train(&["--augment-shift", "2"]), "--task mnist");
    assert_refused(&train(&["--augment-drop", "0.2"]), "--task mnist");
    assert_refused(
        &[
            "train",
            "--task",
            "mnist",
            "--augment-drop",
            "1",
            "--out",
            out,
        ],
        "--augment-drop must be above 0 and below 1",
    );
    assert_refused(&train(&["--augment-rotate", "10"]), "--task mnist");
    assert_refused(&train(&["--augment-scale", "0.1"]), "--task mnist");
    assert_refused(&train(&["--augment-elastic", "34:4"]), "--task mnist");
    let mnist = |extra: &[&'static str]| -> Vec<&str> {
        let mut a = vec!["train", "--task", "mnist", "--out", out];
        a.extend_from_slice(extra);
        a
    };
    assert_refused(
        &mnist(&["--augment-rotate=-10"]),
        "--augment-rotate must be above 0 and at most 180 degrees",
    );
    assert_refused(
        &mnist(&["--augment-scale", "1"]),
        "--augment-scale must be above 0 and below 1",
    );
    assert_refused(
        &mnist(&["--augment-elastic", "34"]),
        "--augment-elastic '34': no ':' (expected ALPHA:SIGMA, e.g. 34:4)",
    );
    assert_refused(
        &mnist(&["--augment-elastic", "34:0"]),
        "SIGMA must be above 0",
    );
    assert_refused(
        &mnist(&["--augment-elastic", "alpha:4"]),
        "ALPHA is not a number",
    );
    // The sampling of the distortions, without one of them: nothing to sample.
    for without in [
        mnist(&["--augment-sampling", "bilinear"]),
        mnist(&["--augment-rotate", "none", "--augment-sampling", "bilinear"]),
        train(&["--augment-sampling", "bilinear"]),
    ] {
        assert_refused(
            &without,
            "--augment-sampling bilinear chooses how --augment-rotate, --augment-scale and \
             --augment-elastic read the image",
        );
    }
    assert_refused(
        &mnist(&["--augment-rotate", "10", "--augment-sampling", "cubic"]),
        "invalid value 'cubic' for '--augment-sampling",
    );
    assert_refused(
        &["eval", "--checkpoint", out, "--max-decision-step", "1.5"],
        "--theta-sweep",
    );
    assert_refused(
        &train(&["--select-theta-sweep", "0.5:0.9:5"]),
        "--select-max-decision-step",
    );
    assert_refused(
        &train(&["--select-max-decision-step", "0.5"]),
        "--select-max-decision-step must be at least 1",
    );
    assert_refused(
        &train(&[
            "--select-max-decision-step",
            "1.5",
            "--select-theta-sweep",
            "0.9:0.5:3",
        ]),
        "theta sweep",
    );
    assert_refused(
        &["train", "--task", "nonsense", "--out", out],
        "invalid value 'nonsense'",
    );
    assert_refused(
        &["eval", "--checkpoint", out, "--theta-sweep", "0.9:0.5:3"],
        "theta sweep",
    );
}

#[test]
fn missing_or_corrupted_checkpoints_name_the_file() {
    let missing = temp("missing");
    assert_refused(
        &["eval", "--checkpoint", missing.to_str().unwrap()],
        "does not exist",
    );
    std::fs::create_dir_all(&missing).unwrap();
    assert_refused(
        &["eval", "--checkpoint", missing.to_str().unwrap()],
        "not a rankcode run directory",
    );
    std::fs::remove_dir(&missing).unwrap();
    let resume = [
        "train",
        "--task",
        "seq-spotting",
        "--resume",
        "--out",
        missing.to_str().unwrap(),
    ];
    assert_refused(&resume, "no run to resume");
    // --resume takes the task from the run, so it needs no --task: the refusal is the same.
    assert_refused(
        &["train", "--resume", "--out", missing.to_str().unwrap()],
        "no run to resume",
    );
    assert!(!missing.exists(), "a refused resume creates nothing");
    // Without --resume, --task is required.
    assert_refused(&["train", "--out", missing.to_str().unwrap()], "--task");

    let dir = temp("corrupt");
    // Without a terminal, progress comes as plain lines (here after every batch but
    // the last of an epoch).
    let run = rankcode_with(
        &[
            "train",
            "--task",
            "seq-spotting",
            "--hidden",
            "6",
            "--epochs",
            "1",
            "--train-size",
            "64",
            "--batch",
            "32",
            "--out",
            dir.to_str().unwrap(),
        ],
        &[("RANKCODE_PROGRESS_SECS", "0")],
    );
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(
        stderr(&run).contains("epoch 1/1: batch 1/2: loss"),
        "{}",
        stderr(&run)
    );
    let ok = rankcode(&["eval", "--checkpoint", dir.to_str().unwrap(), "--json"]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    let json: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
    for key in [
        "accuracy",
        "mean_decision_step",
        "mean_decision_fraction",
        "not_fired",
        "eos_accuracy",
        "steps_processed",
        "sequences",
        "wall_s",
        "adapter",
        "theta",
    ] {
        assert!(json.get(key).is_some(), "eval --json lacks {key}: {json}");
    }
    // A threshold chosen for a decision-time budget: every seq-spotting point decides
    // within its 25 steps; a budget under one step is refused before any work.
    let pick = |budget: &str| -> serde_json::Value {
        let o = rankcode(&[
            "eval",
            "--checkpoint",
            dir.to_str().unwrap(),
            "--theta-sweep",
            "0.5:0.99:5",
            "--max-decision-step",
            budget,
            "--json",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()["best_within_budget"]
            .clone()
    };
    let best = pick("25");
    assert!(best["theta"].as_f64().is_some(), "{best}");
    assert!(best["mean_decision_step"].as_f64().unwrap() <= 25.0);
    let dir_s = dir.to_str().unwrap();
    let budget = |b| {
        [
            "eval",
            "--checkpoint",
            dir_s,
            "--theta-sweep",
            "0.5:0.99:5",
            "--max-decision-step",
            b,
        ]
    };
    assert_refused(&budget("0.5"), "counts steps from 1");
    assert_refused(&budget("NaN"), "counts steps from 1");
    let model = dir.join("model.safetensors");
    let bytes = std::fs::read(&model).unwrap();
    // One flipped bit in the weights (the file's last byte is a tensor's).
    let mut flipped = bytes.clone();
    *flipped.last_mut().unwrap() ^= 0x01;
    std::fs::write(&model, &flipped).unwrap();
    assert_refused(
        &["eval", "--checkpoint", dir.to_str().unwrap()],
        "is damaged: its bytes do not match their SHA-256 checksum",
    );
    std::fs::write(&model, &bytes[..bytes.len() - 10]).unwrap();
    assert_refused(
        &["eval", "--checkpoint", dir.to_str().unwrap()],
        "model.safetensors",
    );
    // A checkpoint of another shape.
    let config = dir.join("config.json");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("\"hidden_size\": 6", "\"hidden_size\": 7");
    std::fs::write(&config, text).unwrap();
    std::fs::write(&model, &bytes).unwrap();
    assert_refused(&["eval", "--checkpoint", dir.to_str().unwrap()], "shape");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_demo_runs_end_to_end() {
    let dir = temp("demo");
    let figure = dir.join("figure");
    let o = rankcode(&[
        "demo",
        "--epochs",
        "1",
        "--train-size",
        "256",
        "--val-size",
        "256",
        "--test-size",
        "256",
        "--figure",
        figure.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for policy in ["rc", "eos", "bayes"] {
        let budgets = json[policy]["sweeps"]["budgets"].as_array().unwrap();
        assert_eq!(budgets.len(), 4, "{json}");
        let test = json[policy]["sweeps"]["test"].as_array().unwrap();
        for point in test {
            let acc = point["accuracy"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&acc), "{json}");
        }
    }
    for mode in ["rc", "eos"] {
        let acc = json[mode]["test"]["accuracy"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&acc), "{json}");
    }
    assert!(json["adapter"].as_str().is_some_and(|a| !a.is_empty()));
    assert!(json["verdict"].as_str().unwrap().contains("of the steps"));
    for suffix in ["svg", "png"] {
        assert!(dir.join(format!("figure.{suffix}")).is_file(), "{json}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_demo_refuses_sizes_of_zero() {
    for flag in ["--epochs", "--train-size", "--val-size", "--test-size"] {
        assert_refused(
            &["demo", flag, "0"],
            &format!("invalid value '0' for '{flag} <"),
        );
    }
}

#[test]
fn resume_extends_a_finished_run_and_a_failed_start_leaves_nothing() {
    let dir = temp("extend");
    let out = dir.to_str().unwrap();
    let base = [
        "train",
        "--task",
        "seq-spotting",
        "--hidden",
        "5",
        "--train-size",
        "64",
        // seq-spotting's recipe anneals its rate over the run's epochs, which a resumed
        // run cannot stretch, and clips its gradients: both off, so that the run can be
        // extended and a --clip-grad-norm on resume differs from the run's.
        "--lr-schedule",
        "constant",
        "--clip-grad-norm",
        "none",
        "--out",
        out,
    ];
    let bad: Vec<&str> = base.iter().copied().chain(["--batch", "70000"]).collect();
    assert_refused(&bad, "batch size");
    assert!(
        !dir.join("config.json").exists(),
        "a refused start writes no run"
    );
    let first: Vec<&str> = base
        .iter()
        .copied()
        .chain(["--batch", "32", "--epochs", "1"])
        .collect();
    assert!(rankcode(&first).status.success());
    let more: Vec<&str> = base
        .iter()
        .copied()
        .chain(["--batch", "32", "--epochs", "2", "--resume"])
        .collect();
    let o = rankcode(&more);
    assert!(o.status.success(), "{}", stderr(&o));
    let metrics = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().count(), 2, "{metrics}");
    // The saved settings were restated: nothing is ignored, and nothing is said.
    assert!(!stderr(&o).contains("ignored"), "{}", stderr(&o));
    // Flags given that a saved setting overrides are named, with both values; the
    // defaults of flags not given (here the recipe's --hidden 64 and --batch 128) never are.
    // --resume reads the task from the run: --task may be left out.
    let resume = |extra: &[&'static str]| {
        let mut args = vec!["train", "--resume", "--out", out];
        args.extend_from_slice(extra);
        let o = rankcode(&args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        stderr(&o)
    };
    // Restated as saved (--theta 0.95 reads back equal through f32): nothing to name.
    let quiet = resume(&["--train-size", "64", "--theta", "0.95"]);
    assert!(!quiet.contains("ignored"), "{quiet}");
    let note = resume(&[
        "--train-size",
        "64",
        "--hidden",
        "7",
        "--clip-grad-norm",
        "1",
    ]);
    assert!(
        note.contains(
            "ignored: --hidden (7 given, 5 in the run), --clip-grad-norm (1.0 given, none in the run)"
        ),
        "{note}"
    );
    assert!(
        !note.contains("--batch") && !note.contains("--train-size ("),
        "{note}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_resume_drops_a_cut_metrics_line_and_stale_temporary_files() {
    let dir = temp("cut");
    let out = dir.to_str().unwrap();
    // A constant rate (not seq-spotting's cosine schedule), so the run can be extended.
    train_small(&dir, "5", "1", &["--lr-schedule", "constant"]);
    // A crash cut the record of epoch 2 short, and left the temporary files of
    // writes that never reached their rename (see files::write_atomic).
    let metrics_path = dir.join("metrics.jsonl");
    let whole = std::fs::read_to_string(&metrics_path).unwrap();
    std::fs::write(
        &metrics_path,
        format!("{whole}{{\"epoch\":2,\"train_loss\":0.69,\"tr"),
    )
    .unwrap();
    let stale = [
        ".checkpoint.safetensors.4194305.0.tmp",
        ".model.safetensors.4194305.1.tmp",
    ];
    for name in stale {
        std::fs::write(dir.join(name), b"partial").unwrap();
    }
    let o = rankcode(&["train", "--resume", "--out", out, "--epochs", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let metrics = std::fs::read_to_string(&metrics_path).unwrap();
    let epochs: Vec<u64> = metrics
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["epoch"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(epochs, [1, 2], "{metrics}");
    assert!(metrics.starts_with(&whole), "{metrics}");
    for name in stale {
        assert!(!dir.join(name).exists(), "{name} is left");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Rewrites the safetensors file at `path` with the same tensors and the metadata that
/// `edit` makes of its own.
fn rewrite_metadata(
    path: &std::path::Path,
    edit: impl FnOnce(&mut std::collections::HashMap<String, String>),
) {
    use safetensors::SafeTensors;
    let bytes = std::fs::read(path).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
    let mut meta = header.metadata().clone().unwrap_or_default();
    edit(&mut meta);
    std::fs::write(
        path,
        safetensors::serialize(st.tensors(), Some(meta)).unwrap(),
    )
    .unwrap();
}

#[test]
fn a_resume_refuses_a_checkpoint_that_disagrees_with_the_metrics() {
    let dir = temp("disagree");
    let out = dir.to_str().unwrap();
    let ck_path = dir.join("checkpoint.safetensors");
    let metrics_path = dir.join("metrics.jsonl");
    let resume = |epochs: &str| rankcode(&["train", "--resume", "--out", out, "--epochs", epochs]);
    // A constant rate, so that the run can be extended epoch by epoch.
    train_small(&dir, "5", "1", &["--lr-schedule", "constant"]);
    let ck1 = std::fs::read(&ck_path).unwrap();
    let metrics1 = std::fs::read_to_string(&metrics_path).unwrap();
    // The case: a checkpoint of weights trained for one epoch says epoch 0 (a
    // file from before checksums, which would have caught the edit).
    rewrite_metadata(&ck_path, |meta| {
        meta.retain(|k, _| !k.starts_with("sha256:"));
        meta.insert("epoch".into(), "0".into());
    });
    assert_refused(
        &["train", "--resume", "--out", out],
        "checkpoint.safetensors: says it was written after epoch 0",
    );
    std::fs::write(&ck_path, &ck1).unwrap();
    for epochs in ["2", "3"] {
        let o = resume(epochs);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let ck3 = std::fs::read(&ck_path).unwrap();
    // An older checkpoint than the metrics: refused.
    std::fs::write(&ck_path, &ck1).unwrap();
    assert_refused(
        &["train", "--resume", "--out", out],
        "metrics.jsonl: records 3 epochs but checkpoint.safetensors was written after epoch 1: \
         the checkpoint is older than the metrics",
    );
    // Older metrics than the checkpoint: refused.
    let metrics3 = std::fs::read_to_string(&metrics_path).unwrap();
    std::fs::write(&ck_path, &ck3).unwrap();
    std::fs::write(&metrics_path, &metrics1).unwrap();
    assert_refused(
        &["train", "--resume", "--out", out],
        "metrics.jsonl: records 1 epoch but checkpoint.safetensors was written after epoch 3",
    );
    std::fs::write(&metrics_path, &metrics3).unwrap();
    // A checkpoint whose epoch was edited by one (before checksums): its Adam steps
    // (2 batches an epoch) tell.
    rewrite_metadata(&ck_path, |meta| {
        meta.retain(|k, _| !k.starts_with("sha256:"));
        meta.insert("epoch".into(), "2".into());
    });
    assert_refused(
        &["train", "--resume", "--out", out],
        "says it was written after epoch 2, but its Adam state has taken 6 steps, not the 4",
    );
    // A deleted checkpoint: refused, not trained anew from epoch 1.
    std::fs::remove_file(&ck_path).unwrap();
    assert_refused(
        &["train", "--resume", "--out", out],
        "metrics.jsonl: records 3 epochs but checkpoint.safetensors is missing",
    );
    // A crash between writing epoch 2's record and its checkpoint: epoch 2 is trained
    // again, and the run says so.
    std::fs::write(&ck_path, &ck1).unwrap();
    std::fs::write(
        &metrics_path,
        metrics3
            .lines()
            .take(2)
            .map(|l| format!("{l}\n"))
            .collect::<String>(),
    )
    .unwrap();
    let o = resume("2");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(
            "holds the record of epoch 2, but checkpoint.safetensors was written after epoch 1"
        ),
        "{}",
        stderr(&o)
    );
    let metrics = std::fs::read_to_string(&metrics_path).unwrap();
    assert_eq!(metrics.lines().count(), 2, "{metrics}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_resume_refuses_a_config_without_a_setting_every_version_writes_and_names_defaults() {
    let dir = temp("defaulted");
    let out = dir.to_str().unwrap();
    train_small(&dir, "5", "1", &[]);
    let config_path = dir.join("config.json");
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config_path).unwrap()).unwrap();
    let without = |keys: &[&str]| {
        let mut config = saved.clone();
        for key in keys {
            match key.split_once('.') {
                Some((section, inner)) => config[section].as_object_mut().unwrap().remove(inner),
                None => config.as_object_mut().unwrap().remove(*key),
            };
        }
        std::fs::write(&config_path, config.to_string()).unwrap();
    };
    // Without train_limit, a resume would train on all the data: refused.
    without(&["train_limit", "data_dir", "lr_schedule"]);
    assert_refused(
        &["train", "--resume", "--out", out],
        "config.json: lacks data_dir, train_limit, which every version of rankcode writes",
    );
    // Settings that older versions did not write: their defaults, named.
    without(&["lr_schedule", "adam.weight_decay"]);
    let o = rankcode(&["train", "--resume", "--out", out]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    for note in [
        "has no adam.weight_decay (written by an older rankcode); the run goes on with 0.0",
        "has no lr_schedule (written by an older rankcode); the run goes on with \"constant\"",
    ] {
        assert!(err.contains(note), "{err}");
    }
    // config.json now states them.
    let o = rankcode(&["train", "--resume", "--out", out]);
    assert!(
        o.status.success() && !stderr(&o).contains("older rankcode"),
        "{}",
        stderr(&o)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_empty_test_split_is_refused_before_training() {
    let dir = temp("empty-split");
    let data = dir.join("mnist");
    std::fs::create_dir_all(&data).unwrap();
    // Enough training images for the validation split; no test images.
    let idx = |dims: &[u32]| -> Vec<u8> {
        let mut b = vec![0, 0, 8, dims.len() as u8];
        for d in dims {
            b.extend_from_slice(&d.to_be_bytes());
        }
        let n: u32 = dims.iter().product();
        b.resize(b.len() + n as usize, 0);
        b
    };
    for (file, dims) in [
        ("train-images-idx3-ubyte", &[5001, 28, 28][..]),
        ("train-labels-idx1-ubyte", &[5001]),
        ("t10k-images-idx3-ubyte", &[0, 28, 28]),
        ("t10k-labels-idx1-ubyte", &[0]),
    ] {
        std::fs::write(data.join(file), idx(dims)).unwrap();
    }
    let run = dir.join("run");
    let args = [
        "train",
        "--task",
        "mnist",
        "--data",
        data.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
        "--train-size",
        "1",
        "--epochs",
        "1",
    ];
    let o = rankcode(&args);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("t10k-images-idx3-ubyte: holds no images"),
        "{err}"
    );
    assert!(!run.exists(), "a refused start writes no run");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn resume_adds_whole_cycles_to_a_cycled_run_and_refuses_to_stretch_an_annealed_one() {
    let dir = temp("cycles");
    let (cycled, annealed) = (dir.join("cycled"), dir.join("annealed"));
    train_small(
        &cycled,
        "3",
        "1",
        &["--lr-schedule", "cosine", "--lr-cycles", "1"],
    );
    train_small(&annealed, "3", "1", &["--lr-schedule", "cosine"]);
    let resume = |run: &std::path::Path, epochs: &str| {
        rankcode(&[
            "train",
            "--resume",
            "--out",
            run.to_str().unwrap(),
            "--epochs",
            epochs,
        ])
    };
    // One-epoch cycles: --epochs 2 adds one, and the run now has two.
    let o = resume(&cycled, "2");
    assert!(o.status.success(), "{}", stderr(&o));
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cycled.join("config.json")).unwrap())
            .unwrap();
    assert_eq!(
        (saved["epochs"].as_u64(), saved["lr_cycles"].as_u64()),
        (Some(2), Some(2))
    );
    assert!(cycled.join("snapshots").join("epoch-2").exists());
    let o = resume(&cycled, "2");
    assert!(
        stderr(&o).contains("pass --epochs 3 to add a cycle of 1 epoch"),
        "{}",
        stderr(&o)
    );
    // A single cosine schedule spans its epochs: refused before the GPU starts.
    let before = std::fs::read(annealed.join("config.json")).unwrap();
    assert_refused(
        &[
            "train",
            "--resume",
            "--out",
            annealed.to_str().unwrap(),
            "--epochs",
            "2",
        ],
        "cannot take --epochs 2: it anneals its learning rate over 1 epoch; resume it with --epochs 1",
    );
    assert_eq!(std::fs::read(annealed.join("config.json")).unwrap(), before);
    // Nor does a run shrink below the epochs it has trained, whatever its schedule.
    let o = resume(&cycled, "1");
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("cannot take --epochs 1: it has trained 2 epochs already"),
        "{}",
        stderr(&o)
    );
    // Both refusals come before the GPU starts (its adapter line is never printed).
    assert!(!stderr(&o).contains("rankcode train:"), "{}", stderr(&o));
    let o = resume(&annealed, "2");
    assert!(!stderr(&o).contains("rankcode train:"), "{}", stderr(&o));
    // A snapshot is refused as one, whatever --epochs says.
    let snapshot = cycled.join("snapshots").join("epoch-1");
    assert_refused(
        &[
            "train",
            "--resume",
            "--out",
            snapshot.to_str().unwrap(),
            "--epochs",
            "5",
        ],
        "holds a snapshot",
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Trains a one-epoch seq-spotting run of `hidden` units and `layers` layers into `dir`,
/// with `extra` flags; returns what it printed to stderr.
fn train_small(dir: &std::path::Path, hidden: &str, layers: &str, extra: &[&str]) -> String {
    let mut args = vec![
        "train",
        "--task",
        "seq-spotting",
        "--hidden",
        hidden,
        "--layers",
        layers,
        "--train-size",
        "64",
        "--batch",
        "32",
        "--epochs",
        "1",
        "--out",
        dir.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = rankcode(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    stderr(&o)
}

/// `eval --split val --json` of the run in `dir`, with `extra` flags.
fn eval_val(dir: &std::path::Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec![
        "eval",
        "--checkpoint",
        dir.to_str().unwrap(),
        "--split",
        "val",
        "--json",
    ];
    args.extend_from_slice(extra);
    let o = rankcode(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn an_ensemble_is_a_run_that_eval_runs_and_train_refuses() {
    let dir = temp("ensemble");
    let (a, b, deep) = (dir.join("a"), dir.join("b"), dir.join("deep"));
    let eos = dir.join("eos");
    train_small(&a, "5", "1", &[]);
    // A budget of all 25 steps binds nothing, and the run says so.
    let note = train_small(&b, "3", "1", &["--select-max-decision-step", "25"]);
    assert!(note.contains("every threshold meets it"), "{note}");
    train_small(&deep, "3", "2", &[]);
    train_small(&eos, "3", "1", &["--mode", "eos"]);
    let (a_s, b_s, deep_s) = (
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        deep.to_str().unwrap(),
    );

    // A run joined with itself averages two equal logits: it decides as the run does.
    let twice = dir.join("twice");
    let o = rankcode(&["ensemble", a_s, a_s, "--out", twice.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (alone, doubled) = (eval_val(&a, &[]), eval_val(&twice, &[]));
    for key in [
        "theta",
        "accuracy",
        "mean_decision_step",
        "not_fired",
        "eos_accuracy",
    ] {
        assert_eq!(alone[key], doubled[key], "{key}: {alone} against {doubled}");
    }

    // Two widths: one model of their summed width, at the threshold given.
    let ab = dir.join("ab");
    let ab_s = ab.to_str().unwrap();
    let o = rankcode(&["ensemble", a_s, b_s, "--out", ab_s, "--theta", "0.7"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ab.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["model"]["hidden_size"], 8);
    let b_absolute = std::fs::canonicalize(&b).unwrap();
    assert_eq!(
        config["ensemble_of"][1]["run"],
        b_absolute.to_str().unwrap()
    );
    let report = eval_val(&ab, &["--theta-sweep", "0.5:0.9:3", "--no-full-pass"]);
    assert!(report["eos_accuracy"].is_null(), "{report}");
    assert!(alone["eos_accuracy"].is_f64(), "{alone}");

    // One figure of a run and the ensemble, into a folder that plot makes.
    let figure = dir.join("figures").join("sweep");
    let o = rankcode(&[
        "plot",
        a_s,
        ab_s,
        "--out",
        figure.to_str().unwrap(),
        "--split",
        "val",
        "--theta-sweep",
        "0.5:0.9:3",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("ab (RC-trained, ensemble of 2)"),
        "{}",
        stderr(&o)
    );
    for ext in ["svg", "png"] {
        assert!(figure.with_extension(ext).is_file(), "no .{ext} figure");
    }
    assert!(
        (report["theta"].as_f64().unwrap() - 0.7).abs() < 1e-6,
        "{report}"
    );
    assert_eq!(report["sweep"].as_array().unwrap().len(), 3);
    assert_refused(
        &["plot", a_s, "--out", "unused", "--max-step", "0"],
        "\"0\" is not a positive number of steps",
    );

    assert_refused(
        &["ensemble", a_s, b_s, "--out", ab_s],
        "not an empty directory",
    );
    assert_refused(
        &["ensemble", ab_s, b_s, "--out", "unused"],
        "is itself an ensemble",
    );
    assert_refused(
        &["ensemble", a_s, deep_s, "--out", "unused"],
        "layers 2 against 1",
    );
    assert_refused(
        &["ensemble", a_s, eos.to_str().unwrap(), "--out", "unused"],
        "trained with --mode eos, not rc",
    );
    assert_refused(&["ensemble", a_s, "--out", "unused"], "2 values required");
    let none = dir.join("none");
    assert_refused(
        &["ensemble", a_s, none.to_str().unwrap(), "--out", "unused"],
        "does not exist",
    );
    for resume in [&[][..], &["--resume"]] {
        let mut train = vec![
            "train",
            "--task",
            "seq-spotting",
            "--hidden",
            "8",
            "--out",
            ab_s,
        ];
        train.extend_from_slice(resume);
        assert_refused(&train, "cannot be trained");
    }
    // A generated task reads no data folder: --data is refused, not ignored.
    assert_refused(
        &["eval", "--checkpoint", a_s, "--data", "unused"],
        "seq-spotting generates its data",
    );
    assert_refused(
        &[
            "train",
            "--task",
            "seq-spotting",
            "--data",
            "unused",
            "--out",
            "unused",
        ],
        "seq-spotting generates its data",
    );
    assert!(!std::path::Path::new("unused").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bench_measures_the_shape_asked_for() {
    let o = rankcode(&[
        "bench", "--config", "toy", "--hidden", "3", "--batch", "8", "--reps", "1", "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(out["reps"], 1);
    let toy = &out["configs"][0];
    assert_eq!(toy["preset"]["model"]["hidden_size"], 3);
    assert_eq!(toy["preset"]["batch"], 8);
    // The gate GEMM of that shape: [8 x (1 + 3)] x [(1 + 3) x 4 * 3].
    let gemm = &toy["gemm"];
    assert_eq!(
        (&gemm["m"], &gemm["k"], &gemm["n"]),
        (&8.into(), &4.into(), &12.into())
    );
    assert!(gemm["step_gemm_gflops"].as_f64().unwrap() > 0.0, "{gemm}");
    assert!(gemm["tiled_gemm_gflops"].as_f64().unwrap() > 0.0, "{gemm}");
    // Every backward GEMM, with its work: dh [8 x 12] x [12 x 3], the input weight
    // gradient [12 x 320 pairs] x [320 x 2] (input and ones), the recurrent one over
    // the pairs of steps 1..39, [12 x 312] x [312 x 3], the readout [2 x 8] x [8 x 4].
    let backward: Vec<(&str, f64)> = gemm["backward"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            assert!(f["gflops"].as_f64().unwrap() > 0.0, "{f}");
            (f["form"].as_str().unwrap(), f["flops"].as_f64().unwrap())
        })
        .collect();
    assert_eq!(
        backward,
        [
            ("dh", 2.0 * 8.0 * 12.0 * 3.0),
            ("input weight gradient", 2.0 * 12.0 * 320.0 * 2.0),
            ("recurrent weight gradient", 2.0 * 12.0 * 312.0 * 3.0),
            ("readout weight gradient", 2.0 * 2.0 * 8.0 * 4.0),
        ]
    );
    let ceiling = &out["gemm_ceiling"];
    assert_eq!(ceiling["size"], 1024);
    let best = ["tiled_gemm_gflops", "dense_gemm_gflops"]
        .map(|k| ceiling[k].as_f64().unwrap())
        .into_iter()
        .fold(0.0, f64::max);
    assert_eq!(ceiling["gemm_ceiling_gflops"].as_f64().unwrap(), best);
    assert!(best > 0.0, "{ceiling}");
    let by_rows = toy["gate_gemm_by_live_rows"].as_array().unwrap();
    let rows: Vec<u64> = by_rows
        .iter()
        .map(|f| f["rows"].as_u64().unwrap())
        .collect();
    assert_eq!(rows, [1, 2, 4, 8]);
    assert!(
        by_rows
            .iter()
            .all(|f| f["gate_gemm_ms"].as_f64().unwrap() > 0.0)
    );
    let rc = &toy["rc_vs_eos"];
    assert!(rc["rc_batch_s"].as_f64().unwrap() > 0.0, "{rc}");
    let (rc_pipe, eos_pipe) = (&rc["rc_pipeline"], &rc["eos_pipeline"]);
    let count = |f: &serde_json::Value, k: &str| f[k].as_u64().unwrap();
    // A full-length batch reads back once, after its last step; RC after every step
    // that still has rows (K = 1). Both submit once more, for the loss and backward.
    assert_eq!(count(eos_pipe, "readbacks"), 1, "{rc}");
    assert!(count(rc_pipe, "readbacks") > 1, "{rc}");
    for f in [rc_pipe, eos_pipe] {
        assert_eq!(count(f, "submits"), count(f, "readbacks") + 1, "{rc}");
        assert!(count(f, "dispatches") > count(f, "submits"), "{rc}");
        // lavapipe has timestamp queries in passes.
        let busy = &f["busy"];
        let (wall, gpu) = (
            busy["wall_s"].as_f64().unwrap(),
            busy["gpu_s"].as_f64().unwrap(),
        );
        assert!(0.0 < gpu && gpu <= wall, "{rc}");
    }
    for flag in ["--reps", "--hidden", "--batch"] {
        assert_refused(&["bench", flag, "0"], "0 is not in 1..");
    }
}

#[test]
fn bench_refuses_sizes_out_of_range_before_allocating_for_them() {
    // The controlled parameters of 100,000 hidden units alone would take 160 GB.
    for (flag, value, message) in [
        (
            "--hidden",
            "100000",
            "hidden size must be between 1 and 16384, got 100000",
        ),
        (
            "--hidden",
            "16385",
            "hidden size must be between 1 and 16384, got 16385",
        ),
        (
            "--batch",
            "100000",
            "batch size must be between 1 and 65535, got 100000",
        ),
    ] {
        let o = rankcode(&["bench", "--config", "toy", flag, value]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{flag} {value}: {err}");
        assert!(
            err.contains(&format!("the toy shape: invalid configuration: {message}")),
            "{err}"
        );
    }
}

#[test]
fn profiles_time_every_kernel_in_bench_and_in_training() {
    let o = rankcode(&[
        "bench",
        "--config",
        "toy",
        "--hidden",
        "3",
        "--batch",
        "8",
        "--reps",
        "2",
        "--profile",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        out.get("configs").is_none(),
        "--profile replaces the figures"
    );
    let toy = &out["profiles"][0];
    assert_eq!(toy["preset"]["model"]["hidden_size"], 3);
    assert_eq!(toy["batches"], 2);
    let dispatches = toy["dispatches"].as_array().unwrap();
    let (gpu_s, wall_s) = (
        toy["gpu_s"].as_f64().unwrap(),
        toy["wall_s"].as_f64().unwrap(),
    );
    assert!(0.0 < gpu_s && gpu_s <= wall_s, "{toy}");
    let calls = |what: &str| {
        let d = dispatches.iter().find(|d| d["what"] == what);
        d.unwrap_or_else(|| panic!("no {what} in {dispatches:?}"))["calls"].clone()
    };
    // Once a batch: the clipping norm and Adam.
    assert_eq!(calls("gradient norm"), 2);
    assert_eq!(calls("Adam"), 2);
    assert!(
        dispatches
            .iter()
            .all(|d| d["seconds"].as_f64().unwrap() > 0.0)
    );

    let dir = temp("profiled-run");
    let _ = std::fs::remove_dir_all(&dir);
    // A constant rate (not seq-spotting's cosine schedule), so the run can be extended.
    let printed = train_small(&dir, "6", "1", &["--profile", "--lr-schedule", "constant"]);
    for part in ["training", "validation"] {
        let heading = format!("epoch 1/1: kernels of the {part} pass: GPU time");
        assert!(printed.contains(&heading), "{printed}");
    }
    let lines = std::fs::read_to_string(dir.join("kernel-profile.jsonl")).unwrap();
    let records: Vec<serde_json::Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 2, "{lines}");
    assert_eq!(
        (&records[0]["part"], &records[1]["part"]),
        (&"training".into(), &"validation".into())
    );
    // Validation computes no gradients.
    let whats = |r: &serde_json::Value| -> Vec<String> {
        let d = r["dispatches"].as_array().unwrap();
        d.iter()
            .map(|d| d["what"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(whats(&records[0]).contains(&"Adam".to_string()));
    assert!(!whats(&records[1]).contains(&"Adam".to_string()));
    assert!(whats(&records[1]).contains(&"readout and threshold".to_string()));
    assert!(records[0]["gpu_s"].as_f64().unwrap() > 0.0);

    let eval = eval_val(&dir, &["--profile"]);
    let profiled = &eval["kernel_profile"];
    assert!(whats(profiled).contains(&"readout and threshold".to_string()));
    assert!(!whats(profiled).contains(&"Adam".to_string()));
    assert!(profiled["wall_s"].as_f64().unwrap() > 0.0);
    assert!(eval_val(&dir, &[]).get("kernel_profile").is_none());

    // A run that stopped after profiling epoch 2, halfway through writing a line,
    // and before its checkpoint: resumed, it writes epoch 2's profiles once.
    let left = format!(
        "{}{{\"epoch\":2,\"pa",
        lines.replace("\"epoch\":1", "\"epoch\":2")
    );
    let profile_file = dir.join("kernel-profile.jsonl");
    std::fs::write(&profile_file, format!("{lines}{left}")).unwrap();
    let out = dir.to_str().unwrap();
    let o = rankcode(&[
        "train",
        "--resume",
        "--out",
        out,
        "--epochs",
        "2",
        "--profile",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let resumed = std::fs::read_to_string(&profile_file).unwrap();
    let epochs_and_parts: Vec<(u64, String)> = resumed
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|r| {
            (
                r["epoch"].as_u64().unwrap(),
                r["part"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected = [
        (1, "training"),
        (1, "validation"),
        (2, "training"),
        (2, "validation"),
    ];
    assert_eq!(
        epochs_and_parts,
        expected.map(|(e, p)| (e, p.to_owned())),
        "{resumed}"
    );
    assert!(
        resumed.starts_with(&lines),
        "epoch 1's lines are kept as they were"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn each_task_trains_with_its_recipe_unless_a_flag_says_otherwise() {
    // The help text lists each recipe flag's default per task.
    let help = String::from_utf8_lossy(&rankcode(&["train", "--help"]).stdout).into_owned();
    for default in [
        "256 for mnist",
        "0.1:4 for mnist",
        "18 for fsdd",
        "0.3:0.99:70",
    ] {
        assert!(help.contains(default), "'{default}' missing from: {help}");
    }

    // A run of the task's recipe with no model flags: config.json records it all.
    let dir = temp("recipe");
    let o = rankcode(&[
        "train",
        "--task",
        "noise-vs-signal",
        "--train-size",
        "64",
        "--epochs",
        "1",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["model"]["hidden_size"], 32);
    assert_eq!(config["model"]["readout"], "sigmoid");
    assert_eq!(config["rc"]["theta"].as_f64().unwrap() as f32, 0.9);
    assert_eq!(config["adam"]["lr"].as_f64().unwrap() as f32, 3e-3);
    assert_eq!(config["batch"], 128);
    let _ = std::fs::remove_dir_all(&dir);

    // Flags override the recipe, and `none` turns off one of its options.
    let dir = temp("recipe-override");
    train_small(
        &dir,
        "3",
        "1",
        &[
            "--clip-grad-norm",
            "none",
            "--theta",
            "0.9",
            "--loss-from-step",
            "4",
        ],
    );
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["model"]["hidden_size"], 3);
    assert!(config["adam"]["max_grad_norm"].is_null(), "{config}");
    assert_eq!(
        config["lr_schedule"], "cosine",
        "seq-spotting's own schedule"
    );
    assert_eq!(config["rc"]["theta"].as_f64().unwrap() as f32, 0.9);
    assert_eq!(config["rc"]["loss_from_step"], 4);
    let _ = std::fs::remove_dir_all(&dir);

    // Settings the recipe cannot take are refused before anything is written.
    let out = dir.to_str().unwrap();
    assert_refused(
        &["train", "--task", "mnist", "--theta", "0.05", "--out", out],
        "--theta-warmup none",
    );
    assert_refused(
        &[
            "train",
            "--task",
            "mnist",
            "--mode",
            "eos",
            "--theta-warmup",
            "0.1:2",
            "--out",
            out,
        ],
        "rank-coding training only",
    );
    assert_refused(
        &[
            "train",
            "--task",
            "seq-spotting",
            "--select-theta-sweep",
            "0.5:0.9:5",
            "--out",
            out,
        ],
        "needs a step budget",
    );
    assert_refused(
        &[
            "train",
            "--task",
            "mnist",
            "--augment-shift",
            "two",
            "--out",
            out,
        ],
        "neither a number nor 'none'",
    );
    assert_refused(
        &[
            "train",
            "--task",
            "noise-vs-signal",
            "--augment-warp",
            "0.1",
            "--out",
            out,
        ],
        "audio augmentation applies to the audio tasks only",
    );
    assert_refused(
        &[
            "train",
            "--task",
            "fsdd",
            "--augment-warp",
            "0.7",
            "--out",
            out,
        ],
        "--augment-warp must be between 0 and 0.5",
    );
    for audio_flag in ["--mel-bands", "--mfcc", "--clip-ms"] {
        assert_refused(
            &[
                "train",
                "--task",
                "noise-vs-signal",
                audio_flag,
                "20",
                "--out",
                out,
            ],
            "apply to the audio tasks only",
        );
    }
    for (flag, value) in [("--fold", "2"), ("--speaker-val", "train-takes")] {
        assert_refused(
            &["train", "--task", "mnist", flag, value, "--out", out],
            "--split-by, --fold and --speaker-val apply to FSDD only",
        );
    }
    assert_refused(
        &[
            "train",
            "--task",
            "fsdd",
            "--split-by",
            "take",
            "--fold",
            "2",
            "--out",
            out,
        ],
        "--fold and --speaker-val shape a split by speaker, not by take",
    );
    assert!(!dir.exists(), "a refused start writes no run");
}

#[test]
fn a_run_whose_threshold_is_never_reached_is_warned_while_it_trains() {
    let dir = temp("never-fires");
    // A threshold no output of a tiny model reaches in 3 epochs: every decision falls
    // at the last step.
    let o = rankcode(&[
        "train",
        "--task",
        "seq-spotting",
        "--hidden",
        "3",
        "--train-size",
        "64",
        "--batch",
        "32",
        "--epochs",
        "3",
        "--theta",
        "0.99999",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let printed = stderr(&o);
    assert!(
        printed.contains("warning: after 3 epochs (almost) no validation sequence decides")
            && printed.contains("--theta-warmup"),
        "{printed}"
    );
    assert_eq!(printed.matches("warning: after").count(), 1, "{printed}");
    let _ = std::fs::remove_dir_all(&dir);
}
