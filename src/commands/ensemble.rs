//! `rankcode ensemble`: trained runs joined into one model that averages their logits.

use anyhow::Result;
use clap::Args;
use rankcode::run::ensemble::write_ensemble;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct EnsembleArgs {
    /// Run directories written by `rankcode train` (two or more), of one task and of the
    /// same input size, depth, classes and readout; their widths may differ.
    #[arg(required = true, num_args = 2..)]
    pub runs: Vec<PathBuf>,
    /// The new run directory to write the ensemble into.
    #[arg(long)]
    pub out: PathBuf,
    /// The threshold the ensemble runs at by default (default: the runs' own, when they
    /// agree on one). Choose it on validation: `eval --split val --theta-sweep`.
    #[arg(long)]
    pub theta: Option<f32>,
}

pub fn run(args: &EnsembleArgs) -> Result<()> {
    let cfg = write_ensemble(&args.runs, &args.out, args.theta)?;
    println!(
        "wrote {}: {} runs as one model of {} units a layer ({} layer{}), averaging their logits, at theta {}",
        args.out.display(),
        args.runs.len(),
        cfg.model.hidden_size,
        cfg.model.layers,
        if cfg.model.layers == 1 { "" } else { "s" },
        cfg.rc.theta
    );
    Ok(())
}
