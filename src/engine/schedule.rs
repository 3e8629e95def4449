//! Host-side scheduling, pure and GPU-free: which rows are live, and the row lists
//! the backward replay and the weight gradients walk.
//!
//! A row list entry packs a step and a row: `step << 16 | row` (see `common.wgsl.inc`).

use crate::data::{Batch, Inputs};

/// The largest batch: a row-list entry addresses 2^16 rows, and the cell kernels
/// dispatch one workgroup row per listed row (at most 65535 per dimension).
pub const MAX_ROWS: usize = (1 << 16) - 1;
/// The largest number of steps a row-list entry can address.
pub const MAX_STEPS: usize = 1 << 16;

/// Packs (step, row) into a row-list entry.
pub fn entry(step: usize, row: usize) -> u32 {
    debug_assert!(step < MAX_STEPS && row < MAX_ROWS);
    ((step as u32) << 16) | row as u32
}

/// Rows of `active` that are still undecided after a forward chunk: their loss step
/// still holds the sentinel `steps`. Order is kept.
pub fn still_live(active: &[u32], tstar: &[u32], steps: u32) -> Vec<u32> {
    active
        .iter()
        .copied()
        .filter(|&b| tstar[b as usize] == steps)
        .collect()
}

/// The backward replay plan: for each step t from 0 to max t*, the rows with
/// t <= t*, as one concatenated list (which is also the list of every processed
/// (step, row) pair), with each step's start and length. At each step the rows that
/// continue past t come first and those whose loss step is t last: the latter get no
/// gate deltas from t + 1, and the GEMM blocks made only of them skip that part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayPlan {
    pub entries: Vec<u32>,
    /// `(start, len)` of step t's rows in `entries`.
    pub per_step: Vec<(usize, usize)>,
}

impl ReplayPlan {
    /// Builds the plan from the loss steps of a batch.
    pub fn new(tstar: &[u32]) -> Self {
        let t_max = tstar.iter().copied().max().unwrap_or(0) as usize;
        let mut entries = Vec::new();
        let mut per_step = Vec::with_capacity(t_max + 1);
        for t in 0..=t_max {
            let start = entries.len();
            let rows_from = |continuing: bool| {
                tstar
                    .iter()
                    .enumerate()
                    .filter(move |&(_, &ts)| ts as usize >= t && (ts as usize > t) == continuing)
                    .map(move |(b, _)| entry(t, b))
            };
            entries.extend(rows_from(true).chain(rows_from(false)));
            per_step.push((start, entries.len() - start));
        }
        ReplayPlan { entries, per_step }
    }

    /// The (step, row) pairs processed: sum over rows of t* + 1.
    pub fn pairs(&self) -> usize {
        self.entries.len()
    }
}

/// One entry per row at its loss step: the pairs of the readout gradient.
pub fn loss_step_entries(tstar: &[u32]) -> Vec<u32> {
    tstar
        .iter()
        .enumerate()
        .map(|(b, &t)| entry(t as usize, b))
        .collect()
}

/// The nonzero inputs of a batch as CSR lists per (step, row): the entries of row b
/// at step t are `offsets[t * stride + b]..offsets[t * stride + b + 1]` of `indices`
/// (input positions) and `values`. `stride` is the row capacity; rows past the batch
/// are empty.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SparseRows {
    pub offsets: Vec<u32>,
    pub indices: Vec<u32>,
    pub values: Vec<f32>,
}

impl SparseRows {
    /// Collects the nonzeros of the time-major `x` of `steps` x `rows` x `input`.
    pub fn from_dense(x: &[f32], steps: usize, rows: usize, input: usize, stride: usize) -> Self {
        let mut out = SparseRows {
            offsets: Vec::with_capacity(steps * stride + 1),
            ..Default::default()
        };
        for t in 0..steps {
            for b in 0..stride {
                out.offsets.push(out.indices.len() as u32);
                if b < rows {
                    let at = (t * rows + b) * input;
                    for (i, &v) in x[at..at + input]
                        .iter()
                        .enumerate()
                        .filter(|(_, v)| **v != 0.0)
                    {
                        out.indices.push(i as u32);
                        out.values.push(v);
                    }
                }
            }
        }
        out.offsets.push(out.indices.len() as u32);
        out
    }

    /// The same lists for temporal coding: input i of row b is 1 at step
    /// `times[b * input + i]` only (see `data::Inputs::EventTimes`), `rows` rows. One
    /// pass over the times, where the dense form scans `steps` times as many values;
    /// the entries come in the same order, so the lists equal `from_dense`'s of the
    /// densified batch.
    pub fn from_event_times(
        times: &[u8],
        steps: usize,
        rows: usize,
        input: usize,
        stride: usize,
    ) -> Self {
        let cell = |b: usize, i: usize| times[b * input + i] as usize * stride + b;
        let mut offsets = vec![0u32; steps * stride + 1];
        for b in 0..rows {
            for i in 0..input {
                offsets[cell(b, i) + 1] += 1;
            }
        }
        for c in 0..steps * stride {
            offsets[c + 1] += offsets[c];
        }
        let mut next: Vec<u32> = offsets[..steps * stride].to_vec();
        let mut indices = vec![0u32; rows * input];
        for b in 0..rows {
            for i in 0..input {
                let c = cell(b, i);
                indices[next[c] as usize] = i as u32;
                next[c] += 1;
            }
        }
        SparseRows {
            offsets,
            values: vec![1.0; indices.len()],
            indices,
        }
    }

    /// The lists of `batch`'s inputs, for a row capacity of `stride`.
    pub fn of_batch(batch: &Batch, stride: usize) -> Self {
        let (t, b, i) = (batch.steps, batch.batch, batch.input);
        match &batch.inputs {
            Inputs::Dense(x) => Self::from_dense(x, t, b, i, stride),
            Inputs::EventTimes(times) => Self::from_event_times(times, t, b, i, stride),
        }
    }
}

/// The nonzero inputs of the processed (step, row) pairs, grouped by input position
/// (CSC): the entries of input k are `offsets[k]..offsets[k + 1]` of `pairs` (row-list
/// entries) and `values`, in the order of `pairs_processed`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SparseColumns {
    pub offsets: Vec<u32>,
    pub pairs: Vec<u32>,
    pub values: Vec<f32>,
}

impl SparseColumns {
    /// Regroups `rows` (see [`SparseRows`], row capacity `stride`) by input position,
    /// keeping only the pairs listed in `pairs_processed`.
    pub fn from_rows(
        rows: &SparseRows,
        pairs_processed: &[u32],
        stride: usize,
        input: usize,
    ) -> Self {
        let range = |e: u32| {
            let at = (e >> 16) as usize * stride + (e & 0xffff) as usize;
            rows.offsets[at] as usize..rows.offsets[at + 1] as usize
        };
        let mut offsets = vec![0u32; input + 1];
        for &e in pairs_processed {
            for &k in &rows.indices[range(e)] {
                offsets[k as usize + 1] += 1;
            }
        }
        for k in 0..input {
            offsets[k + 1] += offsets[k];
        }
        let nnz = offsets[input] as usize;
        let (mut pairs, mut values) = (vec![0u32; nnz], vec![0f32; nnz]);
        let mut fill: Vec<u32> = offsets[..input].to_vec();
        for &e in pairs_processed {
            let r = range(e);
            for (&k, &v) in rows.indices[r.clone()].iter().zip(&rows.values[r]) {
                let at = fill[k as usize] as usize;
                pairs[at] = e;
                values[at] = v;
                fill[k as usize] += 1;
            }
        }
        SparseColumns {
            offsets,
            pairs,
            values,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_columns_regroup_the_processed_pairs_by_input() {
        // 2 steps, 2 rows, 3 inputs; row 0 processed at steps 0 and 1, row 1 at step 0.
        let x = [
            0., 1., 0., /**/ 2., 0., 3., /**/ 0., 5., 0., /**/ 0., 0., 4.,
        ];
        let rows = SparseRows::from_dense(&x, 2, 2, 3, 2);
        let cols = SparseColumns::from_rows(&rows, &[entry(0, 0), entry(0, 1), entry(1, 0)], 2, 3);
        assert_eq!(cols.offsets, vec![0, 1, 3, 4]);
        assert_eq!(
            cols.pairs,
            vec![entry(0, 1), entry(0, 0), entry(1, 0), entry(0, 1)]
        );
        assert_eq!(cols.values, vec![2., 1., 5., 3.]);
    }

    #[test]
    fn sparse_rows_list_the_nonzeros_per_step_and_row() {
        // 2 steps, 2 rows (capacity 3), 3 inputs.
        let x = [
            0., 1., 0., /**/ 2., 0., 3., /**/ 0., 0., 0., /**/ 0., 0., 4.,
        ];
        let s = SparseRows::from_dense(&x, 2, 2, 3, 3);
        assert_eq!(s.offsets, vec![0, 1, 3, 3, 3, 4, 4]);
        assert_eq!(s.indices, vec![1, 0, 2, 2]);
        assert_eq!(s.values, vec![1., 2., 3., 4.]);
    }

    #[test]
    fn replay_plan_covers_exactly_the_processed_pairs() {
        let tstar = [0, 3, 1, 3];
        let plan = ReplayPlan::new(&tstar);
        assert_eq!(plan.pairs(), 1 + 4 + 2 + 4);
        assert_eq!(plan.per_step, vec![(0, 4), (4, 3), (7, 2), (9, 2)]);
        // At each step, the rows that continue first, then those that stop there.
        assert_eq!(
            &plan.entries[..7],
            &[
                entry(0, 1),
                entry(0, 2),
                entry(0, 3),
                entry(0, 0),
                entry(1, 1),
                entry(1, 3),
                entry(1, 2)
            ]
        );
        assert_eq!(&plan.entries[9..], &[entry(3, 1), entry(3, 3)]);
    }

    #[test]
    fn live_rows_keep_their_order() {
        let tstar = [5, 2, 5, 5, 0];
        assert_eq!(still_live(&[0, 1, 2, 3, 4], &tstar, 5), vec![0, 2, 3]);
        assert_eq!(loss_step_entries(&[2, 0]), vec![(2 << 16), 1]);
    }
}

/// Property tests: each function against a brute-force enumeration on small random
/// inputs.
#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    /// Loss steps of 0 to 8 rows, each in 0..=5.
    fn loss_steps() -> impl Strategy<Value = Vec<u32>> {
        prop::collection::vec(0u32..=5, 0..=8)
    }

    /// Every (step, row) pair a batch of loss steps `tstar` processes (t <= t*),
    /// ordered by step, then those continuing past it before those stopping at it,
    /// then by row: what the replay plan should list, found by sorting instead of
    /// filtering.
    fn brute_replay(tstar: &[u32]) -> (Vec<u32>, Vec<(usize, usize)>) {
        let t_max = tstar.iter().copied().max().unwrap_or(0) as usize;
        let mut pairs: Vec<(usize, bool, usize)> = Vec::new();
        for (b, &ts) in tstar.iter().enumerate() {
            for t in 0..=ts as usize {
                pairs.push((t, t == ts as usize, b));
            }
        }
        pairs.sort();
        let per_step = (0..=t_max)
            .map(|t| {
                let start = pairs.iter().filter(|p| p.0 < t).count();
                (start, pairs.iter().filter(|p| p.0 == t).count())
            })
            .collect();
        let entries = pairs.iter().map(|&(t, _, b)| entry(t, b)).collect();
        (entries, per_step)
    }

    /// A dense time-major batch of `steps` x `rows` x `input`, mostly zeros, with
    /// its shape and a row capacity of at least `rows`.
    fn dense_batch() -> impl Strategy<Value = (Vec<f32>, usize, usize, usize, usize)> {
        (1usize..=4, 1usize..=4, 1usize..=5, 0usize..=2).prop_flat_map(
            |(steps, rows, input, spare)| {
                let value = prop_oneof![3 => Just(0.0f32), 1 => -4.0f32..4.0];
                prop::collection::vec(value, steps * rows * input)
                    .prop_map(move |x| (x, steps, rows, input, rows + spare))
            },
        )
    }

    proptest! {
        #[test]
        fn the_replay_plan_lists_the_processed_pairs_in_order(tstar in loss_steps()) {
            let plan = ReplayPlan::new(&tstar);
            let (entries, per_step) = brute_replay(&tstar);
            prop_assert_eq!(&plan.entries, &entries);
            prop_assert_eq!(&plan.per_step, &per_step);
            let pairs: usize = tstar.iter().map(|&t| t as usize + 1).sum();
            prop_assert_eq!(plan.pairs(), pairs);
        }

        #[test]
        fn live_rows_are_the_undecided_active_ones_in_their_order(
            tstar in prop::collection::vec(0u32..=3, 1..=8),
            picks in prop::collection::vec(any::<bool>(), 8),
            order in Just((0u32..8).collect::<Vec<u32>>()).prop_shuffle(),
        ) {
            let steps = 3;
            let active: Vec<u32> = order
                .into_iter()
                .filter(|&b| (b as usize) < tstar.len() && picks[b as usize])
                .collect();
            let live = still_live(&active, &tstar, steps);
            // Brute force: walk the active rows and keep each undecided one.
            let mut expected = Vec::new();
            for i in 0..active.len() {
                if tstar[active[i] as usize] == steps {
                    expected.push(active[i]);
                }
            }
            prop_assert_eq!(live, expected);
        }

        #[test]
        fn sparse_rows_list_every_nonzero_of_the_batch(
            (x, steps, rows, input, stride) in dense_batch(),
        ) {
            let s = SparseRows::from_dense(&x, steps, rows, input, stride);
            prop_assert_eq!(s.offsets.len(), steps * stride + 1);
            for t in 0..steps {
                for b in 0..stride {
                    let at = t * stride + b;
                    let listed: Vec<(u32, f32)> = (s.offsets[at]..s.offsets[at + 1])
                        .map(|i| (s.indices[i as usize], s.values[i as usize]))
                        .collect();
                    let expected: Vec<(u32, f32)> = (0..input)
                        .filter(|_| b < rows)
                        .map(|k| (k as u32, x[(t * rows + b) * input + k]))
                        .filter(|&(_, v)| v != 0.0)
                        .collect();
                    prop_assert_eq!(listed, expected);
                }
            }
        }

        #[test]
        fn event_times_give_the_lists_of_their_dense_batch(
            (steps, rows, input, spare) in (1usize..=5, 1usize..=4, 1usize..=6, 0usize..=2),
            seed in any::<u64>(),
        ) {
            let mut rng = crate::rng::Rng::new(seed);
            let times: Vec<u8> = (0..rows * input).map(|_| rng.below(steps) as u8).collect();
            let batch = Batch {
                steps,
                batch: rows,
                input,
                inputs: Inputs::EventTimes(times),
                labels: vec![0; rows],
            };
            let dense = batch.dense();
            let stride = rows + spare;
            prop_assert_eq!(
                SparseRows::of_batch(&batch, stride),
                SparseRows::from_dense(&dense, steps, rows, input, stride)
            );
        }

        #[test]
        fn sparse_columns_hold_the_nonzeros_of_the_processed_pairs_by_input(
            (x, steps, rows, input, stride) in dense_batch(),
            picks in prop::collection::vec(any::<bool>(), 16),
            order in Just((0usize..16).collect::<Vec<usize>>()).prop_shuffle(),
        ) {
            // A random subset of the (step, row) pairs, in a random order.
            let processed: Vec<u32> = order
                .into_iter()
                .filter(|&p| p < steps * rows && picks[p])
                .map(|p| entry(p / rows, p % rows))
                .collect();
            let sparse = SparseRows::from_dense(&x, steps, rows, input, stride);
            let cols = SparseColumns::from_rows(&sparse, &processed, stride, input);
            // Brute force: for each input, every processed pair (in order) whose dense
            // value there is nonzero.
            let mut offsets = vec![0u32];
            let mut pairs = Vec::new();
            let mut values = Vec::new();
            for k in 0..input {
                for &e in &processed {
                    let (t, b) = ((e >> 16) as usize, (e & 0xffff) as usize);
                    let v = x[(t * rows + b) * input + k];
                    if v != 0.0 {
                        pairs.push(e);
                        values.push(v);
                    }
                }
                offsets.push(pairs.len() as u32);
            }
            prop_assert_eq!(cols.offsets, offsets);
            prop_assert_eq!(cols.pairs, pairs);
            prop_assert_eq!(cols.values, values);
        }
    }
}
