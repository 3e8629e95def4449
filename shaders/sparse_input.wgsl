// The input part of layer 0's gate pre-activations for sparse inputs (e.g. temporally
// coded pixels, where a step has few events):
//     out[b, j] = sum over the nonzero inputs k of x_t[b] of x_t[b, k] * W_ih[j, k],
// so its cost follows the number of events, not the input width. step_gemm then adds
// the recurrent part and the biases (with `accumulate` set).
// Both kernels give each invocation one hidden unit u and its four gates, the columns
// j = g * H + u: the event list is read once for the four, and the workgroups are a
// quarter as many (on a CPU adapter, e.g. lavapipe, that halves the time: each
// workgroup and each list load costs more there than the multiply-adds).
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
    let units = p.cols / 4u;
    let u = gid.x;
    if (u >= units || gid.y >= step.n_rows) {
        return;
    }
    let b = row_of(rows[step.rows_offset + gid.y]);
    if (tstar[b] < step.t) {
        return;
    }
    let at = step.t * p.batch_stride + b;
    var acc = vec4<f32>();
    let w0 = p.w_base + u * p.input;
    let gate_stride = units * p.input;
    // The bound is read once: on lavapipe a buffer load in a loop condition is paid
    // again at every pass (so are sparse_weight_grad's bound and strides).
    let end = offsets[at + 1u];
    for (var q = offsets[at]; q < end; q++) {
        let w = w0 + indices[q];
        let v = values[q];
        let gates = vec4<f32>(
            weights[w],
            weights[w + gate_stride],
            weights[w + 2u * gate_stride],
            weights[w + 3u * gate_stride],
        );
        acc += v * gates;
    }
    for (var g = 0u; g < 4u; g++) {
        out[b * p.cols + g * units + u] = acc[g];
    }
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
    let units = p.cols / 4u;
    let u = gid.x;
    let k = gid.y;
    if (u >= units || k >= p.input) {
        return;
    }
    var acc = vec4<f32>();
    let end = col_offsets[k + 1u];
    let batch_stride = p.batch_stride;
    let cols = p.cols;
    for (var e = col_offsets[k]; e < end; e++) {
        let pair = col_pairs[e];
        let at = (step_of(pair) * batch_stride + row_of(pair)) * cols + u;
        let d = vec4<f32>(dgates[at], dgates[at + units], dgates[at + 2u * units], dgates[at + 3u * units]);
        acc += col_values[e] * d;
    }
    for (var g = 0u; g < 4u; g++) {
        grads[p.w_base + (g * units + u) * p.input + k] = acc[g];
    }
}
