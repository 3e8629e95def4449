//! Host mirrors of the WGSL parameter structs (bound as small read-only storage
//! buffers, see `kernel.rs`). Field order, types and padding match
//! the shaders exactly (every struct is a multiple of 16 bytes): tests/shaders_validate.rs
//! checks each against naga's layout of the WGSL, member by member.

use bytemuck::{Pod, Zeroable};

/// `Step` of `common.wgsl.inc`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, Pod, Zeroable, PartialEq, Eq)]
pub struct Step {
    pub t: u32,
    pub n_rows: u32,
    pub rows_offset: u32,
    pub steps: u32,
}

/// `Source` of `matmul/gather.wgsl.inc`: a gathered operand.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, Pod, Zeroable)]
pub struct Source {
    pub base: u32,
    pub step_stride: u32,
    pub row_stride: u32,
    pub width: u32,
    pub step_offset: i32,
    pub validity: u32,
    pub _pad: [u32; 2],
}

/// Source validity codes of `matmul/gather.wgsl.inc`.
pub mod validity {
    /// Valid wherever 0 <= s < T.
    pub const ALWAYS: u32 = 0;
    /// Valid where the row was live at step s (s <= t*).
    pub const LIVE: u32 = 1;
}

impl Source {
    /// A `[steps, rows, width]` tensor at `base`, read at step `t + step_offset`.
    pub fn per_step(
        base: usize,
        rows: usize,
        width: usize,
        step_offset: i32,
        validity: u32,
    ) -> Self {
        Source {
            base: base as u32,
            step_stride: (rows * width) as u32,
            row_stride: width as u32,
            width: width as u32,
            step_offset,
            validity,
            _pad: [0; 2],
        }
    }

    /// A `[rows, width]` tensor at `base`, the same at every step.
    pub fn per_row(base: usize, width: usize, validity: u32) -> Self {
        Source {
            base: base as u32,
            step_stride: 0,
            row_stride: width as u32,
            width: width as u32,
            step_offset: 0,
            validity,
            _pad: [0; 2],
        }
    }
}

/// `Weight` of `matmul/gather.wgsl.inc`: element (k, j) at base + k * k_stride + j * j_stride.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, Pod, Zeroable)]
pub struct Weight {
    pub base: u32,
    pub k_stride: u32,
    pub j_stride: u32,
    pub _pad: u32,
}

impl Weight {
    /// A row-major `[out, in]` matrix used as `W^T` (k indexes its columns).
    pub fn transposed(base: usize, cols: usize) -> Self {
        Weight {
            base: base as u32,
            k_stride: 1,
            j_stride: cols as u32,
            _pad: 0,
        }
    }

    /// A row-major `[rows, cols]` matrix used as is (k indexes its rows).
    pub fn plain(base: usize, cols: usize) -> Self {
        Weight {
            base: base as u32,
            k_stride: cols as u32,
            j_stride: 1,
            _pad: 0,
        }
    }
}

/// `GemmParams` of `matmul/gather.wgsl.inc`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, Pod, Zeroable)]
pub struct GemmParams {
    pub a1: Source,
    pub a2: Source,
    pub w1: Weight,
    pub w2: Weight,
    pub n_out: u32,
    pub has_bias: u32,
    pub bias1: u32,
    pub bias2: u32,
    pub out_base: u32,
    pub out_stride: u32,
    /// step_gemm: add to the values already in the output.
    pub accumulate: u32,
    /// step_gemm, dense_gemm: 0, or the size of the diagonal blocks of a block-diagonal
    /// w2 (an ensemble's recurrent weights), whose zero blocks are then skipped.
    pub a2_block: u32,
}

/// `SparseParams` of `sparse_input.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, Pod, Zeroable)]
pub struct SparseParams {
    pub cols: u32,
    pub input: u32,
    pub w_base: u32,
    pub batch_stride: u32,
}

/// `DenseGemmParams` of `gemm.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, Pod, Zeroable)]
pub struct DenseGemmParams {
    pub m: u32,
    pub n: u32,
    pub k: u32,
    pub lda: u32,
    pub ldb: u32,
    pub ldc: u32,
    pub _pad: [u32; 2],
}

/// `CellParams` of `cell_math.wgsl.inc` (the cell kernels and the step GEMMs with the
/// cell in their epilogue).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, Pod, Zeroable)]
pub struct CellParams {
    pub hidden: u32,
    pub batch_stride: u32,
    pub state_base: u32,
    pub gates_base: u32,
    pub carry_base: u32,
    pub _pad: [u32; 3],
}

/// `ReadoutParams` of `readout.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, Pod, Zeroable)]
pub struct ReadoutParams {
    pub hidden: u32,
    pub classes: u32,
    pub batch_stride: u32,
    pub readout: u32,
    pub w_base: u32,
    pub b_base: u32,
    pub h_base: u32,
    pub retire: u32,
    pub theta: f32,
    pub theta_logit: f32,
    pub beta: f32,
    pub batch: u32,
    pub want_grad: u32,
    /// The first step whose loss counts (`RcConfig::first_loss_step`), or `u32::MAX`
    /// for the loss step alone.
    pub loss_from: u32,
    pub _pad: [u32; 2],
}

/// `CopyParams` of `weight_copy.wgsl`: element (k, s(j)) of the matrix at `src_base`
/// (`src_base + k * src_k + s(j) * src_j`) copied to `dst_base + k * dst_row + j`, for
/// `k < k_len`, `j < n`, where s(j) = j, or `(j % 4) * gate_units + j / 4` where
/// `gate_units` is nonzero (the gates of that many units interleaved).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, Pod, Zeroable)]
pub struct CopyParams {
    pub src_base: u32,
    pub src_k: u32,
    pub src_j: u32,
    pub n: u32,
    pub k_len: u32,
    pub dst_base: u32,
    pub dst_row: u32,
    pub gate_units: u32,
}

/// `AdamParams` of `adam.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, Pod, Zeroable)]
pub struct AdamParams {
    pub count: u32,
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub c1: f32,
    pub c2: f32,
    /// The global-norm gradient clip; 0: none.
    pub max_norm: f32,
    /// Decoupled weight decay (AdamW); 0: none.
    pub weight_decay: f32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_match_the_wgsl_layouts() {
        assert_eq!(std::mem::size_of::<Step>(), 16);
        assert_eq!(std::mem::size_of::<Source>(), 32);
        assert_eq!(std::mem::size_of::<Weight>(), 16);
        assert_eq!(std::mem::size_of::<GemmParams>(), 128);
        assert_eq!(std::mem::size_of::<CellParams>(), 32);
        assert_eq!(std::mem::size_of::<DenseGemmParams>(), 32);
        assert_eq!(std::mem::size_of::<ReadoutParams>(), 64);
        assert_eq!(std::mem::size_of::<AdamParams>(), 36);
        assert_eq!(std::mem::size_of::<SparseParams>(), 16);
        assert_eq!(std::mem::size_of::<CopyParams>(), 32);
    }
}
