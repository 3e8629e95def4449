// The gathered GEMMs' left operands, read only (see gather.wgsl).
@group(0) @binding(2) var<storage, read> src1: array<f32>;
@group(0) @binding(3) var<storage, read> src2: array<f32>;
