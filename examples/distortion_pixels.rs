//! What the MNIST distortions (`train --augment-rotate --augment-scale
//! --augment-elastic`) do to the pixels a rank-coded model decides on: the mean number
//! of step-0 pixels (value 243 and above) and of step-0-or-1 pixels (230 and above) per
//! training image, undistorted and with rotate 10, scale 0.1 and elastic 34:4 sampled
//! nearest and bilinear (two seeds each), and the time to distort the training images
//! once. The figures of docs/cli.md ("--augment-sampling") and docs/results.md.
//!
//!     cargo run --release --example distortion_pixels -- ../shared/datasets/mnist

use rankcode::data::augment::{Distortion, Elastic, Sampling};
use rankcode::data::task::Split;
use rankcode::data::{Dataset, Inputs, mnist};
use rankcode::rng::Rng;
use std::time::Instant;

/// How many pixels of all the images fall in each of the 20 steps.
fn per_step(data: &Dataset) -> [usize; 20] {
    let Inputs::EventTimes(times) = data.all().inputs else {
        panic!("MNIST holds event times");
    };
    let mut counts = [0; 20];
    for t in times {
        counts[t as usize] += 1;
    }
    counts
}

fn report(what: &str, data: &Dataset) {
    let counts = per_step(data);
    let n = data.len() as f64;
    println!(
        "{what:<52} step 0: {:6.2}   steps 0-1: {:6.2}",
        counts[0] as f64 / n,
        (counts[0] + counts[1]) as f64 / n
    );
}

fn main() {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "../shared/datasets/mnist".into());
    let train = mnist::load(std::path::Path::new(&dir), Split::Train)
        .unwrap_or_else(|e| panic!("{dir}: {e}"));
    println!("{} training images, mean pixels per image", train.len());
    report("undistorted", &train);
    for sampling in Sampling::ALL {
        let distortion = Distortion {
            max_degrees: 10.0,
            max_scale: 0.1,
            elastic: Some(Elastic {
                alpha: 34.0,
                sigma: 4.0,
            }),
            sampling,
        };
        for seed in [1, 2] {
            let start = Instant::now();
            let distorted = train.distorted(&distortion, &mut Rng::new(seed)).unwrap();
            let seconds = start.elapsed().as_secs_f64();
            let what = format!(
                "rotate 10, scale 0.1, elastic 34:4, {}, seed {seed}",
                sampling.name()
            );
            report(&what, &distorted);
            println!("    distorted in {seconds:.2} s");
        }
    }
}
