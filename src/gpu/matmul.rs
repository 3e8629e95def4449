//! Host side of `matmul.wgsl`: its binding layout, block shapes, and the plain dense
//! GEMM used as the throughput ceiling in benchmarks.

use super::GpuContext;
use super::kernel::{Binding, Kernel, groups_for, module};
use super::shaders;
use super::structs::{GemmParams, Source, Step, Weight, validity};
use crate::error::Result;
use wgpu::util::DeviceExt;

/// The output block of one GEMM workgroup: 8 x 8 invocations, each computing
/// `rows_per_thread` x `cols_per_thread` outputs (the shader's `ROWS_PER_THREAD` and
/// `COLS_PER_THREAD`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GemmShape {
    pub rows_per_thread: usize,
    pub cols_per_thread: usize,
}

impl GemmShape {
    const fn new(rows_per_thread: usize, cols_per_thread: usize) -> Self {
        GemmShape {
            rows_per_thread,
            cols_per_thread,
        }
    }

    /// Rows of one block.
    pub const fn block_rows(self) -> usize {
        8 * self.rows_per_thread
    }

    /// Columns of one block.
    pub const fn block_cols(self) -> usize {
        8 * self.cols_per_thread
    }

    /// The workgroups that cover `rows` x `cols` outputs.
    pub fn groups(self, rows: usize, cols: usize) -> [u32; 3] {
        [
            groups_for(cols, self.block_cols()),
            groups_for(rows, self.block_rows()),
            1,
        ]
    }

    /// The pipeline constants that select this shape.
    pub fn constants(self) -> [(&'static str, f64); 2] {
        [
            ("ROWS_PER_THREAD", self.rows_per_thread as f64),
            ("COLS_PER_THREAD", self.cols_per_thread as f64),
        ]
    }
}

/// The blocks of one form of the GEMMs: `wide` for the step GEMM over many live rows,
/// the plain GEMM and the weight-gradient GEMM; `narrow` for the step GEMM while the
/// live rows fit in one block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GemmShapes {
    pub wide: GemmShape,
    pub narrow: GemmShape,
}

impl GemmShapes {
    /// The staged form: 32 x 32 blocks (the shader's defaults, and the only blocks of
    /// its `grad_gemm`); 16 x 64 narrow.
    pub const STAGED: GemmShapes = GemmShapes {
        wide: GemmShape::new(4, 4),
        narrow: GemmShape::new(2, 8),
    };
    /// The direct form (`GpuContext::direct_gemm`), whose invocations hold larger
    /// blocks in registers: 64 x 64; 32 x 64 narrow.
    pub const DIRECT: GemmShapes = GemmShapes {
        wide: GemmShape::new(8, 8),
        narrow: GemmShape::new(4, 8),
    };

    /// The shapes of the direct form if `direct`, else of the staged one.
    pub const fn of_form(direct: bool) -> GemmShapes {
        if direct { Self::DIRECT } else { Self::STAGED }
    }
}

const _: () = {
    let (staged, direct) = (GemmShapes::STAGED, GemmShapes::DIRECT);
    assert!(
        staged.wide.rows_per_thread == 4 && staged.wide.cols_per_thread == 4,
        "the staged grad_gemm computes 32 x 32 blocks"
    );
    let n = staged.narrow;
    assert!(
        matches!(n.rows_per_thread, 1 | 2 | 4) && matches!(n.cols_per_thread, 4 | 8),
        "the staged form's per-invocation arrays hold 1 to 4 rows and 4 or 8 columns"
    );
    let (w, n) = (direct.wide, direct.narrow);
    assert!(
        w.rows_per_thread == 8 && w.cols_per_thread == 8 && n.cols_per_thread == 8,
        "the direct grad_gemm computes 64 x 64 blocks, every direct block 64 columns"
    );
    assert!(
        matches!(n.rows_per_thread, 4 | 8),
        "the direct form holds 4 or 8 rows"
    );
};

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
    let shape = GemmShapes::of_form(ctx.direct_gemm).wide;
    let kernel = Kernel::with_constants(
        ctx,
        &module(ctx, "matmul.wgsl", shaders::MATMUL),
        entry,
        &BINDINGS,
        &shape.constants(),
    );
    let bind = kernel.bind(ctx, &[&params, &step, &a, &dummy, &w, &dummy, &dummy, &out]);
    let run = |reps: usize| -> Result<f64> {
        let mut encoder = ctx.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            for _ in 0..reps {
                kernel.dispatch(&mut pass, &bind, Some(0), shape.groups(m, n));
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
