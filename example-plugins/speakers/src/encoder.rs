//! Resemblyzer's GE2E speaker encoder: 160 mel frames (1.6 s) through a 3-layer LSTM
//! (hidden 256), the last layer's final hidden state through a linear 256 → 256 and a
//! ReLU, L2-normalised: one 256-d voice embedding per window.
//!
//! The matrix products run in the host through the compute interface, batched over every
//! window: per layer one `linear` for the input products of all time steps, then per
//! step one `linear` for the recurrent product of the batch; the gates (sigmoid, tanh,
//! the cell update) are computed here. Weights are read by the host straight from
//! `pretrained.pt` at the offsets [`Checkpoint`] found.

use std::path::Path;

use sandscribe_plugin_sdk::compute::{self, Activation, FileDtype, Precision, Tensor, Weights};
use sandscribe_plugin_sdk::{PluginError, check_cancelled};

use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::mel::BANDS;

/// The model file in the plugin's assets folder.
pub const MODEL_FILE: &str = "pretrained.pt";
const HIDDEN: usize = 256;
const LAYERS: usize = 3;
pub const EMBEDDING: usize = 256;
/// Windows run through the LSTM together (bounds the activations held at once).
pub const BATCH: usize = 64;

struct Layer {
    w_ih: Weights,
    w_hh: Weights,
    b_ih: Weights,
    b_hh: Weights,
}

/// The loaded encoder.
pub struct Encoder {
    layers: Vec<Layer>,
    linear_w: Weights,
    linear_b: Weights,
}

impl Encoder {
    /// Indexes `MODEL_FILE` in `assets` (the path the plugin opens) and asks the host for
    /// each weight, checking every shape first.
    pub fn load(assets: &Path) -> Result<Self, CheckpointError> {
        let mut file = std::fs::File::open(assets.join(MODEL_FILE))?;
        let checkpoint = Checkpoint::read(&mut file)?;
        let weights = |name: &str, shape: &[usize]| -> Result<Weights, CheckpointError> {
            let entry = checkpoint.expect(name, shape)?;
            Ok(Weights::from_asset(
                MODEL_FILE,
                entry.offset,
                FileDtype::F32,
                shape,
                Precision::Float32,
            ))
        };
        let layers = (0..LAYERS)
            .map(|l| {
                let input = if l == 0 { BANDS } else { HIDDEN };
                Ok(Layer {
                    w_ih: weights(&format!("lstm.weight_ih_l{l}"), &[4 * HIDDEN, input])?,
                    w_hh: weights(&format!("lstm.weight_hh_l{l}"), &[4 * HIDDEN, HIDDEN])?,
                    b_ih: weights(&format!("lstm.bias_ih_l{l}"), &[4 * HIDDEN])?,
                    b_hh: weights(&format!("lstm.bias_hh_l{l}"), &[4 * HIDDEN])?,
                })
            })
            .collect::<Result<Vec<_>, CheckpointError>>()?;
        Ok(Self {
            layers,
            linear_w: weights("linear.weight", &[EMBEDDING, HIDDEN])?,
            linear_b: weights("linear.bias", &[EMBEDDING])?,
        })
    }

    /// One L2-normalised embedding per window of mel frames (all windows the same
    /// length: 160 frames, 1.6 s, is what the model was trained on). Run at most
    /// [`BATCH`] windows at a time to bound the memory held.
    pub fn embed(
        &self,
        windows: &[Vec<[f32; BANDS]>],
    ) -> Result<Vec<[f32; EMBEDDING]>, PluginError> {
        check_cancelled()?;
        let b = windows.len();
        let frames = windows.first().map_or(0, Vec::len);
        if b == 0 || frames == 0 {
            return Ok(Vec::new());
        }
        let mut input: Vec<f32> = Vec::with_capacity(b * frames * BANDS);
        for w in windows {
            if w.len() != frames {
                return Err(PluginError::Internal(format!(
                    "windows of {} and {frames} frames in one batch",
                    w.len()
                )));
            }
            input.extend(w.iter().flatten());
        }
        let mut width = BANDS;
        let mut last = vec![0f32; b * HIDDEN];
        for layer in &self.layers {
            let x = Tensor::new(&input, &[b, frames, width]);
            let projected = compute::linear(&x, &layer.w_ih, Some(&layer.b_ih), Activation::None);
            let mut h = vec![0f32; b * HIDDEN];
            let mut c = vec![0f32; b * HIDDEN];
            let mut sequence = vec![0f32; b * frames * HIDDEN];
            for t in 0..frames {
                let recurrent = compute::linear(
                    &Tensor::new(&h, &[b, 1, HIDDEN]),
                    &layer.w_hh,
                    Some(&layer.b_hh),
                    Activation::None,
                );
                let gates = compute::add(&projected.narrow(1, t, 1), &recurrent).read();
                lstm_cell(&gates, &mut h, &mut c);
                for (i, row) in h.chunks_exact(HIDDEN).enumerate() {
                    let at = (i * frames + t) * HIDDEN;
                    sequence[at..at + HIDDEN].copy_from_slice(row);
                }
            }
            last = h;
            input = sequence;
            width = HIDDEN;
        }
        let hidden = Tensor::new(&last, &[b, HIDDEN]);
        let raw = compute::linear(
            &hidden,
            &self.linear_w,
            Some(&self.linear_b),
            Activation::None,
        )
        .read();
        Ok(raw.chunks_exact(EMBEDDING).map(relu_normalised).collect())
    }
}

/// One LSTM step for a batch: `gates` is `[b, 4 * HIDDEN]` (PyTorch's order: input,
/// forget, cell, output), `h` and `c` are `[b, HIDDEN]`, updated in place.
fn lstm_cell(gates: &[f32], h: &mut [f32], c: &mut [f32]) {
    for ((g, h), c) in gates
        .chunks_exact(4 * HIDDEN)
        .zip(h.chunks_exact_mut(HIDDEN))
        .zip(c.chunks_exact_mut(HIDDEN))
    {
        for j in 0..HIDDEN {
            let i = sigmoid(g[j]);
            let f = sigmoid(g[HIDDEN + j]);
            let cell = g[2 * HIDDEN + j].tanh();
            let o = sigmoid(g[3 * HIDDEN + j]);
            c[j] = f * c[j] + i * cell;
            h[j] = o * c[j].tanh();
        }
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// ReLU, then unit length (an all-zero vector stays zero).
fn relu_normalised(raw: &[f32]) -> [f32; EMBEDDING] {
    let mut out = [0f32; EMBEDDING];
    for (o, r) in out.iter_mut().zip(raw) {
        *o = r.max(0.0);
    }
    let norm = out.iter().map(|v| v * v).sum::<f32>().sqrt();
    if norm > 0.0 {
        out.iter_mut().for_each(|v| *v /= norm);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_lstm_cell_follows_pytorchs_gate_order() {
        // One unit per gate block is enough to see the order: input 0 (sigmoid = 0.5),
        // forget large (keeps c), cell 0.5, output large.
        let mut gates = vec![0f32; 4 * HIDDEN];
        gates[HIDDEN] = 20.0;
        gates[2 * HIDDEN] = 0.5;
        gates[3 * HIDDEN] = 20.0;
        let mut h = vec![0f32; HIDDEN];
        let mut c = vec![0f32; HIDDEN];
        c[0] = 1.0;
        lstm_cell(&gates, &mut h, &mut c);
        let expected_c = 1.0 + 0.5 * 0.5f32.tanh();
        assert!((c[0] - expected_c).abs() < 1e-5, "{}", c[0]);
        assert!((h[0] - expected_c.tanh()).abs() < 1e-5);
        // Other units: c = 0.5 * 0 + 0.5 * tanh(0) = 0.
        assert_eq!(c[1], 0.0);
    }

    #[test]
    fn embeddings_are_relu_then_unit_length() {
        let mut raw = vec![0f32; EMBEDDING];
        raw[0] = 3.0;
        raw[1] = -5.0;
        raw[2] = 4.0;
        let e = relu_normalised(&raw);
        assert!((e[0] - 0.6).abs() < 1e-6 && e[1] == 0.0 && (e[2] - 0.8).abs() < 1e-6);
        assert!(
            relu_normalised(&[-1.0; EMBEDDING])
                .iter()
                .all(|&v| v == 0.0)
        );
    }
}
