//! Several trained models as one: a logit-averaging ensemble written as a single, wider
//! LSTM that every command runs like any other model.
//!
//! MemberModel m's H_m units take their own block of each layer: its rows of every gate
//! block, its columns of the recurrent weights and, above layer 0, of the input weights
//! (block-diagonal), so no member sees another's state. The readout holds each member's
//! readout scaled by 1/M and the mean of their biases, so the ensemble's logits at
//! every step are the mean of the members' logits, z_t = (1/M) sum_m z_t^m, and the
//! rank-coding rule (a spike when an output of those logits reaches theta) applies to
//! them unchanged. The cost is that of one model of sum_m H_m units, less the
//! recurrent zero blocks when the members share one width ([`recurrent_blocks_hold`]).

use super::config::ModelConfig;
use super::params::ParamLayout;
use crate::error::{Error, Result, ensure};

/// One member: its shape and its flat parameters.
#[derive(Debug, Clone, Copy)]
pub struct MemberModel<'a> {
    pub model: &'a ModelConfig,
    pub params: &'a [f32],
}

/// Why `other` cannot join an ensemble with `first`, if it cannot: members must agree on
/// the input size, the depth, the classes and the readout (not on the width).
pub fn mismatch(first: &ModelConfig, other: &ModelConfig) -> Option<String> {
    let readout = |m: &ModelConfig| m.readout.name();
    let differences: Vec<String> = [
        ("input size", other.input_size, first.input_size),
        ("layers", other.layers, first.layers),
        ("classes", other.classes, first.classes),
    ]
    .into_iter()
    .filter(|(_, o, f)| o != f)
    .map(|(name, o, f)| format!("{name} {o} against {f}"))
    .chain(
        (other.readout != first.readout)
            .then(|| format!("readout {} against {}", readout(other), readout(first))),
    )
    .collect();
    (!differences.is_empty()).then(|| {
        format!(
            "{}; members must agree on input size, layers, classes and readout",
            differences.join(", ")
        )
    })
}

/// The ensemble of `members` (at least two, of the same input size, depth, classes and
/// readout) as one model and its parameters.
pub fn merge(members: &[MemberModel]) -> Result<(ModelConfig, Vec<f32>)> {
    ensure(members.len() >= 2, || {
        format!(
            "an ensemble needs at least two models, got {}",
            members.len()
        )
    })?;
    let first = members[0].model;
    for (m, member) in members.iter().enumerate() {
        if let Some(why) = mismatch(first, member.model) {
            return Err(Error::ShapeMismatch(format!(
                "ensemble member {} against member 1: {why}",
                m + 1
            )));
        }
        let expected = ParamLayout::new(member.model).total;
        if member.params.len() != expected {
            return Err(Error::ShapeMismatch(format!(
                "ensemble member {} has {} parameters, its model needs {expected}",
                m + 1,
                member.params.len()
            )));
        }
    }
    let merged = ModelConfig {
        hidden_size: members.iter().map(|m| m.model.hidden_size).sum(),
        ..*first
    };
    merged.validate()?;
    let layout = ParamLayout::new(&merged);
    let mut params = vec![0f32; layout.total];
    let h = merged.hidden_size;
    let scale = 1.0 / members.len() as f32;
    let mut unit_offset = 0;
    for member in members {
        let (hm, from) = (member.model.hidden_size, ParamLayout::new(member.model));
        let p = member.params;
        for (k, (to, from_layer)) in layout.layers.iter().zip(&from.layers).enumerate() {
            // Layer 0 reads the whole input; the layers above read their member's block.
            let (input_width, input_column) = match k {
                0 => (merged.input_size, 0),
                _ => (hm, unit_offset),
            };
            let merged_input = merged.layer_input(k);
            for gate in 0..4 {
                for r in 0..hm {
                    let (src, dst) = (gate * hm + r, gate * h + unit_offset + r);
                    let w_ih = to.w_ih + dst * merged_input + input_column;
                    params[w_ih..w_ih + input_width]
                        .copy_from_slice(&p[from_layer.w_ih + src * input_width..][..input_width]);
                    let w_hh = to.w_hh + dst * h + unit_offset;
                    params[w_hh..w_hh + hm].copy_from_slice(&p[from_layer.w_hh + src * hm..][..hm]);
                    params[to.b_ih + dst] = p[from_layer.b_ih + src];
                    params[to.b_hh + dst] = p[from_layer.b_hh + src];
                }
            }
        }
        for c in 0..merged.classes {
            for r in 0..hm {
                params[layout.readout_w + c * h + unit_offset + r] =
                    scale * p[from.readout_w + c * hm + r];
            }
            params[layout.readout_b + c] += scale * p[from.readout_b + c];
        }
        unit_offset += hm;
    }
    Ok((merged, params))
}

/// Whether every layer's recurrent weights are zero outside the diagonal blocks of
/// `block` units (unit u's gates read only units of its own block), as [`merge`] makes
/// them for members of that width: the condition under which an engine may skip those
/// blocks (`EngineConfig::recurrent_block`).
pub fn recurrent_blocks_hold(model: &ModelConfig, params: &[f32], block: usize) -> bool {
    let h = model.hidden_size;
    if block == 0 || !h.is_multiple_of(block) {
        return false;
    }
    let layout = ParamLayout::new(model);
    layout.layers.iter().all(|layer| {
        (0..4 * h).all(|row| {
            let unit_block = (row % h) / block;
            let weights = &params[layer.w_hh + row * h..layer.w_hh + (row + 1) * h];
            weights
                .iter()
                .enumerate()
                .all(|(k, &w)| k / block == unit_block || w == 0.0)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Batch;
    use crate::model::reference::run_batch;
    use crate::model::{RcConfig, Readout, TrainMode, init_params};

    fn model(hidden: usize, layers: usize, readout: Readout) -> ModelConfig {
        ModelConfig {
            input_size: 2,
            hidden_size: hidden,
            layers,
            classes: 4,
            readout,
        }
    }

    /// Logits at every step of every row, from the CPU reference.
    fn logits(model: &ModelConfig, params: &[f32], batch: &Batch) -> Vec<Vec<Vec<f64>>> {
        let rc = RcConfig {
            theta: 0.95,
            beta: 0.0,
            mode: TrainMode::Eos,
            loss_from_step: None,
        };
        run_batch(model, &rc, params, batch, false)
            .rows
            .into_iter()
            .map(|row| row.logits)
            .collect()
    }

    #[test]
    fn the_ensemble_logits_are_the_mean_of_the_members_at_every_step() {
        for (layers, readout) in [
            (1, Readout::Softmax),
            (2, Readout::Sigmoid),
            (3, Readout::Softmax),
        ] {
            // Awkward, unequal widths; three members.
            let models = [
                model(5, layers, readout),
                model(3, layers, readout),
                model(7, layers, readout),
            ];
            let params: Vec<Vec<f32>> = models
                .iter()
                .enumerate()
                .map(|(m, model)| {
                    // Larger than the default initialisation so the members differ clearly.
                    init_params(model, m as u64 + 1)
                        .iter()
                        .map(|v| 3.0 * v)
                        .collect()
                })
                .collect();
            let members: Vec<MemberModel> = models
                .iter()
                .zip(&params)
                .map(|(model, params)| MemberModel { model, params })
                .collect();
            let (merged, merged_params) = merge(&members).unwrap();
            assert_eq!(merged.hidden_size, 15);
            let batch = Batch::random(6, 3, 2, 4, 7);
            let each: Vec<_> = models
                .iter()
                .zip(&params)
                .map(|(m, p)| logits(m, p, &batch))
                .collect();
            let got = logits(&merged, &merged_params, &batch);
            for (b, row) in got.iter().enumerate() {
                for (t, z) in row.iter().enumerate() {
                    for (c, &v) in z.iter().enumerate() {
                        let mean = each.iter().map(|e| e[b][t][c]).sum::<f64>() / 3.0;
                        assert!(
                            (v - mean).abs() < 1e-5,
                            "layers {layers}, row {b}, step {t}, class {c}: {v} against the mean {mean}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn members_that_disagree_on_shape_are_refused() {
        let a = model(4, 1, Readout::Softmax);
        let pa = init_params(&a, 1);
        let member_a = MemberModel {
            model: &a,
            params: &pa,
        };
        let err = merge(&[member_a]).unwrap_err().to_string();
        assert!(err.contains("at least two"), "{err}");
        for (other, named) in [
            (model(4, 2, Readout::Softmax), "layers 2 against 1"),
            (
                model(4, 1, Readout::Sigmoid),
                "readout sigmoid against softmax",
            ),
            (ModelConfig { classes: 5, ..a }, "classes 5 against 4"),
            (ModelConfig { input_size: 3, ..a }, "input size 3 against 2"),
        ] {
            let po = init_params(&other, 2);
            let err = merge(&[
                member_a,
                MemberModel {
                    model: &other,
                    params: &po,
                },
            ])
            .unwrap_err()
            .to_string();
            assert!(
                err.contains("member 2 against member 1: ") && err.contains(named),
                "{err}"
            );
        }
        let err = merge(&[
            member_a,
            MemberModel {
                model: &a,
                params: &pa[1..],
            },
        ])
        .unwrap_err()
        .to_string();
        assert!(err.contains("member 2 has"), "{err}");
    }

    #[test]
    fn merged_members_of_one_width_hold_recurrent_blocks_of_it() {
        let member = model(6, 2, Readout::Softmax);
        let params: Vec<Vec<f32>> = (0..3).map(|m| init_params(&member, m + 1)).collect();
        let members: Vec<MemberModel> = params
            .iter()
            .map(|params| MemberModel {
                model: &member,
                params,
            })
            .collect();
        let (merged, mut weights) = merge(&members).unwrap();
        assert!(recurrent_blocks_hold(&merged, &weights, 6));
        // Blocks of 9 straddle the members; 4 do not tile 18 units; 0 is no block.
        for block in [9, 4, 0] {
            assert!(!recurrent_blocks_hold(&merged, &weights, block), "{block}");
        }
        // One nonzero weight off the blocks, in the second layer: unit 0 reading unit 17.
        let w_hh = ParamLayout::new(&merged).layers[1].w_hh;
        weights[w_hh + 17] = 0.5;
        assert!(!recurrent_blocks_hold(&merged, &weights, 6));
    }
}
