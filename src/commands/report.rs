//! `rankcode report`: every finished run under a folder (a sweep's, or any) in one
//! table and one figure of accuracy against mean decision step.

use super::sweep::TrainFlags;
use super::train::SETTING_FLAGS;
use anyhow::{Result, bail};
use clap::Args;
use rankcode::plot::{StepAxis, write_figure};
use rankcode::sweep::report::Report;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// A sweep folder, or any folder holding run directories (at any depth).
    pub folder: PathBuf,
    /// Print the table as JSON: an object whose `runs` lists one object per run.
    #[arg(long, group = "format")]
    pub json: bool,
    /// Print the table as CSV (fractions, not percentages).
    #[arg(long, group = "format")]
    pub csv: bool,
    /// Print the table as Markdown.
    #[arg(long, group = "format")]
    pub md: bool,
    /// Group the figure's points by this setting (a grid flag, or a flag of `train`
    /// whose value differs between the runs), e.g. --by beta.
    #[arg(long, value_name = "SETTING")]
    pub by: Option<String>,
    /// The figure's path without extension: writes FIGURE.svg and FIGURE.png
    /// [default: FOLDER/report].
    #[arg(long, value_name = "FIGURE")]
    pub figure: Option<PathBuf>,
    /// Write no figure.
    #[arg(long, conflicts_with_all = ["figure", "by"])]
    pub no_figure: bool,
    /// The figure's title [default: the task and the number of runs].
    #[arg(long)]
    pub title: Option<String>,
}

pub fn run(args: &ReportArgs) -> Result<()> {
    let report = Report::gather(&args.folder, &TrainFlags::default(), &SETTING_FLAGS)?;
    for u in &report.unfinished {
        eprintln!("note: {} has no test result: {}", u.run, u.state);
    }
    if report.runs.is_empty() {
        bail!(
            "{}: no finished run (a run directory with test.json) to report{}",
            args.folder.display(),
            match report.unfinished.len() {
                0 => String::new(),
                n => format!("; {} not finished", rankcode::words::count(n, "run")),
            }
        );
    }
    // The figure's grouping first, so that a typo there prints nothing.
    let curves = if args.no_figure {
        None
    } else {
        Some(report.curves(args.by.as_deref())?)
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report.json())?);
    } else if args.csv {
        print!("{}", report.csv());
    } else if args.md {
        print!("{}", report.markdown());
    } else {
        print!("{}", report.text());
    }
    if let Some(curves) = curves {
        let stem = args
            .figure
            .clone()
            .unwrap_or_else(|| args.folder.join("report"));
        let title = args.title.clone().unwrap_or_else(|| {
            format!(
                "{}: test accuracy against mean decision step, {}",
                report.runs[0].task,
                rankcode::words::count(report.runs.len(), "run")
            )
        });
        let (svg, png) = write_figure(&stem, &title, StepAxis::Task(report.steps()), &curves)?;
        eprintln!("figure: {} and {}", svg.display(), png.display());
    }
    Ok(())
}
