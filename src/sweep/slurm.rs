//! The Slurm executor: a job-array script with one task per grid point, submitted
//! with `sbatch --array`; and what Slurm's queue says of a sweep's tasks.
//!
//! Each task runs `rankcode sweep --run-point INDEX DIR`, which resumes its point's
//! run if the directory holds one: a preempted or requeued task continues where it
//! stopped.

use super::Sweep;
use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// How long a Slurm task waits for its point's lock before it gives up. A requeued or
/// preempted task can start again while its previous attempt's `train` is still
/// exiting: killed together with its parent, that `train` has left the job's process
/// tree, so Slurm need not wait for it.
pub const LOCK_WAIT: Duration = Duration::from_secs(120);
/// The job-array script, in the sweep folder.
pub const SCRIPT_FILE: &str = "sweep.sbatch";
/// One line per submission: the job id and the array indices submitted.
pub const JOBS_FILE: &str = "slurm-jobs.txt";
/// Where Slurm writes each task's own output (`%A_%a.out`).
pub const OUTPUT_DIR: &str = "slurm";

/// Quotes `text` for a POSIX shell.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The job-array script for `sweep` (whose folder is `dir`, absolute), running the
/// binary `exe` (absolute), with `options` as `#SBATCH` lines after the sweep's own
/// (so that they override them).
pub fn script(dir: &Path, exe: &Path, options: &[String]) -> String {
    let mut s = String::from("#!/bin/sh\n");
    s.push_str(&format!(
        "# Written by `rankcode sweep --slurm`: one array task per grid point of\n\
         # {dir}/sweep.toml; submitted with `sbatch --array=INDICES`.\n",
        dir = dir.display()
    ));
    s.push_str("#SBATCH --job-name=rankcode-sweep\n");
    s.push_str(&format!(
        "#SBATCH --output={}/{OUTPUT_DIR}/%A_%a.out\n",
        dir.display()
    ));
    s.push_str("#SBATCH --open-mode=append\n#SBATCH --requeue\n");
    for option in options {
        s.push_str(&format!("#SBATCH {option}\n"));
    }
    s.push_str(&format!(
        "exec {} sweep --run-point \"$SLURM_ARRAY_TASK_ID\" {}\n",
        shell_quote(&exe.display().to_string()),
        shell_quote(&dir.display().to_string())
    ));
    s
}

/// `0-3,5,7-9`: Slurm's array notation for sorted `indices`.
pub fn array_spec(indices: &[usize]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < indices.len() {
        let start = indices[i];
        let mut end = start;
        while i + 1 < indices.len() && indices[i + 1] == end + 1 {
            i += 1;
            end = indices[i];
        }
        parts.push(if end > start {
            format!("{start}-{end}")
        } else {
            start.to_string()
        });
        i += 1;
    }
    parts.join(",")
}

/// Writes the script into the sweep folder and submits the points `indices` with
/// `sbatch --array`; returns the job id. `sbatch` missing or refusing is an error that
/// says so, with what `sbatch` printed.
pub fn submit(sweep: &Sweep, indices: &[usize], exe: &Path, options: &[String]) -> Result<String> {
    let dir = std::fs::canonicalize(&sweep.dir).map_err(|e| {
        Error::file(
            sweep.dir.clone(),
            format!("cannot resolve the sweep folder: {e}"),
        )
    })?;
    let output_dir = dir.join(OUTPUT_DIR);
    std::fs::create_dir_all(&output_dir).map_err(|e| {
        Error::file(
            output_dir,
            format!("cannot create the folder of Slurm's output: {e}"),
        )
    })?;
    let script_path = dir.join(SCRIPT_FILE);
    crate::files::write_atomic(&script_path, script(&dir, exe, options).as_bytes())?;
    let failed = |problem: String| Error::file(script_path.clone(), problem);
    let output = Command::new("sbatch")
        .arg("--parsable")
        .arg(format!("--array={}", array_spec(indices)))
        .arg(&script_path)
        .output()
        .map_err(|e| {
            failed(match e.kind() {
                std::io::ErrorKind::NotFound => "cannot submit: sbatch is not on PATH (--slurm \
                     needs Slurm's client commands; `--local N` runs the sweep here)"
                    .into(),
                _ => format!("cannot run sbatch: {e}"),
            })
        })?;
    let stdout = String::from_utf8_lossy(&output.stdout).trim().to_string();
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(failed(format!(
            "sbatch refused the job array ({}): {}",
            output.status,
            stderr.trim()
        )));
    }
    // --parsable: "jobid" or "jobid;cluster".
    let job = stdout
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    if job.is_empty() || !job.chars().all(|c| c.is_ascii_digit()) {
        return Err(failed(format!("sbatch printed no job id: {stdout:?}")));
    }
    let jobs_path = sweep.dir.join(JOBS_FILE);
    let mut jobs = std::fs::read_to_string(&jobs_path).unwrap_or_default();
    jobs.push_str(&format!("{job} {}\n", array_spec(indices)));
    crate::files::write_atomic(&jobs_path, jobs.as_bytes())?;
    Ok(job)
}

/// The sweep's array tasks that Slurm's queue holds, by point index: the task's id
/// (`JOB_INDEX`) and state (`PENDING`, `RUNNING`, ...). Empty when the sweep was never
/// submitted or `squeue` cannot be asked.
pub fn queued(sweep: &Sweep) -> BTreeMap<usize, (String, String)> {
    let jobs: Vec<String> = std::fs::read_to_string(sweep.dir.join(JOBS_FILE))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .collect();
    if jobs.is_empty() {
        return BTreeMap::new();
    }
    let Ok(output) = Command::new("squeue")
        .args(["--noheader", "--array", "--format=%i %T", "--jobs"])
        .arg(jobs.join(","))
        .output()
    else {
        return BTreeMap::new();
    };
    parse_squeue(&String::from_utf8_lossy(&output.stdout), &jobs)
}

/// `squeue --array --format="%i %T"` lines of the jobs `jobs`, by array index.
fn parse_squeue(text: &str, jobs: &[String]) -> BTreeMap<usize, (String, String)> {
    text.lines()
        .filter_map(|line| {
            let (id, state) = line.trim().split_once(' ')?;
            let (job, index) = id.split_once('_')?;
            (jobs.iter().any(|j| j == job)).then(|| {
                Some((
                    index.parse().ok()?,
                    (id.to_string(), state.trim().to_string()),
                ))
            })?
        })
        .collect()
}

/// The absolute path of the running binary, which the tasks run.
pub fn this_binary() -> Result<PathBuf> {
    std::env::current_exe()
        .map_err(|e| Error::file("rankcode", format!("cannot find the running binary: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_indices_are_compressed_into_ranges() {
        assert_eq!(array_spec(&[0, 1, 2, 3, 5, 7, 8, 9]), "0-3,5,7-9");
        assert_eq!(array_spec(&[4]), "4");
        assert_eq!(array_spec(&[]), "");
    }

    #[test]
    fn the_script_runs_each_task_on_its_point_with_the_options_given() {
        let s = script(
            Path::new("/runs/it's"),
            Path::new("/bin/rankcode"),
            &["--gres=gpu:1".into(), "--time=2:00:00".into()],
        );
        assert!(s.starts_with("#!/bin/sh\n"));
        assert!(s.contains("#SBATCH --output=/runs/it's/slurm/%A_%a.out\n"));
        assert!(s.contains("#SBATCH --requeue\n#SBATCH --gres=gpu:1\n#SBATCH --time=2:00:00\n"));
        assert!(s.ends_with(
            "exec '/bin/rankcode' sweep --run-point \"$SLURM_ARRAY_TASK_ID\" '/runs/it'\\''s'\n"
        ));
    }

    #[test]
    fn squeue_lines_of_other_jobs_are_ignored() {
        let text = "12_3 PENDING\n12_10 RUNNING\n13_1 PENDING\nbad\n12 RUNNING\n";
        let q = parse_squeue(text, &["12".into()]);
        assert_eq!(q.len(), 2);
        assert_eq!(q[&3], ("12_3".into(), "PENDING".into()));
        assert_eq!(q[&10].1, "RUNNING");
    }
}
