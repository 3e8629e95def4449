// Gathered GEMMs, 32 x 32 output blocks staged through workgroup memory; the
// `*_direct` entry points compute the same blocks, bitwise, reading the operands
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

// Each workgroup computes a 32 x 32 block of outputs with 8 x 8 invocations, each
// holding a 4 x 4 block in registers (rows lid.y + 8r, columns lid.x + 8c), and walks
// the reduction in chunks of 16 staged through workgroup memory.
const BLOCK: u32 = 32u;
const CHUNK: u32 = 16u;
// Output rows (1, 2 or 4) and columns (4 or 8) per invocation in step_gemm and
// dense_gemm. A pipeline made with 2 rows and 8 columns covers 16 x 64 blocks: it
// wastes less work than 32 x 32 blocks when few rows are live, with as many
// multiply-adds per invocation (16 accumulators). grad_gemm stages 32 x 32 blocks and
// its pipeline must keep the defaults (4 and 4), which its staging and output loops
// assume. The sums run in the same order either way, so results are bitwise identical.
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

// Writes an invocation's outputs (rows lid.y + 8r, columns lid.x + 8c of the block),
// with the biases and what `out` holds added as `p` says.
fn store_block(
    wg: vec3<u32>,
    lid: vec3<u32>,
    gathered: bool,
    acc: ptr<function, array<array<f32, 8>, 4>>,
) {
    let block_rows = 8u * ROWS_PER_THREAD;
    let block_cols = 8u * COLS_PER_THREAD;
    for (var r = 0u; r < ROWS_PER_THREAD; r++) {
        let b = block_row(wg.y * block_rows + lid.y + 8u * r, gathered);
        for (var c = 0u; c < COLS_PER_THREAD; c++) {
            let j = wg.x * block_cols + lid.x + 8u * c;
            if (b != NONE && j < p.n_out) {
                var v = (*acc)[r][c];
                if (p.has_bias != 0u) {
                    v += weights[p.bias1 + j] + weights[p.bias2 + j];
                }
                let at = p.out_base + b * p.out_stride + j;
                if (p.accumulate != 0u) {
                    v += out[at];
                }
                out[at] = v;
            }
        }
    }
}

// The outputs of row_gemm, with each invocation reading its operands straight from
// the storage buffers: no workgroup memory and no barriers. The faster form on CPU
// adapters (lavapipe), where a barrier switches between the invocations' coroutines
// and workgroup memory is no nearer than the rest. Each sum runs over k in the same
// order and skips only zero terms, so the results are bitwise those of row_gemm.
fn row_gemm_direct(wg: vec3<u32>, lid: vec3<u32>, gathered: bool) {
    let block_rows = 8u * ROWS_PER_THREAD;
    let block_cols = 8u * COLS_PER_THREAD;
    let first_row = wg.y * block_rows;
    // The left operand of each row. A part that reads as zero (NONE) is loaded from
    // the start of the buffer, in bounds, and replaced by zero.
    var rows_at: array<RowOrigin, 4>;
    for (var r = 0u; r < ROWS_PER_THREAD; r++) {
        rows_at[r] = row_origin(block_row(first_row + lid.y + 8u * r, gathered), gathered);
    }
    // The weights of each column; columns past the last read the last one's and are
    // not written.
    var columns_at: array<ColumnOrigin, 8>;
    for (var c = 0u; c < COLS_PER_THREAD; c++) {
        let j = min(wg.x * block_cols + lid.x + 8u * c, p.n_out - 1u);
        columns_at[c] = column_origin(j);
    }
    var acc: array<array<f32, 8>, 4>;
    // The loops read the parameters from these copies: on lavapipe every buffer load
    // in a loop is paid again at each pass, one invocation at a time.
    let a1_width = p.a1.width;
    let w1_k_stride = p.w1.k_stride;
    if (!gathered || block_reads(p.a1, first_row, block_rows)) {
        for (var k = 0u; k < a1_width; k++) {
            var w: array<f32, 8>;
            for (var c = 0u; c < COLS_PER_THREAD; c++) {
                w[c] = weights[columns_at[c].first + k * w1_k_stride];
            }
            for (var r = 0u; r < ROWS_PER_THREAD; r++) {
                let o = rows_at[r].first;
                let x = select(src1[select(o, 0u, o == NONE) + k], 0.0, o == NONE);
                for (var c = 0u; c < COLS_PER_THREAD; c++) {
                    acc[r][c] += x * w[c];
                }
            }
        }
    }
    if (gathered && block_reads(p.a2, first_row, block_rows)) {
        let span = a2_span(wg.x * block_cols, block_cols);
        let w2_k_stride = p.w2.k_stride;
        for (var k = span.x; k < span.y; k++) {
            var w: array<f32, 8>;
            for (var c = 0u; c < COLS_PER_THREAD; c++) {
                w[c] = weights[columns_at[c].second + k * w2_k_stride];
            }
            for (var r = 0u; r < ROWS_PER_THREAD; r++) {
                let o = rows_at[r].second;
                let x = select(src2[select(o, 0u, o == NONE) + k], 0.0, o == NONE);
                for (var c = 0u; c < COLS_PER_THREAD; c++) {
                    acc[r][c] += x * w[c];
                }
            }
        }
    }
    store_block(wg, lid, gathered, &acc);
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
// row_gemm_direct does: the same sums in the same order, bitwise the same results.
@compute @workgroup_size(8, 8)
fn grad_gemm_direct(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let j0 = wg.y * BLOCK + lid.y;
    let k0 = wg.x * BLOCK + lid.x;
    // The loop reads the parameters from these copies (see row_gemm_direct).
    let pairs = step.n_rows;
    let rows_offset = step.rows_offset;
    let g_src = p.a1;
    let x_src = p.a2;
    let g_width = g_src.width;
    let x_width = x_src.width;
    let ones_at = select(NONE, x_width, p.has_bias != 0u);
    var acc: array<array<f32, 8>, 4>;
    for (var n = 0u; n < pairs; n++) {
        let entry = rows[rows_offset + n];
        let g_at = operand_origin(g_src, step_of(entry), row_of(entry));
        let x_at = operand_origin(x_src, step_of(entry), row_of(entry));
        // A value that reads as zero is loaded from the start of the buffer, in
        // bounds, and replaced.
        var x: array<f32, 8>;
        for (var c = 0u; c < 4u; c++) {
            let k = k0 + 8u * c;
            let in_x = x_at != NONE && k < x_width;
            let ones = select(0.0, 1.0, k == ones_at);
            x[c] = select(ones, src2[select(0u, x_at + k, in_x)], in_x);
        }
        for (var r = 0u; r < 4u; r++) {
            let j = j0 + 8u * r;
            let in_g = g_at != NONE && j < g_width;
            let g = select(0.0, src1[select(0u, g_at + j, in_g)], in_g);
            for (var c = 0u; c < 4u; c++) {
                acc[r][c] += g * x[c];
            }
        }
    }
    store_grad_block(wg, lid, &acc);
}

// Writes an invocation's weight gradients (output rows lid.y + 8r, columns
// lid.x + 8c of the 32 x 32 block), and the bias gradients from the ones column.
fn store_grad_block(wg: vec3<u32>, lid: vec3<u32>, acc: ptr<function, array<array<f32, 8>, 4>>) {
    for (var r = 0u; r < 4u; r++) {
        let j = wg.y * BLOCK + lid.y + 8u * r;
        for (var c = 0u; c < 4u; c++) {
            let k = wg.x * BLOCK + lid.x + 8u * c;
            if (j < p.a1.width) {
                if (k < p.a2.width) {
                    out[p.out_base + j * p.out_stride + k] = (*acc)[r][c];
                } else if (p.has_bias != 0u && k == p.a2.width) {
                    out[p.bias1 + j] = (*acc)[r][c];
                    out[p.bias2 + j] = (*acc)[r][c];
                }
            }
        }
    }
}
