//! rankcode: train and run rank-coded LSTMs on the GPU.

use anyhow::Result;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use std::process::ExitCode;

mod commands;

/// Train and run rank-coded LSTMs (Jeffares et al., ICLR 2022) on any Vulkan, Metal
/// or DX12 GPU, or a software adapter. Without a command, runs the built-in demo:
/// rank coding against end-of-sequence training on the noise-vs-signal task.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Train a model on a task into a run directory (checkpointed every epoch).
    Train(Box<commands::train::TrainArgs>),
    /// Evaluate a trained run: accuracy, decision time, compute; threshold sweeps.
    Eval(commands::eval::EvalArgs),
    /// Recognise spoken words in WAV files with a trained audio model, at the first spike.
    Classify(commands::classify::ClassifyArgs),
    /// Join trained runs into one model that averages their logits (an ensemble).
    Ensemble(commands::ensemble::EnsembleArgs),
    /// Draw accuracy against mean decision step of runs in one SVG and PNG figure.
    Plot(commands::plot::PlotArgs),
    /// Run a grid of `train` runs from a TOML spec, here or as a Slurm job array.
    Sweep(commands::sweep::SweepArgs),
    /// Gather the runs of a folder (a sweep's, or any) into one table and one figure.
    Report(commands::report::ReportArgs),
    /// Benchmarks: GEMM throughput, round trip, RC's realised speedup against its ideal.
    Bench(commands::bench::BenchArgs),
    /// The built-in demo: RC against end-of-sequence training on noise-vs-signal.
    Demo(commands::demo::DemoArgs),
    /// Show the GPU adapter rankcode would use, its limits and features.
    Info,
}

fn main() -> ExitCode {
    quiet_device_select_layer();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let matches = Cli::command()
        .mut_subcommand("train", commands::train::with_task_defaults)
        .get_matches();
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    if let (Some(Command::Train(args)), Some(train)) =
        (&mut cli.command, matches.subcommand_matches("train"))
    {
        args.record_given_flags(train);
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The whole chain of causes on one line each; no backtrace for users.
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        None => commands::demo::run(&commands::demo::DemoArgs::default()),
        Some(Command::Train(args)) => commands::train::run(&args),
        Some(Command::Eval(args)) => commands::eval::run(&args),
        Some(Command::Classify(args)) => commands::classify::run(&args),
        Some(Command::Ensemble(args)) => commands::ensemble::run(&args),
        Some(Command::Plot(args)) => commands::plot::run(&args),
        Some(Command::Sweep(args)) => commands::sweep::run(&args),
        Some(Command::Report(args)) => commands::report::run(&args),
        Some(Command::Bench(args)) => commands::bench::run(&args),
        Some(Command::Demo(args)) => commands::demo::run(&args),
        Some(Command::Info) => commands::info::run(),
    }
}

/// Mesa's device-select Vulkan layer looks for a Wayland display and, on a machine
/// without a session (CI, a container, ssh), prints "error: XDG_RUNTIME_DIR is invalid
/// or not set in the environment." four times before anything else. rankcode picks its
/// adapter itself, so there the layer is switched off (`NODEVICE_SELECT=1`, Mesa's own
/// switch), unless the user has set it either way.
fn quiet_device_select_layer() {
    if std::env::var_os("XDG_RUNTIME_DIR").is_none()
        && std::env::var_os("NODEVICE_SELECT").is_none()
    {
        // SAFETY: the first thing main does, before any other thread exists.
        unsafe { std::env::set_var("NODEVICE_SELECT", "1") };
    }
}
