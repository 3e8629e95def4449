// Definitions shared by every rankcode kernel; prepended to each shader source.
//
// Buffer layouts (B = batch capacity, T = step capacity, H = hidden size):
//   per-step state of layer k at (t, b): base_k + (t * B + b) * width + j
//   row lists: one u32 per entry, row index in the low 16 bits, step in the high 16.

// Parameters of one step, one 256-byte slot per step, chosen with a dynamic offset.
struct Step {
    // The time step this dispatch computes (unused by whole-batch kernels).
    t: u32,
    // Number of entries in this dispatch's row list.
    n_rows: u32,
    // First entry of the list in `rows`.
    rows_offset: u32,
    // Steps in this batch (T).
    steps: u32,
}

// Marks "no spike yet" in the first-spike buffer.
const NONE: u32 = 0xffffffffu;

fn row_of(entry: u32) -> u32 {
    return entry & 0xffffu;
}

fn step_of(entry: u32) -> u32 {
    return entry >> 16u;
}

fn sigmoid(x: f32) -> f32 {
    return 1.0 / (1.0 + exp(-x));
}

// tanh that stays finite for large |x| (some drivers' built-in returns NaN there).
fn tanh_stable(x: f32) -> f32 {
    let e = exp(-2.0 * abs(x));
    let r = (1.0 - e) / (1.0 + e);
    return select(-r, r, x >= 0.0);
}
