//! `rankcode bench`: throughput, round trip and RC's realised speedup, per task shape.

use anyhow::{Context, Result, bail};
use clap::Args;
use rankcode::bench::peers::{self, PeerFigures};
use rankcode::bench::{self, ConfigReport, GemmCeiling, Preset, TrainingBatchProfile};
use rankcode::gpu::GpuContext;
use serde::Serialize;
use std::sync::Arc;
use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchConfig {
    Toy,
    Mnist,
    Speech,
    /// toy, mnist and speech.
    All,
    /// The workloads of ../shared/peers (PyTorch and burn), line for line: full-length
    /// and RC training seq/s.
    Peers,
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Which task shapes to measure.
    #[arg(long, value_enum, default_value = "toy")]
    pub config: BenchConfig,
    /// Hidden units of every shape measured, instead of its own (125 for toy and mnist,
    /// 256 for speech): to measure the model you train.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub hidden: Option<u32>,
    /// Sequences per batch of every shape measured, instead of its own (128 for toy,
    /// 256 for mnist and speech).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch: Option<u32>,
    /// Timed repetitions of each measurement (the median is reported).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub reps: u32,
    /// Instead of the throughput figures, time every dispatch of `--reps` RC training
    /// batches with timestamp queries and print the GPU time per kernel.
    #[arg(long)]
    pub profile: bool,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct BenchOutput {
    adapter: String,
    reps: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    gemm_ceiling: Option<GemmCeiling>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    configs: Vec<ConfigReport>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    profiles: Vec<PresetProfile>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    peers: Vec<PeerFigures>,
}

#[derive(Serialize)]
struct PresetProfile {
    preset: Preset,
    #[serde(flatten)]
    training_batch: TrainingBatchProfile,
}

pub fn run(args: &BenchArgs) -> Result<()> {
    if args.config == BenchConfig::Peers {
        return run_peers(args);
    }
    let wanted = |name: &str| match args.config {
        BenchConfig::All => true,
        BenchConfig::Toy => name == "toy",
        BenchConfig::Mnist => name == "mnist",
        BenchConfig::Speech => name == "speech",
        BenchConfig::Peers => false,
    };
    let mut presets: Vec<Preset> = bench::presets()
        .into_iter()
        .filter(|p| wanted(p.name))
        .collect();
    // The sizes given are checked before anything is allocated for them.
    for preset in &mut presets {
        if let Some(hidden) = args.hidden {
            preset.model.hidden_size = hidden as usize;
        }
        if let Some(batch) = args.batch {
            preset.batch = batch as usize;
        }
        preset
            .validate()
            .with_context(|| format!("the {} shape", preset.name))?;
    }
    let ctx = Arc::new(GpuContext::new()?);
    if !args.json {
        println!(
            "rankcode bench on {} ({} reps, medians)",
            ctx.adapter_summary(),
            args.reps
        );
    }
    // The best our GEMM shaders reach, once for the run: not with --profile, which
    // measures training batches only.
    let gemm_ceiling = (!args.profile)
        .then(|| bench::gemm_ceiling(&ctx))
        .transpose()?;
    if let (Some(c), false) = (&gemm_ceiling, args.json) {
        println!(
            "GEMM ceiling [{n} x {n}] x [{n} x {n}]: {:.2} GFLOP/s (tiled_gemm {:.2}, the \
             engine's dense_gemm {:.2})",
            c.gemm_ceiling_gflops,
            c.tiled_gemm_gflops,
            c.dense_gemm_gflops,
            n = c.size
        );
    }
    let (mut configs, mut profiles) = (Vec::new(), Vec::new());
    for preset in presets {
        let reps = args.reps as usize;
        if args.profile {
            let batch = bench::preset_batch(&preset);
            let p = bench::profile_training_batch(&ctx, &preset, &batch, reps)?;
            if !args.json {
                print_heading(&preset, None);
                println!(
                    "  every dispatch of {} RC training batches (readback every step, \
                     clipping, Adam):",
                    p.batches
                );
                for line in p.work.table().lines() {
                    println!("  {line}");
                }
            }
            profiles.push(PresetProfile {
                preset,
                training_batch: p,
            });
            continue;
        }
        if ctx.is_software() && preset.name == "speech" && !args.json {
            eprintln!(
                "  The speech shape (batch {}, {} steps, hidden {}) takes 10 minutes or more on a \
                 2-core software adapter; --batch 32 gives a quicker look.",
                preset.batch, preset.steps, preset.model.hidden_size
            );
        }
        let start = Instant::now();
        let name = preset.name;
        let r = bench::bench_preset(&ctx, &preset, reps, &mut |part| {
            eprintln!(
                "  [{name}, {:>4.0} s] {part}",
                start.elapsed().as_secs_f64()
            );
        })?;
        if !args.json {
            print_report(&r);
        }
        configs.push(r);
    }
    if args.json {
        let out = BenchOutput {
            adapter: ctx.adapter_summary(),
            reps: args.reps,
            gemm_ceiling,
            configs,
            profiles,
            peers: Vec::new(),
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    Ok(())
}

/// `bench --config peers`: the peers' workloads, their shapes fixed.
fn run_peers(args: &BenchArgs) -> Result<()> {
    if args.hidden.is_some() || args.batch.is_some() || args.profile {
        bail!(
            "--config peers runs the peers' own shapes: --hidden, --batch and --profile do not apply"
        );
    }
    let ctx = Arc::new(GpuContext::new()?);
    let pairs = (args.reps as usize).max(5);
    if !args.json {
        println!(
            "rankcode bench --config peers on {} (median of {pairs} back-to-back pairs of \
             training batches, Adam included)",
            ctx.adapter_summary()
        );
    }
    let start = Instant::now();
    let mut figures = Vec::new();
    for workload in peers::workloads() {
        let f = peers::bench_workload(&ctx, &workload, pairs, &mut |part| {
            eprintln!("  [{:>4.0} s] {part}", start.elapsed().as_secs_f64());
        })?;
        if !args.json {
            let m = &f.preset.model;
            println!(
                "{}: {} -> {} -> {}, batch {}, T {}, {} inputs; decisions uniform in 0..={} \
                 (mean {:.2} steps computed, ideal {:.2}x)",
                f.preset.name,
                m.input_size,
                m.hidden_size,
                m.classes,
                f.preset.batch,
                f.preset.steps,
                if f.preset.sparse {
                    "sparse-event"
                } else {
                    "dense"
                },
                2 * f.preset.steps / 3,
                f.mean_decision_step,
                f.ideal_speedup
            );
            println!(
                "  full-length training (the peers' full and eos): {:.1} seq/s ({:.2} GFLOP/s)",
                f.full_seq_per_s, f.full_gflops
            );
            println!(
                "  RC training (the peers' cellshrink):             {:.1} seq/s: {:.2}x full \
                 length, {:.0}% of the ideal",
                f.rc_seq_per_s,
                f.realised_speedup,
                100.0 * f.efficiency
            );
        }
        figures.push(f);
    }
    if args.json {
        let out = BenchOutput {
            adapter: ctx.adapter_summary(),
            reps: args.reps,
            gemm_ceiling: None,
            configs: Vec::new(),
            profiles: Vec::new(),
            peers: figures,
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    Ok(())
}

/// The preset's line: its shape, and the workspace's memory where measured.
fn print_heading(p: &Preset, memory_bytes: Option<u64>) {
    let m = &p.model;
    println!(
        "\n{}: LSTM {} -> {} -> {}, batch {}, {} steps{}",
        p.name,
        m.input_size,
        m.hidden_size,
        m.classes,
        p.batch,
        p.steps,
        memory_bytes
            .map(|b| format!("; workspace {:.1} MiB", b as f64 / (1 << 20) as f64))
            .unwrap_or_default()
    );
}

fn print_report(r: &ConfigReport) {
    let p = &r.preset;
    print_heading(p, Some(r.memory_bytes));
    let g = &r.gemm;
    println!(
        "  step GEMM and cell [{} x {}] x [{} x {}]: {:.2} GFLOP/s, plain GEMM {:.2} GFLOP/s \
         ({:.0}%), tiled_gemm {:.2} GFLOP/s",
        g.m,
        g.k,
        g.k,
        g.n,
        g.step_gemm_gflops,
        g.dense_gemm_gflops,
        100.0 * g.ratio,
        g.tiled_gemm_gflops
    );
    let backward: Vec<String> = g
        .backward
        .iter()
        .map(|f| format!("{} {:.2}", f.form, f.gflops))
        .collect();
    println!(
        "  backward GEMMs, full-length batch (GFLOP/s; dh with the cell backward): {}",
        backward.join(", ")
    );
    let by_rows: Vec<String> = r
        .gate_gemm_by_live_rows
        .iter()
        .map(|f| format!("{}: {:.2}", f.rows, f.gate_gemm_ms))
        .collect();
    println!(
        "  gate GEMM and cell at step 1 by live rows (ms a layer step): {}",
        by_rows.join(", ")
    );
    println!(
        "  forward {:.0} seq/s, forward+backward {:.0} seq/s (full length), Adam {:.2} ms",
        r.forward_seq_per_s, r.train_seq_per_s, r.adam_ms
    );
    println!(
        "  round trip {:.3} ms against a forward step of {:.3} ms ({:.1}% of a step)",
        r.round_trip_ms,
        r.forward_step_ms,
        100.0 * r.round_trip_share
    );
    let c = &r.rc_vs_eos;
    println!(
        "  RC vs end-of-sequence: mean decision step {:.2}/{}, ideal speedup {:.2}x, realised {:.2}x \
         ({:.3}s vs {:.3}s per batch): {:.0}% of ideal (single pairs {:.0}-{:.0}%)",
        c.mean_decision_step,
        p.steps,
        c.ideal_speedup,
        c.realised_speedup,
        c.rc_batch_s,
        c.eos_batch_s,
        100.0 * c.efficiency,
        100.0 * c.efficiency_range[0],
        100.0 * c.efficiency_range[1]
    );
    for (name, f) in [
        ("an RC", &c.rc_pipeline),
        ("an end-of-sequence", &c.eos_pipeline),
    ] {
        let busy = f
            .busy
            .map_or("no timestamp queries on this adapter".into(), |b| {
                format!(
                    "GPU busy {:.3} of {:.3} s ({:.0}%, a profiled batch)",
                    b.gpu_s,
                    b.wall_s,
                    100.0 * b.share()
                )
            });
        // Never one dispatch or one submit: the loss and the last readback take two.
        println!(
            "  {name} batch: {} dispatches, {} submits, {}; {busy}",
            f.dispatches,
            f.submits,
            rankcode::words::count(f.readbacks, "readback")
        );
    }
    let cad: Vec<String> = r
        .cadence
        .iter()
        .map(|k| {
            format!(
                "K={}{}: {:.3}s ({} readbacks)",
                k.readback_every,
                if k.overlap_readback {
                    " overlapped"
                } else {
                    ""
                },
                k.rc_batch_s,
                k.readbacks
            )
        })
        .collect();
    println!("  readback cadence: {}", cad.join(", "));
}
