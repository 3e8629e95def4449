//! `rankcode sweep --slurm` against a real Slurm: `scripts/slurm-local.sh start` makes a
//! one-node cluster on this machine (`.ci/run` does). The tests run when `sinfo`
//! answers; without a cluster they fail under CI (env CI set) and are skipped, saying
//! so, elsewhere.

mod sweep_common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;
use sweep_common::*;

/// Whether a Slurm cluster answers; fails loudly under CI when none does.
fn cluster() -> bool {
    let answers = Command::new("sinfo")
        .args(["--noheader", "--format=%t"])
        .output()
        .is_ok_and(|o| o.status.success() && !o.stdout.is_empty());
    if !answers {
        let msg = "no Slurm cluster answers (sinfo); `scripts/slurm-local.sh start` makes one here";
        assert!(std::env::var_os("CI").is_none(), "{msg}");
        eprintln!("SKIPPED: {msg}");
    }
    answers
}

/// Runs scontrol; whether it succeeded (what it printed is dropped).
fn scontrol(args: &[&str]) -> bool {
    Command::new("scontrol")
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// What a stuck test shows: the files of a sweep's folder `out` that say what its
/// tasks did (train logs, Slurm's outputs), what Slurm says of `job`, and the ends of
/// the daemons' logs of `scripts/slurm-local.sh`.
fn explain(out: &Path, job: &str) -> String {
    let mut text = String::new();
    let mut files = vec![];
    for sub in std::fs::read_dir(out).into_iter().flatten().flatten() {
        files.extend(
            std::fs::read_dir(sub.path())
                .into_iter()
                .flatten()
                .flatten()
                .map(|f| f.path())
                .filter(|p| p.ends_with("train.log") || p.extension().is_some_and(|e| e == "out")),
        );
    }
    for file in files {
        let body = std::fs::read_to_string(&file).unwrap_or_default();
        text += &format!("--- {}\n{body}", file.display());
    }
    for args in [&["show", "job", job][..], &["show", "node"][..]] {
        let o = Command::new("scontrol").args(args).output();
        let said = o.map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
        text += &format!(
            "--- scontrol {}\n{}",
            args.join(" "),
            said.unwrap_or_default()
        );
    }
    let state = std::env::var("RANKCODE_SLURM_DIR").unwrap_or("/tmp/rankcode-slurm".into());
    for log in ["slurmctld.log", "slurmd.log"] {
        let body = std::fs::read_to_string(Path::new(&state).join(log)).unwrap_or_default();
        let lines: Vec<&str> = body.lines().collect();
        let tail = lines[lines.len().saturating_sub(30)..].join("\n");
        text += &format!("--- the last lines of {state}/{log}\n{tail}\n");
    }
    text
}

/// The state squeue gives `job` (PENDING, RUNNING, ...; empty once it has left the queue).
fn job_state(job: &str) -> String {
    Command::new("squeue")
        .args(["--noheader", "--format=%T", "--jobs", job])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// Why Slurm keeps `job` pending, as squeue says it (empty when it is not pending).
fn pending_reason(job: &str) -> String {
    Command::new("squeue")
        .args([
            "--noheader",
            "--states=PENDING",
            "--format=%r",
            "--jobs",
            job,
        ])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_lowercase())
        .unwrap_or_default()
}

/// The job id `rankcode sweep --slurm` printed.
fn job_id(stdout: &str) -> String {
    stdout
        .split("submitted Slurm job ")
        .nth(1)
        .and_then(|rest| rest.split(':').next())
        .unwrap_or_else(|| panic!("no job id in: {stdout}"))
        .to_string()
}

#[test]
fn a_sweep_runs_as_a_job_array_and_is_reported() {
    if !cluster() {
        return;
    }
    let dir = temp("slurm-array");
    let spec = write(&dir, "spec.toml", TINY_SPEC);
    let out = dir.join("sweep");
    let err = rankcode_refused(&[
        "sweep",
        s(&spec),
        "--out",
        s(&out),
        "--slurm",
        "--sbatch=--partition=no-such-partition",
    ]);
    assert!(err.contains("sbatch refused the job array"), "{err}");
    assert!(err.contains("invalid partition"), "{err}");

    let stdout = rankcode_ok(&[
        "sweep",
        s(&spec),
        "--out",
        s(&out),
        "--slurm",
        "--sbatch=--time=10",
    ]);
    assert!(stdout.contains("array 0-3 (4 tasks)"), "{stdout}");
    let job = job_id(&stdout);
    wait_for_or_explain(
        "the four tasks",
        Duration::from_secs(300),
        || rankcode_ok(&["sweep", "--status", s(&out)]).contains(": 4 done"),
        || explain(&out, &job),
    );
    let report = report_json(&out);
    assert_eq!(report["runs"].as_array().unwrap().len(), 4, "{report}");
    let slurm_out = out.join("slurm").join(format!("{job}_0.out"));
    let task_log = std::fs::read_to_string(&slurm_out).unwrap();
    assert!(task_log.contains("done: test accuracy"), "{task_log}");
    let train_log = std::fs::read_to_string(out.join("theta-0.9_seed-1/train.log")).unwrap();
    assert!(
        train_log.contains(&format!("(Slurm job {job}_0)")),
        "{train_log}"
    );
    // A sweep whose points are all done submits nothing.
    let again = rankcode(&["sweep", s(&spec), "--out", s(&out), "--slurm"]);
    assert!(String::from_utf8_lossy(&again.stderr).contains("nothing to run"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_requeued_task_resumes_to_the_same_final_model_as_an_uninterrupted_run() {
    if !cluster() {
        return;
    }
    let dir = temp("slurm-requeue");
    let spec = write(&dir, "spec.toml", LONG_SPEC);
    let (whole, requeued) = (dir.join("whole"), dir.join("requeued"));
    let point = "seed-3";
    let stdout = rankcode_ok(&["sweep", s(&spec), "--out", s(&requeued), "--slurm"]);
    let task = format!("{}_0", job_id(&stdout));
    wait_for_or_explain(
        "the first epoch",
        Duration::from_secs(300),
        || epochs(&requeued.join(point)) >= 1,
        || explain(&requeued, &task),
    );
    assert!(
        !requeued.join(point).join("test.json").exists(),
        "the run ended before it could be requeued"
    );
    assert!(scontrol(&["requeue", &task]), "scontrol requeue {task}");
    // Slurm holds a requeued job back (its begin time) so that the node's revocation of
    // the first attempt's credential has passed: a relaunch whose credential carries the
    // same second as that revocation is refused ("Job credential revoked") and the job
    // fails (a CI run of this test did). So start it early only once the first attempt
    // has ended and the clock has moved on two seconds.
    wait_for_or_explain(
        "the requeued task to be pending",
        Duration::from_secs(60),
        || job_state(&task) == "PENDING",
        || explain(&requeued, &task),
    );
    std::thread::sleep(Duration::from_secs(2));
    let header = format!("(Slurm job {task})");
    let attempts = || {
        std::fs::read_to_string(requeued.join(point).join("train.log"))
            .unwrap_or_default()
            .matches(&header)
            .count()
    };
    wait_for_or_explain(
        "the requeued task to start again",
        Duration::from_secs(300),
        || {
            // A relaunch that fails while the node still cleans up after the first
            // attempt holds the job ("launch failed requeued held"), as a user would
            // see it: release it, and say so.
            scontrol(&["update", &format!("jobid={task}"), "StartTime=now"]);
            if pending_reason(&task).contains("held") {
                eprintln!("{task} was held ({}); releasing it", pending_reason(&task));
                scontrol(&["release", &task]);
            }
            attempts() >= 2
        },
        || explain(&requeued, &task),
    );
    // Meanwhile the same point uninterrupted, here.
    rankcode_ok(&["sweep", s(&spec), "--out", s(&whole), "--local", "1"]);
    wait_for_or_explain(
        "the requeued task to finish",
        Duration::from_secs(300),
        || rankcode_ok(&["sweep", "--status", s(&requeued)]).contains(": 1 done"),
        || explain(&requeued, &task),
    );
    let log = std::fs::read_to_string(requeued.join(point).join("train.log")).unwrap();
    assert_eq!(attempts(), 2, "{log}");
    assert!(log.contains("train --resume --out"), "{log}");
    assert_same_final_model(&whole.join(point), &requeued.join(point));
    std::fs::remove_dir_all(&dir).unwrap();
}
