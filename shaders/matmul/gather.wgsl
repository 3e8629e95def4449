// The gathered GEMMs, in files that `gpu::shaders::MATMUL` joins in this order into
// one module: this one (no entry point of its own: the parameters, bindings,
// gathered operands and output stores both forms share), sources.wgsl (the left
// operands' bindings), staged.wgsl (output blocks staged through workgroup memory:
// `step_gemm`, `dense_gemm`, `grad_gemm`) and direct.wgsl (the `*_direct` entry
// points, which compute the same outputs, bitwise, in larger blocks, reading the
// operands straight from the buffers: for CPU adapters, `GpuContext::direct_gemm`;
// `grad_gemm_quads`, the input weight gradient of operands read in vec4s; and
// `grad_gemm_narrow`, that of gradients of at most 4 columns).
// `gpu::shaders::MATMUL_CELL` joins this file, sources_read_write.wgsl, direct.wgsl
// and step_cell.wgsl into the module of the direct form's step GEMMs that run the
// LSTM cell in their epilogue.
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
// The left operands' buffers, src1 and src2 at bindings 2 and 3, are declared by
// sources.wgsl (read only) or, in the module of the GEMMs with the cell in their
// epilogue, by sources_read_write.wgsl.
@group(0) @binding(4) var<storage, read> weights: array<f32>;
@group(0) @binding(5) var<storage, read> rows: array<u32>;
@group(0) @binding(6) var<storage, read> tstar: array<u32>;
@group(0) @binding(7) var<storage, read_write> out: array<f32>;

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
    return a2_unit_span(j0 % units, j1 % units);
}

// The part of a2 that units first .. last read where w2 is block-diagonal: the whole
// blocks that hold them.
fn a2_unit_span(first: u32, last: u32) -> vec2<u32> {
    let lo = (first / p.a2_block) * p.a2_block;
    return vec2<u32>(lo, min((last / p.a2_block + 1u) * p.a2_block, p.a2.width));
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

// Output (b, j) of the sum v as it is stored: v, plus the two biases, plus what `out`
// holds, as `o` says (and in that order: the step GEMMs with the cell in their
// epilogue complete their sums here too, to give the same bits).
fn completed_output(o: OutputParams, b: u32, j: u32, v: f32) -> f32 {
    var sum = v;
    if (o.has_bias) {
        sum += weights[o.bias1 + j] + weights[o.bias2 + j];
    }
    if (o.accumulate) {
        sum += out[o.out_base + b * o.out_stride + j];
    }
    return sum;
}

// Writes output (b, j) = v completed as completed_output says; nothing where b is
// NONE or j is past the last column.
fn store_output(o: OutputParams, b: u32, j: u32, v: f32) {
    if (b == NONE || j >= o.n_out) {
        return;
    }
    out[o.out_base + b * o.out_stride + j] = completed_output(o, b, j, v);
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
