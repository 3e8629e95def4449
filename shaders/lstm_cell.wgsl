// The fused LSTM cell (PyTorch gate order i, f, g, o), forward and backward.
// One invocation per (hidden unit j, listed row n); rows retired at step t are skipped.
//
// cell_forward: from the gate pre-activations of step t (written by step_gemm),
//   c_t = f * c_{t-1} + i * g,  h_t = o * tanh(c_t),
//   storing the activated gates, c_t and h_t for the backward pass.
// cell_backward: from dh_t (written by step_gemm: recurrent + from above) and the
//   cell-state carry of step t+1, the gate deltas of step t and the carry into t-1.

struct CellParams {
    hidden: u32,
    // Rows per step in the state buffers (the batch capacity B).
    batch_stride: u32,
    // This layer's base in c_all / h_all ([T, B, H] per layer).
    state_base: u32,
    // This layer's base in gates_all / dgates_all ([T, B, 4H] per layer).
    gates_base: u32,
    // This layer's base in dc_carry ([B, H] per layer).
    carry_base: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

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

fn c_prev(t: u32, b: u32, j: u32) -> f32 {
    if (t == 0u) {
        return 0.0;
    }
    return c_all[p.state_base + ((t - 1u) * p.batch_stride + b) * p.hidden + j];
}

// Index of gate i's value of unit j, row b, step t in gates_all / dgates_all (gate f,
// g, o follow at +H, +2H, +3H).
fn gates_index(t: u32, b: u32, j: u32) -> u32 {
    return p.gates_base + (t * p.batch_stride + b) * 4u * p.hidden + j;
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
    let i = sigmoid(scratch[pre]);
    let f = sigmoid(scratch[pre + h]);
    let g = tanh_stable(scratch[pre + 2u * h]);
    let o = sigmoid(scratch[pre + 3u * h]);
    let c = f * c_prev(t, b, j) + i * g;
    let at = (t * p.batch_stride + b) * h + j;
    let gates_at = gates_index(t, b, j);
    gates_all[gates_at] = i;
    gates_all[gates_at + h] = f;
    gates_all[gates_at + 2u * h] = g;
    gates_all[gates_at + 3u * h] = o;
    c_all[p.state_base + at] = c;
    h_or_dgates[p.state_base + at] = o * tanh_stable(c);
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
    let gates_at = gates_index(t, b, j);
    let i = gates_all[gates_at];
    let f = gates_all[gates_at + h];
    let g = gates_all[gates_at + 2u * h];
    let o = gates_all[gates_at + 3u * h];
    let tc = tanh_stable(c_all[p.state_base + (t * p.batch_stride + b) * h + j]);
    let dh = scratch[b * h + j];
    let carry_at = p.carry_base + b * h + j;
    // At the loss step nothing flows in from step t+1.
    var dc_next = 0.0;
    if (t < tstar[b]) {
        dc_next = dc_carry[carry_at];
    }
    let dc = dh * o * (1.0 - tc * tc) + dc_next;
    h_or_dgates[gates_at] = dc * g * i * (1.0 - i);
    h_or_dgates[gates_at + h] = dc * c_prev(t, b, j) * f * (1.0 - f);
    h_or_dgates[gates_at + 2u * h] = dc * i * (1.0 - g * g);
    h_or_dgates[gates_at + 3u * h] = dh * tc * o * (1.0 - o);
    dc_carry[carry_at] = dc * f;
}
