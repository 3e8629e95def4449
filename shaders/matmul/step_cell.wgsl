// The direct form's step GEMMs with the LSTM cell in their epilogue: one dispatch a
// layer and step where the staged form makes two (a GEMM, then lstm_cell.wgsl's
// kernel). On lavapipe a dispatch costs about 0.06 ms however little it computes,
// and the cell kernels were a third of a step's GPU time at the noise-vs-signal shape
// (docs/performance.md, 'The cell in the GEMMs' epilogue').
//
// step_cell_forward: the gate GEMM, then the cell on the pre-activations still in
//   registers: h_t, c_t and the activated gates of the invocation's rows and units.
// step_cell_backward: the dh GEMM, then the cell backward: the gate deltas of step t
//   and the carry into t - 1.
//
// Both read the weights in vec4s in [K][N] layout (`weights_kn`): each
// invocation holds ROWS_PER_THREAD (16, or 4 for a few live rows) consecutive list
// rows x QUAD_COLS (32 or 16) consecutive columns, from QUAD_COLS / 4 vec4 loads of the
// weights and ROWS_PER_THREAD scalar loads of the left operand a k, in named
// accumulators; a workgroup is 8 x 1 invocations side by side. step_gemm_direct pays
// 32 scalar loads for 256 multiply-adds; these 24 for 512 at 32 columns, 20 for 256 at
// 16 (docs/performance.md, 'The gate GEMM in vec4s'). The forward copy interleaves the
// gates, column 4j + g holding gate g of unit j, so that an invocation's 32 columns
// are all four gates of 8 units. Each output is summed over k in the same order, a1
// then a2, one product and one add at a time, skipping the same all-zero parts, and
// the cell's arithmetic is cell_math.wgsl.inc's: bitwise the staged form's results.
//
// In this module (`gpu::shaders::MATMUL_CELL`) the left operands are read-write
// (sources_read_write.wgsl.inc): the forward kernel writes h_t into the buffer whose
// h_{t-1} (and, above layer 0, the lower layer's h_t) it reads, the backward one the
// gate deltas of step t into the buffer whose deltas of t + 1 it reads.

// The weights in [K][N] layout (element (k, j) at base + k * k_stride + j, each row
// starting at a multiple of 4 elements), read four columns a load: the copies that
// `weight_copy.wgsl` writes from the parameters at the start of each forward pass
// (the gate GEMM's [K][4H] with the gates interleaved, the dh GEMM's [4H][H] with
// padded rows), or, for the dh GEMM where H is a multiple of 4, the parameters
// themselves, already [K][N] with rows that start at multiples of 4.
@group(0) @binding(10) var<storage, read> weights_kn: array<vec4<f32>>;
@group(0) @binding(11) var<storage, read> cell: CellParams;
@group(0) @binding(12) var<storage, read_write> gates_all: array<f32>;
@group(0) @binding(13) var<storage, read_write> c_all: array<f32>;
// Backward only: the cell-state carry [L, B, H].
@group(0) @binding(14) var<storage, read_write> dc_carry: array<f32>;

// Columns of an invocation: 32, or 16 for outputs of few columns (the
// dh GEMM's H), where a workgroup of 8 x 32 would leave lanes without a column.
override QUAD_COLS: u32 = 32u;

// One output row's QUAD_COLS consecutive columns of an invocation's block (`hi`
// unused at 16).
struct RowQuads {
    lo: Quads,
    hi: Quads,
}

// An invocation's block: its rows 0 .. 15 (rows past ROWS_PER_THREAD stay
// zero), QUAD_COLS columns each.
struct QuadRowBlock {
    r0: RowQuads,
    r1: RowQuads,
    r2: RowQuads,
    r3: RowQuads,
    r4: RowQuads,
    r5: RowQuads,
    r6: RowQuads,
    r7: RowQuads,
    r8: RowQuads,
    r9: RowQuads,
    r10: RowQuads,
    r11: RowQuads,
    r12: RowQuads,
    r13: RowQuads,
    r14: RowQuads,
    r15: RowQuads,
}

// row + x w, element by element: each output one product and one add, as in
// accumulate_direct.
fn axpy_row(row: RowQuads, x: f32, w: RowQuads) -> RowQuads {
    var r = row;
    r.lo = Quads(row.lo.q0 + x * w.lo.q0, row.lo.q1 + x * w.lo.q1, row.lo.q2 + x * w.lo.q2, row.lo.q3 + x * w.lo.q3);
    if (QUAD_COLS > 16u) {
        r.hi = Quads(row.hi.q0 + x * w.hi.q0, row.hi.q1 + x * w.hi.q1, row.hi.q2 + x * w.hi.q2, row.hi.q3 + x * w.hi.q3);
    }
    return r;
}

// The QUAD_COLS columns from quad q of the [K][N] weight row whose first quad is
// `row_quad`, each quad index clamped to the row's last quad `last` (columns past the
// last are not written).
fn weight_row_quads(row_quad: u32, q: u32, last: u32) -> RowQuads {
    let step = vec4<u32>(0u, 1u, 2u, 3u);
    let lo = vec4<u32>(row_quad) + min(vec4<u32>(q) + step, vec4<u32>(last));
    var w: RowQuads;
    w.lo = Quads(weights_kn[lo.x], weights_kn[lo.y], weights_kn[lo.z], weights_kn[lo.w]);
    if (QUAD_COLS > 16u) {
        let hi = vec4<u32>(row_quad) + min(vec4<u32>(q + 4u) + step, vec4<u32>(last));
        w.hi = Quads(weights_kn[hi.x], weights_kn[hi.y], weights_kn[hi.z], weights_kn[hi.w]);
    }
    return w;
}

// acc += the products of one part of the left operand (a1 with the [K][N] weights w,
// or a2 if `second`) over k in [k_range.x, k_range.y), for the invocation's rows row0 ..
// row0 + ROWS_PER_THREAD - 1 and its QUAD_COLS columns from quad q.
fn accumulate_part_quads(
    acc: ptr<function, QuadRowBlock>,
    second: bool,
    row0: u32,
    w: Weight,
    q: u32,
    last: u32,
    k_range: vec2<u32>,
) {
    let rows = invocation_rows(row0, true, second);
    let base_quad = w.base / 4u;
    let k_quads = w.k_stride / 4u;
    for (var k = k_range.x; k < k_range.y; k++) {
        let wk = weight_row_quads(base_quad + k * k_quads, q, last);
        let x0 = direct_rows(second, rows.g0.at, rows.g0.zero, k);
        (*acc).r0 = axpy_row((*acc).r0, x0.x, wk);
        (*acc).r1 = axpy_row((*acc).r1, x0.y, wk);
        (*acc).r2 = axpy_row((*acc).r2, x0.z, wk);
        (*acc).r3 = axpy_row((*acc).r3, x0.w, wk);
        if (ROWS_PER_THREAD > 4u) {
            let x1 = direct_rows(second, rows.g1.at, rows.g1.zero, k);
            (*acc).r4 = axpy_row((*acc).r4, x1.x, wk);
            (*acc).r5 = axpy_row((*acc).r5, x1.y, wk);
            (*acc).r6 = axpy_row((*acc).r6, x1.z, wk);
            (*acc).r7 = axpy_row((*acc).r7, x1.w, wk);
        }
        if (ROWS_PER_THREAD > 8u) {
            let x2 = direct_rows(second, rows.g2.at, rows.g2.zero, k);
            let x3 = direct_rows(second, rows.g3.at, rows.g3.zero, k);
            (*acc).r8 = axpy_row((*acc).r8, x2.x, wk);
            (*acc).r9 = axpy_row((*acc).r9, x2.y, wk);
            (*acc).r10 = axpy_row((*acc).r10, x2.z, wk);
            (*acc).r11 = axpy_row((*acc).r11, x2.w, wk);
            (*acc).r12 = axpy_row((*acc).r12, x3.x, wk);
            (*acc).r13 = axpy_row((*acc).r13, x3.y, wk);
            (*acc).r14 = axpy_row((*acc).r14, x3.z, wk);
            (*acc).r15 = axpy_row((*acc).r15, x3.w, wk);
        }
    }
}

// Quad q (0 .. QUAD_COLS / 4 - 1) of a block row.
fn row_quad(row: RowQuads, q: u32) -> vec4<f32> {
    switch q {
        case 0u: { return row.lo.q0; }
        case 1u: { return row.lo.q1; }
        case 2u: { return row.lo.q2; }
        case 3u: { return row.lo.q3; }
        case 4u: { return row.hi.q0; }
        case 5u: { return row.hi.q1; }
        case 6u: { return row.hi.q2; }
        default: { return row.hi.q3; }
    }
}

// The part of a2 that the units of the interleaved gate columns j0 .. j0 + QUAD_COLS
// - 1 read (as a2_span, for columns 4j + g).
fn a2_span_interleaved(j0: u32) -> vec2<u32> {
    if (p.a2_block == 0u || p.a2.width == 0u) {
        return vec2<u32>(0u, p.a2.width);
    }
    let j1 = min(j0 + QUAD_COLS, p.n_out) - 1u;
    return a2_unit_span(j0 / 4u, j1 / 4u);
}

// The GEMM of an invocation's block: rows row0 .. row0 + ROWS_PER_THREAD - 1 of the
// list, columns j0 .. j0 + QUAD_COLS - 1 (`interleaved`: the forward gate columns,
// 4j + g). False where the invocation has nothing to write: no live row, or no
// column.
fn step_block(acc: ptr<function, QuadRowBlock>, row0: u32, j0: u32, interleaved: bool) -> bool {
    // As in row_gemm_direct: an invocation with no live row stops here.
    var writes = false;
    for (var r = 0u; r < ROWS_PER_THREAD; r++) {
        writes = writes || block_row(row0 + r, true) != NONE;
    }
    let n_out = p.n_out;
    if (!writes || j0 >= n_out) {
        return false;
    }
    let q = j0 / 4u;
    let last = (n_out - 1u) / 4u;
    // The loops read the parameters from these copies (see row_gemm_direct).
    let w1 = p.w1;
    let w2 = p.w2;
    if (block_reads(p.a1, row0, ROWS_PER_THREAD)) {
        accumulate_part_quads(acc, false, row0, w1, q, last, vec2<u32>(0u, p.a1.width));
    }
    if (block_reads(p.a2, row0, ROWS_PER_THREAD)) {
        var span = a2_span(j0, QUAD_COLS);
        if (interleaved) {
            span = a2_span_interleaved(j0);
        }
        accumulate_part_quads(acc, true, row0, w2, q, last, span);
    }
    return true;
}

// Block row r (row0 + r of the list) of step_cell_forward: the pre-activations of
// units j0 / 4 .. j0 / 4 + QUAD_COLS / 4 - 1, one quad (i, f, g, o) a unit, are
// completed as store_output would store them (completed_output: the GEMM's sum, plus
// the two biases, plus what sparse_gates wrote), and the cell runs on them. h_t goes
// to src2, the buffer of h_{t-1}.
fn cell_forward_row(o: OutputParams, cp: CellParams, row0: u32, r: u32, j0: u32, row: RowQuads) {
    if (r >= ROWS_PER_THREAD) {
        return;
    }
    let b = block_row(row0 + r, true);
    if (b == NONE) {
        return;
    }
    let t = step.t;
    let h = cp.hidden;
    for (var q = 0u; q < QUAD_COLS / 4u; q++) {
        let j = j0 / 4u + q;
        if (j >= h) {
            return;
        }
        let sum = row_quad(row, q);
        let pre = vec4<f32>(
            completed_output(o, b, j, sum.x),
            completed_output(o, b, j + h, sum.y),
            completed_output(o, b, j + 2u * h, sum.z),
            completed_output(o, b, j + 3u * h, sum.w),
        );
        src2[cell_state_index(cp, t, b, j)] = cell_forward_unit(cp, t, b, j, pre);
    }
}

// Block row r of step_cell_backward: dh_t of units j0 .. j0 + QUAD_COLS - 1 (the dh
// GEMM has neither bias nor a sum to add to), and the cell backward on it. The gate
// deltas go to src1, the buffer of those of step t + 1.
fn cell_backward_row(cp: CellParams, row0: u32, r: u32, j0: u32, row: RowQuads) {
    if (r >= ROWS_PER_THREAD) {
        return;
    }
    let b = block_row(row0 + r, true);
    if (b == NONE) {
        return;
    }
    let t = step.t;
    let h = cp.hidden;
    // At the loss step nothing flows in from step t + 1.
    let carried = t < tstar[b];
    for (var c = 0u; c < QUAD_COLS; c++) {
        let j = j0 + c;
        if (j >= h) {
            return;
        }
        let dh = row_quad(row, c / 4u)[c % 4u];
        let dgates = cell_backward_unit(cp, t, b, j, dh, carried);
        let at = cell_gates_index(cp, t, b, j);
        src1[at] = dgates.x;
        src1[at + h] = dgates.y;
        src1[at + 2u * h] = dgates.z;
        src1[at + 3u * h] = dgates.w;
    }
}

@compute @workgroup_size(8, 1)
fn step_cell_forward(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let row0 = wg.y * ROWS_PER_THREAD;
    let j0 = (wg.x * 8u + lid.x) * QUAD_COLS;
    var acc: QuadRowBlock;
    if (!step_block(&acc, row0, j0, true)) {
        return;
    }
    let o = output_params();
    let cp = cell;
    cell_forward_row(o, cp, row0, 0u, j0, acc.r0);
    cell_forward_row(o, cp, row0, 1u, j0, acc.r1);
    cell_forward_row(o, cp, row0, 2u, j0, acc.r2);
    cell_forward_row(o, cp, row0, 3u, j0, acc.r3);
    cell_forward_row(o, cp, row0, 4u, j0, acc.r4);
    cell_forward_row(o, cp, row0, 5u, j0, acc.r5);
    cell_forward_row(o, cp, row0, 6u, j0, acc.r6);
    cell_forward_row(o, cp, row0, 7u, j0, acc.r7);
    cell_forward_row(o, cp, row0, 8u, j0, acc.r8);
    cell_forward_row(o, cp, row0, 9u, j0, acc.r9);
    cell_forward_row(o, cp, row0, 10u, j0, acc.r10);
    cell_forward_row(o, cp, row0, 11u, j0, acc.r11);
    cell_forward_row(o, cp, row0, 12u, j0, acc.r12);
    cell_forward_row(o, cp, row0, 13u, j0, acc.r13);
    cell_forward_row(o, cp, row0, 14u, j0, acc.r14);
    cell_forward_row(o, cp, row0, 15u, j0, acc.r15);
}

@compute @workgroup_size(8, 1)
fn step_cell_backward(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let row0 = wg.y * ROWS_PER_THREAD;
    let j0 = (wg.x * 8u + lid.x) * QUAD_COLS;
    var acc: QuadRowBlock;
    if (!step_block(&acc, row0, j0, false)) {
        return;
    }
    let cp = cell;
    cell_backward_row(cp, row0, 0u, j0, acc.r0);
    cell_backward_row(cp, row0, 1u, j0, acc.r1);
    cell_backward_row(cp, row0, 2u, j0, acc.r2);
    cell_backward_row(cp, row0, 3u, j0, acc.r3);
    cell_backward_row(cp, row0, 4u, j0, acc.r4);
    cell_backward_row(cp, row0, 5u, j0, acc.r5);
    cell_backward_row(cp, row0, 6u, j0, acc.r6);
    cell_backward_row(cp, row0, 7u, j0, acc.r7);
    cell_backward_row(cp, row0, 8u, j0, acc.r8);
    cell_backward_row(cp, row0, 9u, j0, acc.r9);
    cell_backward_row(cp, row0, 10u, j0, acc.r10);
    cell_backward_row(cp, row0, 11u, j0, acc.r11);
    cell_backward_row(cp, row0, 12u, j0, acc.r12);
    cell_backward_row(cp, row0, 13u, j0, acc.r13);
    cell_backward_row(cp, row0, 14u, j0, acc.r14);
    cell_backward_row(cp, row0, 15u, j0, acc.r15);
}
