//! `rankcode plot`: accuracy against mean decision step of one or more runs, in one
//! SVG and PNG figure, each curve from a threshold sweep.

use super::eval::{EvalSplit, load_split};
use anyhow::{Context, Result, bail};
use clap::Args;
use rankcode::epoch::{self, parse_theta_sweep};
use rankcode::gpu::GpuContext;
use rankcode::model::TrainMode;
use rankcode::plot::{Curve, StepAxis, write_figure};
use rankcode::run::inference::load_for_inference;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Args, Debug)]
pub struct PlotArgs {
    /// Run directories written by `rankcode train` (one curve each).
    #[arg(required = true)]
    pub checkpoints: Vec<PathBuf>,
    /// Output path without extension: writes OUT.svg and OUT.png.
    #[arg(long)]
    pub out: PathBuf,
    /// Thresholds of each curve, FROM:TO:N.
    #[arg(long, default_value = "0.5:0.995:24")]
    pub theta_sweep: String,
    /// The data to evaluate.
    #[arg(long, value_enum, default_value = "test")]
    pub split: EvalSplit,
    /// Data folder of file-based tasks (default: the one each run was trained with).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Figure title (default: the task).
    #[arg(long)]
    pub title: Option<String>,
    /// Show mean decision steps up to STEPS only, a close view of early decisions
    /// (default: the whole sequence). Points beyond are left out.
    #[arg(long, value_name = "STEPS", value_parser = parse_max_step)]
    pub max_step: Option<f64>,
    /// A published accuracy without a decision time, drawn as a dashed line: LABEL=PERCENT,
    /// e.g. "S4NN (SNN)=97.4". Repeat for more.
    #[arg(long, value_name = "LABEL=PERCENT", value_parser = parse_reference)]
    pub reference: Vec<(String, f64)>,
}

fn parse_reference(text: &str) -> Result<(String, f64), String> {
    let (label, percent) = text
        .rsplit_once('=')
        .ok_or_else(|| format!("{text:?} is not LABEL=PERCENT"))?;
    match percent.trim().parse::<f64>() {
        Ok(p) if (0.0..=100.0).contains(&p) && !label.trim().is_empty() => {
            Ok((label.trim().to_string(), p))
        }
        _ => Err(format!(
            "{text:?} is not LABEL=PERCENT with a label and a percentage from 0 to 100"
        )),
    }
}

fn parse_max_step(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("{text:?} is not a positive number of steps")),
    }
}

pub fn run(args: &PlotArgs) -> Result<()> {
    let thetas = parse_theta_sweep(&args.theta_sweep)?;
    // The figure's folder first, so that a typo there costs no evaluation.
    if let Some(folder) = args.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(folder)
            .with_context(|| format!("{}: cannot create the figure's folder", folder.display()))?;
    }
    let ctx = Arc::new(GpuContext::new()?);
    let mut curves = Vec::new();
    let mut task_steps = None;
    for dir in &args.checkpoints {
        let (cfg, mut engine, _) = load_for_inference(ctx.clone(), dir, None)?;
        let steps = cfg.shape().steps;
        match task_steps {
            Some((task, _)) if task != cfg.task => {
                bail!(
                    "{} is a {} run; the figure compares runs of one task",
                    dir.display(),
                    cfg.task.name()
                )
            }
            _ => task_steps = Some((cfg.task, steps)),
        }
        let (data, _) = load_split(dir, &cfg, args.split, args.data.clone())?;
        let sweep = epoch::theta_sweep(&mut engine, &data, cfg.batch, &thetas)?;
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mode = if cfg.rc.mode == TrainMode::Rc {
            "RC"
        } else {
            "EOS"
        };
        let label = match &cfg.ensemble_of {
            Some(members) => format!("{name} ({mode}-trained, ensemble of {})", members.len()),
            None => format!("{name} ({mode}-trained)"),
        };
        eprintln!("{label}: {} points", sweep.len());
        curves.push(Curve::new(
            label,
            sweep
                .iter()
                .map(|p| (p.mean_decision_step, p.accuracy))
                .collect(),
        ));
    }
    for (label, percent) in &args.reference {
        curves.push(Curve::reference(label.clone(), percent / 100.0));
    }
    let (task, steps) = task_steps.expect("at least one checkpoint");
    let title = args
        .title
        .clone()
        .unwrap_or_else(|| format!("{}: accuracy against decision time", task.name()));
    let axis = args.max_step.map_or(StepAxis::Task(steps), StepAxis::UpTo);
    let (svg, png) = write_figure(&args.out, &title, axis, &curves)?;
    println!("wrote {} and {}", svg.display(), png.display());
    Ok(())
}
