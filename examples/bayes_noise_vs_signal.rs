//! The Bayes-optimal threshold policy on noise-vs-signal, on rankcode's own test split:
//! the exact posterior P(s = +1 | x_0..t), marginalising the unknown noise level over a
//! fine grid of U(0.05, 0.25), with the same decision rule as the networks (decide at
//! the first step where the posterior of either class reaches theta, else at T-1).
//! Its accuracy against decision time is the reference curve for the trained models;
//! only a policy that changes the threshold over time can do a little better.
//!
//!     cargo run --release --example bayes_noise_vs_signal

use rankcode::data::task::{Split, Task};

const GRID: usize = 200;

fn main() {
    let data = Task::NoiseVsSignal
        .load(Split::Test, None, &Default::default())
        .expect("generated data");
    let sigmas: Vec<f64> = (0..GRID)
        .map(|i| 0.05 + 0.2 * (i as f64 + 0.5) / GRID as f64)
        .collect();
    println!("theta   accuracy   mean decision step (of {})", data.steps);
    for theta in [0.8, 0.9, 0.95, 0.97, 0.98, 0.99, 0.999] {
        let (mut correct, mut steps) = (0usize, 0usize);
        for n in 0..data.len() {
            let seq = data.sequence(n);
            // Log-likelihoods of the prefix under s = +1 and s = -1, per noise level.
            let (mut plus, mut minus) = (vec![0f64; GRID], vec![0f64; GRID]);
            for (t, &x) in seq.iter().enumerate() {
                let x = x as f64;
                for (i, &s) in sigmas.iter().enumerate() {
                    let norm = -s.ln();
                    plus[i] += norm - (x - 0.05).powi(2) / (2.0 * s * s);
                    minus[i] += norm - (x + 0.05).powi(2) / (2.0 * s * s);
                }
                let m = plus
                    .iter()
                    .chain(&minus)
                    .cloned()
                    .fold(f64::NEG_INFINITY, f64::max);
                let p: f64 = plus.iter().map(|v| (v - m).exp()).sum();
                let q: f64 = minus.iter().map(|v| (v - m).exp()).sum();
                let posterior = p / (p + q);
                if posterior.max(1.0 - posterior) >= theta || t + 1 == data.steps {
                    correct += ((posterior >= 0.5) as u32 == data.labels[n]) as usize;
                    steps += t + 1;
                    break;
                }
            }
        }
        let n = data.len() as f64;
        println!(
            "{theta:<7} {:>7.2}%   {:>6.2}",
            100.0 * correct as f64 / n,
            steps as f64 / n
        );
    }
}
