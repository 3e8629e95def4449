// The staged form of the gathered GEMMs (see gather.wgsl.inc, which comes before this file
// in the module): `step_gemm`, `dense_gemm` and `grad_gemm`, their output blocks
// staged through workgroup memory.

// In the staged form each workgroup computes a block of outputs (by default 32 x 32)
// with 8 x 8 invocations, each holding a 4 x 4 block in registers (rows lid.y + 8r,
// columns lid.x + 8c), and walks the reduction in chunks of 16 staged through
// workgroup memory. grad_gemm's blocks are BLOCK x BLOCK.
const BLOCK: u32 = 32u;
const CHUNK: u32 = 16u;

// Left operand [block row][chunk index], right operand [chunk index][block column].
var<workgroup> tile_left: array<array<f32, 16>, 32>;
var<workgroup> tile_right: array<array<f32, 64>, 16>;

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
