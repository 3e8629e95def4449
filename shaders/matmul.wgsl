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
// and 4 or 8 columns in the staged form, 4 or 8 rows and 8 columns in the direct form
// (`*_direct`). A pipeline made with 2 rows and 8 columns covers 16 x 64 blocks: it
// wastes less work than 32 x 32 blocks when few rows are live, with as many
// multiply-adds per invocation (16 accumulators). grad_gemm is made with the wide
// shape of its form: the defaults (4 and 4, 32 x 32 blocks, which the staged form's
// staging and output loops assume), or 8 and 8 (direct). The sums run in the same
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
// (4 or 8) rows by 8 columns, from 8 + ROWS_PER_THREAD loads per k, and keeps it in
// named 4 x 4 matrices (indexed arrays live in memory there and cost a fifth more).
// Each sum runs over k in the same order and skips only zero terms, so the results
// are bitwise those of row_gemm.
//
// Columns of a direct block: 8 an invocation (its pipelines are made with
// COLS_PER_THREAD 8, which the direct form does not read).
const DIRECT_BLOCK_COLS: u32 = 64u;

// An invocation's rows r (which rows of the output they are is up to the kernel):
// r = 0..3 in `top`, 4..7 in `bottom`; its columns lid.x + 8c: c = 0..3 in `left`, 4..7
// in `right`. Element (r, c) of a block is column c % 4, row r % 4 of its matrix.
struct DirectBlock {
    top_left: mat4x4<f32>,
    top_right: mat4x4<f32>,
    bottom_left: mat4x4<f32>,
    bottom_right: mat4x4<f32>,
}

// Element (r, c) of a block.
fn direct_value(acc: DirectBlock, r: u32, c: u32) -> f32 {
    var m = acc.top_left;
    if (r < 4u && c >= 4u) {
        m = acc.top_right;
    } else if (r >= 4u && c < 4u) {
        m = acc.bottom_left;
    } else if (r >= 4u) {
        m = acc.bottom_right;
    }
    return m[c % 4u][r % 4u];
}

// The outer product x w^T as column-major 4 x 4 matrix: column c is x * w[c].
fn outer(x: vec4<f32>, w: vec4<f32>) -> mat4x4<f32> {
    return mat4x4<f32>(x * w.x, x * w.y, x * w.z, x * w.w);
}

// acc(r, c) += x(r) w(c) for the block's 4 or 8 rows and 8 columns.
fn accumulate_direct(
    acc: ptr<function, DirectBlock>,
    x_top: vec4<f32>,
    x_bottom: vec4<f32>,
    w_left: vec4<f32>,
    w_right: vec4<f32>,
) {
    (*acc).top_left += outer(x_top, w_left);
    (*acc).top_right += outer(x_top, w_right);
    if (ROWS_PER_THREAD > 4u) {
        (*acc).bottom_left += outer(x_bottom, w_left);
        (*acc).bottom_right += outer(x_bottom, w_right);
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

// Where four rows' part (`second`: a2, else a1) starts: each row's origin, NONE where
// the part reads as zero.
fn part_origins(rows: array<RowOrigin, 4>, second: bool) -> vec4<u32> {
    if (second) {
        return vec4<u32>(rows[0].second, rows[1].second, rows[2].second, rows[3].second);
    }
    return vec4<u32>(rows[0].first, rows[1].first, rows[2].first, rows[3].first);
}

// The left operand's origins of the invocation's rows first_r .. first_r + 3.
fn direct_row_origins(row0: u32, first_r: u32, gathered: bool) -> array<RowOrigin, 4> {
    var o: array<RowOrigin, 4>;
    for (var r = 0u; r < 4u; r++) {
        o[r] = row_origin(block_row(row0 + first_r + r, gathered), gathered);
    }
    return o;
}

// Output columns lid.x + 8c of a block: c = 0..3 in `left`, 4..7 in `right`.
struct DirectColumns {
    left: vec4<u32>,
    right: vec4<u32>,
}

// acc += the products of one part of the left operand (a1 with weights w, or a2 if
// `second`) over k in [k_range.x, k_range.y), for the block's columns.
fn accumulate_part(
    acc: ptr<function, DirectBlock>,
    second: bool,
    top: array<RowOrigin, 4>,
    bottom: array<RowOrigin, 4>,
    w: Weight,
    columns: DirectColumns,
    k_range: vec2<u32>,
) {
    let w_left = vec4<u32>(w.base) + columns.left * w.j_stride;
    let w_right = vec4<u32>(w.base) + columns.right * w.j_stride;
    let none = vec4<u32>(NONE);
    let top_at = part_origins(top, second);
    let bottom_at = part_origins(bottom, second);
    let top_zero = top_at == none;
    let bottom_zero = bottom_at == none;
    let top_safe = select(top_at, vec4<u32>(0u), top_zero);
    let bottom_safe = select(bottom_at, vec4<u32>(0u), bottom_zero);
    let k_stride = w.k_stride;
    for (var k = k_range.x; k < k_range.y; k++) {
        let kw = k * k_stride;
        var x_bottom = vec4<f32>(0.0);
        if (ROWS_PER_THREAD > 4u) {
            x_bottom = direct_rows(second, bottom_safe, bottom_zero, k);
        }
        accumulate_direct(
            acc,
            direct_rows(second, top_safe, top_zero, k),
            x_bottom,
            direct_weights(w_left, kw),
            direct_weights(w_right, kw),
        );
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
    let top = direct_row_origins(row0, 0u, gathered);
    var bottom = top;
    if (ROWS_PER_THREAD > 4u) {
        bottom = direct_row_origins(row0, 4u, gathered);
    }
    // The weights of each column; columns past the last read the last one's and are
    // not written.
    let j0 = wg.x * DIRECT_BLOCK_COLS + lid.x;
    let last = p.n_out - 1u;
    let columns = DirectColumns(
        min(vec4<u32>(j0) + vec4<u32>(0u, 8u, 16u, 24u), vec4<u32>(last)),
        min(vec4<u32>(j0) + vec4<u32>(32u, 40u, 48u, 56u), vec4<u32>(last)),
    );
    // The loops read the parameters from these copies: on lavapipe every buffer load
    // in a loop is paid again at each pass, one invocation at a time.
    let w1 = p.w1;
    let w2 = p.w2;
    var acc: DirectBlock;
    if (!gathered || block_reads(p.a1, first_row, block_rows)) {
        accumulate_part(&acc, false, top, bottom, w1, columns, vec2<u32>(0u, p.a1.width));
    }
    if (gathered && block_reads(p.a2, first_row, block_rows)) {
        let span = a2_span(wg.x * DIRECT_BLOCK_COLS, DIRECT_BLOCK_COLS);
        accumulate_part(&acc, true, top, bottom, w2, columns, span);
    }
    let o = output_params();
    for (var r = 0u; r < ROWS_PER_THREAD; r++) {
        let b = block_row(row0 + r, gathered);
        for (var c = 0u; c < 8u; c++) {
            store_output(o, b, j0 + 8u * c, direct_value(acc, r, c));
        }
    }
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
// row_gemm_direct does, in its blocks (made with ROWS_PER_THREAD 8 and
// COLS_PER_THREAD 8: 64 x 64 outputs, 8 x 8 an invocation; the loads of a pair's
// origins and list entry are shared by 64 multiply-adds): the same sums in the same
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
    // alone, one column of each 64.
    if (j0 >= g_src.width || k0 >= x_src.width + select(0u, 1u, has_ones)) {
        return;
    }
    // Per output row j (of G) and column k (of X): whether it is in the operand, and
    // for a column past X, its value (1 in the ones column, else 0).
    let j_top = vec4<u32>(j0) + vec4<u32>(0u, 8u, 16u, 24u);
    let j_bottom = j_top + vec4<u32>(32u);
    let k_left = vec4<u32>(k0) + vec4<u32>(0u, 8u, 16u, 24u);
    let k_right = k_left + vec4<u32>(32u);
    let g_width = vec4<u32>(g_src.width);
    let x_width = vec4<u32>(x_src.width);
    let ones_at = vec4<u32>(select(NONE, x_src.width, has_ones));
    let past_left = select(vec4<f32>(0.0), vec4<f32>(1.0), k_left == ones_at);
    let past_right = select(vec4<f32>(0.0), vec4<f32>(1.0), k_right == ones_at);
    var acc: DirectBlock;
    for (var n = 0u; n < pairs; n++) {
        let entry = rows[rows_offset + n];
        let g_at = operand_origin(g_src, step_of(entry), row_of(entry));
        let x_at = operand_origin(x_src, step_of(entry), row_of(entry));
        let g_zero = g_at == NONE;
        let x_zero = x_at == NONE;
        var g_bottom = vec4<f32>(0.0);
        if (ROWS_PER_THREAD > 4u) {
            g_bottom = grad_operand(false, g_at, g_zero, j_bottom, g_width, vec4<f32>(0.0));
        }
        accumulate_direct(
            &acc,
            grad_operand(false, g_at, g_zero, j_top, g_width, vec4<f32>(0.0)),
            g_bottom,
            grad_operand(true, x_at, x_zero, k_left, x_width, past_left),
            grad_operand(true, x_at, x_zero, k_right, x_width, past_right),
        );
    }
    for (var r = 0u; r < ROWS_PER_THREAD; r++) {
        for (var c = 0u; c < 8u; c++) {
            store_grad_output(j0 + 8u * r, k0 + 8u * c, direct_value(acc, r, c));
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
