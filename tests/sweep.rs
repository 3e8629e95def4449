//! `rankcode sweep` with the local executor, and `rankcode report`, end to end through
//! the binary: tiny runs on the software adapter; Slurm's side with a stand-in sbatch
//! (the real one: tests/slurm.rs).

mod sweep_common;

use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use sweep_common::*;

#[test]
fn spec_errors_name_the_line_and_key_and_start_nothing() {
    let dir = temp("spec-errors");
    let out = dir.join("out");
    let cases = [
        (
            "[grid]\nhiden = [4, 8]\n",
            "line 3, key `grid.hiden`: `rankcode train` has no flag --hiden (did you mean --hidden?)",
        ),
        (
            "[grid]\ntheta = [0.9,\n   95]\n",
            "line 4, key `grid.theta`: invalid configuration: theta must be in (0, 1), got 95 (did you mean 0.95?)",
        ),
        (
            "[fixed]\nlr-schedule = \"cosin\"\n",
            "line 3, key `fixed.lr-schedule`: invalid value 'cosin'",
        ),
        ("[fixed]\nhidden = 0\n", "line 3, key `fixed.hidden`"),
        (
            "[fixed]\nout = \"x\"\n",
            "line 3, key `fixed.out`: --out is set by the sweep itself",
        ),
        (
            "[grid]\nseed = 3\n",
            "line 3, key `grid.seed`: a grid axis is a list of values",
        ),
        ("[grid\n", "line 2: not valid TOML"),
    ];
    for (body, expected) in cases {
        let spec = write(
            &dir,
            "spec.toml",
            &format!("task = \"seq-spotting\"\n{body}"),
        );
        let err = rankcode_refused(&["sweep", s(&spec), "--out", s(&out)]);
        assert!(
            err.contains(&format!("spec.toml: {expected}")),
            "{body:?}: {err}"
        );
        assert!(!out.exists(), "{body:?}: the sweep folder was made");
    }
    let spec = write(&dir, "spec.toml", "task = \"seq-spoting\"\n");
    let err = rankcode_refused(&["sweep", s(&spec), "--out", s(&out)]);
    assert!(
        err.contains("line 1, key `task`: invalid value 'seq-spoting'"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_folder_of_another_spec_or_of_other_files_is_refused_and_kept() {
    let dir = temp("other-spec");
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    write(&out, "sweep.toml", TINY_SPEC);
    let other = write(
        &dir,
        "other.toml",
        &TINY_SPEC.replace("seed = [1, 2]", "seed = [1, 2, 3]"),
    );
    let err = rankcode_refused(&["sweep", s(&other), "--out", s(&out)]);
    assert!(
        err.contains("is a sweep folder made from another spec (the [grid] differs"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("sweep.toml")).unwrap(),
        TINY_SPEC
    );
    let runs = dir.join("runs");
    std::fs::create_dir_all(runs.join("a-run")).unwrap();
    let err = rankcode_refused(&["sweep", s(&other), "--out", s(&runs)]);
    assert!(err.contains("holds files but no sweep.toml"), "{err}");
    let err = rankcode_refused(&["sweep", "--status", s(&runs)]);
    assert!(err.contains("is no sweep folder (no sweep.toml)"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_local_sweep_runs_every_point_then_reports_them_and_reruns_nothing() {
    let dir = temp("local");
    let spec = write(&dir, "spec.toml", TINY_SPEC);
    let out = dir.join("sweep");
    let stdout = rankcode_ok(&["sweep", s(&spec), "--out", s(&out), "--local", "2"]);
    assert!(stdout.contains("all 4 points done"), "{stdout}");
    let status = rankcode_ok(&["sweep", "--status", s(&out)]);
    assert!(
        status.contains("4 points of seq-spotting: 4 done, 0 running, 0 failed, 0 pending"),
        "{status}"
    );
    assert!(
        status.contains("theta-0.95_seed-2  done     test accuracy"),
        "{status}"
    );
    let log = std::fs::read_to_string(out.join("theta-0.9_seed-1/train.log")).unwrap();
    assert!(log.contains("train --task seq-spotting --hidden 4 --train-size 64 --epochs 2 --theta 0.9 --seed 1 --out"), "{log}");

    let report = report_json(&out);
    let runs = report["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 4);
    assert_eq!(runs[1]["run"], "theta-0.9_seed-2");
    assert_eq!(
        runs[1]["settings"],
        serde_json::json!({"theta": 0.9, "seed": 2})
    );
    for key in [
        "accuracy",
        "mean_decision_step",
        "not_fired",
        "accuracy_at_last_step",
        "train_steps_processed",
        "train_wall_s",
    ] {
        assert!(runs[0][key].is_number(), "{key}: {}", runs[0]);
    }
    assert!(runs.iter().any(|r| r["pareto"] == true));

    let table = rankcode_ok(&["report", s(&out), "--by", "theta"]);
    assert!(
        table.starts_with("run                theta  seed  accuracy  decision step"),
        "{table}"
    );
    for file in ["report.svg", "report.png"] {
        assert!(out.join(file).exists(), "{file}");
    }
    let svg = std::fs::read_to_string(out.join("report.svg")).unwrap();
    assert!(
        svg.contains("theta = 0.9") && svg.contains("theta = 0.95") && svg.contains("Pareto front")
    );
    let err = rankcode_refused(&["report", s(&out), "--by", "beta"]);
    assert!(
        err.contains(
            "--by beta: not a setting that differs between these runs (settings: theta, seed)"
        ),
        "{err}"
    );

    // Any folder of runs: here the sweep's parent, whose runs differ in theta and seed.
    let md = rankcode_ok(&["report", s(&dir), "--md", "--no-figure"]);
    assert!(md.starts_with("| run | theta | seed | accuracy |"), "{md}");
    assert!(
        md.contains("| sweep/theta-0.95_seed-1 | 0.95 | 1 |"),
        "{md}"
    );

    let again = rankcode(&["sweep", s(&spec), "--out", s(&out)]);
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(
        again.status.success()
            && err.contains("4 done, 0 running, 0 to run")
            && err.contains("nothing to run"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_stopped_point_resumes_to_the_same_final_model_as_an_uninterrupted_one() {
    let dir = temp("resume");
    let spec = write(&dir, "spec.toml", LONG_SPEC);
    let (whole, stopped) = (dir.join("whole"), dir.join("stopped"));
    let point = "seed-3";
    let mut sweep = Command::new(env!("CARGO_BIN_EXE_rankcode"))
        .args(["sweep", s(&spec), "--out", s(&stopped)])
        .process_group(0)
        .spawn()
        .unwrap();
    wait_for("the first epoch", Duration::from_secs(120), || {
        epochs(&stopped.join(point)) >= 1
    });
    // As Slurm stops a job: SIGTERM to every process of it.
    let group = format!("-{}", sweep.id());
    assert!(
        Command::new("kill")
            .args(["-TERM", "--", &group])
            .status()
            .unwrap()
            .success()
    );
    sweep.wait().unwrap();
    wait_for("train to stop", Duration::from_secs(30), || {
        rankcode_ok(&["sweep", "--status", s(&stopped)]).contains(" 0 running")
    });
    assert!(
        !stopped.join(point).join("test.json").exists(),
        "the run ended before it was stopped"
    );
    let status = rankcode_ok(&["sweep", "--status", s(&stopped)]);
    assert!(
        status.contains("0 done, 0 running, 0 failed, 1 pending"),
        "{status}"
    );
    assert!(
        status.contains("stopped after epoch") && status.contains("of 8; resumes"),
        "{status}"
    );

    rankcode_ok(&["sweep", s(&spec), "--out", s(&stopped)]);
    rankcode_ok(&["sweep", s(&spec), "--out", s(&whole)]);
    let log = std::fs::read_to_string(stopped.join(point).join("train.log")).unwrap();
    assert!(
        log.contains(&format!(
            "train --resume --out {}",
            stopped.join(point).display()
        )),
        "{log}"
    );
    assert_same_final_model(&whole.join(point), &stopped.join(point));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_failed_point_is_reported_with_the_end_of_its_log() {
    let dir = temp("failed");
    let spec = write(
        &dir,
        "spec.toml",
        "task = \"mnist\"\n[fixed]\ndata = \"/nonexistent/mnist\"\n[grid]\nseed = [1]\n",
    );
    let out = dir.join("sweep");
    let err = rankcode_refused(&["sweep", s(&spec), "--out", s(&out)]);
    assert!(err.contains("[1/1] seed-1 failed (exit status 1)"), "{err}");
    assert!(err.contains("/nonexistent/mnist"), "the log's end: {err}");
    assert!(err.contains("1 of 1 point did not finish: seed-1"), "{err}");
    let status = rankcode_ok(&["sweep", "--status", s(&out)]);
    assert!(
        status.contains("0 done, 0 running, 1 failed, 0 pending"),
        "{status}"
    );
    assert!(
        status.contains("seed-1  failed   exit status 1;") && status.contains("| error:"),
        "{status}"
    );
    let err = rankcode_refused(&["report", s(&out)]);
    assert!(
        err.contains("note: seed-1 has no test result: failed"),
        "{err}"
    );
    assert!(err.contains("no finished run"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A stand-in for sbatch in `dir`: records its arguments, prints `output`, exits `code`.
fn fake_sbatch(dir: &Path, output: &str, code: i32) {
    use std::os::unix::fs::PermissionsExt as _;
    let script = format!(
        "#!/bin/sh\necho \"$@\" > {}/sbatch-args\necho '{output}' >&2\necho '{output}'\nexit {code}\n",
        dir.display()
    );
    let path = write(dir, "sbatch", &script);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn slurm_submission_writes_a_job_array_and_says_why_sbatch_failed() {
    let dir = temp("sbatch");
    let spec = write(&dir, "spec.toml", TINY_SPEC);
    let out = dir.join("sweep");
    let path = format!("{}:{}", dir.display(), std::env::var("PATH").unwrap());
    let submit = |env: &[(&str, &str)]| {
        rankcode_with(
            &[
                "sweep",
                s(&spec),
                "--out",
                s(&out),
                "--slurm",
                "--sbatch=--gres=gpu:1",
                "--sbatch",
                "--time=1:00:00",
            ],
            env,
        )
    };
    let o = submit(&[("PATH", "/nonexistent")]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("sbatch is not on PATH"),
        "{err}"
    );

    fake_sbatch(
        &dir,
        "sbatch: error: Batch job submission failed: Invalid partition name specified",
        1,
    );
    let o = submit(&[("PATH", &path)]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(err.contains("sbatch refused the job array (exit status: 1): sbatch: error: Batch job submission failed: Invalid partition name specified"), "{err}");

    fake_sbatch(&dir, "42", 0);
    let o = submit(&[("PATH", &path)]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        stdout.contains("submitted Slurm job 42: array 0-3 (4 tasks)"),
        "{stdout}"
    );
    let args = std::fs::read_to_string(dir.join("sbatch-args")).unwrap();
    assert!(args.starts_with("--parsable --array=0-3 /"), "{args}");
    let script = std::fs::read_to_string(out.join("sweep.sbatch")).unwrap();
    assert!(
        script.contains("#SBATCH --requeue\n#SBATCH --gres=gpu:1\n#SBATCH --time=1:00:00\n"),
        "{script}"
    );
    assert!(
        script.contains("sweep --run-point \"$SLURM_ARRAY_TASK_ID\""),
        "{script}"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("slurm-jobs.txt")).unwrap(),
        "42 0-3\n"
    );

    // What a task runs, here by hand: point 2 only; a second submission skips it.
    rankcode_ok(&["sweep", "--run-point", "2", s(&out)]);
    let err = rankcode_refused(&["sweep", "--run-point", "9", s(&out)]);
    assert!(
        err.contains("no grid point 9 (the sweep has 4 points)"),
        "{err}"
    );
    assert!(submit(&[("PATH", &path)]).status.success());
    let args = std::fs::read_to_string(dir.join("sbatch-args")).unwrap();
    assert!(args.starts_with("--parsable --array=0-1,3 /"), "{args}");
    std::fs::remove_dir_all(&dir).unwrap();
}
