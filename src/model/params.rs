//! The flat parameter vector and its layout, in PyTorch's names and shapes.
//!
//! All parameters live in one `f32` vector so that the GPU holds them (and their
//! gradients and Adam moments) in one buffer each. Names, order and shapes are the
//! state-dict keys of a PyTorch module holding `lstm = nn.LSTM(I, H, L)` and
//! `readout = nn.Linear(H, C)`: `lstm.weight_ih_l{k}` `[4H, I_k]`, `lstm.weight_hh_l{k}`
//! `[4H, H]`, `lstm.bias_ih_l{k}` `[4H]`, `lstm.bias_hh_l{k}` `[4H]` (gate blocks i, f, g, o),
//! then `readout.weight` `[C, H]` and `readout.bias` `[C]`.

use super::config::ModelConfig;
use crate::rng::Rng;

/// One named tensor inside the flat vector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorSlot {
    /// PyTorch-style name.
    pub name: String,
    /// Row-major shape.
    pub shape: Vec<usize>,
    /// Offset of the first element in the flat vector.
    pub offset: usize,
}

impl TensorSlot {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// True for a zero-sized tensor (never happens for a valid config).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Element range in the flat vector.
    pub fn range(&self) -> std::ops::Range<usize> {
        self.offset..self.offset + self.len()
    }
}

/// Offsets of one LSTM layer's tensors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerOffsets {
    pub w_ih: usize,
    pub w_hh: usize,
    pub b_ih: usize,
    pub b_hh: usize,
}

/// Where every tensor of a model lives in the flat parameter vector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamLayout {
    pub slots: Vec<TensorSlot>,
    pub layers: Vec<LayerOffsets>,
    pub readout_w: usize,
    pub readout_b: usize,
    pub total: usize,
}

impl ParamLayout {
    /// The layout for `cfg`.
    pub fn new(cfg: &ModelConfig) -> Self {
        let h = cfg.hidden_size;
        let mut slots = Vec::new();
        let mut offset = 0;
        let mut push = |name: String, shape: Vec<usize>| {
            let slot = TensorSlot {
                name,
                shape,
                offset,
            };
            offset += slot.len();
            let at = slot.offset;
            slots.push(slot);
            at
        };
        let mut layers = Vec::new();
        for k in 0..cfg.layers {
            let i = cfg.layer_input(k);
            layers.push(LayerOffsets {
                w_ih: push(format!("lstm.weight_ih_l{k}"), vec![4 * h, i]),
                w_hh: push(format!("lstm.weight_hh_l{k}"), vec![4 * h, h]),
                b_ih: push(format!("lstm.bias_ih_l{k}"), vec![4 * h]),
                b_hh: push(format!("lstm.bias_hh_l{k}"), vec![4 * h]),
            });
        }
        let readout_w = push("readout.weight".into(), vec![cfg.classes, h]);
        let readout_b = push("readout.bias".into(), vec![cfg.classes]);
        ParamLayout {
            slots,
            layers,
            readout_w,
            readout_b,
            total: offset,
        }
    }
}

/// Initial parameters as PyTorch draws them: every LSTM and readout tensor
/// uniform in [-1/sqrt(H), 1/sqrt(H)].
pub fn init_params(cfg: &ModelConfig, seed: u64) -> Vec<f32> {
    let layout = ParamLayout::new(cfg);
    let bound = 1.0 / (cfg.hidden_size as f64).sqrt();
    let mut rng = Rng::new(seed ^ 0x5eed_9a7a);
    (0..layout.total)
        .map(|_| rng.uniform_in(-bound, bound) as f32)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::config::Readout;

    #[test]
    fn layout_matches_pytorch_shapes() {
        let cfg = ModelConfig {
            input_size: 3,
            hidden_size: 5,
            layers: 2,
            classes: 4,
            readout: Readout::Sigmoid,
        };
        let l = ParamLayout::new(&cfg);
        let names: Vec<_> = l.slots.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "lstm.weight_ih_l0",
                "lstm.weight_hh_l0",
                "lstm.bias_ih_l0",
                "lstm.bias_hh_l0",
                "lstm.weight_ih_l1",
                "lstm.weight_hh_l1",
                "lstm.bias_ih_l1",
                "lstm.bias_hh_l1",
                "readout.weight",
                "readout.bias"
            ]
        );
        assert_eq!(l.slots[0].shape, vec![20, 3]);
        assert_eq!(l.slots[4].shape, vec![20, 5]);
        assert_eq!(
            l.total,
            20 * 3 + 20 * 5 + 40 + 20 * 5 + 20 * 5 + 40 + 4 * 5 + 4
        );
        assert_eq!(l.layers[1].w_ih, l.slots[4].offset);
        assert_eq!(l.readout_b + 4, l.total);
        let p = init_params(&cfg, 1);
        assert_eq!(p.len(), l.total);
        assert!(p.iter().all(|v| v.abs() <= 1.0 / 5f32.sqrt()));
        assert_eq!(p, init_params(&cfg, 1));
    }
}
