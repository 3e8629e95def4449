// Adam over the flat parameter, gradient and moment buffers, one invocation per element.
//   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
//   p -= lr * (m / c1) / (sqrt(v / c2) + eps), with c1 = 1 - b1^step, c2 = 1 - b2^step.

struct AdamParams {
    count: u32,
    lr: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    // Bias corrections for this step, computed on the host in f64.
    c1: f32,
    c2: f32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> a: AdamParams;
// Binding 1 (the per-step slot of the other kernels) is unused here.
@group(0) @binding(2) var<storage, read> grads: array<f32>;
@group(0) @binding(3) var<storage, read_write> params: array<f32>;
@group(0) @binding(4) var<storage, read_write> m: array<f32>;
@group(0) @binding(5) var<storage, read_write> v: array<f32>;

@compute @workgroup_size(256)
fn adam_step(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= a.count) {
        return;
    }
    let g = grads[i];
    let m_new = a.beta1 * m[i] + (1.0 - a.beta1) * g;
    let v_new = a.beta2 * v[i] + (1.0 - a.beta2) * g * g;
    m[i] = m_new;
    v[i] = v_new;
    params[i] -= a.lr * (m_new / a.c1) / (sqrt(v_new / a.c2) + a.eps);
}
