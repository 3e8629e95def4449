//! `rankcode sweep`: a grid of `train` runs from a TOML spec, run here a few at a time
//! or submitted to Slurm as a job array; `--status` says where each point stands.

use super::train::TrainArgs;
use anyhow::{Context, Result, bail};
use clap::{Args, FromArgMatches};
use rankcode::sweep::local::{Event, run_local};
use rankcode::sweep::{Attempt, FlagCheck, PointState, Sweep, run_point, slurm};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Args, Debug)]
pub struct SweepArgs {
    /// The sweep spec: a TOML file naming the task, the fixed flags of `train` ([fixed])
    /// and the grid ([grid], a list of values per flag), keyed by train's flag names.
    #[arg(required_unless_present_any = ["status", "run_point"])]
    pub spec: Option<PathBuf>,
    /// The sweep folder: the spec, and one run directory per grid point. Rerunning a
    /// sweep into its folder runs only the points not done (the unfinished resume).
    #[arg(long, value_name = "DIR", required_unless_present_any = ["status", "run_point"])]
    pub out: Option<PathBuf>,
    /// Run N points at a time on this machine [default: 1].
    #[arg(long, value_name = "N", conflicts_with = "slurm", value_parser = clap::value_parser!(u32).range(1..))]
    pub local: Option<u32>,
    /// Submit the points to Slurm: writes DIR/sweep.sbatch and submits it with
    /// `sbatch --array`, one task per point.
    #[arg(long)]
    pub slurm: bool,
    /// An option for sbatch, written as an `#SBATCH` line of the script, e.g.
    /// --sbatch=--gres=gpu:1 --sbatch=--time=4:00:00 --sbatch=--partition=gpu.
    #[arg(
        long,
        value_name = "OPTION",
        requires = "slurm",
        allow_hyphen_values = true
    )]
    pub sbatch: Vec<String>,
    /// Show which points of the sweep folder DIR are done, running, failed or pending
    /// (failed ones with the end of their log).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["spec", "out", "local", "slurm"])]
    pub status: Option<PathBuf>,
    /// Run point INDEX of the sweep folder DIR: what each Slurm task runs.
    #[arg(long, hide = true, num_args = 2, value_names = ["INDEX", "DIR"],
          conflicts_with_all = ["spec", "out", "local", "slurm", "status"])]
    pub run_point: Option<Vec<String>>,
}

/// `train`'s flags, from its own clap command, checking a spec the way `train`
/// checks its command line before it trains.
pub struct TrainFlags {
    command: clap::Command,
}

impl Default for TrainFlags {
    fn default() -> Self {
        TrainFlags {
            command: <TrainArgs as Args>::augment_args(clap::Command::new("train")),
        }
    }
}

impl FlagCheck for TrainFlags {
    fn takes_value(&self, name: &str) -> Option<bool> {
        self.command
            .get_arguments()
            .find(|a| a.get_long() == Some(name))
            .map(|a| a.get_action().takes_values())
    }

    fn flags(&self) -> Vec<String> {
        self.command
            .get_arguments()
            .filter_map(|a| a.get_long().map(String::from))
            .collect()
    }

    fn check(&self, args: &[String]) -> std::result::Result<(), String> {
        let argv = std::iter::once("train".to_string())
            .chain(args.iter().cloned())
            .chain(["--out".to_string(), "sweep-check".to_string()]);
        let matches = self
            .command
            .clone()
            .try_get_matches_from(argv)
            .map_err(|e| {
                let text = e.to_string();
                let first = text.lines().next().unwrap_or_default();
                first.trim_start_matches("error: ").to_string()
            })?;
        let parsed = TrainArgs::from_arg_matches(&matches).map_err(|e| e.to_string())?;
        let task = parsed.task.ok_or("names no task")?;
        let cfg = parsed.run_config(task).map_err(|e| format!("{e:#}"))?;
        cfg.validate().map_err(|e| e.to_string())
    }
}

pub fn run(args: &SweepArgs) -> Result<()> {
    let flags = TrainFlags::default();
    if let Some(dir) = &args.status {
        return status(&Sweep::open(dir, &flags)?);
    }
    if let Some(point) = &args.run_point {
        let (index, dir) = (&point[0], Path::new(&point[1]));
        return run_one(&Sweep::open(dir, &flags)?, index);
    }
    let (Some(spec), Some(out)) = (&args.spec, &args.out) else {
        bail!("a sweep needs its spec and --out DIR");
    };
    let sweep = Sweep::create(out, spec, &flags)?;
    let states = sweep.states();
    let queued = if args.slurm {
        slurm::queued(&sweep)
    } else {
        Default::default()
    };
    let todo: Vec<_> = sweep
        .points
        .iter()
        .zip(&states)
        .filter(|(p, s)| {
            !matches!(s, PointState::Done | PointState::Running { .. })
                && !queued.contains_key(&p.index)
        })
        .map(|(p, _)| p.clone())
        .collect();
    let count = |name: &str| states.iter().filter(|s| s.name() == name).count();
    eprintln!(
        "rankcode sweep: {} of {} in {}: {} done, {} running{}, {} to run",
        rankcode::words::count(sweep.points.len(), "point"),
        sweep.spec.task,
        sweep.dir.display(),
        count("done"),
        count("running"),
        if queued.is_empty() {
            String::new()
        } else {
            format!(", {} queued in Slurm", queued.len())
        },
        todo.len()
    );
    if todo.is_empty() {
        eprintln!(
            "nothing to run; `rankcode sweep --status {0}` and `rankcode report {0}`",
            sweep.dir.display()
        );
        return Ok(());
    }
    let exe = slurm::this_binary()?;
    if args.slurm {
        let indices: Vec<usize> = todo.iter().map(|p| p.index).collect();
        let job = slurm::submit(&sweep, &indices, &exe, &args.sbatch)?;
        println!(
            "submitted Slurm job {job}: array {} ({}); `rankcode sweep --status {}` follows them",
            slurm::array_spec(&indices),
            rankcode::words::count(indices.len(), "task"),
            sweep.dir.display()
        );
        return Ok(());
    }
    run_here(&sweep, &todo, args.local.unwrap_or(1) as usize, &exe)
}

/// Runs `todo` here, `jobs` at a time, a line per point as it ends.
fn run_here(sweep: &Sweep, todo: &[rankcode::sweep::Point], jobs: usize, exe: &Path) -> Result<()> {
    let start = Instant::now();
    let finished = std::sync::atomic::AtomicUsize::new(0);
    let on_event = |event: Event| match event {
        Event::Started(p) => eprintln!("started {}", p.name),
        Event::Finished(p, outcome) => {
            let k = finished.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            let dir = sweep.point_dir(p);
            let what = match outcome {
                Ok(Attempt::Ran { success: true, .. }) | Ok(Attempt::AlreadyDone) => {
                    format!("done: {}", test_summary(&dir))
                }
                Ok(Attempt::AlreadyRunning) => "running elsewhere; left alone".into(),
                Ok(Attempt::Ran { status, .. }) => format!(
                    "failed (exit status {status}); {} ends:\n{}",
                    dir.join(rankcode::sweep::point::LOG_FILE).display(),
                    indent(&rankcode::sweep::point::log_tail(
                        &dir.join(rankcode::sweep::point::LOG_FILE),
                        8
                    ))
                ),
                Err(e) => format!("failed: {e}"),
            };
            eprintln!(
                "[{k}/{}] {} {what} ({:.0}s into the sweep)",
                todo.len(),
                p.name,
                start.elapsed().as_secs_f64()
            );
        }
    };
    let outcomes = run_local(sweep, todo, jobs, exe, &on_event);
    let failed: Vec<&str> = todo
        .iter()
        .zip(&outcomes)
        .filter(|(_, o)| {
            !matches!(
                o,
                Ok(Attempt::Ran { success: true, .. } | Attempt::AlreadyDone)
            )
        })
        .map(|(p, _)| p.name.as_str())
        .collect();
    if !failed.is_empty() {
        bail!(
            "{} of {} did not finish: {}; `rankcode sweep --status {}` shows where each stands, \
             and running the sweep again retries them",
            failed.len(),
            rankcode::words::count(todo.len(), "point"),
            failed.join(", "),
            sweep.dir.display()
        );
    }
    println!(
        "all {} done in {:.1}s; `rankcode report {}` gathers them",
        rankcode::words::count(todo.len(), "point"),
        start.elapsed().as_secs_f64(),
        sweep.dir.display()
    );
    Ok(())
}

/// `--run-point INDEX DIR`: one attempt at one point; fails when `train` fails.
fn run_one(sweep: &Sweep, index: &str) -> Result<()> {
    let point = index
        .parse::<usize>()
        .ok()
        .and_then(|i| sweep.points.get(i))
        .with_context(|| {
            format!(
                "{}: no grid point {index} (the sweep has {})",
                sweep.dir.display(),
                rankcode::words::count(sweep.points.len(), "point")
            )
        })?;
    let dir = sweep.point_dir(point);
    match run_point(sweep, point, &slurm::this_binary()?, slurm::LOCK_WAIT)? {
        Attempt::AlreadyDone => eprintln!("{}: done before; nothing to run", dir.display()),
        // A failure, so that Slurm's accounting shows the task did not run its point.
        Attempt::AlreadyRunning => bail!(
            "{}: another process still holds {} after {} s; this task leaves the point \
             alone (`rankcode sweep --status` shows who runs it; rerun the sweep to \
             submit it again)",
            dir.display(),
            dir.join(rankcode::sweep::point::LOCK_FILE).display(),
            slurm::LOCK_WAIT.as_secs()
        ),
        Attempt::Ran { success: true, .. } => {
            eprintln!("{}: done: {}", dir.display(), test_summary(&dir))
        }
        Attempt::Ran { status, .. } => bail!(
            "{}: rankcode train failed (exit status {status}); its log: {}",
            dir.display(),
            dir.join(rankcode::sweep::point::LOG_FILE).display()
        ),
    }
    Ok(())
}

/// `--status`: a line per point, failed ones with the end of their log.
fn status(sweep: &Sweep) -> Result<()> {
    let states = sweep.states();
    let queued = slurm::queued(sweep);
    let count = |name: &str| states.iter().filter(|s| s.name() == name).count();
    println!(
        "{}: {} of {}: {} done, {} running, {} failed, {} pending",
        sweep.dir.display(),
        rankcode::words::count(sweep.points.len(), "point"),
        sweep.spec.task,
        count("done"),
        count("running"),
        count("failed"),
        count("pending")
    );
    let width = sweep.points.iter().map(|p| p.name.len()).max().unwrap_or(0);
    for (point, state) in sweep.points.iter().zip(&states) {
        let dir = sweep.point_dir(point);
        let epochs = || {
            let total = std::fs::read_to_string(dir.join("config.json"))
                .ok()
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                .and_then(|c| c["epochs"].as_u64());
            total.map_or(String::new(), |t| format!(" of {t}"))
        };
        let slurm = queued
            .get(&point.index)
            .map(|(id, state)| format!("; Slurm task {id} {}", state.to_lowercase()))
            .unwrap_or_default();
        let detail = match state {
            PointState::Done => test_summary(&dir),
            PointState::Running { epochs: e } => format!("epoch {e}{} trained{slurm}", epochs()),
            PointState::Pending { epochs: 0 } => format!("not started{slurm}"),
            PointState::Pending { epochs: e } => {
                format!("stopped after epoch {e}{}; resumes{slurm}", epochs())
            }
            PointState::Failed { status, log_tail } => format!(
                "exit status {status}{slurm}; {} ends:\n{}",
                dir.join(rankcode::sweep::point::LOG_FILE).display(),
                indent(log_tail)
            ),
        };
        println!("  {:width$}  {:8} {detail}", point.name, state.name());
    }
    Ok(())
}

/// `93.55% at 14.61/40 steps`, from a finished run's test.json.
fn test_summary(dir: &Path) -> String {
    let test = std::fs::read_to_string(dir.join("test.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok());
    match test {
        Some(t) => format!(
            "test accuracy {:.2}% at mean decision step {:.2}/{}",
            100.0 * t["accuracy"].as_f64().unwrap_or(f64::NAN),
            t["mean_decision_step"].as_f64().unwrap_or(f64::NAN),
            t["steps"].as_u64().unwrap_or(0)
        ),
        None => "no readable test.json".into(),
    }
}

/// Log lines, indented under a point's line.
fn indent(lines: &[String]) -> String {
    let shown: Vec<String> = lines.iter().map(|l| format!("      | {l}")).collect();
    shown.join("\n")
}
