// The gate GEMM's weights in [K][N] layout for step_gemm_quads (matmul/direct.wgsl),
// copied from the parameters, where each gate weight matrix is stored as PyTorch
// stores it, [N][K] (N = 4H gate rows, K inputs or hidden units):
//     dst[dst_base + k * n + j] = src[src_base + j * k_len + k]
// for j < n, k < k_len. The engine records it at the start of every forward pass, so
// the copy always holds the parameters that pass reads, whoever wrote them (Adam, a
// checkpoint, the host).

struct CopyParams {
    src_base: u32,
    // Rows of the source (N), columns of the copy.
    n: u32,
    // Columns of the source (K), rows of the copy.
    k_len: u32,
    dst_base: u32,
}

@group(0) @binding(0) var<storage, read> p: CopyParams;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

// One element of the copy an invocation: x along the copy's rows' columns (j),
// y along its rows (k), so consecutive invocations write consecutive elements.
@compute @workgroup_size(64)
fn transpose_weights(@builtin(global_invocation_id) id: vec3<u32>) {
    let j = id.x;
    let k = id.y;
    if (j >= p.n || k >= p.k_len) {
        return;
    }
    dst[p.dst_base + k * p.n + j] = src[p.src_base + j * p.k_len + k];
}
