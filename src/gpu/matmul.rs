//! Host side of `matmul.wgsl`: its binding layout, block size, and the plain dense
//! GEMM used as the throughput ceiling in benchmarks.

use super::GpuContext;
use super::kernel::{Binding, Kernel, groups_for, module};
use super::shaders;
use super::structs::{GemmParams, Source, Step, Weight, validity};
use crate::error::Result;
use wgpu::util::DeviceExt;

/// Outputs per side of the block one GEMM workgroup computes (`BLOCK` in the shader).
pub const BLOCK: usize = 32;
/// `ROWS_PER_THREAD` and `COLS_PER_THREAD` of the narrow step GEMM variant: 16 x 64
/// blocks (rows 1 to 4, columns 4 or 8: the sizes of the shader's arrays).
pub const NARROW_ROWS_PER_THREAD: usize = 2;
pub const NARROW_COLS_PER_THREAD: usize = 8;
/// Rows and columns of one narrow block.
pub const NARROW_BLOCK_ROWS: usize = 8 * NARROW_ROWS_PER_THREAD;
pub const NARROW_BLOCK_COLS: usize = 8 * NARROW_COLS_PER_THREAD;
const _: () = assert!(
    matches!(NARROW_ROWS_PER_THREAD, 1 | 2 | 4) && matches!(NARROW_COLS_PER_THREAD, 4 | 8),
    "the shader's per-invocation arrays hold 1 to 4 rows and 4 or 8 columns"
);

/// Binding slots of every `matmul.wgsl` entry point: params, step, src1, src2,
/// weights, rows, tstar, out.
pub const BINDINGS: [(u32, Binding); 8] = [
    (0, Binding::Params),
    (1, Binding::Step),
    (2, Binding::Read),
    (3, Binding::Read),
    (4, Binding::Read),
    (5, Binding::Read),
    (6, Binding::Read),
    (7, Binding::ReadWrite),
];

/// Seconds per `dense_gemm` dispatch of `[m, k] x [k, n]`, averaged over `reps`
/// dispatches in one submission (after one warm-up dispatch).
pub fn dense_gemm_seconds(
    ctx: &GpuContext,
    m: usize,
    n: usize,
    k: usize,
    reps: usize,
) -> Result<f64> {
    let init = |label: &str, contents: &[u8]| {
        ctx.device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents,
                usage: wgpu::BufferUsages::STORAGE,
            })
    };
    let values = |len: usize| -> Vec<f32> {
        (0..len)
            .map(|i| ((i * 7919) % 1000) as f32 * 1e-3)
            .collect()
    };
    let params = GemmParams {
        a1: Source::per_row(0, k, validity::ALWAYS),
        w1: Weight::transposed(0, k),
        n_out: n as u32,
        out_stride: n as u32,
        ..Default::default()
    };
    let params = init("dense_gemm params", bytemuck::bytes_of(&params));
    let step = init(
        "dense_gemm step",
        bytemuck::bytes_of(&Step {
            t: 0,
            n_rows: m as u32,
            rows_offset: 0,
            steps: 1,
        }),
    );
    let a = init("dense_gemm a", bytemuck::cast_slice(&values(m * k)));
    let w = init("dense_gemm w", bytemuck::cast_slice(&values(n * k)));
    let dummy = init("dense_gemm unused", &[0u8; 16]);
    let out = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("dense_gemm out"),
        size: (m * n * 4) as u64,
        usage: wgpu::BufferUsages::STORAGE,
        mapped_at_creation: false,
    });
    let entry = if ctx.direct_gemm {
        "dense_gemm_direct"
    } else {
        "dense_gemm"
    };
    let kernel = Kernel::new(
        ctx,
        &module(ctx, "matmul.wgsl", shaders::MATMUL),
        entry,
        &BINDINGS,
    );
    let bind = kernel.bind(ctx, &[&params, &step, &a, &dummy, &w, &dummy, &dummy, &out]);
    let run = |reps: usize| -> Result<f64> {
        let mut encoder = ctx.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            for _ in 0..reps {
                kernel.dispatch(
                    &mut pass,
                    &bind,
                    Some(0),
                    [groups_for(n, BLOCK), groups_for(m, BLOCK), 1],
                );
            }
        }
        let start = std::time::Instant::now();
        ctx.queue.submit([encoder.finish()]);
        ctx.wait()?;
        Ok(start.elapsed().as_secs_f64())
    };
    run(1)?;
    Ok(run(reps.max(1))? / reps.max(1) as f64)
}
