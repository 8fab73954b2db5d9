//! The Whisper network on the host's compute interface.
//!
//! The layers follow CTranslate2's Whisper spec (pre-norm transformer blocks, GELU
//! feed-forward, learned decoder positions, output projection tied to the token
//! embedding), so the weights load by their own names from [`crate::ct2::Index`]
//! regions of `model.bin`: the host reads them, and every job of this plugin build
//! shares them. Activations stay in the host between calls; the plugin reads back
//! only the logits of the positions it decodes.
//!
//! Linear layers use the job's [`Precision`]; convolutions, norms, biases, positions
//! and the embedding table that `embed` reads stay `float32`. The output projection is
//! the embedding region again, at the job's precision.

use sandscribe_plugin_sdk::compute::{
    self, Activation, FileDtype, KvCache, Precision, Tensor, Weights,
};

use crate::ct2::{Ct2Error, Dtype, Index};
use crate::mel::N_FRAMES;
use crate::network::{DecoderState, Dims, InferenceError, Network};

/// The asset file the regions of [`Index`] are in (relative to the assets folder).
pub const MODEL_FILE: &str = "model.bin";

/// Layer norm epsilon of every Whisper size.
const EPS: f32 = 1e-5;

/// A Whisper model whose weights are in the host.
pub struct Whisper {
    dims: Dims,
    encoder: Encoder,
    decoder: Decoder,
}

impl Whisper {
    /// Creates the weights of every layer from `index` (fused attention already split),
    /// with the linear layers at `precision`.
    pub fn load(index: &Index, dims: Dims, precision: Precision) -> Result<Self, Ct2Error> {
        let w = Loader { index, precision };
        let encoder = Encoder {
            conv1: w.conv("encoder/conv1")?,
            conv2: w.conv("encoder/conv2")?,
            positions: w.float("encoder/position_encodings/encodings")?,
            blocks: (0..dims.n_audio_layer)
                .map(|i| EncoderBlock::load(&w, &format!("encoder/layer_{i}"), dims.n_audio_head))
                .collect::<Result<_, _>>()?,
            ln_post: w.norm("encoder/layer_norm")?,
        };
        let embeddings = "decoder/embeddings/weight";
        let decoder = Decoder {
            embeddings: w.float(embeddings)?,
            projection: w.at_precision(embeddings)?,
            positions: w.float("decoder/position_encodings/encodings")?,
            blocks: (0..dims.n_text_layer)
                .map(|i| DecoderBlock::load(&w, &format!("decoder/layer_{i}"), dims.n_text_head))
                .collect::<Result<_, _>>()?,
            ln: w.norm("decoder/layer_norm")?,
            n_ctx: dims.n_text_ctx,
            width: dims.n_text_state,
        };
        Ok(Self {
            dims,
            encoder,
            decoder,
        })
    }
}

/// Decoder memory for one window: the audio's cross-attention keys and values (batch 1,
/// shared by every sequence) and one self-attention cache per layer.
pub struct State {
    cross: Vec<(Tensor, Tensor)>,
    caches: Vec<KvCache>,
    /// Positions each cache has room for.
    capacity: usize,
    n_ctx: usize,
    width: usize,
    len: usize,
    batch: usize,
}

impl DecoderState for State {
    fn reset(&mut self, positions: usize) {
        // The caches hold room for every beam × `capacity` positions: sized to what this
        // attempt can feed (about half the context by default), not to the context.
        let capacity = positions.clamp(1, self.n_ctx);
        if capacity == self.capacity {
            self.caches.iter_mut().for_each(|c| c.reset(1));
        } else {
            self.caches = (0..self.caches.len())
                .map(|_| KvCache::new(1, self.width, capacity))
                .collect();
            self.capacity = capacity;
        }
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
        if sources.is_empty() || sources.iter().any(|&s| s as usize >= self.batch) {
            return Err(InferenceError(format!(
                "cannot continue sequences {sources:?} of {}",
                self.batch
            )));
        }
        self.caches.iter_mut().for_each(|c| c.reorder(sources));
        self.batch = sources.len();
        Ok(())
    }
}

impl Network for Whisper {
    type State = State;

    fn dims(&self) -> &Dims {
        &self.dims
    }

    fn start_window(&self, mel: &[f32]) -> Result<State, InferenceError> {
        let n_mels = self.dims.n_mels;
        if mel.len() != n_mels * N_FRAMES {
            return Err(InferenceError(format!(
                "a window has {} mel values, not {n_mels} × {N_FRAMES}",
                mel.len()
            )));
        }
        // The host's convolution is channels-last: [time, mels].
        let mut frames = vec![0f32; mel.len()];
        for (band, row) in mel.chunks_exact(N_FRAMES).enumerate() {
            for (t, &v) in row.iter().enumerate() {
                frames[t * n_mels + band] = v;
            }
        }
        let features = self
            .encoder
            .forward(&Tensor::new(&frames, &[N_FRAMES, n_mels]));
        drop(frames);
        let d = &self.decoder;
        Ok(State {
            cross: d
                .blocks
                .iter()
                .map(|b| b.cross_attn.keys_values(&features))
                .collect(),
            // Room for one position until `reset` says how many the attempt needs.
            caches: (0..d.blocks.len())
                .map(|_| KvCache::new(1, d.width, 1))
                .collect(),
            capacity: 1,
            n_ctx: d.n_ctx,
            width: d.width,
            len: 0,
            batch: 1,
        })
    }

    fn decode(
        &self,
        tokens: &[u32],
        state: &mut State,
        positions: &[usize],
    ) -> Result<Vec<Vec<f32>>, InferenceError> {
        self.decoder.forward(tokens, state, positions)
    }

    fn cross_attention_weights(
        &self,
        tokens: &[u32],
        state: &mut State,
        heads: &[(usize, usize)],
    ) -> Result<Vec<f32>, InferenceError> {
        self.decoder.cross_attention_weights(tokens, state, heads)
    }
}

/// Creates weights from the regions of `model.bin`.
struct Loader<'a> {
    index: &'a Index,
    precision: Precision,
}

impl Loader<'_> {
    fn region(&self, name: &str, precision: Precision) -> Result<Weights, Ct2Error> {
        let region = self.index.get(name)?;
        let dtype = match region.dtype {
            Dtype::F32 => FileDtype::F32,
            Dtype::F16 => FileDtype::F16,
            Dtype::Bf16 => FileDtype::Bf16,
        };
        Ok(Weights::from_asset(
            MODEL_FILE,
            region.offset,
            dtype,
            &region.shape,
            precision,
        ))
    }

    /// Kept as `float32` whatever the job's precision.
    fn float(&self, name: &str) -> Result<Weights, Ct2Error> {
        self.region(name, Precision::Float32)
    }

    /// At the job's precision (matrices of `linear`).
    fn at_precision(&self, name: &str) -> Result<Weights, Ct2Error> {
        self.region(name, self.precision)
    }

    fn linear(&self, prefix: &str) -> Result<Linear, Ct2Error> {
        let bias = format!("{prefix}/bias");
        Ok(Linear {
            weight: self.at_precision(&format!("{prefix}/weight"))?,
            bias: if self.index.contains(&bias) {
                Some(self.float(&bias)?)
            } else {
                None
            },
        })
    }

    fn conv(&self, prefix: &str) -> Result<Linear, Ct2Error> {
        Ok(Linear {
            weight: self.float(&format!("{prefix}/weight"))?,
            bias: Some(self.float(&format!("{prefix}/bias"))?),
        })
    }

    fn norm(&self, prefix: &str) -> Result<LayerNorm, Ct2Error> {
        Ok(LayerNorm {
            gamma: self.float(&format!("{prefix}/gamma"))?,
            beta: self.float(&format!("{prefix}/beta"))?,
        })
    }
}

/// A weight matrix `[out, in]` (or a convolution's `[out, in, kernel]`) and its bias.
struct Linear {
    weight: Weights,
    bias: Option<Weights>,
}

impl Linear {
    fn forward(&self, x: &Tensor, act: Activation) -> Tensor {
        compute::linear(x, &self.weight, self.bias.as_ref(), act)
    }

    fn conv(&self, x: &Tensor, stride: usize) -> Tensor {
        compute::conv1d(
            x,
            &self.weight,
            self.bias.as_ref(),
            stride,
            1,
            Activation::Gelu,
        )
    }
}

struct LayerNorm {
    gamma: Weights,
    beta: Weights,
}

impl LayerNorm {
    fn forward(&self, x: &Tensor) -> Tensor {
        compute::layer_norm(x, &self.gamma, &self.beta, EPS)
    }
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
    fn load(w: &Loader<'_>, prefix: &str, n_head: usize, cross: bool) -> Result<Self, Ct2Error> {
        let (query, out) = if cross {
            ("linear_0", "linear_2")
        } else {
            ("query", "linear_1")
        };
        Ok(Self {
            query: w.linear(&format!("{prefix}/{query}"))?,
            key: w.linear(&format!("{prefix}/key"))?,
            value: w.linear(&format!("{prefix}/value"))?,
            out: w.linear(&format!("{prefix}/{out}"))?,
            n_head,
        })
    }

    fn keys_values(&self, x: &Tensor) -> (Tensor, Tensor) {
        (
            self.key.forward(x, Activation::None),
            self.value.forward(x, Activation::None),
        )
    }

    /// `x + attention(x over k, v)`.
    fn residual(&self, x: &Tensor, h: &Tensor, k: &Tensor, v: &Tensor) -> Tensor {
        let q = self.query.forward(h, Activation::None);
        let a = compute::attention(&q, k, v, self.n_head, false);
        compute::add(x, &self.out.forward(&a, Activation::None))
    }

    /// `x + self-attention(x)` over the cache, after appending this step.
    fn residual_cached(&self, x: &Tensor, h: &Tensor, cache: &mut KvCache) -> Tensor {
        let q = self.query.forward(h, Activation::None);
        let (k, v) = self.keys_values(h);
        cache.append(&k, &v);
        let a = compute::attention_cached(&q, cache, self.n_head);
        compute::add(x, &self.out.forward(&a, Activation::None))
    }
}

struct FeedForward {
    ln: LayerNorm,
    up: Linear,
    down: Linear,
}

impl FeedForward {
    fn load(w: &Loader<'_>, prefix: &str) -> Result<Self, Ct2Error> {
        Ok(Self {
            ln: w.norm(&format!("{prefix}/layer_norm"))?,
            up: w.linear(&format!("{prefix}/linear_0"))?,
            down: w.linear(&format!("{prefix}/linear_1"))?,
        })
    }

    /// `x + ffn(x)`.
    fn residual(&self, x: &Tensor) -> Tensor {
        let h = self.up.forward(&self.ln.forward(x), Activation::Gelu);
        compute::add(x, &self.down.forward(&h, Activation::None))
    }
}

struct EncoderBlock {
    ln: LayerNorm,
    attn: Attention,
    ffn: FeedForward,
}

impl EncoderBlock {
    fn load(w: &Loader<'_>, prefix: &str, n_head: usize) -> Result<Self, Ct2Error> {
        let sa = format!("{prefix}/self_attention");
        Ok(Self {
            ln: w.norm(&format!("{sa}/layer_norm"))?,
            attn: Attention::load(w, &sa, n_head, false)?,
            ffn: FeedForward::load(w, &format!("{prefix}/ffn"))?,
        })
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let x = {
            // Freed before the feed-forward's [t, 4 × width] hidden layer exists.
            let h = self.ln.forward(x);
            let (k, v) = self.attn.keys_values(&h);
            self.attn.residual(x, &h, &k, &v)
        };
        self.ffn.residual(&x)
    }
}

struct Encoder {
    conv1: Linear,
    conv2: Linear,
    positions: Weights,
    blocks: Vec<EncoderBlock>,
    ln_post: LayerNorm,
}

impl Encoder {
    /// `[N_FRAMES, n_mels]` → audio features `[1, n_audio_ctx, width]`.
    fn forward(&self, mel: &Tensor) -> Tensor {
        // Each intermediate is dropped (freed in the host) as soon as the next exists.
        let x = self.conv2.conv(&self.conv1.conv(mel, 1), 2);
        let shape = x.shape();
        let x = x.reshape(&[1, shape[0], shape[1]]);
        let mut x = compute::add_positions(&x, &self.positions, 0);
        for block in &self.blocks {
            x = block.forward(&x);
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
    fn load(w: &Loader<'_>, prefix: &str, n_head: usize) -> Result<Self, Ct2Error> {
        let sa = format!("{prefix}/self_attention");
        let ca = format!("{prefix}/attention");
        Ok(Self {
            self_ln: w.norm(&format!("{sa}/layer_norm"))?,
            self_attn: Attention::load(w, &sa, n_head, false)?,
            cross_ln: w.norm(&format!("{ca}/layer_norm"))?,
            cross_attn: Attention::load(w, &ca, n_head, true)?,
            ffn: FeedForward::load(w, &format!("{prefix}/ffn"))?,
        })
    }
}

struct Decoder {
    /// The token embedding, `float32`, for `embed`.
    embeddings: Weights,
    /// The same region at the job's precision: the output projection (tied weights).
    projection: Weights,
    positions: Weights,
    blocks: Vec<DecoderBlock>,
    ln: LayerNorm,
    n_ctx: usize,
    width: usize,
}

impl Decoder {
    /// Teacher-forces `tokens` and reads the cross-attention weights of `heads`
    /// (see [`Network::cross_attention_weights`]). Layers after the last one asked
    /// for are not run.
    fn cross_attention_weights(
        &self,
        tokens: &[u32],
        state: &mut State,
        heads: &[(usize, usize)],
    ) -> Result<Vec<f32>, InferenceError> {
        let t = tokens.len();
        if t == 0 || t > self.n_ctx {
            return Err(InferenceError(format!(
                "cannot align {t} tokens in a {}-token context",
                self.n_ctx
            )));
        }
        if let Some(&(layer, head)) = heads
            .iter()
            .find(|&&(l, h)| l >= self.blocks.len() || h >= self.blocks[l].cross_attn.n_head)
        {
            return Err(InferenceError(format!(
                "alignment head {head} of layer {layer} is not in the model"
            )));
        }
        state.reset(t);
        let Some(last) = heads.iter().map(|&(l, _)| l).max() else {
            return Ok(Vec::new());
        };
        let ctx = state.cross[0].0.shape()[1];
        let mut out = vec![0f32; heads.len() * t * ctx];
        let mut x = compute::add_positions(
            &compute::embed(&self.embeddings, tokens, 1),
            &self.positions,
            0,
        );
        for (i, block) in self.blocks.iter().enumerate().take(last + 1) {
            let h = block.self_ln.forward(&x);
            x = block
                .self_attn
                .residual_cached(&x, &h, &mut state.caches[i]);
            let h = block.cross_ln.forward(&x);
            let (ck, cv) = &state.cross[i];
            let wanted: Vec<(usize, u32)> = heads
                .iter()
                .enumerate()
                .filter(|&(_, &(l, _))| l == i)
                .map(|(slot, &(_, head))| (slot, head as u32))
                .collect();
            if !wanted.is_empty() {
                let q = block.cross_attn.query.forward(&h, Activation::None);
                let selected: Vec<u32> = wanted.iter().map(|&(_, head)| head).collect();
                let weights =
                    compute::attention_weights(&q, ck, block.cross_attn.n_head, &selected).read();
                for (k, &(slot, _)) in wanted.iter().enumerate() {
                    let size = t * ctx;
                    out[slot * size..(slot + 1) * size]
                        .copy_from_slice(&weights[k * size..(k + 1) * size]);
                }
            }
            if i < last {
                x = block.cross_attn.residual(&x, &h, ck, cv);
                x = block.ffn.residual(&x);
            }
        }
        state.len = t;
        Ok(out)
    }

    fn forward(
        &self,
        tokens: &[u32],
        state: &mut State,
        positions: &[usize],
    ) -> Result<Vec<Vec<f32>>, InferenceError> {
        let batch = state.batch;
        if tokens.is_empty() || !tokens.len().is_multiple_of(batch) {
            return Err(InferenceError(format!(
                "{} tokens do not make {batch} sequences",
                tokens.len()
            )));
        }
        let t = tokens.len() / batch;
        let offset = state.len;
        if offset + t > state.capacity {
            return Err(InferenceError(format!(
                "{} tokens fed after {offset}: more than the {} the decoder was reset for",
                t, state.capacity
            )));
        }
        if let Some(p) = positions.iter().find(|&&p| p >= t) {
            return Err(InferenceError(format!("position {p} of a {t}-token step")));
        }
        let mut x = compute::add_positions(
            &compute::embed(&self.embeddings, tokens, batch),
            &self.positions,
            offset,
        );
        for (i, block) in self.blocks.iter().enumerate() {
            let h = block.self_ln.forward(&x);
            x = block
                .self_attn
                .residual_cached(&x, &h, &mut state.caches[i]);
            let h = block.cross_ln.forward(&x);
            let (ck, cv) = &state.cross[i];
            x = block.cross_attn.residual(&x, &h, ck, cv);
            x = block.ffn.residual(&x);
        }
        state.len += t;
        let x = self.ln.forward(&x);
        // Project only the positions asked for: a prompt step would otherwise cost a
        // vocabulary-wide product per token.
        let mut rows = vec![Vec::new(); batch * positions.len()];
        for (i, &p) in positions.iter().enumerate() {
            let at = if t == 1 {
                None
            } else {
                Some(x.narrow(1, p, 1))
            };
            let logits = compute::linear(
                at.as_ref().unwrap_or(&x),
                &self.projection,
                None,
                Activation::None,
            )
            .read();
            let n_vocab = logits.len() / batch;
            for (s, row) in logits.chunks_exact(n_vocab).enumerate() {
                rows[s * positions.len() + i] = row.to_vec();
            }
        }
        Ok(rows)
    }
}
