//! The reference: the Whisper network run inside the sandbox on candle (pure Rust, wasm
//! SIMD, one thread), as the plugin did before the compute interface. Built with the
//! `pure-wasm` feature, for `cargo xtask bench` to compare with the compute path on the
//! same source.
//!
//! The layer layout follows CTranslate2's Whisper spec (pre-norm transformer blocks,
//! GELU feed-forward, learned decoder positions, output projection tied to the token
//! embedding), so the weights load by their own names, read from the regions of
//! [`crate::ct2::Index`] into plugin memory (always computed in f32). The
//! decoder caches each layer's self-attention keys/values and the cross-attention
//! keys/values of the current window, so every new token costs one position, not the
//! whole sequence again.

use std::cell::RefCell;
use std::io::{Read, Seek, SeekFrom};

use candle_core::{DType, Device, IndexOp, Module, Tensor};
use candle_nn::{Conv1d, Conv1dConfig, LayerNorm, Linear};

use crate::ct2::{Ct2Error, Dtype, Index};
use crate::mel::N_FRAMES;
use crate::network::{DecoderState as _, Dims, InferenceError, Network};

impl From<candle_core::Error> for InferenceError {
    fn from(e: candle_core::Error) -> Self {
        InferenceError(e.to_string())
    }
}

/// The model's variables, read from the file when asked for.
pub struct Weights<'a, R> {
    index: &'a Index,
    file: RefCell<R>,
}

impl<'a, R: Read + Seek> Weights<'a, R> {
    pub fn new(index: &'a Index, file: R) -> Self {
        Self {
            index,
            file: RefCell::new(file),
        }
    }

    /// The tensor called `name`, as f32.
    pub fn get(&self, name: &str) -> Result<Tensor, Ct2Error> {
        let region = self.index.get(name)?;
        let mut bytes = vec![0u8; region.byte_len() as usize];
        let mut file = self.file.borrow_mut();
        file.seek(SeekFrom::Start(region.offset))?;
        file.read_exact(&mut bytes)?;
        let values: Vec<f32> = match region.dtype {
            Dtype::F32 => bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Dtype::F16 => bytes
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            Dtype::Bf16 => bytes
                .chunks_exact(2)
                .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
        };
        Tensor::from_vec(values, region.shape.clone(), &Device::Cpu).map_err(tensor_error)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.index.contains(name)
    }
}

fn tensor_error(e: candle_core::Error) -> Ct2Error {
    Ct2Error::Format(format!("cannot build a tensor: {e}"))
}

/// A loaded Whisper model.
pub struct Whisper {
    pub dims: Dims,
    encoder: Encoder,
    decoder: Decoder,
}

impl Whisper {
    /// Reads the model into plugin memory from CTranslate2 weights whose fused
    /// attention was split.
    pub fn load<R: Read + Seek>(w: &Weights<'_, R>, dims: Dims) -> Result<Self, Ct2Error> {
        let conv1 = w.get("encoder/conv1/weight")?;
        let embeddings = w.get("decoder/embeddings/weight")?;
        let audio_positions = w.get("encoder/position_encodings/encodings")?;
        let text_positions = w.get("decoder/position_encodings/encodings")?;
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
            projection_t: embeddings.t().map_err(tensor_error)?,
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
}

impl Network for Whisper {
    type State = DecoderState;

    fn dims(&self) -> &Dims {
        &self.dims
    }

    fn start_window(&self, mel: &[f32]) -> Result<DecoderState, InferenceError> {
        let mel = Tensor::from_slice(mel, (1, self.dims.n_mels, N_FRAMES), &Device::Cpu)?;
        let features = self.encoder.forward(&mel)?;
        let cross = self
            .decoder
            .blocks
            .iter()
            .map(|b| b.cross_attn.keys_values(&features))
            .collect::<Result<_, _>>()?;
        Ok(DecoderState {
            cross,
            cached: vec![None; self.decoder.blocks.len()],
            len: 0,
            batch: 1,
        })
    }

    fn decode(
        &self,
        tokens: &[u32],
        state: &mut DecoderState,
        positions: &[usize],
    ) -> Result<Vec<Vec<f32>>, InferenceError> {
        let batch = state.batch();
        let logits = self.decoder.forward(tokens, state)?;
        let mut rows = Vec::with_capacity(batch * positions.len());
        for s in 0..batch {
            for &p in positions {
                rows.push(logits.i((s, p))?.to_vec1()?);
            }
        }
        Ok(rows)
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

impl crate::network::DecoderState for DecoderState {
    fn reset(&mut self, _positions: usize) {
        self.cached.iter_mut().for_each(|c| *c = None);
        self.len = 0;
        self.batch = 1;
    }

    fn len(&self) -> usize {
        self.len
    }

    fn batch(&self) -> usize {
        self.batch
    }

    fn select(&mut self, sources: &[u32]) -> Result<(), InferenceError> {
        let ids = Tensor::new(sources, &Device::Cpu)?;
        for (k, v) in self.cached.iter_mut().flatten() {
            *k = k.index_select(&ids, 0)?;
            *v = v.index_select(&ids, 0)?;
        }
        self.batch = sources.len();
        Ok(())
    }
}

fn linear<R: Read + Seek>(w: &Weights<'_, R>, prefix: &str) -> Result<Linear, Ct2Error> {
    let bias = format!("{prefix}/bias");
    let bias = if w.contains(&bias) {
        Some(w.get(&bias)?)
    } else {
        None
    };
    Ok(Linear::new(w.get(&format!("{prefix}/weight"))?, bias))
}

fn layer_norm<R: Read + Seek>(w: &Weights<'_, R>, prefix: &str) -> Result<LayerNorm, Ct2Error> {
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
    fn load<R: Read + Seek>(
        w: &Weights<'_, R>,
        prefix: &str,
        n_head: usize,
        cross: bool,
    ) -> Result<Self, Ct2Error> {
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
    fn load<R: Read + Seek>(w: &Weights<'_, R>, prefix: &str) -> Result<Self, Ct2Error> {
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
    fn load<R: Read + Seek>(
        w: &Weights<'_, R>,
        prefix: &str,
        n_head: usize,
    ) -> Result<Self, Ct2Error> {
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
    fn load<R: Read + Seek>(
        w: &Weights<'_, R>,
        prefix: &str,
        n_head: usize,
    ) -> Result<Self, Ct2Error> {
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
