// The direct form of the gathered GEMMs (see gather.wgsl.inc, which comes before this file
// in the module): the `*_direct` entry points, whose invocations read their operands
// straight from the buffers; for CPU adapters (`GpuContext::direct_gemm`); and
// `grad_gemm_quads` and `grad_gemm_narrow`. This file is also part of MATMUL_CELL's
// module, whose step GEMMs (step_cell.wgsl) use its blocks and operand loads.

// The outputs of row_gemm, with each invocation reading its operands straight from
// the storage buffers: no workgroup memory and no barriers. The faster form on CPU
// adapters (lavapipe), where a barrier switches between the invocations' coroutines,
// workgroup memory is no nearer than the rest, and every buffer load is paid lane by
// lane at each pass of a loop: so each invocation computes a large block, ROWS_PER_THREAD
// (4, 8 or 16) rows by 16 columns, from 16 + ROWS_PER_THREAD loads per k, and keeps it
// in named 4 x 4 matrices (indexed arrays live in memory there and cost a fifth more
// at 4 x 8, three to five times as much at 16 x 16 and more).
// Each sum runs over k in the same order and skips only zero terms, so the results
// are bitwise those of row_gemm.
//
// Columns of a direct block: 16 an invocation (its pipelines are made with
// COLS_PER_THREAD 16, which the direct form does not read).
const DIRECT_BLOCK_COLS: u32 = 128u;

// An invocation's rows r (which rows of the output they are is up to the kernel) and
// columns c, each in four groups of four: element (r, c) is column c % 4, row r % 4 of
// matrix m{r / 4}{c / 4}. Rows past ROWS_PER_THREAD stay zero.
struct DirectBlock {
    m00: mat4x4<f32>,
    m01: mat4x4<f32>,
    m02: mat4x4<f32>,
    m03: mat4x4<f32>,
    m10: mat4x4<f32>,
    m11: mat4x4<f32>,
    m12: mat4x4<f32>,
    m13: mat4x4<f32>,
    m20: mat4x4<f32>,
    m21: mat4x4<f32>,
    m22: mat4x4<f32>,
    m23: mat4x4<f32>,
    m30: mat4x4<f32>,
    m31: mat4x4<f32>,
    m32: mat4x4<f32>,
    m33: mat4x4<f32>,
}

// Sixteen values (of an invocation's rows or columns), four to a group.
struct Quads {
    q0: vec4<f32>,
    q1: vec4<f32>,
    q2: vec4<f32>,
    q3: vec4<f32>,
}

// Sixteen indices, four to a group.
struct QuadIndices {
    q0: vec4<u32>,
    q1: vec4<u32>,
    q2: vec4<u32>,
    q3: vec4<u32>,
}

// i, i + 8, ..., i + 120: an invocation's rows or columns 8 apart.
fn spaced_by_8(i: u32) -> QuadIndices {
    let first = vec4<u32>(i) + vec4<u32>(0u, 8u, 16u, 24u);
    return QuadIndices(first, first + vec4<u32>(32u), first + vec4<u32>(64u), first + vec4<u32>(96u));
}

// The outer product x w^T as column-major 4 x 4 matrix: column c is x * w[c].
fn outer(x: vec4<f32>, w: vec4<f32>) -> mat4x4<f32> {
    return mat4x4<f32>(x * w.x, x * w.y, x * w.z, x * w.w);
}

// acc(r, c) += x(r) w(c) for the block's ROWS_PER_THREAD rows and 16 columns.
fn accumulate_direct(acc: ptr<function, DirectBlock>, x: Quads, w: Quads) {
    (*acc).m00 += outer(x.q0, w.q0);
    (*acc).m01 += outer(x.q0, w.q1);
    (*acc).m02 += outer(x.q0, w.q2);
    (*acc).m03 += outer(x.q0, w.q3);
    if (ROWS_PER_THREAD > 4u) {
        (*acc).m10 += outer(x.q1, w.q0);
        (*acc).m11 += outer(x.q1, w.q1);
        (*acc).m12 += outer(x.q1, w.q2);
        (*acc).m13 += outer(x.q1, w.q3);
    }
    if (ROWS_PER_THREAD > 8u) {
        (*acc).m20 += outer(x.q2, w.q0);
        (*acc).m21 += outer(x.q2, w.q1);
        (*acc).m22 += outer(x.q2, w.q2);
        (*acc).m23 += outer(x.q2, w.q3);
        (*acc).m30 += outer(x.q3, w.q0);
        (*acc).m31 += outer(x.q3, w.q1);
        (*acc).m32 += outer(x.q3, w.q2);
        (*acc).m33 += outer(x.q3, w.q3);
    }
}

// Four rows' elements at offset k of src1 or src2 (`second`), from the rows' starts
// `at` (NONE rows given as 0, in bounds) and zero where `zero`.
fn direct_rows(second: bool, at: vec4<u32>, zero: vec4<bool>, k: u32) -> vec4<f32> {
    var x: vec4<f32>;
    if (second) {
        x = vec4<f32>(src2[at.x + k], src2[at.y + k], src2[at.z + k], src2[at.w + k]);
    } else {
        x = vec4<f32>(src1[at.x + k], src1[at.y + k], src1[at.z + k], src1[at.w + k]);
    }
    return select(x, vec4<f32>(0.0), zero);
}

// Four weights at offset k of the columns starting at `at`.
fn direct_weights(at: vec4<u32>, k: u32) -> vec4<f32> {
    return vec4<f32>(weights[at.x + k], weights[at.y + k], weights[at.z + k], weights[at.w + k]);
}

// Where the part (`second`: a2, else a1) of the left operand of block rows
// first .. first + 3 starts: each row's origin, NONE where the part reads as zero.
fn part_origins(first: u32, gathered: bool, second: bool) -> vec4<u32> {
    var at = vec4<u32>(NONE);
    for (var r = 0u; r < 4u; r++) {
        let o = row_origin(block_row(first + r, gathered), gathered);
        at[r] = select(o.first, o.second, second);
    }
    return at;
}

// The rows of a part (see part_origins) with their starts safe to read (0 for a row
// that reads as zero) and where they read as zero.
struct PartRows {
    at: vec4<u32>,
    zero: vec4<bool>,
}

fn part_rows(first: u32, gathered: bool, second: bool) -> PartRows {
    let at = part_origins(first, gathered, second);
    let zero = at == vec4<u32>(NONE);
    return PartRows(select(at, vec4<u32>(0u), zero), zero);
}

// The part rows (see part_rows) of an invocation's rows row0 .. row0 + 15, in four
// groups of four; groups past ROWS_PER_THREAD repeat the first and are not read.
struct InvocationRows {
    g0: PartRows,
    g1: PartRows,
    g2: PartRows,
    g3: PartRows,
}

fn invocation_rows(row0: u32, gathered: bool, second: bool) -> InvocationRows {
    let g0 = part_rows(row0, gathered, second);
    var rows = InvocationRows(g0, g0, g0, g0);
    if (ROWS_PER_THREAD > 4u) {
        rows.g1 = part_rows(row0 + 4u, gathered, second);
    }
    if (ROWS_PER_THREAD > 8u) {
        rows.g2 = part_rows(row0 + 8u, gathered, second);
        rows.g3 = part_rows(row0 + 12u, gathered, second);
    }
    return rows;
}

// acc += the products of one part of the left operand (a1 with weights w, or a2 if
// `second`) over k in [k_range.x, k_range.y), for the invocation's rows row0 ..
// row0 + ROWS_PER_THREAD - 1 and its columns.
fn accumulate_part(
    acc: ptr<function, DirectBlock>,
    second: bool,
    row0: u32,
    gathered: bool,
    w: Weight,
    columns: QuadIndices,
    k_range: vec2<u32>,
) {
    let base = vec4<u32>(w.base);
    let w_at = QuadIndices(
        base + columns.q0 * w.j_stride,
        base + columns.q1 * w.j_stride,
        base + columns.q2 * w.j_stride,
        base + columns.q3 * w.j_stride,
    );
    let rows = invocation_rows(row0, gathered, second);
    let k_stride = w.k_stride;
    for (var k = k_range.x; k < k_range.y; k++) {
        let kw = k * k_stride;
        var x: Quads;
        x.q0 = direct_rows(second, rows.g0.at, rows.g0.zero, k);
        if (ROWS_PER_THREAD > 4u) {
            x.q1 = direct_rows(second, rows.g1.at, rows.g1.zero, k);
        }
        if (ROWS_PER_THREAD > 8u) {
            x.q2 = direct_rows(second, rows.g2.at, rows.g2.zero, k);
            x.q3 = direct_rows(second, rows.g3.at, rows.g3.zero, k);
        }
        let weights = Quads(
            direct_weights(w_at.q0, kw),
            direct_weights(w_at.q1, kw),
            direct_weights(w_at.q2, kw),
            direct_weights(w_at.q3, kw),
        );
        accumulate_direct(acc, x, weights);
    }
}

fn row_gemm_direct(wg: vec3<u32>, lid: vec3<u32>, gathered: bool) {
    let block_rows = 8u * ROWS_PER_THREAD;
    let first_row = wg.y * block_rows;
    // The invocation's rows are consecutive, row0 + r, unlike row_gemm's lid.y + 8r.
    // With a readback every step (train's default) the live rows of a block come first
    // in its list (a longer cadence leaves gaps, at no cost to the results), so n of
    // them keep ceil(n / ROWS_PER_THREAD) invocation rows busy, not min(n, 8), and each
    // busy invocation loads its columns' weights once for all of them. On lavapipe,
    // where the weight loads bound a block of few rows, that made the gate GEMM over 2
    // live rows 1.7 times as fast and over 4 rows 3.2 times.
    let row0 = first_row + lid.y * ROWS_PER_THREAD;
    // An invocation whose rows are all past the list or retired writes nothing, so it
    // stops here. The last steps of a batch often have a few live rows in a narrow
    // block; on lavapipe the lanes of the other invocations then skip the loops.
    var writes = false;
    for (var r = 0u; r < ROWS_PER_THREAD; r++) {
        writes = writes || block_row(row0 + r, gathered) != NONE;
    }
    if (!writes) {
        return;
    }
    // The weights of each column; columns past the last read the last one's and are
    // not written.
    let j0 = wg.x * DIRECT_BLOCK_COLS + lid.x;
    let spaced = spaced_by_8(j0);
    let last = vec4<u32>(p.n_out - 1u);
    let columns = QuadIndices(
        min(spaced.q0, last),
        min(spaced.q1, last),
        min(spaced.q2, last),
        min(spaced.q3, last),
    );
    // The loops read the parameters from these copies: on lavapipe every buffer load
    // in a loop is paid again at each pass, one invocation at a time.
    let w1 = p.w1;
    let w2 = p.w2;
    var acc: DirectBlock;
    if (!gathered || block_reads(p.a1, first_row, block_rows)) {
        let k_range = vec2<u32>(0u, p.a1.width);
        accumulate_part(&acc, false, row0, gathered, w1, columns, k_range);
    }
    if (gathered && block_reads(p.a2, first_row, block_rows)) {
        let span = a2_span(wg.x * DIRECT_BLOCK_COLS, DIRECT_BLOCK_COLS);
        accumulate_part(&acc, true, row0, gathered, w2, columns, span);
    }
    store_direct_block(output_params(), row0, gathered, j0, &acc);
}

// Writes matrix m{g}{q} of a direct block: rows row0 + 4g .. row0 + 4g + 3, columns
// j0 + 8c for c = 4q .. 4q + 3. One matrix at a time: on lavapipe, picking an element
// out of the whole block at each store cost more than the reduction of a small GEMM.
fn store_direct_matrix(
    o: OutputParams,
    row0: u32,
    gathered: bool,
    j0: u32,
    g: u32,
    q: u32,
    m: mat4x4<f32>,
) {
    if (4u * g >= ROWS_PER_THREAD) {
        return;
    }
    for (var r = 0u; r < 4u; r++) {
        let b = block_row(row0 + 4u * g + r, gathered);
        for (var c = 0u; c < 4u; c++) {
            store_output(o, b, j0 + 8u * (4u * q + c), m[c][r]);
        }
    }
}

fn store_direct_block(
    o: OutputParams,
    row0: u32,
    gathered: bool,
    j0: u32,
    acc: ptr<function, DirectBlock>,
) {
    store_direct_matrix(o, row0, gathered, j0, 0u, 0u, (*acc).m00);
    store_direct_matrix(o, row0, gathered, j0, 0u, 1u, (*acc).m01);
    store_direct_matrix(o, row0, gathered, j0, 0u, 2u, (*acc).m02);
    store_direct_matrix(o, row0, gathered, j0, 0u, 3u, (*acc).m03);
    store_direct_matrix(o, row0, gathered, j0, 1u, 0u, (*acc).m10);
    store_direct_matrix(o, row0, gathered, j0, 1u, 1u, (*acc).m11);
    store_direct_matrix(o, row0, gathered, j0, 1u, 2u, (*acc).m12);
    store_direct_matrix(o, row0, gathered, j0, 1u, 3u, (*acc).m13);
    store_direct_matrix(o, row0, gathered, j0, 2u, 0u, (*acc).m20);
    store_direct_matrix(o, row0, gathered, j0, 2u, 1u, (*acc).m21);
    store_direct_matrix(o, row0, gathered, j0, 2u, 2u, (*acc).m22);
    store_direct_matrix(o, row0, gathered, j0, 2u, 3u, (*acc).m23);
    store_direct_matrix(o, row0, gathered, j0, 3u, 0u, (*acc).m30);
    store_direct_matrix(o, row0, gathered, j0, 3u, 1u, (*acc).m31);
    store_direct_matrix(o, row0, gathered, j0, 3u, 2u, (*acc).m32);
    store_direct_matrix(o, row0, gathered, j0, 3u, 3u, (*acc).m33);
}

@compute @workgroup_size(8, 8)
fn step_gemm_direct(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    row_gemm_direct(wg, lid, true);
}

@compute @workgroup_size(8, 8)
fn dense_gemm_direct(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    row_gemm_direct(wg, lid, false);
}

// grad_gemm with each invocation reading G and X straight from the buffers, as
// row_gemm_direct does, in its blocks (made with ROWS_PER_THREAD 16 and
// COLS_PER_THREAD 16: 128 x 128 outputs, 16 x 16 an invocation; the loads of a pair's
// origins and list entry are shared by 256 multiply-adds): the same sums in the same
// order, bitwise the same results.
@compute @workgroup_size(8, 8)
fn grad_gemm_direct(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let j0 = wg.y * 8u * ROWS_PER_THREAD + lid.y;
    let k0 = wg.x * DIRECT_BLOCK_COLS + lid.x;
    // The loop reads the parameters from these copies (see row_gemm_direct).
    let pairs = step.n_rows;
    let rows_offset = step.rows_offset;
    let g_src = p.a1;
    let x_src = p.a2;
    // Column x_src.width of X is the ones column of the bias gradients, if any.
    let has_ones = p.has_bias != 0u;
    // An invocation whose outputs are all past the gradient's rows or columns writes
    // nothing, so it stops here: a sparse layer 0's input gradient is its bias column
    // alone, one column of each 128.
    if (j0 >= g_src.width || k0 >= x_src.width + select(0u, 1u, has_ones)) {
        return;
    }
    // Per output row j (of G) and column k (of X): whether it is in the operand, and
    // for a column past X, its value (1 in the ones column, else 0).
    let j = spaced_by_8(j0);
    let k = spaced_by_8(k0);
    let g_width = vec4<u32>(g_src.width);
    let x_width = vec4<u32>(x_src.width);
    let ones_at = vec4<u32>(select(NONE, x_src.width, has_ones));
    let one = vec4<f32>(1.0);
    let zero = vec4<f32>(0.0);
    let past = Quads(
        select(zero, one, k.q0 == ones_at),
        select(zero, one, k.q1 == ones_at),
        select(zero, one, k.q2 == ones_at),
        select(zero, one, k.q3 == ones_at),
    );
    var acc: DirectBlock;
    for (var n = 0u; n < pairs; n++) {
        let entry = rows[rows_offset + n];
        let g_at = operand_origin(g_src, step_of(entry), row_of(entry));
        let x_at = operand_origin(x_src, step_of(entry), row_of(entry));
        let g_zero = g_at == NONE;
        let x_zero = x_at == NONE;
        var g: Quads;
        g.q0 = grad_operand(false, g_at, g_zero, j.q0, g_width, zero);
        if (ROWS_PER_THREAD > 4u) {
            g.q1 = grad_operand(false, g_at, g_zero, j.q1, g_width, zero);
        }
        if (ROWS_PER_THREAD > 8u) {
            g.q2 = grad_operand(false, g_at, g_zero, j.q2, g_width, zero);
            g.q3 = grad_operand(false, g_at, g_zero, j.q3, g_width, zero);
        }
        let x = Quads(
            grad_operand(true, x_at, x_zero, k.q0, x_width, past.q0),
            grad_operand(true, x_at, x_zero, k.q1, x_width, past.q1),
            grad_operand(true, x_at, x_zero, k.q2, x_width, past.q2),
            grad_operand(true, x_at, x_zero, k.q3, x_width, past.q3),
        );
        accumulate_direct(&acc, g, x);
    }
    store_grad_matrix(j0, k0, 0u, 0u, acc.m00);
    store_grad_matrix(j0, k0, 0u, 1u, acc.m01);
    store_grad_matrix(j0, k0, 0u, 2u, acc.m02);
    store_grad_matrix(j0, k0, 0u, 3u, acc.m03);
    store_grad_matrix(j0, k0, 1u, 0u, acc.m10);
    store_grad_matrix(j0, k0, 1u, 1u, acc.m11);
    store_grad_matrix(j0, k0, 1u, 2u, acc.m12);
    store_grad_matrix(j0, k0, 1u, 3u, acc.m13);
    store_grad_matrix(j0, k0, 2u, 0u, acc.m20);
    store_grad_matrix(j0, k0, 2u, 1u, acc.m21);
    store_grad_matrix(j0, k0, 2u, 2u, acc.m22);
    store_grad_matrix(j0, k0, 2u, 3u, acc.m23);
    store_grad_matrix(j0, k0, 3u, 0u, acc.m30);
    store_grad_matrix(j0, k0, 3u, 1u, acc.m31);
    store_grad_matrix(j0, k0, 3u, 2u, acc.m32);
    store_grad_matrix(j0, k0, 3u, 3u, acc.m33);
}

// Writes matrix m{g}{q} of grad_gemm_direct's block: output rows j0 + 8r for
// r = 4g .. 4g + 3, columns k0 + 8c for c = 4q .. 4q + 3 (as store_direct_matrix).
fn store_grad_matrix(j0: u32, k0: u32, g: u32, q: u32, m: mat4x4<f32>) {
    if (4u * g >= ROWS_PER_THREAD) {
        return;
    }
    for (var r = 0u; r < 4u; r++) {
        for (var c = 0u; c < 4u; c++) {
            store_grad_output(j0 + 8u * (4u * g + r), k0 + 8u * (4u * q + c), m[c][r]);
        }
    }
}

// Four elements i of a pair's G (src1) or X (src2, `second`) row starting at `at`:
// the operand's value where i < width and the row reads (not `zero`), 0 where i < width
// and it does not, and `past` where i >= width. A value not read from the row is
// loaded from the start of the buffer, in bounds, and replaced.
fn grad_operand(
    second: bool,
    at: u32,
    zero: bool,
    i: vec4<u32>,
    width: vec4<u32>,
    past: vec4<f32>,
) -> vec4<f32> {
    let inside = i < width;
    let read = inside & !vec4<bool>(zero);
    let safe = select(vec4<u32>(0u), vec4<u32>(at) + i, read);
    var x: vec4<f32>;
    if (second) {
        x = vec4<f32>(src2[safe.x], src2[safe.y], src2[safe.z], src2[safe.w]);
    } else {
        x = vec4<f32>(src1[safe.x], src1[safe.y], src1[safe.z], src1[safe.w]);
    }
    return select(select(past, vec4<f32>(0.0), inside), x, read);
}

// src1 and src2 read four elements a load, for grad_gemm_quads: the same buffers as
// bindings 2 and 3, bound a second time.
@group(0) @binding(8) var<storage, read> src1_quads: array<vec4<f32>>;
@group(0) @binding(9) var<storage, read> src2_quads: array<vec4<f32>>;

// acc += g x, element by element: each output one product and one add, as in
// accumulate_direct.
fn axpy_quads(acc: ptr<function, Quads>, g: f32, x: Quads) {
    (*acc).q0 += g * x.q0;
    (*acc).q1 += g * x.q1;
    (*acc).q2 += g * x.q2;
    (*acc).q3 += g * x.q3;
}

// Quads q .. q + 3 (four elements each) of the row of src1 or src2 (`second`) whose
// elements start at `at` (a multiple of 4), each quad index clamped to the row's last
// quad `last`; all of them the first quad of the buffer (in bounds, and replaced by the
// caller) where the row is not read.
fn load_quads(second: bool, at: u32, read: bool, q: u32, last: u32) -> Quads {
    let i = select(vec4<u32>(0u), vec4<u32>(at / 4u) + min(vec4<u32>(q) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(last)), read);
    if (second) {
        return Quads(src2_quads[i.x], src2_quads[i.y], src2_quads[i.z], src2_quads[i.w]);
    }
    return Quads(src1_quads[i.x], src1_quads[i.y], src1_quads[i.z], src1_quads[i.w]);
}

// Writes output row j, columns k0 .. k0 + 15, of grad_gemm_quads's block.
fn store_grad_quads(j: u32, k0: u32, acc: Quads) {
    for (var c = 0u; c < 16u; c++) {
        var q: vec4<f32>;
        switch c / 4u {
            case 0u: { q = acc.q0; }
            case 1u: { q = acc.q1; }
            case 2u: { q = acc.q2; }
            default: { q = acc.q3; }
        }
        store_grad_output(j, k0 + c, q[c % 4u]);
    }
}

// grad_gemm for operands whose rows start at multiples of 4 elements (the host checks
// every base and stride, and that both buffers hold whole vec4s): each invocation
// holds 32 output rows j (of G) x 16 consecutive columns k (of X), from 8 vec4 loads
// of G and 4 of X a pair, 512 multiply-adds, in 32 named accumulators; a workgroup is
// 8 x 1 invocations side by side, 32 x 128 outputs. On lavapipe each load is paid lane
// by lane (docs/performance.md), and grad_gemm_direct pays 32 scalar loads for 256.
// Each output is summed over the pairs in order, one product and one add at a time,
// with the same zeros and ones column as grad_gemm_direct: bitwise its results.
@compute @workgroup_size(8, 1)
fn grad_gemm_quads(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let j0 = wg.y * 32u;
    let k0 = (wg.x * 8u + lid.x) * 16u;
    // The loop reads the parameters from these copies (see row_gemm_direct).
    let pairs = step.n_rows;
    let rows_offset = step.rows_offset;
    let g_src = p.a1;
    let x_src = p.a2;
    let has_ones = p.has_bias != 0u;
    if (j0 >= g_src.width || k0 >= x_src.width + select(0u, 1u, has_ones)) {
        return;
    }
    // The quads of G's rows j0 .. j0 + 31 and of X's columns k0 .. k0 + 15, relative to
    // a row's start, and each row's last quad. j0 and k0 are multiples of 4.
    let g_q = j0 / 4u;
    let g_last = (g_src.width - 1u) / 4u;
    let x_q = k0 / 4u;
    let x_has = x_src.width > 0u;
    let x_last = select(0u, (x_src.width - 1u) / 4u, x_has);
    // Per column of X: whether it is in the operand, and for a column past X, its
    // value (1 in the ones column, else 0), as grad_operand.
    let k = QuadIndices(
        vec4<u32>(k0) + vec4<u32>(0u, 1u, 2u, 3u),
        vec4<u32>(k0) + vec4<u32>(4u, 5u, 6u, 7u),
        vec4<u32>(k0) + vec4<u32>(8u, 9u, 10u, 11u),
        vec4<u32>(k0) + vec4<u32>(12u, 13u, 14u, 15u),
    );
    let x_width = vec4<u32>(x_src.width);
    let ones_at = vec4<u32>(select(NONE, x_src.width, has_ones));
    let one = vec4<f32>(1.0);
    let zero = vec4<f32>(0.0);
    let past = Quads(
        select(zero, one, k.q0 == ones_at),
        select(zero, one, k.q1 == ones_at),
        select(zero, one, k.q2 == ones_at),
        select(zero, one, k.q3 == ones_at),
    );
    var a0: Quads;
    var a1: Quads;
    var a2: Quads;
    var a3: Quads;
    var a4: Quads;
    var a5: Quads;
    var a6: Quads;
    var a7: Quads;
    var a8: Quads;
    var a9: Quads;
    var a10: Quads;
    var a11: Quads;
    var a12: Quads;
    var a13: Quads;
    var a14: Quads;
    var a15: Quads;
    var a16: Quads;
    var a17: Quads;
    var a18: Quads;
    var a19: Quads;
    var a20: Quads;
    var a21: Quads;
    var a22: Quads;
    var a23: Quads;
    var a24: Quads;
    var a25: Quads;
    var a26: Quads;
    var a27: Quads;
    var a28: Quads;
    var a29: Quads;
    var a30: Quads;
    var a31: Quads;
    for (var n = 0u; n < pairs; n++) {
        let entry = rows[rows_offset + n];
        let g_at = operand_origin(g_src, step_of(entry), row_of(entry));
        let x_at = operand_origin(x_src, step_of(entry), row_of(entry));
        let g_read = g_at != NONE;
        let x_read = x_at != NONE && x_has;
        // G past its width is loaded (from the row's last quad) but reaches no output.
        let gl = load_quads(false, g_at, g_read, g_q, g_last);
        let gh = load_quads(false, g_at, g_read, g_q + 4u, g_last);
        let g_lo = Quads(
            select(zero, gl.q0, g_read),
            select(zero, gl.q1, g_read),
            select(zero, gl.q2, g_read),
            select(zero, gl.q3, g_read),
        );
        let g_hi = Quads(
            select(zero, gh.q0, g_read),
            select(zero, gh.q1, g_read),
            select(zero, gh.q2, g_read),
            select(zero, gh.q3, g_read),
        );
        let xl = load_quads(true, x_at, x_read, x_q, x_last);
        // Inside X: the value read, or 0 where the row reads as zero; past it: `past`.
        let x = Quads(
            select(past.q0, select(zero, xl.q0, x_read), k.q0 < x_width),
            select(past.q1, select(zero, xl.q1, x_read), k.q1 < x_width),
            select(past.q2, select(zero, xl.q2, x_read), k.q2 < x_width),
            select(past.q3, select(zero, xl.q3, x_read), k.q3 < x_width),
        );
        axpy_quads(&a0, g_lo.q0.x, x);
        axpy_quads(&a1, g_lo.q0.y, x);
        axpy_quads(&a2, g_lo.q0.z, x);
        axpy_quads(&a3, g_lo.q0.w, x);
        axpy_quads(&a4, g_lo.q1.x, x);
        axpy_quads(&a5, g_lo.q1.y, x);
        axpy_quads(&a6, g_lo.q1.z, x);
        axpy_quads(&a7, g_lo.q1.w, x);
        axpy_quads(&a8, g_lo.q2.x, x);
        axpy_quads(&a9, g_lo.q2.y, x);
        axpy_quads(&a10, g_lo.q2.z, x);
        axpy_quads(&a11, g_lo.q2.w, x);
        axpy_quads(&a12, g_lo.q3.x, x);
        axpy_quads(&a13, g_lo.q3.y, x);
        axpy_quads(&a14, g_lo.q3.z, x);
        axpy_quads(&a15, g_lo.q3.w, x);
        axpy_quads(&a16, g_hi.q0.x, x);
        axpy_quads(&a17, g_hi.q0.y, x);
        axpy_quads(&a18, g_hi.q0.z, x);
        axpy_quads(&a19, g_hi.q0.w, x);
        axpy_quads(&a20, g_hi.q1.x, x);
        axpy_quads(&a21, g_hi.q1.y, x);
        axpy_quads(&a22, g_hi.q1.z, x);
        axpy_quads(&a23, g_hi.q1.w, x);
        axpy_quads(&a24, g_hi.q2.x, x);
        axpy_quads(&a25, g_hi.q2.y, x);
        axpy_quads(&a26, g_hi.q2.z, x);
        axpy_quads(&a27, g_hi.q2.w, x);
        axpy_quads(&a28, g_hi.q3.x, x);
        axpy_quads(&a29, g_hi.q3.y, x);
        axpy_quads(&a30, g_hi.q3.z, x);
        axpy_quads(&a31, g_hi.q3.w, x);
    }
    store_grad_quads(j0, k0, a0);
    store_grad_quads(j0 + 1u, k0, a1);
    store_grad_quads(j0 + 2u, k0, a2);
    store_grad_quads(j0 + 3u, k0, a3);
    store_grad_quads(j0 + 4u, k0, a4);
    store_grad_quads(j0 + 5u, k0, a5);
    store_grad_quads(j0 + 6u, k0, a6);
    store_grad_quads(j0 + 7u, k0, a7);
    store_grad_quads(j0 + 8u, k0, a8);
    store_grad_quads(j0 + 9u, k0, a9);
    store_grad_quads(j0 + 10u, k0, a10);
    store_grad_quads(j0 + 11u, k0, a11);
    store_grad_quads(j0 + 12u, k0, a12);
    store_grad_quads(j0 + 13u, k0, a13);
    store_grad_quads(j0 + 14u, k0, a14);
    store_grad_quads(j0 + 15u, k0, a15);
    store_grad_quads(j0 + 16u, k0, a16);
    store_grad_quads(j0 + 17u, k0, a17);
    store_grad_quads(j0 + 18u, k0, a18);
    store_grad_quads(j0 + 19u, k0, a19);
    store_grad_quads(j0 + 20u, k0, a20);
    store_grad_quads(j0 + 21u, k0, a21);
    store_grad_quads(j0 + 22u, k0, a22);
    store_grad_quads(j0 + 23u, k0, a23);
    store_grad_quads(j0 + 24u, k0, a24);
    store_grad_quads(j0 + 25u, k0, a25);
    store_grad_quads(j0 + 26u, k0, a26);
    store_grad_quads(j0 + 27u, k0, a27);
    store_grad_quads(j0 + 28u, k0, a28);
    store_grad_quads(j0 + 29u, k0, a29);
    store_grad_quads(j0 + 30u, k0, a30);
    store_grad_quads(j0 + 31u, k0, a31);
}

// grad_gemm for gradients of at most 4 columns, the bias column included: the input
// weights of tasks with 1 to 3 inputs (the toy tasks' one), and a sparse layer 0's
// bias column alone. grad_gemm_direct's 16 x 16 blocks and grad_gemm_quads's 32 x 16
// left 14 or 15 of every 16 columns idle there, and ran on a few invocations: at the
// toy shape the input weight gradient took a fifth of a full-length batch. Here each
// invocation holds 4 consecutive rows j of G (one vec4 load a pair; the host checks
// G's rows start at multiples of 4) x the 4 columns k = 0 .. 3 of X (the ones column
// among them), 16 multiply-adds a pair; a workgroup is 8 invocations, 32 rows.
// Each output is summed over the pairs in order, one product and one add at a time,
// with the same zeros and ones column as grad_gemm_direct: bitwise its results.
@compute @workgroup_size(8, 1)
fn grad_gemm_narrow(@builtin(global_invocation_id) id: vec3<u32>) {
    let j0 = id.x * 4u;
    // The loop reads the parameters from these copies (see row_gemm_direct).
    let pairs = step.n_rows;
    let rows_offset = step.rows_offset;
    let g_src = p.a1;
    let x_src = p.a2;
    if (j0 >= g_src.width) {
        return;
    }
    // Per column of X: whether it is in the operand, and for a column past X, its
    // value (1 in the ones column, else 0), as grad_operand.
    let k = vec4<u32>(0u, 1u, 2u, 3u);
    let inside = k < vec4<u32>(x_src.width);
    let ones_at = vec4<u32>(select(NONE, x_src.width, p.has_bias != 0u));
    let zero = vec4<f32>(0.0);
    let past = select(zero, vec4<f32>(1.0), k == ones_at);
    var a0: vec4<f32>;
    var a1: vec4<f32>;
    var a2: vec4<f32>;
    var a3: vec4<f32>;
    for (var n = 0u; n < pairs; n++) {
        let entry = rows[rows_offset + n];
        let g_at = operand_origin(g_src, step_of(entry), row_of(entry));
        let x_at = operand_origin(x_src, step_of(entry), row_of(entry));
        let g_read = g_at != NONE;
        let x_read = vec4<bool>(x_at != NONE) & inside;
        let g = select(zero, src1_quads[select(0u, (g_at + j0) / 4u, g_read)], g_read);
        let xi = select(vec4<u32>(0u), vec4<u32>(x_at) + k, x_read);
        let xv = select(zero, vec4<f32>(src2[xi.x], src2[xi.y], src2[xi.z], src2[xi.w]), x_read);
        let x = select(past, xv, inside);
        a0 += g.x * x;
        a1 += g.y * x;
        a2 += g.z * x;
        a3 += g.w * x;
    }
    for (var c = 0u; c < 4u; c++) {
        store_grad_output(j0, c, a0[c]);
        store_grad_output(j0 + 1u, c, a1[c]);
        store_grad_output(j0 + 2u, c, a2[c]);
        store_grad_output(j0 + 3u, c, a3[c]);
    }
}
