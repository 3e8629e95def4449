//! The Bayes-optimal threshold policy on noise-vs-signal, on rankcode's own test split
//! (`rankcode::bayes`): the exact posterior P(s = +1 | x_0..t), marginalising the
//! unknown noise level, with the same decision rule as the networks. Its accuracy
//! against decision time is the reference curve for the trained models.
//!
//!     cargo run --release --example bayes_noise_vs_signal

use rankcode::bayes;
use rankcode::data::task::{Split, Task};

fn main() {
    let data = Task::NoiseVsSignal
        .load(Split::Test, None, &Default::default())
        .expect("generated data");
    let posteriors = bayes::posteriors(&data);
    let thetas = [0.8, 0.9, 0.95, 0.97, 0.98, 0.99, 0.999];
    println!("theta   accuracy   mean decision step (of {})", data.steps);
    for p in bayes::sweep(&posteriors, &data.labels, &thetas) {
        println!(
            "{:<7} {:>7.2}%   {:>6.2}",
            p.theta,
            100.0 * p.accuracy,
            p.mean_decision_step
        );
    }
}
