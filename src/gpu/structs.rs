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

/// `GridRule` of `plan_step.wgsl`: the workgroups of one dispatch of a forward step as
/// a function of the step's live rows. `rows_per_group` rows a workgroup along axis
/// `rows_axis` (0 or 1), `fixed` workgroups along the other; none unless the live
/// rows are within `min_rows..=max_rows` (a wide and a narrow kernel split the
/// range between them).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, Pod, Zeroable, PartialEq, Eq)]
pub struct GridRule {
    pub fixed: u32,
    pub rows_per_group: u32,
    pub rows_axis: u32,
    pub min_rows: u32,
    pub max_rows: u32,
    pub _pad: [u32; 3],
}

impl GridRule {
    /// `rows_per_group` rows a workgroup along y, `fixed` workgroups along x, for any
    /// number of rows.
    pub const fn rows_along_y(fixed: u32, rows_per_group: u32) -> Self {
        GridRule {
            fixed,
            rows_per_group,
            rows_axis: 1,
            min_rows: 1,
            max_rows: u32::MAX,
            _pad: [0; 3],
        }
    }

    /// `rows_per_group` rows a workgroup along x, for any number of rows.
    pub const fn rows_along_x(rows_per_group: u32) -> Self {
        GridRule {
            rows_axis: 0,
            ..Self::rows_along_y(1, rows_per_group)
        }
    }

    /// The same rule, for `min_rows..=max_rows` live rows only.
    pub const fn within(self, min_rows: u32, max_rows: u32) -> Self {
        GridRule {
            min_rows,
            max_rows,
            ..self
        }
    }

    /// The workgroups for `rows` live rows (all zero for none, or outside the rule's
    /// range): what `plan_next_step` writes for the dispatch.
    pub fn groups(self, rows: usize) -> [u32; 3] {
        let live = rows.min(u32::MAX as usize) as u32;
        if live == 0 || live < self.min_rows || live > self.max_rows {
            return [0; 3];
        }
        let count = live.div_ceil(self.rows_per_group);
        if self.rows_axis == 0 {
            [count, self.fixed, 1]
        } else {
            [self.fixed, count, 1]
        }
    }
}

/// `PlanParams` of `plan_step.wgsl`: the two row-list regions the steps of a chunk
/// alternate between, and the number of grid rules.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, Pod, Zeroable)]
pub struct PlanParams {
    pub region_a: u32,
    pub region_b: u32,
    pub rules: u32,
    pub _pad: u32,
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
        assert_eq!(std::mem::size_of::<GridRule>(), 32);
        assert_eq!(std::mem::size_of::<PlanParams>(), 16);
    }

    #[test]
    fn grid_rules_cover_their_rows_within_their_range() {
        let y = GridRule::rows_along_y(3, 16);
        assert_eq!(y.groups(0), [0, 0, 0]);
        assert_eq!(y.groups(1), [3, 1, 1]);
        assert_eq!(y.groups(16), [3, 1, 1]);
        assert_eq!(y.groups(17), [3, 2, 1]);
        let x = GridRule::rows_along_x(64);
        assert_eq!(x.groups(65), [2, 1, 1]);
        let narrow = y.within(1, 4);
        let wide = y.within(5, u32::MAX);
        for rows in 1..40 {
            let used = [narrow.groups(rows), wide.groups(rows)]
                .iter()
                .filter(|g| g[0] > 0)
                .count();
            assert_eq!(used, 1, "{rows} rows: exactly one of the two kernels runs");
        }
        assert_eq!(narrow.groups(5), [0, 0, 0]);
        assert_eq!(wide.groups(4), [0, 0, 0]);
    }
}
