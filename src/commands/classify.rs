//! `rankcode classify`: spoken-word recognition of WAV files with a trained audio model,
//! deciding at the first spike as the audio arrives.

use anyhow::{Context, Result, bail};
use clap::Args;
use rankcode::classify::{Classification, classify};
use rankcode::data::wav::{self, Audio};
use rankcode::gpu::GpuContext;
use rankcode::run::directory::FEATURES_FILE;
use rankcode::run::features::load_feature_spec;
use rankcode::run::inference::load_for_inference;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Args, Debug)]
pub struct ClassifyArgs {
    /// A run directory of an audio task (fsdd, speech-commands, speech-commands-12).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Spike threshold (default: the one the run was trained with or, for a finished run
    /// made with `train --select-max-decision-step`, the one it chose: see test.json).
    #[arg(long)]
    pub theta: Option<f32>,
    /// Print one JSON object per file, one per line.
    #[arg(long)]
    pub json: bool,
    /// WAV files to classify; `-` reads one WAV from standard input.
    #[arg(required = true, value_name = "FILE.wav")]
    pub files: Vec<PathBuf>,
}

#[derive(Serialize)]
struct Output<'a> {
    file: &'a Path,
    #[serde(flatten)]
    decision: &'a Classification,
}

/// A file (or `-`, standard input) at `rate` Hz.
fn read_input(path: &Path, rate: u32) -> rankcode::error::Result<Audio> {
    if path == Path::new("-") {
        let stdin = std::io::stdin().lock();
        return wav::read_wav_stream(stdin, Path::new("<stdin>"), rate);
    }
    wav::load_wav(path, rate)
}

pub fn run(args: &ClassifyArgs) -> Result<()> {
    if args.files.iter().filter(|f| f.as_os_str() == "-").count() > 1 {
        bail!("standard input ('-') can be read only once");
    }
    let spec = load_feature_spec(&args.checkpoint)?;
    let ctx = Arc::new(GpuContext::new()?);
    let (cfg, mut engine, theta) = load_for_inference(ctx, &args.checkpoint, args.theta)?;
    if spec.frontend != cfg.frontend || spec.classes.len() != cfg.model.classes {
        bail!(
            "{}: does not fit the run's config.json (another front end or class count)",
            args.checkpoint.join(FEATURES_FILE).display()
        );
    }
    // A file that cannot be read is reported and skipped; the others are classified.
    let mut files = Vec::new();
    let mut recordings = Vec::new();
    for file in &args.files {
        match read_input(file, spec.frontend.sample_rate) {
            Ok(audio) => {
                files.push(file);
                recordings.push(audio);
            }
            Err(e) => eprintln!("error: {}", rankcode::error::full_message(&e)),
        }
    }
    let unread = args.files.len() - files.len();
    let decisions = classify(
        &mut engine,
        &spec,
        cfg.model.readout,
        theta,
        cfg.batch,
        &recordings,
    )
    .with_context(|| format!("classifying with {}", args.checkpoint.display()))?;
    let clip_ms = spec.frontend.clip_ms as f32;
    for (file, d) in files.into_iter().zip(&decisions) {
        if d.audio_ms > clip_ms {
            eprintln!(
                "note: {} is {:.0} ms long; the model reads its first {clip_ms:.0} ms only",
                file.display(),
                d.audio_ms
            );
        }
        if args.json {
            let out = Output { file, decision: d };
            println!("{}", serde_json::to_string(&out)?);
        } else {
            let when = if d.fired {
                let after_onset = d
                    .decision_after_onset_ms
                    .map(|ms| format!(", {ms:.0} ms after the speech onset"))
                    .unwrap_or_default();
                format!("spike at {:.0} ms{after_onset}", d.decision_ms)
            } else {
                format!(
                    "no spike: decided at the clip's end, {:.0} ms",
                    d.decision_ms
                )
            };
            let past = if d.decision_ms > d.audio_ms {
                " (after the audio, read on as silence)"
            } else {
                ""
            };
            println!(
                "{}: {} (score {:.3}, {when}{past}; the audio is {:.0} ms)",
                file.display(),
                d.label,
                d.score,
                d.audio_ms
            );
        }
    }
    let past_audio = decisions
        .iter()
        .filter(|d| d.decision_ms > d.audio_ms)
        .count();
    if past_audio > 0 && decisions.len() > 1 {
        eprintln!(
            "note: {past_audio} of {} decisions came after their recording's audio had ended",
            decisions.len()
        );
    }
    if unread > 0 {
        bail!("{unread} of {} inputs could not be read", args.files.len());
    }
    Ok(())
}
