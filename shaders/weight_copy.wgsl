// The weights that the direct form's step GEMMs (matmul/step_cell.wgsl) read in
// vec4s, copied from the parameters into rows that start at multiples of 4 elements:
//     dst[dst_base + k * dst_row + j] = src[src_base + k * src_k + s(j) * src_j]
// for j < n, k < k_len, where s(j) = j, or (j % 4) H + j / 4 with the gates
// interleaved (gate_units H): column 4u + g of the copy is then gate g of unit u. The
// forward gate GEMM's weights are stored as PyTorch stores them, [4H][K] (src_k 1,
// src_j K), and copied to [K][4H] with the gates interleaved; the dh GEMM's, [4H][H]
// or [C][H] (src_k H, src_j 1), keep their layout with rows padded to a multiple of 4
// (only where H is not a multiple of 4: otherwise the dh GEMM reads the parameters).
// The engine records the copies at the start of every forward pass, so they hold the
// parameters that pass and its backward pass read, whoever wrote them (Adam, a
// checkpoint, the host).

struct CopyParams {
    src_base: u32,
    src_k: u32,
    src_j: u32,
    // Columns of the copy.
    n: u32,
    // Rows of the copy.
    k_len: u32,
    dst_base: u32,
    // Elements between the copy's rows (a multiple of 4, at least n).
    dst_row: u32,
    // H where the copy interleaves the gates of H units, else 0.
    gate_units: u32,
}

@group(0) @binding(0) var<storage, read> p: CopyParams;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

// One element of the copy an invocation: x along a row of the copy (j), y along its
// rows (k), so consecutive invocations write consecutive elements.
@compute @workgroup_size(64)
fn copy_weights(@builtin(global_invocation_id) id: vec3<u32>) {
    let j = id.x;
    let k = id.y;
    if (j >= p.n || k >= p.k_len) {
        return;
    }
    var s = j;
    if (p.gate_units != 0u) {
        s = (j % 4u) * p.gate_units + j / 4u;
    }
    dst[p.dst_base + k * p.dst_row + j] = src[p.src_base + k * p.src_k + s * p.src_j];
}
