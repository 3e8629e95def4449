// The input part of layer 0's gate pre-activations for sparse inputs (e.g. temporally
// coded pixels, where a step has few events):
//     out[b, j] = sum over the nonzero inputs k of x_t[b] of x_t[b, k] * W_ih[j, k],
// so its cost follows the number of events, not the input width. step_gemm then adds
// the recurrent part and the biases (with `accumulate` set).
// The nonzeros of each (step, row) are a CSR list: entries offsets[t * B + b] up to
// offsets[t * B + b + 1] of (index, value).

struct SparseParams {
    // Output columns (4H).
    cols: u32,
    // Input width I (the row stride of W_ih).
    input: u32,
    // Offset of W_ih in the parameters.
    w_base: u32,
    // Rows per step in the CSR offsets (the batch capacity B).
    batch_stride: u32,
}

@group(0) @binding(0) var<storage, read> p: SparseParams;
@group(0) @binding(1) var<storage, read> step: Step;
@group(0) @binding(2) var<storage, read> offsets: array<u32>;
@group(0) @binding(3) var<storage, read> indices: array<u32>;
@group(0) @binding(4) var<storage, read> values: array<f32>;
@group(0) @binding(5) var<storage, read> weights: array<f32>;
@group(0) @binding(6) var<storage, read> rows: array<u32>;
@group(0) @binding(7) var<storage, read> tstar: array<u32>;
@group(0) @binding(8) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn sparse_gates(@builtin(global_invocation_id) gid: vec3<u32>) {
    let j = gid.x;
    if (j >= p.cols || gid.y >= step.n_rows) {
        return;
    }
    let b = row_of(rows[step.rows_offset + gid.y]);
    if (tstar[b] < step.t) {
        return;
    }
    let at = step.t * p.batch_stride + b;
    var acc = 0.0;
    for (var q = offsets[at]; q < offsets[at + 1u]; q++) {
        acc += values[q] * weights[p.w_base + j * p.input + indices[q]];
    }
    out[b * p.cols + j] = acc;
}

// The weight gradient of the sparse input, dW_ih[j, k] = sum over the processed
// (step, row) pairs where input k is nonzero of x[k] * dgates[pair, j]: a CSC list per
// input k, entries col_offsets[k] up to col_offsets[k + 1] of (pair, value), in a
// fixed order (deterministic, no atomics). Cost follows the nonzeros of the processed
// steps. The bias gradients come from grad_gemm's column of ones.
@group(0) @binding(2) var<storage, read> col_offsets: array<u32>;
@group(0) @binding(3) var<storage, read> col_pairs: array<u32>;
@group(0) @binding(4) var<storage, read> col_values: array<f32>;
@group(0) @binding(5) var<storage, read> dgates: array<f32>;
@group(0) @binding(8) var<storage, read_write> grads: array<f32>;

@compute @workgroup_size(64)
fn sparse_weight_grad(@builtin(global_invocation_id) gid: vec3<u32>) {
    let j = gid.x;
    let k = gid.y;
    if (j >= p.cols || k >= p.input) {
        return;
    }
    var acc = 0.0;
    for (var e = col_offsets[k]; e < col_offsets[k + 1u]; e++) {
        let pair = col_pairs[e];
        let at = (step_of(pair) * p.batch_stride + row_of(pair)) * p.cols + j;
        acc += col_values[e] * dgates[at];
    }
    grads[p.w_base + j * p.input + k] = acc;
}
