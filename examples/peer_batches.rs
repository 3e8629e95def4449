//! Two measurements of the peer benchmarks' workloads (`rankcode bench --config peers`)
//! and of `bench`'s toy shape, behind docs/performance.md, which `bench` itself does
//! not make:
//! - the GPU time per kind of dispatch of a full-length training batch (timestamp
//!   queries), the profile that chose `grad_gemm_quads`;
//! - RC training batches with the scheduler's readback overlapped with the next chunk
//!   and without, alternating, and the median of the pairs' time ratios;
//! - RC training batches with K = 1, 4, 8 and 16 steps between readbacks (the steps in
//!   between planned on the GPU), each after a full-length batch: the median share of
//!   the ideal speedup each realises (docs/performance.md, "Steps planned on the GPU").
//!
//!     cargo run --release --example peer_batches -- [PAIRS]      # default 15
use rankcode::bench::{
    controlled_batch, controlled_params, engine_config, peers, preset_batch, presets,
};
use rankcode::engine::{Engine, Overlap};
use rankcode::gpu::GpuContext;
use rankcode::gpu::profile::ProfiledWork;
use rankcode::model::TrainMode;
use std::sync::Arc;
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() -> rankcode::error::Result<()> {
    let pairs: usize = std::env::args().nth(1).map_or(15, |s| s.parse().unwrap());
    let ctx = Arc::new(GpuContext::new()?);
    println!("{}", ctx.adapter_summary());
    let toy = presets().into_iter().filter(|p| p.name == "toy");
    let shapes = toy
        .map(|p| (p, preset_batch(&p)))
        .chain(peers::workloads().into_iter().map(|p| {
            let decisions = peers::decisions(p.batch, p.steps, 17);
            (
                p,
                controlled_batch(&p.model, p.steps, &decisions, p.sparse, 5),
            )
        }));
    for (p, batch) in shapes {
        let engine_k = |mode, overlap, k| {
            let cfg = engine_config(&p, mode, k, p.sparse).with_overlap_readback(overlap);
            Engine::new(ctx.clone(), cfg, &controlled_params(&p.model))
        };
        let engine = |mode, overlap| engine_k(mode, overlap, 1);

        let mut full = engine(TrainMode::Eos, Overlap::Auto)?;
        full.enable_profiling()?;
        full.compute_gradients(&batch)?;
        full.take_profile()?;
        let start = Instant::now();
        for _ in 0..3 {
            full.compute_gradients(&batch)?;
        }
        let wall_s = start.elapsed().as_secs_f64();
        let profile = full.take_profile()?.expect("profiling is enabled");
        println!("\n{}: 3 full-length batches", p.name);
        println!("{}", ProfiledWork::new(profile, wall_s).table());

        let (mut waiting, mut overlapped) = (
            engine(TrainMode::Rc, Overlap::Off)?,
            engine(TrainMode::Rc, Overlap::On)?,
        );
        waiting.compute_gradients(&batch)?;
        overlapped.compute_gradients(&batch)?;
        let (mut w, mut o) = (Vec::new(), Vec::new());
        for _ in 0..pairs {
            let start = Instant::now();
            waiting.compute_gradients(&batch)?;
            w.push(start.elapsed().as_secs_f64());
            let start = Instant::now();
            overlapped.compute_gradients(&batch)?;
            o.push(start.elapsed().as_secs_f64());
        }
        let ratios = w.iter().zip(&o).map(|(w, o)| w / o).collect();
        println!(
            "{}: RC batch waiting {:.4} s, overlapped {:.4} s (medians of {pairs}); \
             median pair ratio waiting / overlapped {:.3}",
            p.name,
            median(w),
            median(o),
            median(ratios)
        );

        let ks = [1, 4, 8, 16];
        let mut rc = ks
            .iter()
            .map(|&k| engine_k(TrainMode::Rc, Overlap::Auto, k))
            .collect::<rankcode::error::Result<Vec<_>>>()?;
        let mut full = engine(TrainMode::Eos, Overlap::Auto)?;
        full.train_batch(&batch)?;
        let mut ideal = 0.0;
        for e in rc.iter_mut() {
            let steps = e.train_batch(&batch)?.steps_processed;
            ideal = (p.steps * p.batch) as f64 / steps as f64;
        }
        let mut ratios = vec![Vec::new(); ks.len()];
        for _ in 0..pairs {
            let start = Instant::now();
            full.train_batch(&batch)?;
            let full_s = start.elapsed().as_secs_f64();
            for (e, r) in rc.iter_mut().zip(&mut ratios) {
                let start = Instant::now();
                e.train_batch(&batch)?;
                r.push(full_s / start.elapsed().as_secs_f64());
            }
        }
        let shares: Vec<String> = ks
            .iter()
            .zip(ratios)
            .map(|(k, r)| format!("K={k} {:.0}%", 100.0 * median(r) / ideal))
            .collect();
        println!(
            "{}: RC training, share of the ideal {ideal:.2}x (medians of {pairs}): {}",
            p.name,
            shares.join(", ")
        );
    }
    Ok(())
}
