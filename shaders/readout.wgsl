// The readout, the rank-coding threshold and the loss at each sequence's loss step.
//
// readout_forward (one invocation per listed row, at step t):
//   z_t = W_o h_t + b_o, stored; a spike is any score (sigmoid, or softmax) >= theta.
//   The first spike is recorded; with `retire` set the row's loss step t* becomes t
//   (the scheduler then drops it), and at t = T-1 every remaining row gets t* = T-1.
// loss_stats (one workgroup for the whole batch):
//   per row, the loss (BCE summed over units, or CE; minus beta * entropy) at t*, or
//   its mean over the steps from `loss_from` to t* (docs/design.md, 'The loss'), and
//   dL/dz at each step up to t* (zero before the first step with a loss) scaled by
//   1/B and by 1/(steps with a loss); the decision (first spike, else T-1) and its
//   prediction; batch sums reduced in a fixed tree order (deterministic), written to
//   `stats`.

struct ReadoutParams {
    hidden: u32,
    classes: u32,
    batch_stride: u32,
    // 0: sigmoid units; 1: softmax.
    readout: u32,
    w_base: u32,
    b_base: u32,
    // The top LSTM layer's base in h_all.
    h_base: u32,
    // 1: a spike ends the row (RC); 0: rows run to T-1 (end-of-sequence).
    retire: u32,
    // Spike threshold on the scores, and the same threshold as a logit (sigmoid).
    theta: f32,
    theta_logit: f32,
    beta: f32,
    // Rows in this batch.
    batch: u32,
    // 1: write dL/dz.
    want_grad: u32,
    // The first step whose loss counts: a row's loss is the mean over its steps
    // min(loss_from, t*)..=t*. 0xffffffff: t* alone.
    loss_from: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> p: ReadoutParams;
@group(0) @binding(1) var<storage, read> step: Step;
@group(0) @binding(2) var<storage, read> weights: array<f32>;
@group(0) @binding(3) var<storage, read> h_all: array<f32>;
@group(0) @binding(4) var<storage, read> rows: array<u32>;
@group(0) @binding(5) var<storage, read> labels: array<u32>;
// [T, B, C]
@group(0) @binding(6) var<storage, read_write> logits: array<f32>;
@group(0) @binding(7) var<storage, read_write> tstar: array<u32>;
@group(0) @binding(8) var<storage, read_write> first_spike: array<u32>;
// loss_stats only: dL/dz [T, B, C]; per row (decision step, prediction); batch sums.
@group(0) @binding(9) var<storage, read_write> dz: array<f32>;
@group(0) @binding(10) var<storage, read_write> decisions: array<u32>;
@group(0) @binding(11) var<storage, read_write> stats: array<f32>;

fn logit_at(t: u32, b: u32, c: u32) -> f32 {
    return logits[(t * p.batch_stride + b) * p.classes + c];
}

// log of the softmax denominator of the logits at (t, b), computed stably.
fn log_sum_exp(t: u32, b: u32) -> f32 {
    var m = logit_at(t, b, 0u);
    for (var c = 1u; c < p.classes; c++) {
        m = max(m, logit_at(t, b, c));
    }
    var s = 0.0;
    for (var c = 0u; c < p.classes; c++) {
        s += exp(logit_at(t, b, c) - m);
    }
    return m + log(s);
}

fn argmax_at(t: u32, b: u32) -> u32 {
    var best = 0u;
    for (var c = 1u; c < p.classes; c++) {
        if (logit_at(t, b, c) > logit_at(t, b, best)) {
            best = c;
        }
    }
    return best;
}

@compute @workgroup_size(64)
fn readout_forward(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (gid.x >= step.n_rows) {
        return;
    }
    let b = row_of(rows[step.rows_offset + gid.x]);
    let t = step.t;
    if (tstar[b] < t) {
        return;
    }
    let h_at = p.h_base + (t * p.batch_stride + b) * p.hidden;
    var z_max = -3.0e38;
    // Read once, outside the loops (a buffer load in a loop is paid at every pass on
    // lavapipe).
    let hidden = p.hidden;
    for (var c = 0u; c < p.classes; c++) {
        var z = weights[p.b_base + c];
        let w_at = p.w_base + c * hidden;
        for (var j = 0u; j < hidden; j++) {
            z += weights[w_at + j] * h_all[h_at + j];
        }
        logits[(t * p.batch_stride + b) * p.classes + c] = z;
        z_max = max(z_max, z);
    }
    var fired = false;
    if (p.readout == 0u) {
        // sigmoid(z) >= theta  <=>  z >= logit(theta)
        fired = z_max >= p.theta_logit;
    } else {
        fired = exp(z_max - log_sum_exp(t, b)) >= p.theta;
    }
    if (fired && first_spike[b] == NONE) {
        first_spike[b] = t;
    }
    if ((fired && p.retire != 0u) || t + 1u == step.steps) {
        tstar[b] = t;
    }
}

// Softplus, stable for large |x|.
fn softplus(x: f32) -> f32 {
    return max(x, 0.0) + log(1.0 + exp(-abs(x)));
}

const WG: u32 = 256u;
const N_STATS: u32 = 8u;
// Per thread: loss, correct, fired, steps processed, decision steps, eos correct, eos rows.
var<workgroup> partial: array<array<f32, 8>, 256>;

// Loss of row b at step t; writes dL/dz * scale at step t when asked.
fn row_loss(t: u32, b: u32, label: u32, scale: f32) -> f32 {
    let dz_at = (t * p.batch_stride + b) * p.classes;
    var loss = 0.0;
    if (p.readout == 0u) {
        for (var c = 0u; c < p.classes; c++) {
            let z = logit_at(t, b, c);
            let y = sigmoid(z);
            let onehot = select(0.0, 1.0, c == label);
            let entropy = y * softplus(-z) + (1.0 - y) * softplus(z);
            loss += softplus(z) - z * onehot - p.beta * entropy;
            if (p.want_grad != 0u) {
                dz[dz_at + c] = (y - onehot + p.beta * z * y * (1.0 - y)) * scale;
            }
        }
    } else {
        let lse = log_sum_exp(t, b);
        var entropy = 0.0;
        for (var c = 0u; c < p.classes; c++) {
            let log_p = logit_at(t, b, c) - lse;
            entropy -= exp(log_p) * log_p;
        }
        loss = lse - logit_at(t, b, label) - p.beta * entropy;
        if (p.want_grad != 0u) {
            for (var c = 0u; c < p.classes; c++) {
                let log_p = logit_at(t, b, c) - lse;
                let y = exp(log_p);
                let onehot = select(0.0, 1.0, c == label);
                dz[dz_at + c] = (y - onehot + p.beta * y * (log_p + entropy)) * scale;
            }
        }
    }
    return loss;
}

@compute @workgroup_size(256)
fn loss_stats(@builtin(local_invocation_id) lid: vec3<u32>) {
    var acc: array<f32, 8>;
    let last = step.steps - 1u;
    for (var b = lid.x; b < p.batch; b += WG) {
        let label = labels[b];
        let t_loss = tstar[b];
        let first = min(p.loss_from, t_loss);
        if (p.want_grad != 0u) {
            for (var s = 0u; s < first; s++) {
                for (var c = 0u; c < p.classes; c++) {
                    dz[(s * p.batch_stride + b) * p.classes + c] = 0.0;
                }
            }
        }
        let n_loss = f32(t_loss + 1u - first);
        let scale = 1.0 / f32(p.batch) / n_loss;
        var loss = 0.0;
        for (var s = first; s <= t_loss; s++) {
            loss += row_loss(s, b, label, scale);
        }
        acc[0] += loss / n_loss;
        let spiked = first_spike[b] != NONE;
        let decision = select(last, first_spike[b], spiked);
        let prediction = argmax_at(decision, b);
        decisions[2u * b] = decision;
        decisions[2u * b + 1u] = prediction;
        acc[1] += select(0.0, 1.0, prediction == label);
        acc[2] += select(0.0, 1.0, spiked);
        acc[3] += f32(t_loss + 1u);
        acc[4] += f32(decision + 1u);
        if (t_loss == last) {
            acc[5] += select(0.0, 1.0, argmax_at(last, b) == label);
            acc[6] += 1.0;
        }
    }
    partial[lid.x] = acc;
    workgroupBarrier();
    for (var half = WG / 2u; half > 0u; half /= 2u) {
        if (lid.x < half) {
            for (var s = 0u; s < N_STATS; s++) {
                partial[lid.x][s] += partial[lid.x + half][s];
            }
        }
        workgroupBarrier();
    }
    if (lid.x == 0u) {
        for (var s = 0u; s < N_STATS; s++) {
            stats[s] = partial[0][s];
        }
    }
}
