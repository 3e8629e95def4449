//! rankcode: train and run rank-coded LSTMs on the GPU.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

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
    /// The built-in demo: RC against end-of-sequence training on noise-vs-signal.
    Demo(commands::demo::DemoArgs),
    /// Show the GPU adapter rankcode would use, its limits and features.
    Info,
}

fn main() -> Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = Cli::parse();
    match cli.command {
        None => commands::demo::run(&commands::demo::DemoArgs::default()),
        Some(Command::Demo(args)) => commands::demo::run(&args),
        Some(Command::Info) => commands::info::run(),
    }
    .context("rankcode failed")
}
