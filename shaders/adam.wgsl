// Adam over the flat parameter, gradient and moment buffers, elementwise,
// with optional clipping of the gradient to a global L2 norm (PyTorch's clip_grad_norm_):
//   g' = g * min(1, max_norm / (|g| + 1e-6))   (g' = g when max_norm is 0)
//   m = b1 m + (1 - b1) g';  v = b2 v + (1 - b2) g'^2;
//   p -= lr * (m / c1) / (sqrt(v / c2) + eps), with c1 = 1 - b1^step, c2 = 1 - b2^step,
// after decoupled weight decay (AdamW, Loshchilov & Hutter 2019; PyTorch's AdamW):
//   p -= lr * weight_decay * p.
// With clipping, grad_sq_norm and grad_norm_total run first and leave |g|^2 in
// grad_norm_sq[0]. A non-finite norm is not handled here: the loss check after every
// batch stops the run (PyTorch would turn every gradient into NaN instead).

struct AdamParams {
    count: u32,
    lr: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    // Bias corrections for this step, computed on the host in f64.
    c1: f32,
    c2: f32,
    // The global-norm clip; 0: none.
    max_norm: f32,
    // Decoupled weight decay; 0: plain Adam.
    weight_decay: f32,
}

@group(0) @binding(0) var<storage, read> a: AdamParams;
// Binding 1 (the per-step slot of the other kernels) is unused here.
@group(0) @binding(2) var<storage, read> grads: array<f32>;
@group(0) @binding(3) var<storage, read_write> params: array<f32>;
@group(0) @binding(4) var<storage, read_write> m: array<f32>;
@group(0) @binding(5) var<storage, read_write> v: array<f32>;
// grad_sq_norm's partial sums of |g|^2, NORM_PARTS of them, and |g|^2 from them.
@group(0) @binding(6) var<storage, read_write> norm_parts: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> grad_norm_sq: array<f32>;
// The gradients four elements a load, for grad_sq_norm (on lavapipe every buffer load
// is paid lane by lane): the engine pads the flat buffers to a multiple of 4 elements
// with zeros, which the sums add as +0.
@group(0) @binding(8) var<storage, read> grad_quads: array<vec4<f32>>;

// |g|^2 is summed in one fixed order, so that it is the same bits every time: partial
// sum t (t < NORM_PARTS) adds the squares of elements t, t + 256, t + 512, ... in that
// order; then a tree adds partial t + w into partial t for w = 128, 64, ..., 1.
const NORM_PARTS: u32 = 256u;
// grad_sq_norm's invocations: each sums four partials at once, 4q .. 4q + 3, from the
// vec4s of elements 4q + 256 j .. 4q + 3 + 256 j.
const NORM_INVOCATIONS: u32 = NORM_PARTS / 4u;
// Its workgroups' size: the engine dispatches NORM_INVOCATIONS / NORM_GROUP_SIZE of
// them, side by side on the cores of a CPU adapter (one workgroup runs on one core).
const NORM_GROUP_SIZE: u32 = 16u;

// The partial sums of |g|^2, into norm_parts.
@compute @workgroup_size(NORM_GROUP_SIZE)
fn grad_sq_norm(@builtin(global_invocation_id) id: vec3<u32>) {
    let q = id.x;
    var sum = vec4<f32>(0.0);
    // The bound is read once: on lavapipe a buffer load in a loop condition is paid
    // again at every pass.
    let quads = (a.count + 3u) / 4u;
    for (var i = q; i < quads; i += NORM_INVOCATIONS) {
        let g = grad_quads[i];
        sum += g * g;
    }
    norm_parts[q] = sum;
}

// |g|^2 from the partial sums, in the tree order above, into grad_norm_sq[0]: one
// invocation.
@compute @workgroup_size(1)
fn grad_norm_total() {
    var part: array<f32, NORM_PARTS>;
    for (var q = 0u; q < NORM_INVOCATIONS; q++) {
        let s = norm_parts[q];
        part[4u * q] = s.x;
        part[4u * q + 1u] = s.y;
        part[4u * q + 2u] = s.z;
        part[4u * q + 3u] = s.w;
    }
    for (var width = NORM_PARTS / 2u; width > 0u; width /= 2u) {
        for (var t = 0u; t < width; t++) {
            part[t] += part[t + width];
        }
    }
    grad_norm_sq[0] = part[0];
}

// Elements each adam_step invocation updates: lid + 256 r of its workgroup's chunk,
// for r < ELEMENTS_PER_INVOCATION. The parameters are read once for all of them (on
// lavapipe every buffer load is paid lane by lane, and they were most of the loads).
const ELEMENTS_PER_INVOCATION: u32 = 16u;

@compute @workgroup_size(256)
fn adam_step(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let first = (wg.x + wg.y * nwg.x) * 256u * ELEMENTS_PER_INVOCATION + lid;
    let count = a.count;
    let lr = a.lr;
    let beta1 = a.beta1;
    let beta2 = a.beta2;
    let eps = a.eps;
    let c1 = a.c1;
    let c2 = a.c2;
    let weight_decay = a.weight_decay;
    var scale = 1.0;
    if (a.max_norm > 0.0) {
        scale = min(1.0, a.max_norm / (sqrt(grad_norm_sq[0]) + 1e-6));
    }
    for (var r = 0u; r < ELEMENTS_PER_INVOCATION; r++) {
        let i = first + 256u * r;
        if (i >= count) {
            return;
        }
        let g = grads[i] * scale;
        let m_new = beta1 * m[i] + (1.0 - beta1) * g;
        let v_new = beta2 * v[i] + (1.0 - beta2) * g * g;
        m[i] = m_new;
        v[i] = v_new;
        let decayed = params[i] * (1.0 - lr * weight_decay);
        params[i] = decayed - lr * (m_new / c1) / (sqrt(v_new / c2) + eps);
    }
}
