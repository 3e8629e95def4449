// The left operands of the GEMMs with the cell in their epilogue (step_cell.wgsl),
// read and written: those kernels write the h_t or the gate deltas of step t into the
// buffer their operands are read from (at other steps or layers), and wgpu does not
// allow one buffer bound both read only and read-write in one dispatch. Above layer
// 0 the forward kernel binds h_all as both src1 and src2 (the backward one dgates_all
// below the top layer), read-write twice, at ranges that do not overlap: wgpu's
// native validation accepts that; the WebGPU specification does not (browsers
// refuse aliased writable bindings), and the direct form is for native CPU adapters.
@group(0) @binding(2) var<storage, read_write> src1: array<f32>;
@group(0) @binding(3) var<storage, read_write> src2: array<f32>;
