// tiled_gemm: a plain dense GEMM, C[m, n] = A[m, k] B[k, n], every matrix row-major
// with its own row stride. It is the ceiling `rankcode bench` sets our other GEMMs
// against (`gemm_ceiling_gflops`), blocked for CPU adapters such as lavapipe, where
// each buffer load is paid lane by lane and costs far more than a multiply-add
// (docs/performance.md): each invocation computes 16 rows x 32 columns, from 16 scalar
// loads of A and 8 vec4 loads of B per k, 512 multiply-adds, all held in named
// registers (indexed arrays there live in memory and ran 3 to 5 times slower).
//
// Each output is sum_k A(i, k) B(k, j) added in order of k from zero, one product at a
// time, whatever the blocking: the same bits as `dense_gemm` of matmul/staged.wgsl and as a
// plain sequential sum.

struct DenseGemmParams {
    m: u32,
    n: u32,
    k: u32,
    // Row strides of A, B and C, in elements. B is read as vec4s: ldb is a multiple of
    // 4 (columns n .. ldb - 1 of B are read but never reach C).
    lda: u32,
    ldb: u32,
    ldc: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> p: DenseGemmParams;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

// 32 consecutive columns of one row, four to a vec4.
struct Row32 {
    q0: vec4<f32>,
    q1: vec4<f32>,
    q2: vec4<f32>,
    q3: vec4<f32>,
    q4: vec4<f32>,
    q5: vec4<f32>,
    q6: vec4<f32>,
    q7: vec4<f32>,
}

// 32 columns of the row of B that starts at vec4 `at`: the vec4s at offsets `left`
// and then `right` within the row.
fn load_b(at: u32, left: vec4<u32>, right: vec4<u32>) -> Row32 {
    return Row32(
        b[at + left.x],
        b[at + left.y],
        b[at + left.z],
        b[at + left.w],
        b[at + right.x],
        b[at + right.y],
        b[at + right.z],
        b[at + right.w],
    );
}

// acc += x w.
fn axpy(acc: ptr<function, Row32>, x: f32, w: Row32) {
    (*acc).q0 += x * w.q0;
    (*acc).q1 += x * w.q1;
    (*acc).q2 += x * w.q2;
    (*acc).q3 += x * w.q3;
    (*acc).q4 += x * w.q4;
    (*acc).q5 += x * w.q5;
    (*acc).q6 += x * w.q6;
    (*acc).q7 += x * w.q7;
}

// vec4 q of a row.
fn quad(acc: Row32, q: u32) -> vec4<f32> {
    switch q {
        case 0u: { return acc.q0; }
        case 1u: { return acc.q1; }
        case 2u: { return acc.q2; }
        case 3u: { return acc.q3; }
        case 4u: { return acc.q4; }
        case 5u: { return acc.q5; }
        case 6u: { return acc.q6; }
        default: { return acc.q7; }
    }
}

// Writes row i, columns j0 .. j0 + 31, of C where they are inside it.
fn store_row(i: u32, j0: u32, acc: Row32) {
    if (i >= p.m) {
        return;
    }
    let n = p.n;
    let at = i * p.ldc;
    for (var j = 0u; j < 32u; j++) {
        if (j0 + j < n) {
            c[at + j0 + j] = quad(acc, j / 4u)[j % 4u];
        }
    }
}

// One workgroup: 8 invocations (one SIMD row of lanes on lavapipe; larger workgroups
// ran no faster) side by side, 16 rows x 256 columns.
@compute @workgroup_size(8, 1)
fn tiled_gemm(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i0 = wg.y * 16u;
    let j0 = (wg.x * 8u + lid.x) * 32u;
    // The loop reads the parameters from these copies: on lavapipe every buffer load
    // in a loop is paid again at each pass.
    let m = p.m;
    let n = p.n;
    let k_total = p.k;
    let lda = p.lda;
    let ldb4 = p.ldb / 4u;
    if (i0 >= m || j0 >= n) {
        return;
    }
    // Rows and column quads past the matrix read the last one's values, in bounds,
    // and are not written.
    let last_row = vec4<u32>(m - 1u);
    let rows0 = min(vec4<u32>(i0) + vec4<u32>(0u, 1u, 2u, 3u), last_row) * lda;
    let rows1 = min(vec4<u32>(i0) + vec4<u32>(4u, 5u, 6u, 7u), last_row) * lda;
    let rows2 = min(vec4<u32>(i0) + vec4<u32>(8u, 9u, 10u, 11u), last_row) * lda;
    let rows3 = min(vec4<u32>(i0) + vec4<u32>(12u, 13u, 14u, 15u), last_row) * lda;
    let last_quad = vec4<u32>(ldb4 - 1u);
    let left = min(vec4<u32>(j0 / 4u) + vec4<u32>(0u, 1u, 2u, 3u), last_quad);
    let right = min(vec4<u32>(j0 / 4u) + vec4<u32>(4u, 5u, 6u, 7u), last_quad);
    var r0: Row32;
    var r1: Row32;
    var r2: Row32;
    var r3: Row32;
    var r4: Row32;
    var r5: Row32;
    var r6: Row32;
    var r7: Row32;
    var r8: Row32;
    var r9: Row32;
    var r10: Row32;
    var r11: Row32;
    var r12: Row32;
    var r13: Row32;
    var r14: Row32;
    var r15: Row32;
    for (var k = 0u; k < k_total; k++) {
        let w = load_b(k * ldb4, left, right);
        axpy(&r0, a[rows0.x + k], w);
        axpy(&r1, a[rows0.y + k], w);
        axpy(&r2, a[rows0.z + k], w);
        axpy(&r3, a[rows0.w + k], w);
        axpy(&r4, a[rows1.x + k], w);
        axpy(&r5, a[rows1.y + k], w);
        axpy(&r6, a[rows1.z + k], w);
        axpy(&r7, a[rows1.w + k], w);
        axpy(&r8, a[rows2.x + k], w);
        axpy(&r9, a[rows2.y + k], w);
        axpy(&r10, a[rows2.z + k], w);
        axpy(&r11, a[rows2.w + k], w);
        axpy(&r12, a[rows3.x + k], w);
        axpy(&r13, a[rows3.y + k], w);
        axpy(&r14, a[rows3.z + k], w);
        axpy(&r15, a[rows3.w + k], w);
    }
    store_row(i0, j0, r0);
    store_row(i0 + 1u, j0, r1);
    store_row(i0 + 2u, j0, r2);
    store_row(i0 + 3u, j0, r3);
    store_row(i0 + 4u, j0, r4);
    store_row(i0 + 5u, j0, r5);
    store_row(i0 + 6u, j0, r6);
    store_row(i0 + 7u, j0, r7);
    store_row(i0 + 8u, j0, r8);
    store_row(i0 + 9u, j0, r9);
    store_row(i0 + 10u, j0, r10);
    store_row(i0 + 11u, j0, r11);
    store_row(i0 + 12u, j0, r12);
    store_row(i0 + 13u, j0, r13);
    store_row(i0 + 14u, j0, r14);
    store_row(i0 + 15u, j0, r15);
}
