//! The plain GEMMs (`tiled_gemm` of gemm.wgsl and the engine's `dense_gemm`) against
//! the f64 CPU reference, on sizes that are not multiples of their blocks.

mod common;

use common::*;
use rankcode::gpu::matmul::{PlainGemm, PlainKernel};
use rankcode::rng::Rng;

fn reference(m: usize, n: usize, k: usize, a: &[f32], b: &[f32]) -> Vec<f64> {
    let mut c = vec![0f64; m * n];
    for i in 0..m {
        for kk in 0..k {
            let x = a[i * k + kk] as f64;
            for j in 0..n {
                c[i * n + j] += x * b[kk * n + j] as f64;
            }
        }
    }
    c
}

#[test]
fn plain_gemms_match_the_reference_and_each_other_bitwise() {
    let ctx = ctx();
    let mut rng = Rng::new(5);
    // One block of neither kernel, several partial ones in both directions, and the
    // shortest reductions.
    for (m, n, k) in [
        (37, 71, 53),
        (17, 300, 5),
        (70, 257, 131),
        (1, 1, 1),
        (3, 2, 1),
    ] {
        let mut values = |len: usize| -> Vec<f32> {
            (0..len).map(|_| rng.uniform_in(-1.0, 1.0) as f32).collect()
        };
        let (a, b) = (values(m * k), values(k * n));
        let gemm = PlainGemm::new(&ctx, m, n, k, &a, &b);
        let want = reference(m, n, k, &a, &b);
        let outputs: Vec<Vec<f32>> = PlainKernel::ALL
            .iter()
            .map(|&kernel| {
                let c = gemm.output(&ctx, kernel).expect("a GEMM");
                assert_close(&format!("{kernel:?} {m}x{n}x{k}"), &c, &want, 1e-5);
                c
            })
            .collect();
        // The same sums in the same order of k, whatever the blocking.
        assert_eq!(bits(&outputs[0]), bits(&outputs[1]), "{m}x{n}x{k}");
    }
}
