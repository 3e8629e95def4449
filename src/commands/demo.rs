//! The built-in demo (`rankcode` with no command): trains the same LSTM twice on
//! noise-vs-signal, with rank coding and with end-of-sequence loss, and compares
//! them where the method makes its claim: accuracy at matched mean decision times
//! (each model's threshold chosen on validation for each budget), beside the
//! Bayes-optimal policy's accuracy at the same budgets, and the training compute each
//! model took (docs/design.md, "Tasks" and "The decision rule").

use anyhow::Result;
use clap::Parser;
use rankcode::bayes;
use rankcode::data::Dataset;
use rankcode::data::task::{Split, toy_split};
use rankcode::data::toy;
use rankcode::engine::{Capacity, Engine, EngineConfig};
use rankcode::epoch::{self, EvalReport, SweepPoint};
use rankcode::gpu::GpuContext;
use rankcode::model::{AdamConfig, ModelConfig, RcConfig, Readout, TrainMode, init_params};
use rankcode::plot::{self, Curve, StepAxis};
use rankcode::rng::Rng;
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// Settings of the demo; the defaults finish in minutes on a software adapter.
#[derive(Parser, Debug, Clone)]
pub struct DemoArgs {
    /// Training epochs for each model.
    #[arg(long, default_value_t = 10, value_parser = at_least_one())]
    pub epochs: usize,
    /// Training sequences.
    #[arg(long, default_value_t = 4096, value_parser = at_least_one())]
    pub train_size: usize,
    /// Validation sequences: the thresholds are chosen on them.
    #[arg(long, default_value_t = toy_split(Split::Val).0, value_parser = at_least_one())]
    pub val_size: usize,
    /// Held-out test sequences.
    #[arg(long, default_value_t = toy_split(Split::Test).0, value_parser = at_least_one())]
    pub test_size: usize,
    /// LSTM hidden units.
    #[arg(long, default_value_t = 32)]
    pub hidden: usize,
    /// Sequences per batch.
    #[arg(long, default_value_t = 128)]
    pub batch: usize,
    /// Spike threshold of rank-coding training.
    #[arg(long, default_value_t = 0.93)]
    pub theta: f32,
    /// Entropy weight of the RC loss.
    #[arg(long, default_value_t = 0.0)]
    pub beta: f32,
    /// Adam learning rate.
    #[arg(long, default_value_t = 1e-2)]
    pub lr: f32,
    /// Mean decision steps (of 40) at which the models are compared.
    #[arg(long, value_delimiter = ',', default_values_t = [5.0, 10.0, 15.0, 20.0])]
    pub budgets: Vec<f64>,
    /// Where the figure goes: PATH.svg and PATH.png.
    #[arg(long, default_value = "runs/demo/trade-off")]
    pub figure: PathBuf,
    /// Seed of the training data, initial weights and batch order.
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

/// The thresholds swept on validation and test: 0.50 to 0.99 in steps of 0.01, then
/// finer towards 1, where the last steps' decisions lie.
fn sweep_thetas() -> Vec<f32> {
    (50..100)
        .map(|i| i as f32 / 100.0)
        .chain([0.992, 0.995, 0.998, 0.999])
        .collect()
}

/// One policy's threshold chosen on validation for a budget, and what it gives on test.
#[derive(Serialize, Clone, Copy)]
struct AtBudget {
    budget: f64,
    val: SweepPoint,
    test: SweepPoint,
}

/// A policy's threshold sweeps, and its choice for each budget (`None`: it cannot
/// decide that early on average at any swept threshold).
#[derive(Serialize)]
struct Sweeps {
    val: Vec<SweepPoint>,
    test: Vec<SweepPoint>,
    budgets: Vec<Option<AtBudget>>,
}

impl Sweeps {
    fn new(val: Vec<SweepPoint>, test: Vec<SweepPoint>, budgets: &[f64]) -> Self {
        let budgets = budgets
            .iter()
            .map(|&budget| {
                let chosen = epoch::best_within(&val, budget)?;
                let test = *test.iter().find(|p| p.theta == chosen.theta)?;
                Some(AtBudget {
                    budget,
                    val: chosen,
                    test,
                })
            })
            .collect();
        Sweeps { val, test, budgets }
    }

    fn curve(&self, label: &str) -> Curve {
        let points = self
            .test
            .iter()
            .map(|p| (p.mean_decision_step, p.accuracy))
            .collect();
        Curve::new(label, points)
    }
}

#[derive(Serialize)]
struct ModelResult {
    mode: TrainMode,
    train_wall_s: f64,
    train_steps_processed: usize,
    /// Test at the training threshold, with the accuracy at T-1.
    test: EvalReport,
    sweeps: Sweeps,
}

#[derive(Serialize)]
struct BayesResult {
    last_step_accuracy: f64,
    sweeps: Sweeps,
}

#[derive(Serialize)]
struct DemoResult {
    adapter: String,
    task: &'static str,
    hidden: usize,
    epochs: usize,
    val_sequences: usize,
    test_sequences: usize,
    rc: ModelResult,
    eos: ModelResult,
    bayes: BayesResult,
    figure: [PathBuf; 2],
    verdict: String,
}

/// The validation and test sets: the task's own (the same sequences as `rankcode train
/// --task noise-vs-signal` and docs/results.md) when of its sizes.
struct HeldOut {
    val: Dataset,
    test: Dataset,
}

impl HeldOut {
    fn new(args: &DemoArgs) -> Self {
        let split = |split, n| toy::noise_vs_signal(n, toy_split(split).1);
        HeldOut {
            val: split(Split::Val, args.val_size),
            test: split(Split::Test, args.test_size),
        }
    }
}

fn train_one(
    ctx: &Arc<GpuContext>,
    args: &DemoArgs,
    held_out: &HeldOut,
    mode: TrainMode,
) -> Result<ModelResult> {
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
        loss_from_step: None,
    };
    let cfg = EngineConfig::new(
        model,
        Capacity {
            batch: args.batch,
            steps: toy::NOISE_STEPS,
        },
    )
    .with_rc(rc)
    .with_adam(AdamConfig {
        lr: args.lr,
        ..AdamConfig::default()
    });
    // The training data's seed is apart from the fixed seeds of validation and test.
    let train_data = toy::noise_vs_signal(args.train_size, args.seed.wrapping_add(1_000_003));
    let mut engine = Engine::new(ctx.clone(), cfg, &init_params(&model, args.seed))?;
    let mut rng = Rng::new(args.seed);
    let start = Instant::now();
    let mut steps = 0;
    for epoch in 1..=args.epochs {
        let e = epoch::train_epoch(
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
    let test = epoch::evaluate(&mut engine, &held_out.test, args.batch, true)?;
    let thetas = sweep_thetas();
    let val_sweep = epoch::theta_sweep(&mut engine, &held_out.val, args.batch, &thetas)?;
    let test_sweep = epoch::theta_sweep(&mut engine, &held_out.test, args.batch, &thetas)?;
    Ok(ModelResult {
        mode,
        train_wall_s,
        train_steps_processed: steps,
        test,
        sweeps: Sweeps::new(val_sweep, test_sweep, &args.budgets),
    })
}

fn bayes_policy(args: &DemoArgs, held_out: &HeldOut) -> BayesResult {
    let thetas = sweep_thetas();
    let sweep = |data: &Dataset| {
        let posteriors = bayes::posteriors(data);
        let points = bayes::sweep(&posteriors, &data.labels, &thetas);
        (points, bayes::last_step_accuracy(&posteriors, &data.labels))
    };
    let (val, _) = sweep(&held_out.val);
    let (test, last_step_accuracy) = sweep(&held_out.test);
    BayesResult {
        last_step_accuracy,
        sweeps: Sweeps::new(val, test, &args.budgets),
    }
}

pub fn run(args: &DemoArgs) -> Result<()> {
    let ctx = Arc::new(GpuContext::new()?);
    let t = toy::NOISE_STEPS;
    if !args.json {
        println!(
            "rankcode demo: noise-vs-signal (T = {t}), adapter {}",
            ctx.adapter_summary()
        );
        println!(
            "  LSTM 1 -> {} -> 2 sigmoid units, trained twice ({}, {} sequences): with rank \
             coding at theta {} (beta {}), and with the loss at the last step",
            args.hidden,
            rankcode::words::count(args.epochs, "epoch"),
            args.train_size,
            args.theta,
            args.beta,
        );
    }
    let held_out = HeldOut::new(args);
    let rc = train_one(&ctx, args, &held_out, TrainMode::Rc)?;
    let eos = train_one(&ctx, args, &held_out, TrainMode::Eos)?;
    let bayes = bayes_policy(args, &held_out);
    let curves = [
        rc.sweeps.curve("RC-trained"),
        eos.sweeps.curve("end-of-sequence-trained"),
        bayes.sweeps.curve("Bayes-optimal policy"),
    ];
    if let Some(dir) = args.figure.parent() {
        std::fs::create_dir_all(dir).map_err(|e| rankcode::Error::file_caused(dir, "", e))?;
    }
    let (svg, png) = plot::write_figure(
        &args.figure,
        "noise-vs-signal, test split: accuracy against mean decision step",
        StepAxis::Task(t),
        &curves,
    )?;
    let verdict = verdict(
        &rc.sweeps.budgets,
        &eos.sweeps.budgets,
        &bayes.sweeps.budgets,
        args.test_size,
        rc.train_steps_processed as f64 / eos.train_steps_processed as f64,
        rc.train_wall_s / eos.train_wall_s,
    );
    let result = DemoResult {
        adapter: ctx.adapter_summary(),
        task: "noise-vs-signal",
        hidden: args.hidden,
        epochs: args.epochs,
        val_sequences: args.val_size,
        test_sequences: args.test_size,
        rc,
        eos,
        bayes,
        figure: [svg, png],
        verdict,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        print_report(&result, &curves);
    }
    Ok(())
}

fn print_report(r: &DemoResult, curves: &[Curve]) {
    let t = toy::NOISE_STEPS;
    println!(
        "\nTest split ({} sequences): accuracy at the mean decision step it reached, with each \
         threshold θ chosen on validation ({} sequences) as the most accurate within the budget:",
        r.test_sequences, r.val_sequences
    );
    println!(
        "  {:<24} {:>26}   {:>26}   {:>26}",
        "mean decision step", "RC-trained", "end-of-sequence-trained", "Bayes-optimal policy"
    );
    let cell = |b: &Option<AtBudget>| match b {
        Some(b) => format!(
            "{:.2}% at {:.1} (θ {:.3})",
            100.0 * b.test.accuracy,
            b.test.mean_decision_step,
            b.test.theta
        ),
        None => "cannot decide so early".to_string(),
    };
    let budgets = r.rc.sweeps.budgets.iter().zip(&r.eos.sweeps.budgets);
    for (i, (rc, eos)) in budgets.enumerate() {
        let bayes = &r.bayes.sweeps.budgets[i];
        let budget = rc.or(*eos).or(*bayes).map(|b| b.budget).unwrap_or(f64::NAN);
        println!(
            "  {:<24} {:>26}   {:>26}   {:>26}",
            format!("at most {budget}"),
            cell(rc),
            cell(eos),
            cell(bayes)
        );
    }
    println!(
        "  {:<24} {:>26}   {:>26}   {:>26}",
        format!("all {t} steps"),
        format!("{:.2}%", 100.0 * r.rc.test.eos_accuracy.unwrap_or(f64::NAN)),
        format!(
            "{:.2}%",
            100.0 * r.eos.test.eos_accuracy.unwrap_or(f64::NAN)
        ),
        format!("{:.2}%", 100.0 * r.bayes.last_step_accuracy),
    );
    println!(
        "  {:<24} {:>26}   {:>26}",
        "training steps computed",
        format!(
            "{} ({:.0}%)",
            r.rc.train_steps_processed,
            100.0 * r.rc.train_steps_processed as f64 / r.eos.train_steps_processed as f64
        ),
        r.eos.train_steps_processed
    );
    println!(
        "  {:<24} {:>26}   {:>26}",
        "training wall time",
        format!("{:.1} s", r.rc.train_wall_s),
        format!("{:.1} s", r.eos.train_wall_s)
    );
    println!("\nAccuracy against mean decision step on test, every swept threshold:\n");
    print!(
        "{}",
        plot::accuracy_vs_decision_text(curves, &['R', 'E', 'B'], t)
    );
    println!(
        "\nFigure: {} and {}",
        r.figure[0].display(),
        r.figure[1].display()
    );
    println!("\n{}", r.verdict);
}

/// Who is ahead at one budget, by more than two standard errors of the difference of
/// two accuracies measured on `n` sequences each.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Lead {
    Rc(f64),
    Eos(f64),
    Level,
    /// Only this one of the two decides within the budget ("rc" or "eos").
    OnlyOne(TrainMode),
    Neither,
}

fn lead(rc: Option<AtBudget>, eos: Option<AtBudget>, n: usize) -> Lead {
    match (rc, eos) {
        (Some(rc), Some(eos)) => {
            let (a, b) = (rc.test.accuracy, eos.test.accuracy);
            let standard_error = ((a * (1.0 - a) + b * (1.0 - b)) / n as f64).sqrt();
            let points = 100.0 * (a - b);
            if a - b > 2.0 * standard_error {
                Lead::Rc(points)
            } else if b - a > 2.0 * standard_error {
                Lead::Eos(-points)
            } else {
                Lead::Level
            }
        }
        (Some(_), None) => Lead::OnlyOne(TrainMode::Rc),
        (None, Some(_)) => Lead::OnlyOne(TrainMode::Eos),
        (None, None) => Lead::Neither,
    }
}

/// "10", "10 and 15", "10, 15 and 20".
fn list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// One sentence on what the figures show, whichever way they fall.
fn verdict(
    rc: &[Option<AtBudget>],
    eos: &[Option<AtBudget>],
    bayes: &[Option<AtBudget>],
    n: usize,
    steps_share: f64,
    wall_share: f64,
) -> String {
    let leads: Vec<(f64, Lead)> = rc
        .iter()
        .zip(eos)
        .filter_map(|(&r, &e)| {
            let budget = r.or(e)?.budget;
            Some((budget, lead(r, e, n)))
        })
        .collect();
    let budgets_where = |keep: &dyn Fn(&Lead) -> Option<String>| -> Vec<String> {
        leads
            .iter()
            .filter_map(|(b, l)| keep(l).map(|s| format!("{b}{s}")))
            .collect()
    };
    let mut parts = Vec::new();
    let rc_ahead = budgets_where(&|l| match l {
        Lead::Rc(p) => Some(format!(" steps (+{p:.1} points)")),
        _ => None,
    });
    if !rc_ahead.is_empty() {
        parts.push(format!("rank coding is ahead at {}", list(&rc_ahead)));
    }
    let eos_ahead = budgets_where(&|l| match l {
        Lead::Eos(p) => Some(format!(" steps (+{p:.1} points)")),
        _ => None,
    });
    if !eos_ahead.is_empty() {
        parts.push(format!(
            "end-of-sequence training is ahead at {}",
            list(&eos_ahead)
        ));
    }
    let level = budgets_where(&|l| (*l == Lead::Level).then(String::new));
    if !level.is_empty() {
        parts.push(format!(
            "the two are level within noise (two standard errors) at {} steps",
            list(&level)
        ));
    }
    for (mode, name) in [
        (TrainMode::Rc, "only the RC-trained model"),
        (TrainMode::Eos, "only the end-of-sequence-trained model"),
    ] {
        let only = budgets_where(&|l| (*l == Lead::OnlyOne(mode)).then(String::new));
        if !only.is_empty() {
            parts.push(format!("{name} decides within {} steps", list(&only)));
        }
    }
    let matched = if parts.is_empty() {
        "Neither model decides within the budgets asked".to_string()
    } else {
        format!("At matched decision times {}", list(&parts))
    };
    // How far the better model at each budget falls short of the Bayes-optimal policy.
    let shortfall = rc
        .iter()
        .zip(eos)
        .zip(bayes)
        .filter_map(|((&r, &e), &b)| {
            let best = [r, e]
                .iter()
                .flatten()
                .map(|m| m.test.accuracy)
                .reduce(f64::max)?;
            Some(100.0 * (b?.test.accuracy - best))
        })
        .reduce(f64::max);
    let bound = match shortfall {
        Some(gap) if gap > 0.0 => format!(
            "; the Bayes-optimal policy is at most {gap:.1} points ahead of the better of them"
        ),
        Some(_) => "; the better of them matches the Bayes-optimal policy".to_string(),
        None => String::new(),
    };
    format!(
        "{matched}{bound}; rank-coding training computed {:.0}% of the steps of \
         end-of-sequence training, in {:.0}% of its wall time.",
        100.0 * steps_share,
        100.0 * wall_share
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(budget: f64, accuracy: f64) -> Option<AtBudget> {
        let point = SweepPoint {
            theta: 0.9,
            accuracy,
            mean_decision_step: budget - 0.5,
            not_fired: 0.0,
        };
        Some(AtBudget {
            budget,
            val: point,
            test: point,
        })
    }

    #[test]
    fn the_verdict_says_who_leads_where() {
        // 4,096 sequences: two standard errors of a difference near 93% are ~1.1 points.
        let rc = [
            at(10.0, 0.93),
            at(15.0, 0.94),
            at(20.0, 0.95),
            at(25.0, 0.96),
        ];
        let eos = [at(10.0, 0.90), at(15.0, 0.945), None, at(25.0, 0.975)];
        let bayes = [
            at(10.0, 0.94),
            at(15.0, 0.95),
            at(20.0, 0.96),
            at(25.0, 0.97),
        ];
        let v = verdict(&rc, &eos, &bayes, 4096, 0.376, 0.55);
        assert_eq!(
            v,
            "At matched decision times rank coding is ahead at 10 steps (+3.0 points), \
             end-of-sequence training is ahead at 25 steps (+1.5 points), the two are \
             level within noise (two standard errors) at 15 steps and only the RC-trained \
             model decides within 20 steps; the Bayes-optimal policy is at most 1.0 points \
             ahead of the better of them; rank-coding training computed 38% of the steps \
             of end-of-sequence training, in 55% of its wall time."
        );
        let v = verdict(&[None], &[None], &[at(5.0, 0.8)], 4096, 0.4, 0.6);
        assert!(v.starts_with("Neither model decides"), "{v}");
    }

    #[test]
    fn a_budget_takes_the_most_accurate_threshold_on_validation() {
        let point = |theta, accuracy, step| SweepPoint {
            theta,
            accuracy,
            mean_decision_step: step,
            not_fired: 0.0,
        };
        let val = vec![point(0.8, 0.90, 8.0), point(0.9, 0.93, 11.0)];
        let test = vec![point(0.8, 0.89, 8.5), point(0.9, 0.94, 11.5)];
        let s = Sweeps::new(val, test, &[5.0, 10.0, 12.0]);
        assert!(s.budgets[0].is_none());
        let chosen = |i: usize| s.budgets[i].map(|b| (b.val.theta, b.test.accuracy));
        assert_eq!(chosen(1), Some((0.8, 0.89)));
        assert_eq!(chosen(2), Some((0.9, 0.94)));
    }
}
