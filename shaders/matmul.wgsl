// Gathered GEMMs, output blocks staged through workgroup memory; the `*_direct` entry
// points compute the same outputs, bitwise, in larger blocks, reading the operands
// straight from the buffers (for CPU adapters: `GpuContext::direct_gemm`).
//
// step_gemm: for each listed row b at step t and output column j,
//     out[b, j] = sum_k A(b, k) W(k, j) (+ bias1[j] + bias2[j])
//   where A is the concatenation of two gathered sources (e.g. [x_t, h_{t-1}]) and W
//   the matching stacked weights. Used for the forward gate pre-activations and the
//   backward dh (recurrent + from the layer or readout above).
// grad_gemm: for each output (j, k), a sum over a list of (step, row) pairs,
//     out[j, k] = sum_p G(p, j) X(p, k),
//   with an optional column of ones (k == X.width) giving the bias gradient.
//   Used for all weight gradients, over exactly the pairs that were processed.
//
// Sums run over k (or p) in a fixed order, so every output is bitwise independent of
// which other rows share its tile: results do not depend on the row list order.

// A gathered operand: element (s, b, k) lives at base + s * step_stride + b * row_stride + k,
// where s = t + step_offset. It reads as zero unless 0 <= s < T and, by `validity`:
// 0: always; 1: s <= tstar[b] (the row was live at s); 2: s == tstar[b] (its loss step).
struct Source {
    base: u32,
    step_stride: u32,
    row_stride: u32,
    width: u32,
    step_offset: i32,
    validity: u32,
    _pad0: u32,
    _pad1: u32,
}

// Weight element (k, j) lives at base + k * k_stride + j * j_stride.
struct Weight {
    base: u32,
    k_stride: u32,
    j_stride: u32,
    _pad: u32,
}

struct GemmParams {
    a1: Source,
    a2: Source,
    w1: Weight,
    w2: Weight,
    // Output columns (step_gemm) or rows (grad_gemm: the G width).
    n_out: u32,
    // step_gemm: add weights[bias1 + j] + weights[bias2 + j] when has_bias.
    // grad_gemm: write the ones-column sums to out[bias1 + j] and out[bias2 + j].
    has_bias: u32,
    bias1: u32,
    bias2: u32,
    // Output element (row, col) at out_base + row * out_stride + col.
    out_base: u32,
    out_stride: u32,
    // step_gemm: add to the values already in `out` (written by sparse_gates).
    accumulate: u32,
    // step_gemm, dense_gemm: 0, or the size of the diagonal blocks of w2 when w2 is
    // block-diagonal in (unit, unit) with out column j = gate * a2.width + unit (the
    // recurrent weights of an ensemble): column j then reads a2 only within its block.
    a2_block: u32,
}

@group(0) @binding(0) var<storage, read> p: GemmParams;
@group(0) @binding(1) var<storage, read> step: Step;
@group(0) @binding(2) var<storage, read> src1: array<f32>;
@group(0) @binding(3) var<storage, read> src2: array<f32>;
@group(0) @binding(4) var<storage, read> weights: array<f32>;
@group(0) @binding(5) var<storage, read> rows: array<u32>;
@group(0) @binding(6) var<storage, read> tstar: array<u32>;
@group(0) @binding(7) var<storage, read_write> out: array<f32>;

// In the staged form each workgroup computes a block of outputs (by default 32 x 32)
// with 8 x 8 invocations, each holding a 4 x 4 block in registers (rows lid.y + 8r,
// columns lid.x + 8c), and walks the reduction in chunks of 16 staged through
// workgroup memory. grad_gemm's blocks are BLOCK x BLOCK.
const BLOCK: u32 = 32u;
const CHUNK: u32 = 16u;
// Output rows and columns per invocation in step_gemm and dense_gemm: 1, 2 or 4 rows
// and 4 or 8 columns in the staged form, 4, 8 or 16 rows and 16 columns in the direct
// form (`*_direct`). A pipeline made with 2 rows and 8 columns covers 16 x 64 blocks: it
// wastes less work than 32 x 32 blocks when few rows are live, with as many
// multiply-adds per invocation (16 accumulators). grad_gemm is made with the wide
// shape of its form: the defaults (4 and 4, 32 x 32 blocks, which the staged form's
// staging and output loops assume), or 16 and 16 (direct). The sums run in the same
// order either way, so results are bitwise identical.
// The host's `GemmShape`s list the shapes used.
override ROWS_PER_THREAD: u32 = 4u;
override COLS_PER_THREAD: u32 = 4u;
// Left operand [block row][chunk index], right operand [chunk index][block column].
var<workgroup> tile_left: array<array<f32, 16>, 32>;
var<workgroup> tile_right: array<array<f32, 64>, 16>;

fn source_valid(src: Source, s: i32, b: u32) -> bool {
    if (s < 0 || u32(s) >= step.steps) {
        return false;
    }
    switch src.validity {
        case 1u: { return u32(s) <= tstar[b]; }
        case 2u: { return u32(s) == tstar[b]; }
        default: { return true; }
    }
}

// Element k of the concatenated operand [a1, a2] for row b at base step t.
fn gather(t: u32, b: u32, k: u32) -> f32 {
    if (k < p.a1.width) {
        let s = i32(t) + p.a1.step_offset;
        if (!source_valid(p.a1, s, b)) {
            return 0.0;
        }
        return src1[p.a1.base + u32(s) * p.a1.step_stride + b * p.a1.row_stride + k];
    }
    let k2 = k - p.a1.width;
    if (k2 >= p.a2.width) {
        return 0.0;
    }
    let s = i32(t) + p.a2.step_offset;
    if (!source_valid(p.a2, s, b)) {
        return 0.0;
    }
    return src2[p.a2.base + u32(s) * p.a2.step_stride + b * p.a2.row_stride + k2];
}

// Row b of list entry n, or NONE when n is past the list or the row is retired at step t.
fn live_row(n: u32) -> u32 {
    if (n >= step.n_rows) {
        return NONE;
    }
    let b = row_of(rows[step.rows_offset + n]);
    if (tstar[b] < step.t) {
        return NONE;
    }
    return b;
}

// acc[r][c] += sum over the staged chunk of tile_left[row r] * tile_right[col c].
fn accumulate_chunk(lid: vec3<u32>, acc: ptr<function, array<array<f32, 8>, 4>>) {
    for (var kk = 0u; kk < CHUNK; kk++) {
        var right: array<f32, 8>;
        for (var c = 0u; c < COLS_PER_THREAD; c++) {
            right[c] = tile_right[kk][lid.x + 8u * c];
        }
        for (var r = 0u; r < ROWS_PER_THREAD; r++) {
            let left = tile_left[lid.y + 8u * r][kk];
            for (var c = 0u; c < COLS_PER_THREAD; c++) {
                (*acc)[r][c] += left * right[c];
            }
        }
    }
}

// Row n of the output block: the live row of list entry n (gathered), or row n itself
// of a plain dense [n_rows, K] operand.
fn block_row(n: u32, gathered: bool) -> u32 {
    if (gathered) {
        return live_row(n);
    }
    return select(NONE, n, n < step.n_rows);
}

// Where output row b's left operand starts in src1 and in src2 (at the step's t for a
// gathered operand), or NONE for a part that reads as zero. Worked out once per row,
// so the loads of the reduction loop carry no step or liveness checks.
struct RowOrigin {
    first: u32,
    second: u32,
}

fn row_origin(b: u32, gathered: bool) -> RowOrigin {
    var o = RowOrigin(NONE, NONE);
    if (b == NONE) {
        return o;
    }
    if (!gathered) {
        o.first = p.a1.base + b * p.a1.row_stride;
        return o;
    }
    o.first = operand_origin(p.a1, step.t, b);
    o.second = operand_origin(p.a2, step.t, b);
    return o;
}

// Where row b of a gathered operand starts at base step t, or NONE where it reads as
// zero.
fn operand_origin(src: Source, t: u32, b: u32) -> u32 {
    let s = i32(t) + src.step_offset;
    if (!source_valid(src, s, b)) {
        return NONE;
    }
    return src.base + u32(s) * src.step_stride + b * src.row_stride;
}

// Element k of the left operand [a1, a2] of a row starting at `o`: the same value as
// gather(step.t, b, k) for a gathered row.
fn left_value(o: RowOrigin, k: u32) -> f32 {
    if (k < p.a1.width) {
        if (o.first == NONE) {
            return 0.0;
        }
        return src1[o.first + k];
    }
    let k2 = k - p.a1.width;
    if (k2 >= p.a2.width || o.second == NONE) {
        return 0.0;
    }
    return src2[o.second + k2];
}

// Where output column j's weights start in w1 and in w2, or NONE past the last column.
// Worked out once per column, as RowOrigin is per row.
struct ColumnOrigin {
    first: u32,
    second: u32,
}

fn column_origin(j: u32) -> ColumnOrigin {
    if (j >= p.n_out) {
        return ColumnOrigin(NONE, NONE);
    }
    return ColumnOrigin(p.w1.base + j * p.w1.j_stride, p.w2.base + j * p.w2.j_stride);
}

// Element k of the stacked weights [w1; w2] in the column starting at `o`.
fn column_value(o: ColumnOrigin, k: u32) -> f32 {
    if (o.first == NONE) {
        return 0.0;
    }
    if (k < p.a1.width) {
        return weights[o.first + k * p.w1.k_stride];
    }
    let k2 = k - p.a1.width;
    if (k2 >= p.a2.width) {
        return 0.0;
    }
    return weights[o.second + k2 * p.w2.k_stride];
}

// Whether any live row among list entries first .. first + count - 1 reads `src` at
// this dispatch's step; a part that no row of a block reads is all zeros there, and
// the block skips it. So h_{-1} is skipped at t = 0, and in the backward pass the gate
// deltas of t + 1 in rows whose loss step is t (ReplayPlan lists those rows last at
// each step, so that they share blocks).
fn block_reads(src: Source, first: u32, count: u32) -> bool {
    let s = i32(step.t) + src.step_offset;
    for (var n = first; n < first + count; n++) {
        let b = live_row(n);
        if (b != NONE && source_valid(src, s, b)) {
            return true;
        }
    }
    return false;
}

// The part [lo, hi) of a2 whose weights can be nonzero in the output columns
// j0 .. j0 + cols - 1: all of it, unless w2 is block-diagonal (p.a2_block) and the
// columns fall in one gate, whose units then span whole blocks from lo to hi.
fn a2_span(j0: u32, cols: u32) -> vec2<u32> {
    let units = p.a2.width;
    if (p.a2_block == 0u || units == 0u || j0 >= p.n_out) {
        return vec2<u32>(0u, units);
    }
    let j1 = min(j0 + cols, p.n_out) - 1u;
    if (j0 / units != j1 / units) {
        return vec2<u32>(0u, units);
    }
    let first = (j0 % units) / p.a2_block;
    let last = (j1 % units) / p.a2_block;
    return vec2<u32>(first * p.a2_block, min((last + 1u) * p.a2_block, units));
}

// out[row, j] = left(row) . W[:, j] (+ biases) for one block of 8 * ROWS_PER_THREAD
// rows and 8 * COLS_PER_THREAD columns.
fn row_gemm(wg: vec3<u32>, lid: vec3<u32>, gathered: bool) {
    // The reduction runs over k in [k_first, k_total): a part that reads as zero adds
    // nothing, and skipping it leaves every sum bitwise the same.
    let block_rows = 8u * ROWS_PER_THREAD;
    let block_cols = 8u * COLS_PER_THREAD;
    var k_first = 0u;
    var k_total = p.a1.width + p.a2.width;
    if (gathered && !block_reads(p.a1, wg.y * block_rows, block_rows)) {
        k_first = p.a1.width;
    }
    if (gathered && !block_reads(p.a2, wg.y * block_rows, block_rows)) {
        k_total = p.a1.width;
    }
    let flat = lid.y * 8u + lid.x;
    // The rows this invocation stages into the left tile (2 entries per block row).
    var load_rows: array<RowOrigin, 8>;
    for (var i = 0u; i < 2u * ROWS_PER_THREAD; i++) {
        let b = block_row(wg.y * block_rows + (flat + 64u * i) / CHUNK, gathered);
        load_rows[i] = row_origin(b, gathered);
    }
    // The column this invocation stages into the right tile: entries flat + 64 i all
    // fall in column flat % block_cols (64 is a multiple of it).
    let load_column = column_origin(wg.x * block_cols + flat % block_cols);
    // Chunks that lie wholly in a2 outside the span multiply zero weights: skipped,
    // leaving every sum bitwise the same.
    let span = a2_span(wg.x * block_cols, block_cols) + vec2<u32>(p.a1.width);
    var acc: array<array<f32, 8>, 4>;
    for (var k0 = k_first; k0 < k_total; k0 += CHUNK) {
        if (k0 >= span.y || (k0 >= p.a1.width && k0 + CHUNK <= span.x)) {
            continue;
        }
        for (var i = 0u; i < 2u * ROWS_PER_THREAD; i++) {
            let e = flat + 64u * i;
            tile_left[e / CHUNK][e % CHUNK] = left_value(load_rows[i], k0 + e % CHUNK);
        }
        for (var i = 0u; i < 2u * COLS_PER_THREAD; i++) {
            let e = flat + 64u * i;
            tile_right[e / block_cols][e % block_cols] =
                column_value(load_column, k0 + e / block_cols);
        }
        workgroupBarrier();
        accumulate_chunk(lid, &acc);
        workgroupBarrier();
    }
    store_block(wg, lid, gathered, &acc);
}

// Writes an invocation's outputs (rows lid.y + 8r, columns lid.x + 8c of the block).
fn store_block(
    wg: vec3<u32>,
    lid: vec3<u32>,
    gathered: bool,
    acc: ptr<function, array<array<f32, 8>, 4>>,
) {
    let block_rows = 8u * ROWS_PER_THREAD;
    let block_cols = 8u * COLS_PER_THREAD;
    let o = output_params();
    for (var r = 0u; r < ROWS_PER_THREAD; r++) {
        let b = block_row(wg.y * block_rows + lid.y + 8u * r, gathered);
        for (var c = 0u; c < COLS_PER_THREAD; c++) {
            store_output(o, b, wg.x * block_cols + lid.x + 8u * c, (*acc)[r][c]);
        }
    }
}

// What store_output reads of `p`, read once before the store loops: on lavapipe every
// buffer load in a loop is paid again at each pass, and these were 7 of the 11 loads
// of each output.
struct OutputParams {
    n_out: u32,
    has_bias: bool,
    bias1: u32,
    bias2: u32,
    out_base: u32,
    out_stride: u32,
    accumulate: bool,
}

fn output_params() -> OutputParams {
    return OutputParams(
        p.n_out,
        p.has_bias != 0u,
        p.bias1,
        p.bias2,
        p.out_base,
        p.out_stride,
        p.accumulate != 0u,
    );
}

// Writes output (b, j) = v, with the biases and what `out` holds added as `o` says;
// nothing where b is NONE or j is past the last column.
fn store_output(o: OutputParams, b: u32, j: u32, v: f32) {
    if (b == NONE || j >= o.n_out) {
        return;
    }
    var sum = v;
    if (o.has_bias) {
        sum += weights[o.bias1 + j] + weights[o.bias2 + j];
    }
    let at = o.out_base + b * o.out_stride + j;
    if (o.accumulate) {
        sum += out[at];
    }
    out[at] = sum;
}

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
    // Groups past ROWS_PER_THREAD are not read.
    let rows0 = part_rows(row0, gathered, second);
    var rows1 = rows0;
    var rows2 = rows0;
    var rows3 = rows0;
    if (ROWS_PER_THREAD > 4u) {
        rows1 = part_rows(row0 + 4u, gathered, second);
    }
    if (ROWS_PER_THREAD > 8u) {
        rows2 = part_rows(row0 + 8u, gathered, second);
        rows3 = part_rows(row0 + 12u, gathered, second);
    }
    let k_stride = w.k_stride;
    for (var k = k_range.x; k < k_range.y; k++) {
        let kw = k * k_stride;
        var x: Quads;
        x.q0 = direct_rows(second, rows0.at, rows0.zero, k);
        if (ROWS_PER_THREAD > 4u) {
            x.q1 = direct_rows(second, rows1.at, rows1.zero, k);
        }
        if (ROWS_PER_THREAD > 8u) {
            x.q2 = direct_rows(second, rows2.at, rows2.zero, k);
            x.q3 = direct_rows(second, rows3.at, rows3.zero, k);
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
fn step_gemm(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    row_gemm(wg, lid, true);
}

// A plain GEMM, out[n_rows, n_out] = src1[n_rows, a1.width] W^T, with the same blocking
// and no gathers: the ceiling that `rankcode bench` sets the step GEMM against.
@compute @workgroup_size(8, 8)
fn dense_gemm(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    row_gemm(wg, lid, false);
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

@compute @workgroup_size(8, 8)
fn grad_gemm(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    // a1 is G (width = output rows j), a2 is X (width = output columns k); the
    // reduction runs over the listed (step, row) pairs.
    let flat = lid.y * 8u + lid.x;
    var acc: array<array<f32, 8>, 4>;
    for (var p0 = 0u; p0 < step.n_rows; p0 += CHUNK) {
        for (var i = 0u; i < 8u; i++) {
            let e = flat + 64u * i;
            // G chunk: [32 output rows][16 pairs].
            let pg = p0 + e % CHUNK;
            let jg = wg.y * BLOCK + e / CHUNK;
            var g = 0.0;
            if (pg < step.n_rows && jg < p.a1.width) {
                let entry = rows[step.rows_offset + pg];
                g = gather(step_of(entry), row_of(entry), jg);
            }
            tile_left[e / CHUNK][e % CHUNK] = g;
            // X chunk: [16 pairs][32 output columns], plus the column of ones.
            let px = p0 + e / BLOCK;
            let kx = wg.x * BLOCK + e % BLOCK;
            var x = 0.0;
            if (px < step.n_rows) {
                if (kx < p.a2.width) {
                    let entry = rows[step.rows_offset + px];
                    x = gather(step_of(entry), row_of(entry), p.a1.width + kx);
                } else if (p.has_bias != 0u && kx == p.a2.width) {
                    x = 1.0;
                }
            }
            tile_right[e / BLOCK][e % BLOCK] = x;
        }
        workgroupBarrier();
        accumulate_chunk(lid, &acc);
        workgroupBarrier();
    }
    store_grad_block(wg, lid, &acc);
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

// Writes an invocation's weight gradients (output rows lid.y + 8r, columns
// lid.x + 8c of the 32 x 32 block).
fn store_grad_block(wg: vec3<u32>, lid: vec3<u32>, acc: ptr<function, array<array<f32, 8>, 4>>) {
    for (var r = 0u; r < 4u; r++) {
        for (var c = 0u; c < 4u; c++) {
            let j = wg.y * BLOCK + lid.y + 8u * r;
            store_grad_output(j, wg.x * BLOCK + lid.x + 8u * c, (*acc)[r][c]);
        }
    }
}

// Writes weight gradient (j, k) = v, or bias gradient j from the ones column; nothing
// outside both.
fn store_grad_output(j: u32, k: u32, v: f32) {
    if (j >= p.a1.width) {
        return;
    }
    if (k < p.a2.width) {
        out[p.out_base + j * p.out_stride + k] = v;
    } else if (p.has_bias != 0u && k == p.a2.width) {
        out[p.bias1 + j] = v;
        out[p.bias2 + j] = v;
    }
}
