//! The scheduler's plan of a forward step, made by the host or on the GPU
//! (`shaders/plan_step.wgsl`; docs/design.md, "The forward pass and the retirement
//! scheduler"): which rows a step lists, and the workgroups of its dispatches as
//! functions of its live rows.
//!
//! The host lists the rows of a chunk's first step, from its last readback. Between
//! two steps of a chunk `plan_next_step` lists the next step's rows and writes the
//! workgroup counts of its dispatches from the same rules, which the dispatches then
//! read (indirect dispatch): every step computes its live rows only, with no round
//! trip.

use super::workspace::Kernels;
use crate::gpu::kernel::groups_for;
use crate::gpu::structs::GridRule;
use crate::model::ModelConfig;

/// How a forward step's dispatches know its live rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StepRows {
    /// The host listed this many rows; it computes the workgroups from them.
    Listed(usize),
    /// `plan_next_step` listed them on the GPU and wrote the workgroup counts, which
    /// the dispatches read (indirect dispatch). The chunk's first step listed this many
    /// rows: the step GEMMs keep the blocks chosen for that many.
    Planned(usize),
}

/// A dispatch of a forward step whose workgroups follow the step's live rows: its
/// index among the rules that `plan_next_step` evaluates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ForwardGrid {
    /// One workgroup row a listed row, H / 64 across: the sparse input gates and
    /// the staged form's cell.
    PerUnit,
    /// The gate GEMM (with the cell, in the direct form) in its wide blocks.
    GatesWide,
    /// The same in its narrow blocks, while the live rows fit in one.
    GatesNarrow,
    /// The readout and threshold, 64 rows a workgroup.
    Readout,
}

/// The grid rules of a forward step's dispatches, in [`ForwardGrid`]'s order: the
/// host computes a step's workgroups from them when it knows the live rows, and
/// `plan_next_step` when the GPU plans the step.
pub(crate) struct ForwardGrids {
    pub rules: [GridRule; 4],
}

impl ForwardGrids {
    pub(super) fn new(cfg: &ModelConfig, kernels: &Kernels) -> Self {
        let (h, gate_cols) = (cfg.hidden_size, 4 * cfg.hidden_size);
        let [wide, narrow] = match &kernels.cell_forward_gemm {
            Some(quads) => quads.rules(gate_cols),
            None => kernels.gemm_shapes.rules(gate_cols),
        };
        ForwardGrids {
            rules: [
                GridRule::rows_along_y(groups_for(h, 64), 1),
                wide,
                narrow,
                GridRule::rows_along_x(64),
            ],
        }
    }

    pub fn rule(&self, grid: ForwardGrid) -> GridRule {
        self.rules[grid as usize]
    }

    /// The rules `plan_next_step` evaluates: a planned step keeps the step GEMM kernel
    /// of its chunk's first step, whatever its live rows, so both cover any number.
    pub fn planned_rules(&self) -> [GridRule; 4] {
        self.rules.map(|r| r.within(1, u32::MAX))
    }

    /// Byte offset in `grids` of `grid`'s workgroup counts for a step of parity
    /// `t % 2`.
    pub fn offset(&self, t: usize, grid: ForwardGrid) -> u64 {
        (((t % 2) * self.rules.len() + grid as usize) * 12) as u64
    }
}

/// What `plan_next_step` makes of step t's list `list` (of rows, as the host lists them) for
/// step t + 1: the rows still undecided (loss step `steps`) first, in their order, then
/// the decided ones; and how many are undecided. The kernel's CPU reference.
#[cfg(test)]
fn planned_list(list: &[u32], tstar: &[u32], steps: u32) -> (Vec<u32>, usize) {
    let live = super::schedule::still_live(list, tstar, steps);
    let n_live = live.len();
    let decided = list.iter().filter(|&&b| tstar[b as usize] != steps);
    (live.into_iter().chain(decided.copied()).collect(), n_live)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Capacity, workspace::Workspace};
    use crate::gpu::GpuContext;
    use crate::gpu::structs::Step;
    use crate::model::Readout;
    use crate::rng::Rng;

    /// `plan_next_step` against [`planned_list`] and [`GridRule::groups`]: lists of
    /// awkward lengths in either region, at even and odd steps, with rows decided at
    /// earlier steps and rows undecided mixed; the GEMM blocks of an awkward width; the
    /// engine's rules (every range) and the host's (the narrow and the wide kernel
    /// splitting the rows). The engine's tests see only results, which a planner that
    /// also listed decided rows would not change (the kernels skip them): this test is
    /// what holds it to the live rows.
    #[test]
    fn the_gpu_plans_the_next_step_as_the_host_does() {
        let ctx = GpuContext::new().expect("the GPU tests need an adapter (lavapipe in CI)");
        let cfg = ModelConfig {
            input_size: 3,
            hidden_size: 37,
            layers: 1,
            classes: 2,
            readout: Readout::Softmax,
        };
        let cap = Capacity {
            batch: 150,
            steps: 9,
        };
        let ws = Workspace::new(&ctx, &cfg, cap, false, 0).unwrap();
        let steps = cap.steps as u32;
        let mut rng = Rng::new(5);
        for (case, n) in [0usize, 1, 4, 5, 17, 33, 150].into_iter().enumerate() {
            let t = case % 3 + 2;
            // A list of n distinct rows in a scrambled order; some decided at t or
            // before, the rest undecided.
            let mut list: Vec<u32> = (0..cap.batch as u32).collect();
            for i in (1..list.len()).rev() {
                list.swap(i, rng.below(i + 1));
            }
            list.truncate(n);
            let tstar: Vec<u32> = (0..cap.batch)
                .map(|_| match rng.below(3) {
                    0 => rng.below(t + 1) as u32,
                    _ => steps,
                })
                .collect();
            let src = ws.regions.forward(t);
            let step = Step {
                t: t as u32,
                n_rows: n as u32,
                rows_offset: src as u32,
                steps,
            };
            let q = &ctx.queue;
            q.write_buffer(&ws.buf.rows, (src * 4) as u64, bytemuck::cast_slice(&list));
            q.write_buffer(&ws.buf.tstar, 0, bytemuck::cast_slice(&tstar));
            q.write_buffer(&ws.buf.steps, 0, bytemuck::bytes_of(&step));
            let rules = if case % 2 == 0 {
                ws.grids.planned_rules()
            } else {
                ws.grids.rules
            };
            q.write_buffer(&ws.buf.grid_rules, 0, bytemuck::cast_slice(&rules));
            let mut encoder = ctx.device.create_command_encoder(&Default::default());
            {
                let mut pass = encoder.begin_compute_pass(&Default::default());
                let (kernel, bind) = (&ws.kernels.plan_next_step, &ws.binds.plan_next_step);
                assert!(kernel.dispatch(&mut pass, bind, Some(0), [1, 1, 1]));
            }
            let dst = ws.regions.forward(t + 1);
            // The new list, then the workgroup counts, into the staging buffer.
            for (buffer, at, count, to) in [(&ws.buf.rows, dst, n, 0), (&ws.buf.grids, 0, 24, n)] {
                let (from, to, bytes) = ((at * 4) as u64, (to * 4) as u64, (count * 4) as u64);
                encoder.copy_buffer_to_buffer(buffer, from, &ws.buf.staging, to, bytes);
            }
            ctx.queue.submit([encoder.finish()]);
            let read: Vec<u32> = ctx.read_staging(&ws.buf.staging, n + 24).unwrap();
            let (rows, grids) = read.split_at(n);
            let (want, live) = planned_list(&list, &tstar, steps);
            assert_eq!(rows, want, "the list of {n} rows at step {t}");
            for (g, rule) in rules.iter().enumerate() {
                let at = ((t + 1) % 2 * 4 + g) * 3;
                assert_eq!(
                    grids[at..at + 3],
                    rule.groups(live),
                    "rule {g} for {live} live rows of {n}"
                );
            }
        }
    }
}
