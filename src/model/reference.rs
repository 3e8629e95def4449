//! The CPU reference in f64: forward pass, rank-coding decision rule, RC loss and the
//! truncated backward pass, written plainly, one sequence at a time. It is the oracle
//! that every GPU kernel is tested against. It never touches the GPU.
//!
//! Semantics (docs/design.md, 'The decision rule' and 'The loss'):
//! - the decision step is the first t at which any output score reaches theta; the
//!   predicted class is the argmax there; with no spike by T-1 the decision is forced
//!   at T-1 and the sequence counts as not fired (the rule is [`super::decision`]'s,
//!   shared with the host's threshold sweep and `classify`);
//! - RC mode stops computing at the decision step t* and takes the loss there;
//!   end-of-sequence mode computes every step and takes the loss at T-1;
//! - per-sequence loss: BCE summed over sigmoid units (or CE over a softmax) minus
//!   beta times the output entropy, at the loss step, or its mean over the steps
//!   from `RcConfig::loss_from_step` to the loss step; the batch loss is the mean;
//! - gradients flow from t* back to step 0 only; t* itself is not differentiated.

use super::config::{AdamConfig, ModelConfig, RcConfig, Readout, TrainMode};
use super::decision::{self, argmax, scores, sigmoid};
use super::params::ParamLayout;
use crate::data::Batch;

/// What the forward pass decided for one sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct RowOutcome {
    /// The step whose output carries the loss (and the last step computed).
    pub loss_step: usize,
    /// First step at which an output unit reached theta, if any was computed.
    pub first_spike: Option<usize>,
    /// The decision step: the first spike, or T-1 when none.
    pub decision_step: usize,
    /// The predicted class at the decision step.
    pub prediction: usize,
    /// This sequence's loss (not divided by the batch size).
    pub loss: f64,
    /// The logits at every computed step 0..=loss_step.
    pub logits: Vec<Vec<f64>>,
}

/// The result of one batch through the reference.
#[derive(Debug, Clone)]
pub struct BatchOutcome {
    pub rows: Vec<RowOutcome>,
    /// Mean loss over the batch.
    pub loss: f64,
    /// Gradient of the mean loss, in the flat parameter layout.
    pub grads: Vec<f64>,
}

fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

/// Loss of one sequence at its loss step and its gradient with respect to the logits.
pub fn loss_and_dlogits(readout: Readout, beta: f64, z: &[f64], label: usize) -> (f64, Vec<f64>) {
    let y = scores(readout, z);
    let target = |c: usize| (c == label) as u8 as f64;
    match readout {
        Readout::Sigmoid => {
            let mut loss = 0.0;
            let mut dz = vec![0.0; z.len()];
            for c in 0..z.len() {
                let bce = softplus(z[c]) - z[c] * target(c);
                let entropy = y[c] * softplus(-z[c]) + (1.0 - y[c]) * softplus(z[c]);
                loss += bce - beta * entropy;
                dz[c] = y[c] - target(c) + beta * z[c] * y[c] * (1.0 - y[c]);
            }
            (loss, dz)
        }
        Readout::Softmax => {
            let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let log_sum = m + z.iter().map(|&v| (v - m).exp()).sum::<f64>().ln();
            let log_p: Vec<f64> = z.iter().map(|&v| v - log_sum).collect();
            let entropy: f64 = -(0..z.len()).map(|c| y[c] * log_p[c]).sum::<f64>();
            let loss = -log_p[label] - beta * entropy;
            let dz = (0..z.len())
                .map(|c| y[c] - target(c) + beta * y[c] * (log_p[c] + entropy))
                .collect();
            (loss, dz)
        }
    }
}

/// Read-only views of the parameters of a model.
struct Weights<'a> {
    cfg: &'a ModelConfig,
    layout: ParamLayout,
    p: Vec<f64>,
}

impl Weights<'_> {
    /// `W x` for the matrix of shape [rows, x.len()] at `offset`.
    fn matvec(&self, offset: usize, rows: usize, x: &[f64]) -> Vec<f64> {
        let n = x.len();
        (0..rows)
            .map(|r| (0..n).map(|k| self.p[offset + r * n + k] * x[k]).sum())
            .collect()
    }

    /// `W^T d` for the matrix of shape [d.len(), cols] at `offset`.
    fn matvec_t(&self, offset: usize, cols: usize, d: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0; cols];
        for (r, &dr) in d.iter().enumerate() {
            for (k, o) in out.iter_mut().enumerate() {
                *o += self.p[offset + r * cols + k] * dr;
            }
        }
        out
    }
}

/// `g[offset + r * x.len() + k] += d[r] * x[k]`.
fn add_outer(g: &mut [f64], offset: usize, d: &[f64], x: &[f64]) {
    for (r, &dr) in d.iter().enumerate() {
        for (k, &xk) in x.iter().enumerate() {
            g[offset + r * x.len() + k] += dr * xk;
        }
    }
}

/// What one LSTM layer stored at one step.
#[derive(Clone)]
struct CellState {
    /// Activated gates i, f, g, o, H each.
    gates: Vec<f64>,
    c: Vec<f64>,
    h: Vec<f64>,
}

/// One LSTM cell step: input `x`, previous state `(h, c)`.
fn cell_forward(w: &Weights, layer: usize, x: &[f64], h: &[f64], c: &[f64]) -> CellState {
    let hs = w.cfg.hidden_size;
    let lo = w.layout.layers[layer];
    let a = w.matvec(lo.w_ih, 4 * hs, x);
    let r = w.matvec(lo.w_hh, 4 * hs, h);
    let pre = |j: usize| a[j] + r[j] + w.p[lo.b_ih + j] + w.p[lo.b_hh + j];
    let mut gates = vec![0.0; 4 * hs];
    let (mut c_new, mut h_new) = (vec![0.0; hs], vec![0.0; hs]);
    for j in 0..hs {
        let (i, f, g, o) = (
            sigmoid(pre(j)),
            sigmoid(pre(hs + j)),
            pre(2 * hs + j).tanh(),
            sigmoid(pre(3 * hs + j)),
        );
        c_new[j] = f * c[j] + i * g;
        h_new[j] = o * c_new[j].tanh();
        (
            gates[j],
            gates[hs + j],
            gates[2 * hs + j],
            gates[3 * hs + j],
        ) = (i, f, g, o);
    }
    CellState {
        gates,
        c: c_new,
        h: h_new,
    }
}

/// Runs the whole batch through the reference; with `with_grads` also the backward pass.
pub fn run_batch(
    cfg: &ModelConfig,
    rc: &RcConfig,
    params: &[f32],
    batch: &Batch,
    with_grads: bool,
) -> BatchOutcome {
    let layout = ParamLayout::new(cfg);
    assert_eq!(params.len(), layout.total, "parameter count");
    let w = Weights {
        cfg,
        layout,
        p: params.iter().map(|&v| v as f64).collect(),
    };
    let mut grads = vec![0.0; w.layout.total];
    let mut rows = Vec::with_capacity(batch.batch);
    let inv_batch = 1.0 / batch.batch as f64;
    for b in 0..batch.batch {
        let (row, states, inputs) = forward_row(&w, rc, batch, b);
        if with_grads {
            let label = batch.labels[b] as usize;
            let first = rc.first_loss_step(row.loss_step);
            let scale = inv_batch / (row.loss_step + 1 - first) as f64;
            let dz: Vec<Vec<f64>> = (0..=row.loss_step)
                .map(|t| {
                    if t < first {
                        return vec![0.0; cfg.classes];
                    }
                    let (_, dz) =
                        loss_and_dlogits(cfg.readout, rc.beta as f64, &row.logits[t], label);
                    dz.iter().map(|v| v * scale).collect()
                })
                .collect();
            backward_row(&w, &states, &inputs, &dz, &mut grads);
        }
        rows.push(row);
    }
    let loss = rows.iter().map(|r| r.loss).sum::<f64>() * inv_batch;
    BatchOutcome { rows, loss, grads }
}

/// Forward pass of sequence `b`: returns its outcome, the per-step, per-layer states,
/// and the per-step inputs of layer 0.
fn forward_row(
    w: &Weights,
    rc: &RcConfig,
    batch: &Batch,
    b: usize,
) -> (RowOutcome, Vec<Vec<CellState>>, Vec<Vec<f64>>) {
    let cfg = w.cfg;
    let (hs, last) = (cfg.hidden_size, batch.steps - 1);
    let zero = CellState {
        gates: vec![],
        c: vec![0.0; hs],
        h: vec![0.0; hs],
    };
    let mut states: Vec<Vec<CellState>> = Vec::new();
    let mut inputs = Vec::new();
    let mut logits = Vec::new();
    let mut first_spike = None;
    for t in 0..batch.steps {
        let x: Vec<f64> = batch.input_at(t, b).iter().map(|&v| v as f64).collect();
        let mut step: Vec<CellState> = Vec::with_capacity(cfg.layers);
        for k in 0..cfg.layers {
            let prev = if t == 0 { &zero } else { &states[t - 1][k] };
            let input = if k == 0 {
                x.clone()
            } else {
                step[k - 1].h.clone()
            };
            step.push(cell_forward(w, k, &input, &prev.h, &prev.c));
        }
        let top = &step[cfg.layers - 1].h;
        let z: Vec<f64> = w
            .matvec(w.layout.readout_w, cfg.classes, top)
            .iter()
            .enumerate()
            .map(|(c, v)| v + w.p[w.layout.readout_b + c])
            .collect();
        let fired = decision::spikes(decision::top(cfg.readout, &z).1, rc.theta);
        if fired && first_spike.is_none() {
            first_spike = Some(t);
        }
        states.push(step);
        inputs.push(x);
        logits.push(z);
        if (fired && rc.mode == TrainMode::Rc) || t == last {
            break;
        }
    }
    let loss_step = logits.len() - 1;
    let decision_step = decision::decision_step(first_spike, last);
    // The unit with the largest logit: the largest score, also where scores saturate
    // at exactly 1.0 in floating point.
    let prediction = argmax(&logits[decision_step]);
    let label = batch.labels[b] as usize;
    let first = rc.first_loss_step(loss_step);
    let loss = (first..=loss_step)
        .map(|t| loss_and_dlogits(cfg.readout, rc.beta as f64, &logits[t], label).0)
        .sum::<f64>()
        / (loss_step + 1 - first) as f64;
    let row = RowOutcome {
        loss_step,
        first_spike,
        decision_step,
        prediction,
        loss,
        logits,
    };
    (row, states, inputs)
}

/// Truncated BPTT of one sequence from its loss step (the last stored one) to step 0,
/// given the gradient `dz[t]` of the batch loss with respect to the logits at each
/// stored step t (zero at steps without a loss).
fn backward_row(
    w: &Weights,
    states: &[Vec<CellState>],
    inputs: &[Vec<f64>],
    dz: &[Vec<f64>],
    grads: &mut [f64],
) {
    let cfg = w.cfg;
    let (hs, layers) = (cfg.hidden_size, cfg.layers);
    let t_star = states.len() - 1;
    for (t, dz) in dz.iter().enumerate() {
        add_outer(grads, w.layout.readout_w, dz, &states[t][layers - 1].h);
        for (c, &d) in dz.iter().enumerate() {
            grads[w.layout.readout_b + c] += d;
        }
    }
    // Per layer: gate deltas of step t+1 and the cell-state carry into step t.
    let mut dgates_next: Vec<Vec<f64>> = vec![vec![0.0; 4 * hs]; layers];
    let mut dc_next: Vec<Vec<f64>> = vec![vec![0.0; hs]; layers];
    for t in (0..=t_star).rev() {
        let mut dgates_above: Vec<f64> = Vec::new();
        for k in (0..layers).rev() {
            let lo = w.layout.layers[k];
            let mut dh = if k == layers - 1 {
                w.matvec_t(w.layout.readout_w, hs, &dz[t])
            } else {
                w.matvec_t(w.layout.layers[k + 1].w_ih, hs, &dgates_above)
            };
            let recurrent = w.matvec_t(lo.w_hh, hs, &dgates_next[k]);
            dh.iter_mut().zip(&recurrent).for_each(|(a, r)| *a += r);
            let s = &states[t][k];
            let c_prev = if t == 0 {
                vec![0.0; hs]
            } else {
                states[t - 1][k].c.clone()
            };
            let mut dg = vec![0.0; 4 * hs];
            for j in 0..hs {
                let (i, f, g, o) = (
                    s.gates[j],
                    s.gates[hs + j],
                    s.gates[2 * hs + j],
                    s.gates[3 * hs + j],
                );
                let tc = s.c[j].tanh();
                let dc = dh[j] * o * (1.0 - tc * tc) + dc_next[k][j];
                dg[j] = dc * g * i * (1.0 - i);
                dg[hs + j] = dc * c_prev[j] * f * (1.0 - f);
                dg[2 * hs + j] = dc * i * (1.0 - g * g);
                dg[3 * hs + j] = dh[j] * tc * o * (1.0 - o);
                dc_next[k][j] = dc * f;
            }
            let x = if k == 0 {
                &inputs[t]
            } else {
                &states[t][k - 1].h
            };
            add_outer(grads, lo.w_ih, &dg, x);
            if t > 0 {
                add_outer(grads, lo.w_hh, &dg, &states[t - 1][k].h);
            }
            for (j, &d) in dg.iter().enumerate() {
                grads[lo.b_ih + j] += d;
                grads[lo.b_hh + j] += d;
            }
            dgates_next[k] = dg.clone();
            dgates_above = dg;
        }
    }
}

/// One Adam step (step counts from 1) on f64 copies of parameters and moments, with
/// the gradient first clipped to `cfg.max_grad_norm` if set, and the parameters first
/// decayed by `cfg.weight_decay` (AdamW).
pub fn adam_step(
    cfg: &AdamConfig,
    step: u32,
    p: &mut [f64],
    m: &mut [f64],
    v: &mut [f64],
    g: &[f64],
) {
    let (b1, b2) = (cfg.beta1 as f64, cfg.beta2 as f64);
    let c1 = 1.0 - b1.powi(step as i32);
    let c2 = 1.0 - b2.powi(step as i32);
    let scale = cfg.clip_coefficient(g.iter().map(|x| x * x).sum::<f64>().sqrt());
    let keep = 1.0 - cfg.lr as f64 * cfg.weight_decay as f64;
    for i in 0..p.len() {
        let g = g[i] * scale;
        m[i] = b1 * m[i] + (1.0 - b1) * g;
        v[i] = b2 * v[i] + (1.0 - b2) * g * g;
        p[i] = p[i] * keep - cfg.lr as f64 * (m[i] / c1) / ((v[i] / c2).sqrt() + cfg.eps as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn tiny(layers: usize, readout: Readout) -> ModelConfig {
        ModelConfig {
            input_size: 3,
            hidden_size: 4,
            layers,
            classes: 3,
            readout,
        }
    }

    fn random_batch(steps: usize, batch: usize, input: usize, classes: usize, seed: u64) -> Batch {
        Batch::random(steps, batch, input, classes, seed)
    }

    fn big_params(cfg: &ModelConfig, seed: u64) -> Vec<f32> {
        let mut rng = Rng::new(seed);
        (0..ParamLayout::new(cfg).total)
            .map(|_| rng.uniform_in(-1.5, 1.5) as f32)
            .collect()
    }

    /// Central differences of the batch loss against the analytic gradient, in f64
    /// (parameters perturbed through f32 would lose the precision, so the check
    /// perturbs the f64 copy via a tiny wrapper that rebuilds `Weights`).
    fn check_gradients(cfg: ModelConfig, rc: RcConfig, seed: u64) {
        let batch = random_batch(6, 5, cfg.input_size, cfg.classes, seed);
        let params = big_params(&cfg, seed + 1);
        let base = run_batch(&cfg, &rc, &params, &batch, true);
        let steps: Vec<usize> = base.rows.iter().map(|r| r.loss_step).collect();
        assert!(
            steps.iter().any(|&t| t >= 2),
            "fixture needs a row with a long prefix: {steps:?}"
        );
        let layout = ParamLayout::new(&cfg);
        let mut worst: f64 = 0.0;
        for i in 0..layout.total {
            let loss_at = |delta: f64| {
                let mut w = Weights {
                    cfg: &cfg,
                    layout: layout.clone(),
                    p: params.iter().map(|&v| v as f64).collect(),
                };
                w.p[i] += delta;
                let mut total = 0.0;
                for (b, &step) in steps.iter().enumerate() {
                    let (row, _, _) = forward_row(&w, &rc, &batch, b);
                    assert_eq!(row.loss_step, step, "perturbation moved t*");
                    total += row.loss;
                }
                total / batch.batch as f64
            };
            let h = 1e-6;
            let numeric = (loss_at(h) - loss_at(-h)) / (2.0 * h);
            let err =
                (numeric - base.grads[i]).abs() / (1e-6 + numeric.abs().max(base.grads[i].abs()));
            worst = worst.max(err.min((numeric - base.grads[i]).abs() * 1e4));
        }
        assert!(worst < 1e-4, "worst relative gradient error {worst}");
    }

    #[test]
    fn finite_differences_rc_sigmoid_with_entropy() {
        let rc = RcConfig {
            theta: 0.8,
            beta: 0.3,
            mode: TrainMode::Rc,
            loss_from_step: None,
        };
        check_gradients(tiny(1, Readout::Sigmoid), rc, 1);
    }

    #[test]
    fn finite_differences_rc_softmax_two_layers() {
        let rc = RcConfig {
            theta: 0.9,
            beta: 0.2,
            mode: TrainMode::Rc,
            loss_from_step: None,
        };
        check_gradients(tiny(2, Readout::Softmax), rc, 2);
    }

    /// The loss averaged over steps 2..=t* (rows deciding at step 0 or 1 keep the
    /// loss at t* alone), both readouts and both modes, so every step of a long row
    /// feeds dz.
    #[test]
    fn finite_differences_with_the_loss_over_steps() {
        let cases = [
            (2, Readout::Softmax, TrainMode::Rc, 6),
            (1, Readout::Sigmoid, TrainMode::Rc, 7),
            (1, Readout::Softmax, TrainMode::Eos, 8),
        ];
        for (layers, readout, mode, seed) in cases {
            let rc = RcConfig {
                theta: 0.9,
                beta: 0.2,
                mode,
                loss_from_step: Some(2),
            };
            check_gradients(tiny(layers, readout), rc, seed);
        }
    }

    #[test]
    fn finite_differences_end_of_sequence() {
        let rc = RcConfig {
            theta: 0.8,
            beta: 0.5,
            mode: TrainMode::Eos,
            loss_from_step: None,
        };
        check_gradients(tiny(2, Readout::Sigmoid), rc, 3);
    }

    #[test]
    fn rc_stops_at_the_first_spike_and_spikes_at_step_zero_count() {
        let cfg = tiny(1, Readout::Sigmoid);
        let params = big_params(&cfg, 5);
        let batch = random_batch(8, 16, 3, 3, 4);
        let eos = run_batch(
            &cfg,
            &RcConfig {
                theta: 0.8,
                beta: 0.0,
                mode: TrainMode::Eos,
                loss_from_step: None,
            },
            &params,
            &batch,
            false,
        );
        let rc = run_batch(
            &cfg,
            &RcConfig {
                theta: 0.8,
                beta: 0.0,
                mode: TrainMode::Rc,
                loss_from_step: None,
            },
            &params,
            &batch,
            false,
        );
        for (e, r) in eos.rows.iter().zip(&rc.rows) {
            assert_eq!(e.loss_step, 7);
            assert_eq!(e.first_spike, r.first_spike);
            assert_eq!(r.loss_step, r.decision_step);
            assert_eq!(r.logits.len(), r.loss_step + 1);
            // The first spike is the first step where a score reaches theta.
            let first = e
                .logits
                .iter()
                .position(|z| scores(cfg.readout, z).iter().any(|&y| y >= 0.8));
            assert_eq!(first, e.first_spike);
        }
        assert!(
            rc.rows.iter().any(|r| r.first_spike == Some(0)),
            "want a spike at t = 0 in this fixture"
        );
        assert!(
            rc.rows.iter().any(|r| r.first_spike.is_none()),
            "want a never-fired row in this fixture"
        );
    }

    #[test]
    fn the_prediction_is_the_largest_logit_even_when_scores_saturate() {
        let cfg = ModelConfig {
            input_size: 1,
            hidden_size: 1,
            layers: 1,
            classes: 2,
            readout: Readout::Sigmoid,
        };
        let mut params = vec![0f32; ParamLayout::new(&cfg).total];
        let layout = ParamLayout::new(&cfg);
        // sigmoid(40) and sigmoid(50) are both exactly 1.0 in f64.
        params[layout.readout_b] = 40.0;
        params[layout.readout_b + 1] = 50.0;
        let batch = random_batch(3, 2, 1, 2, 1);
        let out = run_batch(&cfg, &RcConfig::default(), &params, &batch, false);
        assert!(
            out.rows
                .iter()
                .all(|r| r.prediction == 1 && r.first_spike == Some(0))
        );
    }

    #[test]
    fn loss_matches_closed_forms() {
        // Sigmoid: BCE of z = 0 is ln 2 per unit, entropy ln 2 per unit.
        let (l, dz) = loss_and_dlogits(Readout::Sigmoid, 0.5, &[0.0, 0.0], 1);
        assert!((l - (2.0 * 2f64.ln() - 0.5 * 2.0 * 2f64.ln())).abs() < 1e-12);
        assert!((dz[0] - 0.5).abs() < 1e-12 && (dz[1] + 0.5).abs() < 1e-12);
        // Softmax of equal logits: CE = ln C, entropy = ln C, gradient p - onehot.
        let (l, dz) = loss_and_dlogits(Readout::Softmax, 1.0, &[2.0, 2.0, 2.0, 2.0], 0);
        assert!(l.abs() < 1e-12);
        assert!((dz[0] + 0.75).abs() < 1e-12 && (dz[1] - 0.25).abs() < 1e-12);
    }

    #[test]
    fn adam_matches_hand_computation() {
        let cfg = AdamConfig {
            lr: 0.1,
            ..AdamConfig::default()
        };
        let (mut p, mut m, mut v) = (vec![1.0], vec![0.0], vec![0.0]);
        adam_step(&cfg, 1, &mut p, &mut m, &mut v, &[2.0]);
        // First step: m_hat = g, v_hat = g^2, so the update is lr * sign(g).
        assert!((p[0] - 0.9).abs() < 1e-6);
        // AdamW first shrinks p = 1 by lr * weight_decay = 0.05, then takes the same step.
        let decayed = AdamConfig {
            weight_decay: 0.5,
            ..cfg
        };
        let (mut p, mut m, mut v) = (vec![1.0], vec![0.0], vec![0.0]);
        adam_step(&decayed, 1, &mut p, &mut m, &mut v, &[2.0]);
        assert!((p[0] - 0.85).abs() < 1e-6, "{p:?}");
    }

    #[test]
    fn adam_clips_the_gradient_to_the_global_norm() {
        let cfg = AdamConfig {
            max_grad_norm: Some(1.0),
            ..AdamConfig::default()
        };
        let (mut p, mut m, mut v) = (vec![0.0; 2], vec![0.0; 2], vec![0.0; 2]);
        // Norm 5 is scaled to 1: the moments see (0.6, 0.8).
        adam_step(&cfg, 1, &mut p, &mut m, &mut v, &[3.0, 4.0]);
        // (The f32 betas are 0.9 and 0.999 to about 1e-7 relative.)
        let near = |a: f64, b: f64| (a - b).abs() < 1e-4 * b;
        assert!(near(m[0], 0.1 * 0.6) && near(m[1], 0.1 * 0.8), "{m:?}");
        assert!(near(v[1], 0.001 * 0.64), "{v:?}");
    }
}
