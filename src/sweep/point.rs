//! One grid point's run: `rankcode train` on its run directory, resumed when the
//! directory holds a run, with its log and exit status kept beside it; and the
//! point's state, read back from those files.

use super::{Point, Sweep};
use crate::error::{Error, Result};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The output of every attempt at a point, appended.
pub const LOG_FILE: &str = "train.log";
/// The exit status of a point's last attempt: a number, or `signal N`.
pub const EXIT_FILE: &str = "exit-status";
/// Locked while an attempt runs (by the process running it and by `train`).
pub const LOCK_FILE: &str = ".sweep.lock";
/// The file whose presence marks a finished run.
const TEST_FILE: &str = "test.json";
/// Lines of a failed point's log that its report shows.
const LOG_TAIL: usize = 8;

/// What a point's files say about it.
#[derive(Debug, Clone, PartialEq)]
pub enum PointState {
    /// Its run finished: `test.json` exists.
    Done,
    /// An attempt is running (a process holds the lock), with the epochs trained.
    Running { epochs: usize },
    /// The last attempt ended with a non-zero status (or a fatal signal).
    Failed {
        status: String,
        log_tail: Vec<String>,
    },
    /// Not started, or stopped (preempted, requeued, interrupted) after some epochs:
    /// the next attempt resumes.
    Pending { epochs: usize },
}

impl PointState {
    /// The state of the point whose run directory is `dir`.
    pub fn of(dir: &Path) -> PointState {
        if dir.join(TEST_FILE).exists() {
            return PointState::Done;
        }
        let epochs = epochs_trained(dir);
        if is_locked(&dir.join(LOCK_FILE)) {
            return PointState::Running { epochs };
        }
        match std::fs::read_to_string(dir.join(EXIT_FILE)) {
            Ok(status) if status.trim() != "0" => PointState::Failed {
                status: status.trim().to_string(),
                log_tail: log_tail(&dir.join(LOG_FILE), LOG_TAIL),
            },
            Ok(_) => PointState::Failed {
                status: format!("0, but no {TEST_FILE}"),
                log_tail: log_tail(&dir.join(LOG_FILE), LOG_TAIL),
            },
            Err(_) => PointState::Pending { epochs },
        }
    }

    /// `done`, `running`, `failed` or `pending`.
    pub fn name(&self) -> &'static str {
        match self {
            PointState::Done => "done",
            PointState::Running { .. } => "running",
            PointState::Failed { .. } => "failed",
            PointState::Pending { .. } => "pending",
        }
    }
}

/// What one attempt at a point did.
#[derive(Debug, Clone, PartialEq)]
pub enum Attempt {
    /// Its run had finished before: nothing to do.
    AlreadyDone,
    /// Another process is running it.
    AlreadyRunning,
    /// `train` ran and exited with this status (`0`, a number, `signal N`).
    Ran { status: String, success: bool },
}

/// Runs `train` (the binary `exe`) for `point` of `sweep` in its run directory:
/// resumes the run there if it holds one (config.json), else starts it with the
/// spec's flags. The output goes to `train.log` (appended), the exit status to
/// `exit-status`; while it runs the directory's lock file is held, by this process and
/// by `train`, so a second attempt at the same point refuses to start. An attempt
/// stopped by SIGINT or SIGTERM (preemption, a requeue, Ctrl-C) leaves no exit status:
/// the point is pending, and the next attempt resumes. A lock held by another process
/// is waited for up to `lock_wait` (zero: not at all) before the attempt leaves the
/// point alone.
pub fn run_point(sweep: &Sweep, point: &Point, exe: &Path, lock_wait: Duration) -> Result<Attempt> {
    let dir = sweep.point_dir(point);
    let file_error =
        |path: PathBuf, what: &str, e: std::io::Error| Error::file(path, format!("{what}: {e}"));
    std::fs::create_dir_all(&dir)
        .map_err(|e| file_error(dir.clone(), "cannot create the run directory", e))?;
    let lock_path = dir.join(LOCK_FILE);
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| file_error(lock_path.clone(), "cannot open the lock file", e))?;
    let start = Instant::now();
    let mut told = false;
    loop {
        match lock.try_lock() {
            Ok(()) => break,
            Err(TryLockError::WouldBlock) if start.elapsed() < lock_wait => {
                if !told {
                    log::warn!(
                        "{}: held by another process; waiting up to {} s for it",
                        lock_path.display(),
                        lock_wait.as_secs()
                    );
                    told = true;
                }
                std::thread::sleep(Duration::from_millis(250));
            }
            Err(TryLockError::WouldBlock) => return Ok(Attempt::AlreadyRunning),
            Err(TryLockError::Error(e)) => return Err(file_error(lock_path, "cannot lock", e)),
        }
    }
    if dir.join(TEST_FILE).exists() {
        return Ok(Attempt::AlreadyDone);
    }
    let exit_path = dir.join(EXIT_FILE);
    match std::fs::remove_file(&exit_path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(file_error(exit_path, "cannot remove", e));
        }
        _ => {}
    }
    let mut args = vec!["train".to_string()];
    if dir.join("config.json").exists() {
        args.push("--resume".into());
    } else {
        args.extend(sweep.spec.args(point));
    }
    args.extend(["--out".to_string(), dir.display().to_string()]);

    let log_path = dir.join(LOG_FILE);
    let mut log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| file_error(log_path.clone(), "cannot open", e))?;
    let slurm = std::env::var("SLURM_JOB_ID")
        .map(|id| {
            let task = std::env::var("SLURM_ARRAY_TASK_ID").unwrap_or_default();
            let array = std::env::var("SLURM_ARRAY_JOB_ID").unwrap_or(id);
            format!(" (Slurm job {array}_{task})")
        })
        .unwrap_or_default();
    writeln!(
        log,
        "rankcode sweep{slurm}: {} {}",
        exe.display(),
        args.join(" ")
    )
    .map_err(|e| file_error(log_path.clone(), "cannot write", e))?;
    let clone = |f: &File, path: &Path| {
        f.try_clone()
            .map_err(|e| file_error(path.into(), "cannot share", e))
    };
    // `train` reads nothing from standard input: the lock file there keeps the lock
    // held for as long as `train` lives, even if this process is killed first.
    let status = Command::new(exe)
        .args(&args)
        .stdin(Stdio::from(clone(&lock, &lock_path)?))
        .stdout(Stdio::from(clone(&log, &log_path)?))
        .stderr(Stdio::from(log))
        .status()
        .map_err(|e| file_error(exe.into(), "cannot start rankcode train", e))?;
    let (shown, stopped) = describe(status);
    if !stopped {
        crate::files::write_atomic(&exit_path, format!("{shown}\n").as_bytes())?;
    }
    Ok(Attempt::Ran {
        status: shown,
        success: status.success(),
    })
}

/// An exit status in words, and whether it was a stop (SIGINT, SIGTERM) rather than
/// an end.
fn describe(status: std::process::ExitStatus) -> (String, bool) {
    if let Some(code) = status.code() {
        return (code.to_string(), false);
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt as _;
        if let Some(signal) = status.signal() {
            // SIGINT and SIGTERM.
            return (format!("signal {signal}"), matches!(signal, 2 | 15));
        }
    }
    (status.to_string(), false)
}

/// Whether another process holds the lock file `path`.
fn is_locked(path: &Path) -> bool {
    let Ok(file) = OpenOptions::new().write(true).open(path) else {
        return false;
    };
    matches!(file.try_lock(), Err(TryLockError::WouldBlock))
}

/// Epochs recorded in a run directory's `metrics.jsonl`.
pub fn epochs_trained(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .map(|t| t.lines().filter(|l| l.ends_with('}')).count())
        .unwrap_or(0)
}

/// The last `n` non-empty lines of the file at `path` (none if it cannot be read).
pub fn log_tail(path: &Path, n: usize) -> Vec<String> {
    let text = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| l.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::test_dir;

    #[test]
    fn states_follow_the_files() {
        let dir = test_dir("sweep-state");
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(PointState::of(&dir), PointState::Pending { epochs: 0 });
        std::fs::write(
            dir.join("metrics.jsonl"),
            "{\"epoch\":1}\n{\"epoch\":2}\n{\"ep",
        )
        .unwrap();
        assert_eq!(PointState::of(&dir), PointState::Pending { epochs: 2 });
        let lock = File::create(dir.join(LOCK_FILE)).unwrap();
        lock.lock().unwrap();
        // Locks of one process exclude each other's open files too (flock).
        assert_eq!(PointState::of(&dir), PointState::Running { epochs: 2 });
        drop(lock);
        std::fs::write(dir.join(EXIT_FILE), "1\n").unwrap();
        std::fs::write(dir.join(LOG_FILE), "a\n\nb\nerror: it broke\n").unwrap();
        let PointState::Failed { status, log_tail } = PointState::of(&dir) else {
            panic!("not failed")
        };
        assert_eq!(status, "1");
        assert_eq!(log_tail, ["a", "b", "error: it broke"]);
        std::fs::write(dir.join("test.json"), "{}").unwrap();
        assert_eq!(PointState::of(&dir), PointState::Done);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_attempt_waits_for_a_lock_that_is_let_go_and_leaves_one_that_is_not() {
        let dir = test_dir("sweep-lock-wait");
        let spec_path = dir.with_extension("toml");
        std::fs::write(
            &spec_path,
            "task = \"noise-vs-signal\"\n[grid]\nseed = [1]\n",
        )
        .unwrap();
        let sweep = Sweep::create(&dir, &spec_path, &crate::sweep::spec::tests::FakeTrain).unwrap();
        let point = &sweep.points[0];
        let point_dir = sweep.point_dir(point);
        std::fs::create_dir_all(&point_dir).unwrap();
        // `true` stands in for rankcode: it ignores `train ...` and succeeds.
        let exe = Path::new("true");
        let holder = File::create(point_dir.join(LOCK_FILE)).unwrap();
        holder.lock().unwrap();
        let left = run_point(&sweep, point, exe, Duration::from_millis(300)).unwrap();
        assert_eq!(left, Attempt::AlreadyRunning);
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(500));
            drop(holder);
        });
        let waited = run_point(&sweep, point, exe, Duration::from_secs(30)).unwrap();
        releaser.join().unwrap();
        assert!(
            matches!(waited, Attempt::Ran { success: true, .. }),
            "{waited:?}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
        std::fs::remove_file(&spec_path).unwrap();
    }

    #[test]
    fn log_tails_keep_the_last_lines() {
        let dir = test_dir("sweep-tail");
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("log");
        std::fs::write(&log, (1..=20).map(|i| format!("{i}\n")).collect::<String>()).unwrap();
        assert_eq!(log_tail(&log, 3), ["18", "19", "20"]);
        assert!(log_tail(&dir.join("missing"), 3).is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
