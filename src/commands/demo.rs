//! The built-in demo (`rankcode` with no command): trains the same LSTM twice on
//! noise-vs-signal, with rank coding and with end-of-sequence loss, and compares
//! accuracy, decision time and compute on held-out data.

use anyhow::Result;
use clap::Parser;
use rankcode::data::toy;
use rankcode::engine::{Capacity, Engine, EngineConfig};
use rankcode::gpu::GpuContext;
use rankcode::model::{AdamConfig, ModelConfig, RcConfig, Readout, TrainMode, init_params};
use rankcode::rng::Rng;
use rankcode::train::{self, EvalReport};
use serde::Serialize;
use std::sync::Arc;
use std::time::Instant;

/// Settings of the demo; the defaults finish in minutes on a software adapter.
#[derive(Parser, Debug, Clone)]
pub struct DemoArgs {
    /// Training epochs for each model.
    #[arg(long, default_value_t = 8, value_parser = at_least_one())]
    pub epochs: usize,
    /// Training sequences.
    #[arg(long, default_value_t = 2048, value_parser = at_least_one())]
    pub train_size: usize,
    /// Held-out test sequences.
    #[arg(long, default_value_t = 2048, value_parser = at_least_one())]
    pub test_size: usize,
    /// LSTM hidden units.
    #[arg(long, default_value_t = 32)]
    pub hidden: usize,
    /// Sequences per batch.
    #[arg(long, default_value_t = 128)]
    pub batch: usize,
    /// Spike threshold.
    #[arg(long, default_value_t = 0.95)]
    pub theta: f32,
    /// Entropy weight of the RC loss.
    #[arg(long, default_value_t = 0.0)]
    pub beta: f32,
    /// Adam learning rate.
    #[arg(long, default_value_t = 1e-2)]
    pub lr: f32,
    /// Seed of data, initial weights and batch order.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print one JSON object instead of the report.
    #[arg(long)]
    pub json: bool,
}

/// A count of 1 or more: with none of them there would be nothing to train or to
/// report on.
fn at_least_one() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::new().range(1..)
}

impl Default for DemoArgs {
    fn default() -> Self {
        DemoArgs::parse_from(["demo"])
    }
}

#[derive(Serialize)]
struct ModelResult {
    mode: TrainMode,
    train_wall_s: f64,
    train_steps_processed: usize,
    test: EvalReport,
}

#[derive(Serialize)]
struct DemoResult {
    adapter: String,
    task: &'static str,
    hidden: usize,
    epochs: usize,
    rc: ModelResult,
    eos: ModelResult,
}

fn train_one(ctx: &Arc<GpuContext>, args: &DemoArgs, mode: TrainMode) -> Result<ModelResult> {
    let model = ModelConfig {
        input_size: 1,
        hidden_size: args.hidden,
        layers: 1,
        classes: 2,
        readout: Readout::Sigmoid,
    };
    let rc = RcConfig {
        theta: args.theta,
        beta: args.beta,
        mode,
    };
    let cfg = EngineConfig {
        model,
        rc,
        adam: AdamConfig {
            lr: args.lr,
            ..AdamConfig::default()
        },
        capacity: Capacity {
            batch: args.batch,
            steps: toy::NOISE_STEPS,
        },
        readback_every: 1,
        sparse_input: false,
        recurrent_block: 0,
    };
    let train_data = toy::noise_vs_signal(args.train_size, args.seed);
    let test_data = toy::noise_vs_signal(args.test_size, args.seed.wrapping_add(1_000_003));
    let mut engine = Engine::new(ctx.clone(), cfg, &init_params(&model, args.seed))?;
    let mut rng = Rng::new(args.seed);
    let start = Instant::now();
    let mut steps = 0;
    for epoch in 1..=args.epochs {
        let e = train::train_epoch(
            &mut engine,
            &train_data,
            args.batch,
            epoch,
            &mut rng,
            |_| {},
        )?;
        steps += e.steps_processed;
        log::info!("{mode:?} epoch {epoch}: {e:?}");
        if !args.json {
            eprintln!(
                "  {:>3} epoch {epoch:>2}/{}: loss {:.4}  accuracy {:.3}  mean decision step {:.1}/{}  ({:.1}s)",
                format!("{mode:?}").to_uppercase(),
                args.epochs,
                e.train_loss,
                e.train_accuracy,
                e.train_mean_decision_step,
                toy::NOISE_STEPS,
                e.wall_s
            );
        }
    }
    let train_wall_s = start.elapsed().as_secs_f64();
    // Both models are evaluated with the rank-coding rule (for the end-of-sequence
    // model this is "non-RC early inference"), and with a full pass for T-1 accuracy.
    engine.set_rc(RcConfig {
        mode: TrainMode::Rc,
        ..rc
    })?;
    let test = train::evaluate(&mut engine, &test_data, args.batch, true)?;
    Ok(ModelResult {
        mode,
        train_wall_s,
        train_steps_processed: steps,
        test,
    })
}

pub fn run(args: &DemoArgs) -> Result<()> {
    let ctx = Arc::new(GpuContext::new()?);
    if !args.json {
        println!(
            "rankcode demo: noise-vs-signal (T = {}), adapter {}",
            toy::NOISE_STEPS,
            ctx.adapter_summary()
        );
        println!(
            "  LSTM 1 -> {} -> 2 sigmoid units, theta {}, beta {}, {} of {} sequences",
            args.hidden,
            args.theta,
            args.beta,
            rankcode::words::count(args.epochs, "epoch"),
            args.train_size
        );
    }
    let rc = train_one(&ctx, args, TrainMode::Rc)?;
    let eos = train_one(&ctx, args, TrainMode::Eos)?;
    let result = DemoResult {
        adapter: ctx.adapter_summary(),
        task: "noise-vs-signal",
        hidden: args.hidden,
        epochs: args.epochs,
        rc,
        eos,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
        return Ok(());
    }
    let t = toy::NOISE_STEPS;
    println!();
    println!(
        "test set ({} sequences)        RC-trained   end-of-sequence-trained",
        args.test_size
    );
    let row = |name: &str, f: &dyn Fn(&ModelResult) -> String| {
        println!(
            "  {name:<30} {:>10}   {:>10}",
            f(&result.rc),
            f(&result.eos)
        );
    };
    row("accuracy at decision", &|m| {
        format!("{:.2}%", 100.0 * m.test.accuracy)
    });
    row("mean steps to decision (t*+1)", &|m| {
        format!("{:.1}/{t}", m.test.mean_decision_step)
    });
    row("not fired", &|m| {
        format!("{:.1}%", 100.0 * m.test.not_fired)
    });
    row("accuracy at T-1 (full pass)", &|m| {
        format!("{:.2}%", 100.0 * m.test.eos_accuracy.unwrap_or(f64::NAN))
    });
    row("inference compute saved", &|m| {
        format!(
            "{:.0}%",
            100.0 * (1.0 - m.test.steps_processed as f64 / m.test.steps_full as f64)
        )
    });
    row("training steps processed", &|m| {
        m.train_steps_processed.to_string()
    });
    row("training wall time", &|m| format!("{:.1}s", m.train_wall_s));
    println!(
        "\nRC training computed {:.0}% of the steps of end-of-sequence training, in {:.0}% of its wall time.",
        100.0 * result.rc.train_steps_processed as f64 / result.eos.train_steps_processed as f64,
        100.0 * result.rc.train_wall_s / result.eos.train_wall_s
    );
    Ok(())
}
