//! The GEMM variants behind the table of `docs/performance.md` ("The GEMM ceiling on
//! lavapipe"): plain f32 GEMMs `C[M, N] = A[M, K] B[K, N]` with different register
//! blocks, load widths, layouts and workgroup shapes, generated as WGSL. Each variant is
//! first checked bit for bit against a sequential f32 sum on the CPU (the `check`
//! shapes), then all are timed one after another, round after round, best of the
//! rounds, beside the engine's `dense_gemm` timed in the same rounds.
//!
//!     cargo run --release --example gemm_variants -- [NAMES,..] [SHAPES,..] [ROUNDS]
//!
//! NAMES: the variants (all when empty, see `variants`); SHAPES: check (37 x 72 x 53),
//! check4 (36 x 72 x 52, for the variants that need multiples of 4), toy, mnist, 1024.
use rankcode::gpu::bindings::{Slot, Table};
use rankcode::gpu::kernel::module;
use rankcode::gpu::matmul::{PlainGemm, PlainKernel};
use rankcode::gpu::{Binding, GpuContext, Kernel};
use std::time::Instant;
use wgpu::util::DeviceExt;

#[derive(Clone, Debug)]
struct V {
    name: String,
    r: usize,
    c: usize,
    wx: usize,
    wy: usize,
    /// B stored [N][K] (true) or [K][N] (false)
    b_nk: bool,
    /// invocation columns contiguous (lid.x * C + c) or strided (lid.x + wx * c)
    contiguous: bool,
    /// load B as vec4 from an array<vec4<f32>> view (kn + contiguous only)
    b_vec4: bool,
    /// lanes vary along rows instead of columns: swap the roles of lid.x/lid.y
    lanes_rows: bool,
    /// 0: A[M][K] scalar; 1: A[M][K] as vec4 along K (K % 4 == 0); 2: A^T[K][M] as vec4 along M
    a_mode: u8,
    /// accumulators in an indexed array, loops in WGSL (kn, b_vec4, a_mode 0 only)
    arrays: bool,
}

fn gen_arrays(v: &V) -> String {
    let (r, c) = (v.r, v.c);
    let cq = c / 4;
    format!(
        r#"
struct P {{ m: u32, n: u32, k: u32, pad: u32 }}
@group(0) @binding(0) var<storage, read> p: P;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
const R: u32 = {r}u;
const CQ: u32 = {cq}u;
@compute @workgroup_size({wx}, {wy})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {{
  let M = p.m; let N = p.n; let K = p.k;
  let row0 = wg.y * {wy}u * R + lid.y * R;
  let col0 = wg.x * {wx}u * CQ * 4u + lid.x * CQ * 4u;
  if (row0 >= M || col0 >= N) {{ return; }}
  let n4 = N / 4u;
  var ar: array<u32, R>;
  for (var i = 0u; i < R; i++) {{ ar[i] = min(row0 + i, M - 1u) * K; }}
  var bq: array<u32, CQ>;
  for (var q = 0u; q < CQ; q++) {{ bq[q] = min(col0 / 4u + q, n4 - 1u); }}
  var acc: array<array<vec4<f32>, CQ>, R>;
  for (var k = 0u; k < K; k++) {{
    var w: array<vec4<f32>, CQ>;
    for (var q = 0u; q < CQ; q++) {{ w[q] = b[k * n4 + bq[q]]; }}
    for (var i = 0u; i < R; i++) {{
      let x = a[ar[i] + k];
      for (var q = 0u; q < CQ; q++) {{ acc[i][q] += x * w[q]; }}
    }}
  }}
  for (var i = 0u; i < R; i++) {{
    if (row0 + i < M) {{
      for (var j = 0u; j < CQ * 4u; j++) {{
        if (col0 + j < N) {{ out[(row0 + i) * N + col0 + j] = acc[i][j / 4u][j % 4u]; }}
      }}
    }}
  }}
}}
"#,
        wx = v.wx,
        wy = v.wy
    )
}

fn gen_wgsl(v: &V) -> String {
    if v.arrays {
        return gen_arrays(v);
    }
    let (r, c) = (v.r, v.c);
    let cq = c / 4;
    let mut s = String::new();
    s += "struct P { m: u32, n: u32, k: u32, pad: u32 }\n";
    s += "@group(0) @binding(0) var<storage, read> p: P;\n";
    if v.a_mode == 0 {
        s += "@group(0) @binding(1) var<storage, read> a: array<f32>;\n";
    } else {
        s += "@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;\n";
    }
    if v.b_vec4 {
        s += "@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;\n";
    } else {
        s += "@group(0) @binding(2) var<storage, read> b: array<f32>;\n";
    }
    s += "@group(0) @binding(3) var<storage, read_write> out: array<f32>;\n";
    s += &format!(
        "@compute @workgroup_size({}, {})\nfn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid_: vec3<u32>) {{\n",
        v.wx, v.wy
    );
    if v.lanes_rows {
        // lid.x walks rows, lid.y walks columns
        s += "  let lid = vec2<u32>(lid_.y, lid_.x);\n";
        s += &format!("  let WX = {}u; let WY = {}u;\n", v.wy, v.wx);
    } else {
        s += "  let lid = vec2<u32>(lid_.x, lid_.y);\n";
        s += &format!("  let WX = {}u; let WY = {}u;\n", v.wx, v.wy);
    }
    s += "  let M = p.m; let N = p.n; let K = p.k;\n";
    s += &format!("  let row0 = wg.y * WY * {r}u + lid.y * {r}u;\n");
    if v.contiguous {
        s += &format!("  let col0 = wg.x * WX * {c}u + lid.x * {c}u;\n");
    } else {
        s += &format!("  let col0 = wg.x * WX * {c}u + lid.x;\n");
    }
    s += "  if (row0 >= M || col0 >= N) { return; }\n";
    // Row origins (clamped)
    match v.a_mode {
        0 => {
            for i in 0..r {
                s += &format!("  let ar{i} = min(row0 + {i}u, M - 1u) * K;\n");
            }
        }
        1 => {
            for i in 0..r {
                s += &format!("  let ar{i} = min(row0 + {i}u, M - 1u) * (K / 4u);\n");
            }
        }
        _ => {
            s += "  let m4 = M / 4u;\n";
            for g in 0..r / 4 {
                s += &format!("  let ag{g} = min(row0 / 4u + {g}u, m4 - 1u);\n");
            }
        }
    }
    let col = |j: usize| -> String {
        if v.contiguous {
            format!("col0 + {j}u")
        } else {
            format!("col0 + WX * {j}u")
        }
    };
    for j in 0..c {
        if v.b_nk {
            s += &format!("  let bc{j} = min({}, N - 1u) * K;\n", col(j));
        } else if !v.b_vec4 {
            s += &format!("  let bc{j} = min({}, N - 1u);\n", col(j));
        }
    }
    if v.b_vec4 {
        s += "  let n4 = N / 4u;\n";
        for q in 0..cq {
            s += &format!("  let bq{q} = min(col0 / 4u + {q}u, n4 - 1u);\n");
        }
    }
    for i in 0..r {
        for q in 0..cq {
            s += &format!("  var acc{i}_{q} = vec4<f32>(0.0);\n");
        }
    }
    if v.a_mode == 1 {
        assert!(v.b_vec4);
        s += "  for (var k4 = 0u; k4 < K / 4u; k4++) {\n";
        for i in 0..r {
            s += &format!("    let xa{i} = a[ar{i} + k4];\n");
        }
        for kk in 0..4 {
            let comp = ["x", "y", "z", "w"][kk];
            s += &format!("    let kn4_{kk} = (4u * k4 + {kk}u) * n4;\n");
            for q in 0..cq {
                s += &format!("    let w{kk}_{q} = b[kn4_{kk} + bq{q}];\n");
            }
            for i in 0..r {
                for q in 0..cq {
                    s += &format!("    acc{i}_{q} += xa{i}.{comp} * w{kk}_{q};\n");
                }
            }
        }
        s += "  }\n";
    } else {
        s += "  for (var k = 0u; k < K; k++) {\n";
        if !v.b_nk {
            s += "    let kn = k * N;\n";
        }
        if v.b_vec4 {
            s += "    let kn4 = k * n4;\n";
            for q in 0..cq {
                s += &format!("    let w{q} = b[kn4 + bq{q}];\n");
            }
        } else {
            for q in 0..cq {
                let idx = |j: usize| {
                    if v.b_nk {
                        format!("b[bc{j} + k]")
                    } else {
                        format!("b[kn + bc{j}]")
                    }
                };
                s += &format!(
                    "    let w{q} = vec4<f32>({}, {}, {}, {});\n",
                    idx(4 * q),
                    idx(4 * q + 1),
                    idx(4 * q + 2),
                    idx(4 * q + 3)
                );
            }
        }
        if v.a_mode == 2 {
            for g in 0..r / 4 {
                s += &format!("    let xg{g} = a[k * m4 + ag{g}];\n");
            }
        }
        for i in 0..r {
            if v.a_mode == 2 {
                s += &format!(
                    "    let x{i} = xg{}.{};\n",
                    i / 4,
                    ["x", "y", "z", "w"][i % 4]
                );
            } else {
                s += &format!("    let x{i} = a[ar{i} + k];\n");
            }
            for q in 0..cq {
                s += &format!("    acc{i}_{q} += x{i} * w{q};\n");
            }
        }
        s += "  }\n";
    }
    for i in 0..r {
        s += &format!("  if (row0 + {i}u < M) {{\n");
        for q in 0..cq {
            for e in 0..4 {
                let j = 4 * q + e;
                let comp = ["x", "y", "z", "w"][e];
                s += &format!(
                    "    if ({} < N) {{ out[(row0 + {i}u) * N + {}] = acc{i}_{q}.{comp}; }}\n",
                    col(j),
                    col(j)
                );
            }
        }
        s += "  }\n";
    }
    s += "}\n";
    s
}

/// The binding table of every variant: params, a, b, out.
const TABLE: Table = Table {
    shader: "variant",
    entries: &["main"],
    slots: &[
        Slot {
            name: "p",
            binding: 0,
            kind: Binding::Params,
        },
        Slot {
            name: "a",
            binding: 1,
            kind: Binding::Read,
        },
        Slot {
            name: "b",
            binding: 2,
            kind: Binding::Read,
        },
        Slot {
            name: "out",
            binding: 3,
            kind: Binding::ReadWrite,
        },
    ],
};

fn build(ctx: &GpuContext, src: &str) -> Kernel {
    Kernel::new(ctx, &module(ctx, "variant", src), "main", &TABLE)
}

struct Problem {
    m: usize,
    n: usize,
    k: usize,
    a: Vec<f32>,
    b_kn: Vec<f32>,
    b_nk: Vec<f32>,
    a_t: Vec<f32>,
}

fn vals(len: usize, seed: usize) -> Vec<f32> {
    (0..len)
        .map(|i| (((i * 7919 + seed * 104729) % 2001) as f32 - 1000.0) * 1e-3)
        .collect()
}

impl Problem {
    fn new(m: usize, n: usize, k: usize) -> Self {
        let a = vals(m * k, 1);
        let b_kn = vals(k * n, 2);
        let mut b_nk = vec![0f32; k * n];
        for kk in 0..k {
            for j in 0..n {
                b_nk[j * k + kk] = b_kn[kk * n + j];
            }
        }
        let mut a_t = vec![0f32; m * k];
        for i in 0..m {
            for kk in 0..k {
                a_t[kk * m + i] = a[i * k + kk];
            }
        }
        Problem {
            m,
            n,
            k,
            a,
            b_kn,
            b_nk,
            a_t,
        }
    }
    fn reference(&self) -> Vec<f32> {
        let mut c = vec![0f32; self.m * self.n];
        for i in 0..self.m {
            for j in 0..self.n {
                let mut s = 0f32;
                for kk in 0..self.k {
                    s += self.a[i * self.k + kk] * self.b_kn[kk * self.n + j];
                }
                c[i * self.n + j] = s;
            }
        }
        c
    }
}

/// Whether variant `v` can compute an `[m, k] x [k, n]` GEMM: its vec4 views need
/// multiples of 4.
fn fits(v: &V, m: usize, n: usize, k: usize) -> bool {
    (!v.b_vec4 || n.is_multiple_of(4))
        && (v.a_mode != 1 || k.is_multiple_of(4))
        && (v.a_mode != 2 || m.is_multiple_of(4))
}

struct Bound {
    bind: wgpu::BindGroup,
    groups: [u32; 3],
}

struct Bufs {
    p: wgpu::Buffer,
    a: wgpu::Buffer,
    a_t: wgpu::Buffer,
    b_kn: wgpu::Buffer,
    b_nk: wgpu::Buffer,
    out: wgpu::Buffer,
    read: wgpu::Buffer,
}

fn bufs(ctx: &GpuContext, pr: &Problem) -> Bufs {
    let init = |c: &[u8], u| {
        ctx.device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: None,
                contents: c,
                usage: u,
            })
    };
    let s = wgpu::BufferUsages::STORAGE;
    Bufs {
        p: init(
            bytemuck::cast_slice(&[pr.m as u32, pr.n as u32, pr.k as u32, 0]),
            s,
        ),
        a: init(bytemuck::cast_slice(&pr.a), s),
        a_t: init(bytemuck::cast_slice(&pr.a_t), s),
        b_kn: init(bytemuck::cast_slice(&pr.b_kn), s),
        b_nk: init(bytemuck::cast_slice(&pr.b_nk), s),
        out: ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size: (pr.m * pr.n * 4) as u64,
            usage: s | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        }),
        read: ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size: (pr.m * pr.n * 4) as u64,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        }),
    }
}

fn bound(ctx: &GpuContext, v: &V, kernel: &Kernel, b: &Bufs, pr: &Problem) -> Bound {
    let a = if v.a_mode == 2 { &b.a_t } else { &b.a };
    let bb = if v.b_nk { &b.b_nk } else { &b.b_kn };
    let bind = kernel.bind(ctx, &[("p", &b.p), ("a", a), ("b", bb), ("out", &b.out)]);
    let (bw, bh) = if v.lanes_rows {
        (v.wy * v.c, v.wx * v.r)
    } else {
        (v.wx * v.c, v.wy * v.r)
    };
    Bound {
        bind,
        groups: [pr.n.div_ceil(bw) as u32, pr.m.div_ceil(bh) as u32, 1],
    }
}

/// Seconds per dispatch of `reps` dispatches in one submission.
fn run(ctx: &GpuContext, kernel: &Kernel, bd: &Bound, reps: usize) -> f64 {
    let mut enc = ctx.device.create_command_encoder(&Default::default());
    {
        let mut pass = enc.begin_compute_pass(&Default::default());
        for _ in 0..reps {
            kernel.dispatch(&mut pass, &bd.bind, None, bd.groups);
        }
    }
    let t = Instant::now();
    ctx.queue.submit([enc.finish()]);
    ctx.wait().unwrap();
    t.elapsed().as_secs_f64() / reps as f64
}

fn readback(ctx: &GpuContext, b: &Bufs, n: usize) -> Vec<f32> {
    let mut enc = ctx.device.create_command_encoder(&Default::default());
    enc.copy_buffer_to_buffer(&b.out, 0, &b.read, 0, (n * 4) as u64);
    ctx.queue.submit([enc.finish()]);
    ctx.read_staging::<f32>(&b.read, n).unwrap()
}

fn variants(filter: &str) -> Vec<V> {
    let base = V {
        name: String::new(),
        r: 4,
        c: 4,
        wx: 8,
        wy: 8,
        b_nk: false,
        contiguous: true,
        b_vec4: false,
        lanes_rows: false,
        a_mode: 0,
        arrays: false,
    };
    let mut out = Vec::new();
    let mut add = |name: &str, f: &dyn Fn(&mut V)| {
        let mut v = base.clone();
        f(&mut v);
        v.name = name.to_string();
        out.push(v);
    };
    add("4x4", &|_| {});
    add("8x8", &|v| {
        v.r = 8;
        v.c = 8
    });
    add("8x8nk", &|v| {
        v.r = 8;
        v.c = 8;
        v.b_nk = true
    });
    add("8x8v4", &|v| {
        v.r = 8;
        v.c = 8;
        v.b_vec4 = true
    });
    add("8x8str", &|v| {
        v.r = 8;
        v.c = 8;
        v.contiguous = false
    });
    add("16x8", &|v| {
        v.r = 16;
        v.c = 8
    });
    add("8x16", &|v| {
        v.r = 8;
        v.c = 16
    });
    add("16x16", &|v| {
        v.r = 16;
        v.c = 16
    });
    add("8x8lr", &|v| {
        v.r = 8;
        v.c = 8;
        v.lanes_rows = true
    });
    add("8x8w64", &|v| {
        v.r = 8;
        v.c = 8;
        v.wx = 64;
        v.wy = 1
    });
    add("8x8w8", &|v| {
        v.r = 8;
        v.c = 8;
        v.wx = 8;
        v.wy = 1
    });
    add("8x8w256", &|v| {
        v.r = 8;
        v.c = 8;
        v.wx = 16;
        v.wy = 16
    });
    for (r, c) in [
        (8, 16),
        (16, 8),
        (16, 16),
        (16, 32),
        (32, 16),
        (32, 8),
        (24, 16),
        (16, 24),
        (12, 16),
        (8, 32),
        (32, 32),
    ] {
        add(&format!("{r}x{c}v4"), &|v| {
            v.r = r;
            v.c = c;
            v.b_vec4 = true
        });
    }
    for (r, c, wx, wy, am) in [
        (16, 32, 8, 8, 2),
        (32, 32, 8, 8, 2),
        (16, 32, 8, 8, 1),
        (32, 32, 8, 8, 1),
        (32, 16, 8, 8, 2),
        (32, 32, 8, 1, 2),
        (16, 32, 8, 1, 2),
        (32, 32, 8, 2, 2),
        (16, 16, 8, 8, 2),
        (8, 32, 8, 8, 2),
        (32, 8, 8, 8, 2),
        (64, 16, 8, 8, 2),
        (16, 64, 8, 8, 2),
        (32, 64, 8, 8, 2),
        (64, 32, 8, 8, 2),
        (32, 32, 8, 1, 0),
        (16, 32, 8, 1, 0),
        (16, 24, 8, 1, 0),
        (24, 24, 8, 1, 0),
        (32, 24, 8, 1, 0),
        (16, 32, 8, 2, 0),
        (16, 32, 16, 1, 0),
        (16, 32, 32, 1, 0),
    ] {
        add(&format!("{r}x{c}w{wx}x{wy}a{am}"), &|v| {
            v.r = r;
            v.c = c;
            v.wx = wx;
            v.wy = wy;
            v.a_mode = am;
            v.b_vec4 = true
        });
    }
    for (r, c) in [(8, 8), (16, 16), (16, 32), (32, 32)] {
        add(&format!("{r}x{c}arr"), &|v| {
            v.r = r;
            v.c = c;
            v.b_vec4 = true;
            v.arrays = true
        });
        add(&format!("{r}x{c}nk"), &|v| {
            v.r = r;
            v.c = c;
            v.b_nk = true
        });
    }
    let wanted: Vec<&str> = filter.split(',').collect();
    out.into_iter()
        .filter(|v| filter.is_empty() || wanted.contains(&v.name.as_str()))
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let filter = args.get(1).cloned().unwrap_or_default();
    let shapes_arg = args
        .get(2)
        .cloned()
        .unwrap_or("check,toy,mnist,1024".into());
    let rounds: usize = args.get(3).map(|s| s.parse().unwrap()).unwrap_or(3);
    let ctx = GpuContext::new().unwrap();
    eprintln!("{}", ctx.adapter_summary());
    let vs = variants(&filter);
    let built: Vec<Kernel> = vs
        .iter()
        .map(|v| {
            let src = gen_wgsl(v);
            if std::env::var("DUMP").is_ok() {
                println!("// {}\n{}", v.name, src);
            }
            build(&ctx, &src)
        })
        .collect();
    for shape in shapes_arg.split(',') {
        let (m, n, k) = match shape {
            "check" => (37, 72, 53),
            "check4" => (36, 72, 52),
            "toy" => (128, 500, 126),
            "mnist" => (256, 500, 909),
            "1024" => (1024, 1024, 1024),
            _ => panic!(),
        };
        let pr = Problem::new(m, n, k);
        let b = bufs(&ctx, &pr);
        let bds: Vec<Bound> = vs
            .iter()
            .zip(&built)
            .map(|(v, bu)| bound(&ctx, v, bu, &b, &pr))
            .collect();
        if shape.starts_with("check") {
            let want = pr.reference();
            for ((v, bu), bd) in vs.iter().zip(&built).zip(&bds) {
                if !fits(v, m, n, k) {
                    println!("check {:10} skipped: needs multiples of 4", v.name);
                    continue;
                }
                run(&ctx, bu, bd, 1);
                let got = readback(&ctx, &b, m * n);
                let same = got
                    .iter()
                    .zip(&want)
                    .filter(|(x, y)| x.to_bits() == y.to_bits())
                    .count();
                println!(
                    "check {:10} bitwise equal to the CPU's sequential f32 sum: {same}/{}",
                    v.name,
                    m * n
                );
                assert_eq!(same, m * n, "{}", v.name);
            }
            continue;
        }
        let flops = 2.0 * (m * n * k) as f64;
        let reps = ((0.3e9 / flops) as usize).clamp(1, 200);
        let engine = PlainGemm::with_values(&ctx, m, n, k);
        let mut best = vec![f64::MAX; vs.len()];
        let mut engine_best = f64::MAX;
        for (bu, bd) in built.iter().zip(&bds) {
            run(&ctx, bu, bd, 1);
        }
        for _ in 0..rounds {
            for (i, ((v, bu), bd)) in vs.iter().zip(&built).zip(&bds).enumerate() {
                if fits(v, m, n, k) {
                    best[i] = best[i].min(run(&ctx, bu, bd, reps));
                }
            }
            let s = engine.seconds(&ctx, PlainKernel::Engine, reps).unwrap();
            engine_best = engine_best.min(s);
        }
        println!(
            "{shape:6} the engine's dense_gemm {:6.2} GFLOP/s",
            flops / engine_best / 1e9
        );
        for (v, t) in vs.iter().zip(&best).filter(|(_, t)| **t < f64::MAX) {
            println!(
                "{shape:6} [{m}x{k}]x[{k}x{n}] {:10} {:6.2} GFLOP/s  x{:.2} the engine's  ({:.2} ms)",
                v.name,
                flops / t / 1e9,
                engine_best / t,
                t * 1e3
            );
        }
    }
}
