// The LSTM cell as kernels of their own, forward and backward (one unit's arithmetic
// is cell_math.wgsl.inc's, which comes before this file in the module). One
// invocation per (hidden unit j, listed row n); rows retired at step t are skipped.
// The staged form runs them after its step GEMMs; the direct form runs the cell in
// the GEMMs' epilogue instead (matmul/step_cell.wgsl).
//
// cell_forward: from the gate pre-activations of step t (written by step_gemm),
//   storing the activated gates, c_t and h_t for the backward pass.
// cell_backward: from dh_t (written by step_gemm: recurrent + from above) and the
//   cell-state carry of step t+1, the gate deltas of step t and the carry into t-1.

@group(0) @binding(0) var<storage, read> p: CellParams;
@group(0) @binding(1) var<storage, read> step: Step;
// forward: gate pre-activations [B, 4H]; backward: dh [B, H].
@group(0) @binding(2) var<storage, read> scratch: array<f32>;
@group(0) @binding(3) var<storage, read> rows: array<u32>;
@group(0) @binding(4) var<storage, read> tstar: array<u32>;
// forward: written; backward: read.
@group(0) @binding(5) var<storage, read_write> gates_all: array<f32>;
@group(0) @binding(6) var<storage, read_write> c_all: array<f32>;
// forward: h_all, written; backward: dgates_all, written.
@group(0) @binding(7) var<storage, read_write> h_or_dgates: array<f32>;
// backward only: dc carry [L, B, H].
@group(0) @binding(8) var<storage, read_write> dc_carry: array<f32>;

// The row of list entry gid.y, or NONE if out of range or retired before step t.
fn cell_row(gid: vec3<u32>) -> u32 {
    if (gid.x >= p.hidden || gid.y >= step.n_rows) {
        return NONE;
    }
    let b = row_of(rows[step.rows_offset + gid.y]);
    if (tstar[b] < step.t) {
        return NONE;
    }
    return b;
}

@compute @workgroup_size(64)
fn cell_forward(@builtin(global_invocation_id) gid: vec3<u32>) {
    let b = cell_row(gid);
    if (b == NONE) {
        return;
    }
    let h = p.hidden;
    let j = gid.x;
    let t = step.t;
    let pre = b * 4u * h + j;
    let gates = vec4<f32>(scratch[pre], scratch[pre + h], scratch[pre + 2u * h], scratch[pre + 3u * h]);
    h_or_dgates[cell_state_index(p, t, b, j)] = cell_forward_unit(p, t, b, j, gates);
}

@compute @workgroup_size(64)
fn cell_backward(@builtin(global_invocation_id) gid: vec3<u32>) {
    let b = cell_row(gid);
    if (b == NONE) {
        return;
    }
    let h = p.hidden;
    let j = gid.x;
    let t = step.t;
    // At the loss step nothing flows in from step t+1.
    let dgates = cell_backward_unit(p, t, b, j, scratch[b * h + j], t < tstar[b]);
    let at = cell_gates_index(p, t, b, j);
    h_or_dgates[at] = dgates.x;
    h_or_dgates[at + h] = dgates.y;
    h_or_dgates[at + 2u * h] = dgates.z;
    h_or_dgates[at + 3u * h] = dgates.w;
}
