//! Host side of `matmul/*.wgsl` (`gpu::shaders::MATMUL`): its binding layout, block
//! shapes, and the plain dense GEMM used as the throughput ceiling in benchmarks.

use super::GpuContext;
use super::bindings;
use super::kernel::{Kernel, groups_for, module};
use super::shaders;
use super::structs::{DenseGemmParams, GemmParams, GridRule, Source, Step, Weight, validity};
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
    /// blocks in registers: 128 x 128; 32 x 128 narrow.
    pub const DIRECT: GemmShapes = GemmShapes {
        wide: GemmShape::new(16, 16),
        narrow: GemmShape::new(4, 16),
    };

    /// The shapes of the direct form if `direct`, else of the staged one.
    pub const fn of_form(direct: bool) -> GemmShapes {
        if direct { Self::DIRECT } else { Self::STAGED }
    }

    /// The grid rules of `step_gemm` (wide) and `step_gemm_narrow` over `cols` output
    /// columns (see [`step_gemm_rules`]).
    pub fn rules(self, cols: usize) -> [GridRule; 2] {
        let block = |s: GemmShape| (s.block_rows(), groups_for(cols, s.block_cols()));
        step_gemm_rules(block(self.wide), block(self.narrow))
    }
}

/// The grid rules of a step GEMM in a wide and a narrow block shape, each given as
/// (rows a block, workgroups across the columns): the narrow blocks while the live
/// rows fit in one of them, the wide ones past that (on lavapipe, a step of 13 live
/// rows of the toy shape took 1.9 ms in 16 x 64 blocks, 2.9-3.1 ms in one 32-row
/// block: docs/performance.md).
pub fn step_gemm_rules(wide: (usize, u32), narrow: (usize, u32)) -> [GridRule; 2] {
    let fits = narrow.0 as u32;
    [
        GridRule::rows_along_y(wide.1, wide.0 as u32).within(fits + 1, u32::MAX),
        GridRule::rows_along_y(narrow.1, narrow.0 as u32).within(1, fits),
    ]
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
        w.rows_per_thread == 16 && w.cols_per_thread == 16 && n.cols_per_thread == 16,
        "the direct grad_gemm computes 128 x 128 blocks, every direct block 128 columns"
    );
    assert!(
        matches!(n.rows_per_thread, 4 | 8 | 16),
        "the direct form holds 4, 8 or 16 rows"
    );
};

/// The blocks of the step GEMMs of `step_cell.wgsl`: `rows` consecutive list rows (its
/// `ROWS_PER_THREAD`) by `cols` consecutive columns (`QUAD_COLS`) an invocation, in a
/// row of 8 invocations: `rows` x 8 `cols` outputs a workgroup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StepQuadsShape {
    pub rows: usize,
    pub cols: usize,
}

impl StepQuadsShape {
    /// Rows of the narrow blocks, for steps with at most this many live rows; the wide
    /// ones hold 16.
    pub const NARROW_ROWS: usize = 4;
    /// The forward gate GEMM's (4H columns): 32 columns an invocation.
    pub const GATES: [StepQuadsShape; 2] = Self::wide_and_narrow(32);
    /// The dh GEMM's (H columns): 16 columns an invocation, so that 8 of them span 128.
    pub const DH: [StepQuadsShape; 2] = Self::wide_and_narrow(16);

    const fn wide_and_narrow(cols: usize) -> [StepQuadsShape; 2] {
        [
            StepQuadsShape { rows: 16, cols },
            StepQuadsShape {
                rows: Self::NARROW_ROWS,
                cols,
            },
        ]
    }

    /// The grid rules of the wide and the narrow shape of `shapes` over `cols` output
    /// columns (see [`step_gemm_rules`]).
    pub fn rules(shapes: [StepQuadsShape; 2], cols: usize) -> [GridRule; 2] {
        let block = |s: StepQuadsShape| (s.rows, groups_for(cols, 8 * s.cols));
        step_gemm_rules(block(shapes[0]), block(shapes[1]))
    }

    /// The pipeline constants that select this shape.
    pub fn constants(self) -> [(&'static str, f64); 2] {
        [
            ("ROWS_PER_THREAD", self.rows as f64),
            ("QUAD_COLS", self.cols as f64),
        ]
    }
}

/// The workgroups of `grad_gemm_quads` over a gradient of `rows` x `cols` outputs (the
/// bias column included): 8 x 1 invocations of 32 rows (of G) x 16 columns (of X),
/// 32 x 128 outputs a workgroup.
pub fn quads_grad_groups(rows: usize, cols: usize) -> [u32; 3] {
    [groups_for(cols, 128), groups_for(rows, 32), 1]
}

/// Columns (the bias column included) of the gradients that `grad_gemm_narrow`
/// computes: 4 an invocation.
pub const NARROW_GRAD_COLUMNS: usize = 4;

/// The workgroups of `grad_gemm_narrow` over a gradient of `rows` rows: 8 invocations
/// of 4 rows (of G), 32 rows a workgroup.
pub fn narrow_grad_groups(rows: usize) -> [u32; 3] {
    [groups_for(rows, 32), 1, 1]
}

/// Whether `grad_gemm_quads` can read `src` from a buffer of `buffer_bytes`: every row
/// starts at a multiple of 4 elements, and the buffer holds whole vec4s.
pub fn reads_in_quads(src: &Source, buffer_bytes: u64) -> bool {
    [src.base, src.step_stride, src.row_stride]
        .iter()
        .all(|v| v.is_multiple_of(4))
        && buffer_bytes.is_multiple_of(16)
}

/// Which kernel computes a [`PlainGemm`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlainKernel {
    /// `dense_gemm` of `matmul/staged.wgsl` (`dense_gemm_direct` on CPU adapters): the
    /// engine's GEMM blocking in its wide shape, with B read as `W^T` as the gate
    /// GEMM reads its weights.
    Engine,
    /// `tiled_gemm` of `gemm.wgsl`: 16 x 32 outputs an invocation, B read as vec4s.
    Tiled,
}

impl PlainKernel {
    pub const ALL: [PlainKernel; 2] = [PlainKernel::Engine, PlainKernel::Tiled];
}

/// One kernel of a [`PlainGemm`], bound to its buffers.
struct BoundGemm {
    kernel: Kernel,
    bind: wgpu::BindGroup,
    groups: [u32; 3],
}

/// A plain GEMM on the device, `C[m, n] = A[m, k] B[k, n]`, that either
/// [`PlainKernel`] computes: the same sums in the same order, so the same bits.
pub struct PlainGemm {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    engine: BoundGemm,
    tiled: BoundGemm,
    out: wgpu::Buffer,
}

/// Columns of a workgroup of `tiled_gemm` (8 invocations of 32).
const TILED_BLOCK_COLS: usize = 256;
/// Rows of a workgroup of `tiled_gemm`.
const TILED_BLOCK_ROWS: usize = 16;

impl PlainGemm {
    /// The GEMM of row-major `a` (`[m, k]`) and `b` (`[k, n]`).
    pub fn new(ctx: &GpuContext, m: usize, n: usize, k: usize, a: &[f32], b: &[f32]) -> Self {
        assert!(m > 0 && n > 0 && k > 0, "an empty GEMM");
        assert_eq!((a.len(), b.len()), (m * k, k * n), "operand sizes");
        let init = |label: &str, contents: &[u8]| {
            ctx.device
                .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some(label),
                    contents,
                    usage: wgpu::BufferUsages::STORAGE,
                })
        };
        // tiled_gemm reads B in vec4s: its rows padded to a multiple of 4 columns.
        let ldb = n.next_multiple_of(4);
        let mut b_padded = vec![0f32; k * ldb];
        // dense_gemm reads it as W^T, [n, k].
        let mut b_t = vec![0f32; n * k];
        for (kk, row) in b.chunks_exact(n).enumerate() {
            b_padded[kk * ldb..kk * ldb + n].copy_from_slice(row);
            for (j, &v) in row.iter().enumerate() {
                b_t[j * k + kk] = v;
            }
        }
        let a = init("plain GEMM a", bytemuck::cast_slice(a));
        let b_padded = init("plain GEMM b", bytemuck::cast_slice(&b_padded));
        let b_t = init("plain GEMM b^T", bytemuck::cast_slice(&b_t));
        let out = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("plain GEMM out"),
            size: (m * n * 4) as u64,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });

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
        let dummy = init("dense_gemm unused", &[0u8; 16]);
        let (entry, shape) = if ctx.direct_gemm {
            ("dense_gemm_direct", GemmShapes::DIRECT.wide)
        } else {
            ("dense_gemm", GemmShapes::STAGED.wide)
        };
        let kernel = Kernel::with_constants(
            ctx,
            &module(ctx, "matmul/*.wgsl", shaders::MATMUL),
            entry,
            &bindings::MATMUL,
            &shape.constants(),
        );
        let bind = kernel.bind(
            ctx,
            &[
                ("p", &params),
                ("step", &step),
                ("src1", &a),
                ("src2", &dummy),
                ("weights", &b_t),
                ("rows", &dummy),
                ("tstar", &dummy),
                ("out", &out),
            ],
        );
        let engine = BoundGemm {
            kernel,
            bind,
            groups: shape.groups(m, n),
        };

        let params = DenseGemmParams {
            m: m as u32,
            n: n as u32,
            k: k as u32,
            lda: k as u32,
            ldb: ldb as u32,
            ldc: n as u32,
            _pad: [0; 2],
        };
        let params = init("tiled_gemm params", bytemuck::bytes_of(&params));
        let kernel = Kernel::new(
            ctx,
            &module(ctx, "gemm.wgsl", shaders::GEMM),
            "tiled_gemm",
            &bindings::TILED_GEMM,
        );
        let bind = kernel.bind(
            ctx,
            &[("p", &params), ("a", &a), ("b", &b_padded), ("c", &out)],
        );
        let tiled = BoundGemm {
            kernel,
            bind,
            groups: [
                groups_for(n, TILED_BLOCK_COLS),
                groups_for(m, TILED_BLOCK_ROWS),
                1,
            ],
        };
        PlainGemm {
            m,
            n,
            k,
            engine,
            tiled,
            out,
        }
    }

    /// The GEMM of fixed values in [0, 1) (what the benchmarks time).
    pub fn with_values(ctx: &GpuContext, m: usize, n: usize, k: usize) -> Self {
        let values = |len: usize| -> Vec<f32> {
            (0..len)
                .map(|i| ((i * 7919) % 1000) as f32 * 1e-3)
                .collect()
        };
        Self::new(ctx, m, n, k, &values(m * k), &values(k * n))
    }

    /// Floating-point operations of one GEMM (2 m n k).
    pub fn flops(&self) -> f64 {
        2.0 * (self.m * self.n * self.k) as f64
    }

    fn bound(&self, kernel: PlainKernel) -> &BoundGemm {
        match kernel {
            PlainKernel::Engine => &self.engine,
            PlainKernel::Tiled => &self.tiled,
        }
    }

    /// Records `reps` dispatches of `kernel`, submits them and waits: the seconds
    /// from the submission on.
    fn submit(&self, ctx: &GpuContext, kernel: PlainKernel, reps: usize) -> Result<f64> {
        let g = self.bound(kernel);
        let step_offset = (kernel == PlainKernel::Engine).then_some(0);
        let mut encoder = ctx.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            for _ in 0..reps {
                g.kernel.dispatch(&mut pass, &g.bind, step_offset, g.groups);
            }
        }
        let start = std::time::Instant::now();
        ctx.queue.submit([encoder.finish()]);
        ctx.wait()?;
        Ok(start.elapsed().as_secs_f64())
    }

    /// Seconds per dispatch of `kernel`, averaged over `reps` dispatches in one
    /// submission (after one warm-up dispatch).
    pub fn seconds(&self, ctx: &GpuContext, kernel: PlainKernel, reps: usize) -> Result<f64> {
        self.submit(ctx, kernel, 1)?;
        Ok(self.submit(ctx, kernel, reps.max(1))? / reps.max(1) as f64)
    }

    /// C as `kernel` computes it, row-major `[m, n]`.
    pub fn output(&self, ctx: &GpuContext, kernel: PlainKernel) -> Result<Vec<f32>> {
        let bytes = (self.m * self.n * 4) as u64;
        let staging = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("plain GEMM readback"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        // Cleared first, so that an output the kernel misses shows.
        let mut encoder = ctx.device.create_command_encoder(&Default::default());
        encoder.clear_buffer(&self.out, 0, None);
        ctx.queue.submit([encoder.finish()]);
        self.submit(ctx, kernel, 1)?;
        let mut encoder = ctx.device.create_command_encoder(&Default::default());
        encoder.copy_buffer_to_buffer(&self.out, 0, &staging, 0, bytes);
        ctx.queue.submit([encoder.finish()]);
        ctx.read_staging(&staging, self.m * self.n)
    }
}

/// Seconds per `dense_gemm` dispatch of `[m, k] x [k, n]`, averaged over `reps`
/// dispatches in one submission (after one warm-up dispatch).
pub fn dense_gemm_seconds(
    ctx: &GpuContext,
    m: usize,
    n: usize,
    k: usize,
    reps: usize,
) -> Result<f64> {
    PlainGemm::with_values(ctx, m, n, k).seconds(ctx, PlainKernel::Engine, reps)
}
