//! `rankcode eval`: evaluates a trained run with the rank-coding decision rule.

use anyhow::Result;
use clap::Args;
use rankcode::data::Dataset;
use rankcode::data::task::{Split, Task};
use rankcode::epoch::{self, EvalReport, GroupReport, SweepPoint, parse_theta_sweep};
use rankcode::gpu::GpuContext;
use rankcode::gpu::profile::ProfiledWork;
use rankcode::run::RunConfig;
use rankcode::run::directory::CONFIG_FILE;
use rankcode::run::features::load_feature_spec;
use rankcode::run::inference::load_for_inference;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// Which data to evaluate on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EvalSplit {
    Train,
    Val,
    Test,
    All,
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// A run directory written by `rankcode train`.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Data folder of file-based tasks (default: the one the run was trained with).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// The data to evaluate.
    #[arg(long, value_enum, default_value = "test")]
    pub split: EvalSplit,
    /// Spike threshold (default: the one the run was trained with or, for a finished run
    /// made with `train --select-max-decision-step`, the one it chose: see test.json).
    #[arg(long)]
    pub theta: Option<f32>,
    /// Also sweep the threshold, FROM:TO:N (e.g. 0.5:0.99:20), from one pass over the data.
    #[arg(long)]
    pub theta_sweep: Option<String>,
    /// With --theta-sweep: also name the swept threshold with the best accuracy among
    /// those whose mean decision step is at most STEPS (choose it on --split val).
    #[arg(long, value_name = "STEPS", requires = "theta_sweep")]
    pub max_decision_step: Option<f64>,
    /// Skip the full-length pass behind the accuracy at T-1: it computes every step of
    /// every sequence, far more than the rank-coded pass (the report then has none).
    #[arg(long)]
    pub no_full_pass: bool,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Time every dispatch with timestamp queries and print the GPU time per kernel of
    /// the whole evaluation (the full pass and the sweep included). Fails on an adapter
    /// without timestamp queries.
    #[arg(long)]
    pub profile: bool,
}

#[derive(Serialize)]
struct EvalOutput {
    checkpoint: PathBuf,
    task: Task,
    split: String,
    /// Carries the threshold (`theta`).
    #[serde(flatten)]
    report: EvalReport,
    /// Audio tasks: the mean time into the audio of the decision, in ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    mean_decision_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sweep: Option<Vec<SweepPoint>>,
    /// With --max-decision-step: the best sweep point within it (null if none is).
    #[serde(skip_serializing_if = "Option::is_none")]
    best_within_budget: Option<Option<SweepPoint>>,
    /// seq-spotting: decisions on positive sequences against the earliest possible step.
    #[serde(skip_serializing_if = "Option::is_none")]
    ideal: Option<IdealComparison>,
    /// Audio tasks: accuracy and decision time per speaker, in name order.
    #[serde(skip_serializing_if = "Option::is_none")]
    per_speaker: Option<Vec<GroupReport>>,
    /// With --profile: the GPU time per kind of dispatch, and the wall time it is part of.
    #[serde(skip_serializing_if = "Option::is_none")]
    kernel_profile: Option<ProfiledWork>,
}

/// Mean decision step (1-based) of the positive seq-spotting sequences against the
/// ideal one, the end of each sequence's first run of 5.
#[derive(Serialize)]
struct IdealComparison {
    positives: usize,
    mean_decision_step: f64,
    mean_ideal_step: f64,
    accuracy: f64,
}

fn ideal_comparison(task: Task, data: &Dataset, report: &EvalReport) -> Option<IdealComparison> {
    if task != Task::SeqSpotting {
        return None;
    }
    let ideal = rankcode::data::toy::spotting_ideal_steps(data);
    let (mut n, mut decided, mut best, mut correct) = (0usize, 0usize, 0usize, 0usize);
    for ((ideal, &(step, class)), &label) in ideal.iter().zip(&report.decisions).zip(&data.labels) {
        if let Some(t) = ideal {
            n += 1;
            decided += step as usize + 1;
            best += t + 1;
            correct += (class == label) as usize;
        }
    }
    let n_f = n.max(1) as f64;
    Some(IdealComparison {
        positives: n,
        mean_decision_step: decided as f64 / n_f,
        mean_ideal_step: best as f64 / n_f,
        accuracy: correct as f64 / n_f,
    })
}

/// The data of `split` of the run in `run_dir`, from `data` if given, else where the
/// run read it, with the speaker of each sequence where the task's file names say it;
/// audio features are normalised with the run's saved statistics. `all` is every
/// split that holds data: a folder of new speakers' recordings evaluates whole.
pub fn load_split(
    run_dir: &Path,
    cfg: &RunConfig,
    split: EvalSplit,
    data: Option<PathBuf>,
) -> Result<(Dataset, Option<Vec<Option<String>>>)> {
    cfg.task.check_data_folder(data.as_deref())?;
    // The folder config.json records is where the run was trained, made absolute: on
    // another machine (a shipped model, a copied run) it need not exist.
    if data.is_none()
        && let Some(recorded) = &cfg.data_dir
        && !recorded.exists()
    {
        anyhow::bail!(
            "{}: the run was trained on data in {}, which does not exist here; \
             give the {} data folder with --data DIR",
            run_dir.join(CONFIG_FILE).display(),
            recorded.display(),
            cfg.task.name()
        );
    }
    let cfg = RunConfig {
        data_dir: data.or(cfg.data_dir.clone()),
        ..cfg.clone()
    };
    let spec = cfg
        .task
        .is_audio()
        .then(|| load_feature_spec(run_dir))
        .transpose()?;
    let data = cfg.open_data(spec)?;
    let mut splits: Vec<Split> = match split {
        EvalSplit::Train => vec![Split::Train],
        EvalSplit::Val => vec![Split::Val],
        EvalSplit::Test => vec![Split::Test],
        EvalSplit::All => [Split::Train, Split::Val, Split::Test]
            .into_iter()
            .filter(|&s| data.holds(s))
            .collect(),
    };
    if splits.is_empty() {
        // A folder with no recordings at all: the error of its first split names it.
        splits.push(Split::Train);
    }
    let mut loaded: Option<Dataset> = None;
    let mut speakers: Option<Vec<Option<String>>> = None;
    for s in splits {
        let part = data.load(s)?;
        loaded = Some(match loaded {
            None => part,
            Some(before) => before.concat(&part),
        });
        if let Some(names) = data.speakers(s) {
            speakers.get_or_insert_with(Vec::new).extend(names);
        }
    }
    Ok((loaded.expect("at least one split is loaded"), speakers))
}

pub fn run(args: &EvalArgs) -> Result<()> {
    if let Some(steps) = args.max_decision_step
        && (steps.is_nan() || steps < 1.0)
    {
        anyhow::bail!(
            "--max-decision-step counts steps from 1 (a decision at the first step); {steps} cannot be met"
        );
    }
    let thetas = args
        .theta_sweep
        .as_deref()
        .map(parse_theta_sweep)
        .transpose()?;
    let ctx = Arc::new(GpuContext::new()?);
    let (cfg, mut engine, _) = load_for_inference(ctx, &args.checkpoint, args.theta)?;
    let (data, speakers) = load_split(&args.checkpoint, &cfg, args.split, args.data.clone())?;
    if args.profile {
        engine.enable_profiling()?;
    }
    let start = Instant::now();
    let (report, sweep) = epoch::evaluate_and_sweep(
        &mut engine,
        &data,
        cfg.batch,
        !args.no_full_pass,
        thetas.as_deref(),
    )?;
    let wall_s = start.elapsed().as_secs_f64();
    let kernel_profile = engine
        .take_profile()?
        .map(|profile| ProfiledWork::new(profile, wall_s));
    let best_within_budget = args
        .max_decision_step
        .zip(sweep.as_deref())
        .map(|(max_step, sweep)| epoch::best_within(sweep, max_step));
    let ideal = ideal_comparison(cfg.task, &data, &report);
    let per_speaker = speakers
        .map(|names| epoch::by_group(&report, &data.labels, &names))
        .filter(|groups| !groups.is_empty());
    let mean_decision_ms = cfg.task.is_audio().then(|| {
        // Frame t ends at window + t * hop: linear, so the mean maps directly.
        let (first, second) = (
            cfg.frontend.end_of_frame_ms(0) as f64,
            cfg.frontend.end_of_frame_ms(1) as f64,
        );
        first + (report.mean_decision_step - 1.0) * (second - first)
    });
    let out = EvalOutput {
        checkpoint: args.checkpoint.clone(),
        task: cfg.task,
        split: format!("{:?}", args.split).to_lowercase(),
        report,
        mean_decision_ms,
        sweep,
        best_within_budget,
        ideal,
        per_speaker,
        kernel_profile,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    let r = &out.report;
    println!(
        "{} ({} split, {} sequences of {} steps) on {}",
        cfg.task.name(),
        out.split,
        r.sequences,
        r.steps,
        r.adapter
    );
    if let Some(members) = &cfg.ensemble_of {
        println!(
            "  model                        an ensemble of {} runs, {} units a layer",
            members.len(),
            cfg.model.hidden_size
        );
    }
    println!("  theta                        {}", r.theta);
    println!("  accuracy at decision         {:.2}%", 100.0 * r.accuracy);
    println!(
        "  mean steps to decision       {:.2} of {} ({:.1}%; t* + 1)",
        r.mean_decision_step,
        r.steps,
        100.0 * r.mean_decision_fraction
    );
    if let Some(ms) = out.mean_decision_ms {
        println!("  mean decision time           {ms:.0} ms into the audio");
    }
    println!("  not fired                    {:.2}%", 100.0 * r.not_fired);
    match r.eos_accuracy {
        Some(acc) => println!("  accuracy at T-1              {:.2}%", 100.0 * acc),
        None => println!("  accuracy at T-1              not computed (--no-full-pass)"),
    }
    println!(
        "  steps processed              {} of {} ({:.1}%)",
        r.steps_processed,
        r.steps_full,
        100.0 * r.steps_processed as f64 / r.steps_full as f64
    );
    println!("  wall time                    {:.2}s", r.wall_s);
    if let Some(i) = &out.ideal {
        println!(
            "  positive sequences           {}: mean decision step {:.2}, ideal {:.2} (accuracy {:.2}%)",
            i.positives,
            i.mean_decision_step,
            i.mean_ideal_step,
            100.0 * i.accuracy
        );
    }
    if let Some(groups) = &out.per_speaker {
        print_per_speaker(groups);
    }
    if let Some(sweep) = &out.sweep {
        println!("\n  theta    accuracy   mean decision step   not fired");
        for p in sweep {
            println!(
                "  {:<8.4} {:>7.2}%   {:>18.2}   {:>8.2}%",
                p.theta,
                100.0 * p.accuracy,
                p.mean_decision_step,
                100.0 * p.not_fired
            );
        }
    }
    if let Some(best) = &out.best_within_budget {
        let budget = args.max_decision_step.unwrap_or_default();
        match best {
            Some(p) => println!(
                "\n  best within a mean decision step of {budget}: theta {:.4}, {:.2}% at {:.2} steps",
                p.theta,
                100.0 * p.accuracy,
                p.mean_decision_step
            ),
            None => println!("\n  no swept theta decides within a mean of {budget} steps"),
        }
    }
    if let Some(p) = &out.kernel_profile {
        println!("\n  kernels of the evaluation:");
        for line in p.table().lines() {
            println!("  {line}");
        }
    }
    Ok(())
}

/// The per-speaker table of an evaluation, with the mean and the worst speaker.
fn print_per_speaker(groups: &[GroupReport]) {
    println!("\n  speaker          recordings   accuracy   mean decision step");
    for g in groups {
        println!(
            "  {:<16} {:>10}   {:>7.2}%   {:>18.2}",
            g.name,
            g.sequences,
            100.0 * g.accuracy,
            g.mean_decision_step
        );
    }
    if groups.len() > 1 {
        let mean = groups.iter().map(|g| g.accuracy).sum::<f64>() / groups.len() as f64;
        let worst = groups
            .iter()
            .min_by(|a, b| a.accuracy.total_cmp(&b.accuracy))
            .expect("groups");
        println!(
            "  mean of the speakers {:.2}%; worst {} at {:.2}%",
            100.0 * mean,
            worst.name,
            100.0 * worst.accuracy
        );
    }
}
