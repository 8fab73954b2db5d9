//! What decoding needs from a Whisper network, whichever backend runs it.
//!
//! The decoding rules (`decode.rs`) and the window loop (`longform.rs`) only see logits
//! as plain `f32` rows, so the same logic runs on the host's compute interface
//! ([`crate::model`]) and on the in-sandbox candle reference (`pure_wasm`, behind the
//! `pure-wasm` feature), and both give the same decisions on the same numbers.

use crate::ct2::{Ct2Error, Index};

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

impl Dims {
    /// The sizes stated by the shapes of a CTranslate2 Whisper model.
    pub fn of(index: &Index) -> Result<Self, Ct2Error> {
        let dim = |name: &str, axis: usize| -> Result<usize, Ct2Error> {
            index
                .get(name)?
                .shape
                .get(axis)
                .copied()
                .ok_or_else(|| Ct2Error::Format(format!("`{name}` has no axis {axis}")))
        };
        let conv1 = "encoder/conv1/weight";
        let embeddings = "decoder/embeddings/weight";
        let n_audio_state = dim(conv1, 0)?;
        let n_text_state = dim(embeddings, 1)?;
        let heads = |name: &str, state: usize| -> usize {
            // Every Whisper size uses 64-dimensional heads; the file states it anyway.
            index
                .integer(name)
                .and_then(|h| usize::try_from(h).ok())
                .filter(|&h| h > 0)
                .unwrap_or(state / 64)
        };
        let dims = Self {
            n_mels: dim(conv1, 1)?,
            n_audio_ctx: dim("encoder/position_encodings/encodings", 0)?,
            n_audio_state,
            n_audio_layer: index.layer_count("encoder"),
            n_audio_head: heads("encoder/num_heads", n_audio_state),
            n_vocab: dim(embeddings, 0)?,
            n_text_ctx: dim("decoder/position_encodings/encodings", 0)?,
            n_text_state,
            n_text_layer: index.layer_count("decoder"),
            n_text_head: heads("decoder/num_heads", n_text_state),
        };
        if dims.n_audio_head == 0
            || !dims.n_audio_state.is_multiple_of(dims.n_audio_head)
            || dims.n_text_head == 0
            || !dims.n_text_state.is_multiple_of(dims.n_text_head)
        {
            return Err(Ct2Error::Format(format!(
                "the head counts do not divide the model width: {dims:?}"
            )));
        }
        Ok(dims)
    }
}

/// Why the network could not run a step.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InferenceError(pub String);

/// The decoder's memory of one window: self-attention caches of `batch()` sequences of
/// `len()` tokens each, and the window's audio features.
pub trait DecoderState {
    /// Forgets the decoded tokens (batch 1 again) but keeps the window's audio
    /// features, so a retry at another temperature does not recompute them. At most
    /// `positions` tokens per sequence will be fed until the next reset (a backend may
    /// size its caches to that).
    fn reset(&mut self, positions: usize);

    /// Tokens fed so far per sequence.
    fn len(&self) -> usize;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sequences decoded side by side.
    fn batch(&self) -> usize;

    /// New sequence `i` continues old sequence `sources[i]` (beam search).
    fn select(&mut self, sources: &[u32]) -> Result<(), InferenceError>;
}

/// A Whisper encoder and decoder.
pub trait Network {
    type State: DecoderState;

    fn dims(&self) -> &Dims;

    /// Encodes one window's log-mel input (`[n_mels, N_FRAMES]` row-major, as
    /// `MelSpectrogram::window` gives it) and returns a decoder state (batch 1) for it.
    fn start_window(&self, mel: &[f32]) -> Result<Self::State, InferenceError>;

    /// Feeds `tokens` (`state.batch()` sequences of equal length, one after the other)
    /// after those already in `state` and returns the logits at `positions` of this
    /// call's tokens, sequence by sequence: row `s * positions.len() + i` is sequence
    /// `s` at `positions[i]`. Only those positions are projected onto the vocabulary.
    fn decode(
        &self,
        tokens: &[u32],
        state: &mut Self::State,
        positions: &[usize],
    ) -> Result<Vec<Vec<f32>>, InferenceError>;

    /// Feeds `tokens` (one sequence) to a freshly reset `state` and returns the
    /// softmax cross-attention weights of `heads` (`(layer, head)` pairs) over the
    /// window's `n_audio_ctx` encoder frames: `[heads.len(), tokens.len(), n_audio_ctx]`
    /// row-major, in the order of `heads` (for word timings, see [`crate::timing`]).
    fn cross_attention_weights(
        &self,
        _tokens: &[u32],
        _state: &mut Self::State,
        _heads: &[(usize, usize)],
    ) -> Result<Vec<f32>, InferenceError> {
        Err(InferenceError(
            "this backend cannot time words; use the compute backend".into(),
        ))
    }
}
