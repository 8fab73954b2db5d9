//! The Whisper network (encoder and decoder) on candle, with a key/value cache.
//!
//! The layer layout follows CTranslate2's Whisper spec (pre-norm transformer blocks,
//! GELU feed-forward, learned decoder positions, output projection tied to the token
//! embedding), so the weights of [`crate::ct2::Weights`] load by their own names. The
//! decoder caches each layer's self-attention keys/values and the cross-attention
//! keys/values of the current window, so every new token costs one position, not the
//! whole sequence again.

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{Conv1d, Conv1dConfig, LayerNorm, Linear};

use crate::ct2::{Ct2Error, Weights};

/// Sizes of a Whisper model, read from its weights.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dims {
    pub n_mels: usize,
    pub n_audio_ctx: usize,
    pub n_audio_state: usize,
    pub n_audio_layer: usize,
    pub n_audio_head: usize,
    pub n_vocab: usize,
    pub n_text_ctx: usize,
    pub n_text_state: usize,
    pub n_text_layer: usize,
    pub n_text_head: usize,
}

/// A loaded Whisper model.
pub struct Whisper {
    pub dims: Dims,
    encoder: Encoder,
    decoder: Decoder,
}

impl Whisper {
    /// Builds the model from CTranslate2 weights whose fused attention was split.
    pub fn load(w: &Weights) -> Result<Self, Ct2Error> {
        let conv1 = w.get("encoder/conv1/weight")?;
        let (n_audio_state, n_mels, _) = conv1.dims3()?;
        let embeddings = w.get("decoder/embeddings/weight")?;
        let (n_vocab, n_text_state) = embeddings.dims2()?;
        let audio_positions = w.get("encoder/position_encodings/encodings")?;
        let text_positions = w.get("decoder/position_encodings/encodings")?;
        let heads = |name: &str, state: usize| -> usize {
            // Every Whisper size uses 64-dimensional heads; the file states it anyway.
            w.integer(name).map(|h| h as usize).unwrap_or(state / 64)
        };
        let dims = Dims {
            n_mels,
            n_audio_ctx: audio_positions.dim(0)?,
            n_audio_state,
            n_audio_layer: w.layer_count("encoder"),
            n_audio_head: heads("encoder/num_heads", n_audio_state),
            n_vocab,
            n_text_ctx: text_positions.dim(0)?,
            n_text_state,
            n_text_layer: w.layer_count("decoder"),
            n_text_head: heads("decoder/num_heads", n_text_state),
        };
        let encoder = Encoder {
            conv1: Conv1d::new(
                conv1,
                Some(w.get("encoder/conv1/bias")?),
                Conv1dConfig {
                    padding: 1,
                    ..Default::default()
                },
            ),
            conv2: Conv1d::new(
                w.get("encoder/conv2/weight")?,
                Some(w.get("encoder/conv2/bias")?),
                Conv1dConfig {
                    padding: 1,
                    stride: 2,
                    ..Default::default()
                },
            ),
            positions: audio_positions,
            blocks: (0..dims.n_audio_layer)
                .map(|i| EncoderBlock::load(w, &format!("encoder/layer_{i}"), dims.n_audio_head))
                .collect::<Result<_, _>>()?,
            ln_post: layer_norm(w, "encoder/layer_norm")?,
        };
        let decoder = Decoder {
            embeddings: embeddings.clone(),
            projection_t: embeddings.t()?,
            positions: text_positions,
            blocks: (0..dims.n_text_layer)
                .map(|i| DecoderBlock::load(w, &format!("decoder/layer_{i}"), dims.n_text_head))
                .collect::<Result<_, _>>()?,
            ln: layer_norm(w, "decoder/layer_norm")?,
        };
        Ok(Self {
            dims,
            encoder,
            decoder,
        })
    }

    /// Encodes a log-mel window `[n_mels, 2 * n_audio_ctx]` into audio features.
    pub fn encode(&self, mel: &Tensor) -> candle_core::Result<Tensor> {
        self.encoder.forward(&mel.unsqueeze(0)?)
    }

    /// A fresh decoder state (batch 1) for the audio features of one window.
    pub fn start_decoding(&self, features: &Tensor) -> candle_core::Result<DecoderState> {
        let cross = self
            .decoder
            .blocks
            .iter()
            .map(|b| b.cross_attn.keys_values(features))
            .collect::<Result<_, _>>()?;
        Ok(DecoderState {
            cross,
            cached: vec![None; self.decoder.blocks.len()],
            len: 0,
            batch: 1,
        })
    }

    /// Feeds `tokens` (`batch` sequences of equal length, one after the other) after
    /// those already in `state`; returns the logits `[batch, tokens / batch, n_vocab]`.
    pub fn decode(&self, tokens: &[u32], state: &mut DecoderState) -> candle_core::Result<Tensor> {
        self.decoder.forward(tokens, state)
    }
}

/// Decoder caches for one window: the cross-attention keys/values of the audio (shared
/// by every sequence) and the self-attention keys/values of `batch` token sequences.
#[derive(Clone)]
pub struct DecoderState {
    cross: Vec<(Tensor, Tensor)>,
    cached: Vec<Option<(Tensor, Tensor)>>,
    len: usize,
    batch: usize,
}

impl DecoderState {
    /// Forgets the decoded tokens but keeps the window's cross-attention keys/values,
    /// so a retry at another temperature does not recompute them.
    pub fn reset(&mut self) {
        self.cached.iter_mut().for_each(|c| *c = None);
        self.len = 0;
        self.batch = 1;
    }

    /// Number of tokens fed so far (per sequence).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of sequences decoded side by side.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Keeps, duplicates or reorders the sequences: new sequence `i` continues old
    /// sequence `sources[i]` (beam search).
    pub fn select(&mut self, sources: &[u32]) -> candle_core::Result<()> {
        let ids = Tensor::new(sources, &Device::Cpu)?;
        for (k, v) in self.cached.iter_mut().flatten() {
            *k = k.index_select(&ids, 0)?;
            *v = v.index_select(&ids, 0)?;
        }
        self.batch = sources.len();
        Ok(())
    }
}

fn linear(w: &Weights, prefix: &str) -> Result<Linear, Ct2Error> {
    let bias = format!("{prefix}/bias");
    let bias = if w.contains(&bias) {
        Some(w.get(&bias)?)
    } else {
        None
    };
    Ok(Linear::new(w.get(&format!("{prefix}/weight"))?, bias))
}

fn layer_norm(w: &Weights, prefix: &str) -> Result<LayerNorm, Ct2Error> {
    Ok(LayerNorm::new(
        w.get(&format!("{prefix}/gamma"))?,
        w.get(&format!("{prefix}/beta"))?,
        1e-5,
    ))
}

struct Attention {
    query: Linear,
    key: Linear,
    value: Linear,
    out: Linear,
    n_head: usize,
}

impl Attention {
    /// Self-attention (`…/self_attention`, output `linear_1`) or cross-attention
    /// (`…/attention`, query `linear_0`, output `linear_2`).
    fn load(w: &Weights, prefix: &str, n_head: usize, cross: bool) -> Result<Self, Ct2Error> {
        let (query, out) = if cross {
            (
                linear(w, &format!("{prefix}/linear_0"))?,
                linear(w, &format!("{prefix}/linear_2"))?,
            )
        } else {
            (
                linear(w, &format!("{prefix}/query"))?,
                linear(w, &format!("{prefix}/linear_1"))?,
            )
        };
        Ok(Self {
            query,
            key: linear(w, &format!("{prefix}/key"))?,
            value: linear(w, &format!("{prefix}/value"))?,
            out,
            n_head,
        })
    }

    /// `[1, T, D]` → `[1, H, T, D/H]`.
    fn heads(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (b, t, d) = x.dims3()?;
        x.reshape((b, t, self.n_head, d / self.n_head))?
            .transpose(1, 2)?
            .contiguous()
    }

    fn keys_values(&self, x: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
        Ok((
            self.heads(&self.key.forward(x)?)?,
            self.heads(&self.value.forward(x)?)?,
        ))
    }

    fn attend(
        &self,
        x: &Tensor,
        k: &Tensor,
        v: &Tensor,
        mask: Option<&Tensor>,
    ) -> candle_core::Result<Tensor> {
        let q = self.heads(&self.query.forward(x)?)?;
        let (b, h, t, head_dim) = q.dims4()?;
        // Cross-attention keys are computed once (batch 1) and shared by all sequences:
        // stack the sequences' queries as extra rows instead of copying the keys.
        let shared = k.dim(0)? == 1 && b > 1;
        let q = if shared {
            q.transpose(0, 1)?.reshape((1, h, b * t, head_dim))?
        } else {
            q
        };
        let scale = 1.0 / (head_dim as f64).sqrt();
        let mut scores = (q.matmul(&k.t()?)? * scale)?;
        if let Some(mask) = mask {
            scores = scores.broadcast_add(mask)?;
        }
        let weights = candle_nn::ops::softmax_last_dim(&scores)?;
        let out = weights.matmul(v)?;
        let out = if shared {
            out.reshape((h, b, t, head_dim))?.transpose(0, 1)?
        } else {
            out
        };
        let out = out.transpose(1, 2)?.reshape((b, t, h * head_dim))?;
        self.out.forward(&out)
    }
}

struct FeedForward {
    ln: LayerNorm,
    up: Linear,
    down: Linear,
}

impl FeedForward {
    fn load(w: &Weights, prefix: &str) -> Result<Self, Ct2Error> {
        Ok(Self {
            ln: layer_norm(w, &format!("{prefix}/layer_norm"))?,
            up: linear(w, &format!("{prefix}/linear_0"))?,
            down: linear(w, &format!("{prefix}/linear_1"))?,
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let h = self.up.forward(&self.ln.forward(x)?)?.gelu_erf()?;
        x + self.down.forward(&h)?
    }
}

struct EncoderBlock {
    ln: LayerNorm,
    attn: Attention,
    ffn: FeedForward,
}

impl EncoderBlock {
    fn load(w: &Weights, prefix: &str, n_head: usize) -> Result<Self, Ct2Error> {
        let sa = format!("{prefix}/self_attention");
        Ok(Self {
            ln: layer_norm(w, &format!("{sa}/layer_norm"))?,
            attn: Attention::load(w, &sa, n_head, false)?,
            ffn: FeedForward::load(w, &format!("{prefix}/ffn"))?,
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let h = self.ln.forward(x)?;
        let (k, v) = self.attn.keys_values(&h)?;
        let x = (x + self.attn.attend(&h, &k, &v, None)?)?;
        self.ffn.forward(&x)
    }
}

struct Encoder {
    conv1: Conv1d,
    conv2: Conv1d,
    positions: Tensor,
    blocks: Vec<EncoderBlock>,
    ln_post: LayerNorm,
}

impl Encoder {
    fn forward(&self, mel: &Tensor) -> candle_core::Result<Tensor> {
        let x = self.conv1.forward(mel)?.gelu_erf()?;
        let x = self.conv2.forward(&x)?.gelu_erf()?;
        let x = x.transpose(1, 2)?;
        let t = x.dim(1)?;
        let mut x = x.broadcast_add(&self.positions.narrow(0, 0, t)?)?;
        for block in &self.blocks {
            x = block.forward(&x)?;
        }
        self.ln_post.forward(&x)
    }
}

struct DecoderBlock {
    self_ln: LayerNorm,
    self_attn: Attention,
    cross_ln: LayerNorm,
    cross_attn: Attention,
    ffn: FeedForward,
}

impl DecoderBlock {
    fn load(w: &Weights, prefix: &str, n_head: usize) -> Result<Self, Ct2Error> {
        let sa = format!("{prefix}/self_attention");
        let ca = format!("{prefix}/attention");
        Ok(Self {
            self_ln: layer_norm(w, &format!("{sa}/layer_norm"))?,
            self_attn: Attention::load(w, &sa, n_head, false)?,
            cross_ln: layer_norm(w, &format!("{ca}/layer_norm"))?,
            cross_attn: Attention::load(w, &ca, n_head, true)?,
            ffn: FeedForward::load(w, &format!("{prefix}/ffn"))?,
        })
    }
}

struct Decoder {
    embeddings: Tensor,
    /// The output projection: a transposed view of `embeddings` (tied weights; gemm
    /// reads it strided, as fast as a copy and without the extra 80–100 MB).
    projection_t: Tensor,
    positions: Tensor,
    blocks: Vec<DecoderBlock>,
    ln: LayerNorm,
}

impl Decoder {
    fn forward(&self, tokens: &[u32], state: &mut DecoderState) -> candle_core::Result<Tensor> {
        let batch = state.batch;
        let t = tokens.len() / batch;
        let offset = state.len;
        let n_ctx = self.positions.dim(0)?;
        if offset + t > n_ctx {
            candle_core::bail!("the decoder context of {n_ctx} tokens is full");
        }
        let ids = Tensor::new(tokens, &Device::Cpu)?;
        let x = self
            .embeddings
            .index_select(&ids, 0)?
            .reshape((batch, t, ()))?;
        let mut x = x.broadcast_add(&self.positions.narrow(0, offset, t)?)?;
        let mask = if t > 1 {
            Some(causal_mask(t, offset)?)
        } else {
            None
        };
        for (i, block) in self.blocks.iter().enumerate() {
            let h = block.self_ln.forward(&x)?;
            let (k, v) = block.self_attn.keys_values(&h)?;
            let (k, v) = match &state.cached[i] {
                Some((pk, pv)) => (Tensor::cat(&[pk, &k], 2)?, Tensor::cat(&[pv, &v], 2)?),
                None => (k, v),
            };
            x = (&x + block.self_attn.attend(&h, &k, &v, mask.as_ref())?)?;
            state.cached[i] = Some((k, v));
            let h = block.cross_ln.forward(&x)?;
            let (ck, cv) = &state.cross[i];
            x = (&x + block.cross_attn.attend(&h, ck, cv, None)?)?;
            x = block.ffn.forward(&x)?;
        }
        state.len += t;
        let x = self.ln.forward(&x)?;
        let d = x.dim(2)?;
        x.reshape((batch * t, d))?
            .matmul(&self.projection_t)?
            .reshape((batch, t, ()))
    }
}

/// `[t, offset + t]` with −∞ where a position would look ahead.
fn causal_mask(t: usize, offset: usize) -> candle_core::Result<Tensor> {
    let width = offset + t;
    let values: Vec<f32> = (0..t)
        .flat_map(|i| {
            (0..width).map(move |j| {
                if j > i + offset {
                    f32::NEG_INFINITY
                } else {
                    0.0
                }
            })
        })
        .collect();
    Tensor::from_vec(values, (t, width), &Device::Cpu)?.to_dtype(DType::F32)
}
