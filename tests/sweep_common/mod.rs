//! What the sweep tests share: running the binary, tiny specs, waiting on files and
//! comparing final models.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Four tiny runs (about two seconds each on a software adapter).
pub const TINY_SPEC: &str = r#"
task = "seq-spotting"
[fixed]
hidden = 4
train-size = 64
epochs = 2
[grid]
theta = [0.9, 0.95]
seed = [1, 2]
"#;

/// One run of eight epochs of about a second each: long enough to stop in the middle.
pub const LONG_SPEC: &str = r#"
task = "seq-spotting"
[fixed]
hidden = 8
train-size = 2048
epochs = 8
lr = 0.01
[grid]
seed = [3]
"#;

pub fn rankcode(args: &[&str]) -> Output {
    rankcode_with(args, &[])
}

pub fn rankcode_with(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rankcode"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("the binary runs")
}

/// Runs `args`, which must succeed; returns standard output.
pub fn rankcode_ok(args: &[&str]) -> String {
    let o = rankcode(args);
    assert!(
        o.status.success(),
        "{args:?} failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// Runs `args`, which must fail without a panic; returns standard error.
pub fn rankcode_refused(args: &[&str]) -> String {
    let o = rankcode(args);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!o.status.success(), "{args:?} should fail: {err}");
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    err
}

/// A fresh folder for test `name`.
pub fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rankcode-sweep-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes `text` into `dir/name` and returns its path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

pub fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Waits until `done` holds, checking every 100 ms, or panics naming `what`.
pub fn wait_for(what: &str, timeout: Duration, done: impl FnMut() -> bool) {
    wait_for_or_explain(what, timeout, done, String::new)
}

/// [`wait_for`], whose panic adds what `explain` says then (logs, the queue).
pub fn wait_for_or_explain(
    what: &str,
    timeout: Duration,
    mut done: impl FnMut() -> bool,
    explain: impl Fn() -> String,
) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}\n{}",
            explain()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Epochs recorded in a run directory's metrics.jsonl.
pub fn epochs(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .map(|t| t.lines().filter(|l| l.ends_with('}')).count())
        .unwrap_or(0)
}

/// The two runs ended with the same weights and optimiser state, byte for byte.
pub fn assert_same_final_model(a: &Path, b: &Path) {
    for file in ["model.safetensors", "checkpoint.safetensors"] {
        let (x, y) = (
            std::fs::read(a.join(file)).unwrap(),
            std::fs::read(b.join(file)).unwrap(),
        );
        assert!(
            x == y,
            "{file} of {} and {} differ",
            a.display(),
            b.display()
        );
    }
}

/// `rankcode report DIR --json`, parsed.
pub fn report_json(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&rankcode_ok(&["report", s(dir), "--json", "--no-figure"])).unwrap()
}
