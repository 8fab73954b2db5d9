//! The engine: a loaded model plus its vocabulary, callable natively or from the plugin.
//!
//! It knows nothing about the WIT bindings: audio comes in as an [`AudioSource`] (16 kHz
//! mono; a plain `Vec<f32>` is one) and
//! progress, finished segments and cancellation go through an [`Observer`], so the
//! same code runs inside the component (where `lib.rs` forwards to the host) and in
//! the native bench and tests. The network runs on the SDK's compute interface (in the
//! host, or natively in-process); with the `pure-wasm` feature the candle reference can
//! be chosen instead ([`Backend`]).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::audio::AudioSource;
use crate::config::{Config, ConfigError, Precision};
use crate::ct2::{Ct2Error, Index};
use crate::network::{Dims, InferenceError};
use crate::tokenizer::{Tokenizer, TokenizerError};

/// Vocabulary size from which a Whisper model is multilingual (51865, or 51866 for
/// large-v3). English-only models have 51864. Deciding by `<|en|>` would be wrong:
/// English-only vocabularies contain the language tokens too.
pub const MULTILINGUAL_VOCAB: usize = 51865;

/// Why the model could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot open {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Model { path: PathBuf, source: Ct2Error },
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    #[error("the model and vocabulary.txt disagree: {0}")]
    Mismatch(String),
}

/// Why a transcription stopped.
#[derive(Debug, thiserror::Error)]
pub enum TranscribeError {
    #[error("bad configuration: {0}")]
    BadConfig(#[from] ConfigError),
    #[error("cancelled")]
    Cancelled,
    #[error("inference failed: {0}")]
    Inference(#[from] InferenceError),
    #[error("cannot load the model: {0}")]
    Load(#[from] Ct2Error),
}

/// One timed piece of the transcript.
#[derive(Clone, Debug, PartialEq)]
pub struct Segment {
    pub start_ms: u64,
    pub end_ms: u64,
    pub text: String,
    /// `exp` of the mean token log-probability, in 0..=1.
    pub confidence: f32,
    /// The segment's words with their times, when the configuration asks for them
    /// (`words`); else empty.
    pub words: Vec<Word>,
}

/// One timed word of a segment (see [`crate::timing`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Word {
    /// The word with its punctuation, without surrounding spaces.
    pub text: String,
    pub start_ms: u64,
    pub end_ms: u64,
    /// Mean probability of the word's tokens, in 0..=1.
    pub confidence: f32,
}

/// The finished result.
#[derive(Clone, Debug, PartialEq)]
pub struct Transcription {
    /// The language the text is in (detected or configured).
    pub language: String,
    pub segments: Vec<Segment>,
}

impl Transcription {
    /// The segments' texts joined by spaces.
    pub fn text(&self) -> String {
        self.segments
            .iter()
            .map(|s| s.text.trim())
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// What the engine tells its caller while it works.
pub trait Observer {
    /// `fraction` in 0..=1 of the audio done, with a short stage text.
    fn progress(&mut self, _fraction: f32, _stage: &str) {}
    /// A segment is final (called in order, before `transcribe` returns).
    fn segment(&mut self, _segment: &Segment) {}
    /// Checked between windows; `true` stops the job with [`TranscribeError::Cancelled`].
    fn is_cancelled(&mut self) -> bool {
        false
    }
}

/// An observer that ignores everything.
pub struct Quiet;

impl Observer for Quiet {}

/// What runs the network.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Backend {
    /// The SDK's compute interface: the host's native kernels and shared weights.
    #[default]
    Compute,
    /// candle inside the sandbox, weights in plugin memory, f32 only (the reference the
    /// compute path is measured against).
    #[cfg(feature = "pure-wasm")]
    PureWasm,
}

/// The network of one backend.
#[allow(
    clippy::large_enum_variant,
    reason = "one per engine, built in place and never moved"
)]
enum Model {
    /// The weights' regions; a network per precision, created on first use.
    Compute {
        index: Index,
        dir: PathBuf,
        networks: [OnceLock<crate::model::Whisper>; 3],
    },
    #[cfg(feature = "pure-wasm")]
    PureWasm(crate::pure_wasm::Whisper),
}

/// A loaded Whisper model, ready to transcribe.
pub struct Engine {
    model: Model,
    dims: Dims,
    pub(crate) tokenizer: Tokenizer,
    /// Tokens never sampled.
    pub(crate) suppress: Vec<u32>,
    /// `(decoder layer, head)` pairs whose cross-attention follows the speech, for word
    /// timings: `alignment_heads` of the model's `config.json`, or else every head of
    /// the decoder's second half (openai-whisper's default).
    pub(crate) alignment_heads: Vec<(usize, usize)>,
}

impl Engine {
    /// Loads `vocabulary.txt`, (if present) `tokenizer.json` and the layout of
    /// `model.bin` from `dir`, for the compute interface (the weights themselves are
    /// created when a precision is first used, see [`Engine::prepare`]).
    pub fn load(dir: &Path) -> Result<Self, LoadError> {
        Self::load_with(dir, Backend::Compute)
    }

    /// [`Engine::load`] for a chosen backend.
    pub fn load_with(dir: &Path, backend: Backend) -> Result<Self, LoadError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read_to_string(&path).map_err(|source| LoadError::Open { path, source })
        };
        let vocabulary = read("vocabulary.txt")?;
        let tokenizer_json = read("tokenizer.json").ok();
        let tokenizer = Tokenizer::new(&vocabulary, tokenizer_json.as_deref())?;

        let path = dir.join("model.bin");
        let file = std::fs::File::open(&path).map_err(|source| LoadError::Open {
            path: path.clone(),
            source,
        })?;
        let model_error = |source| LoadError::Model {
            path: path.clone(),
            source,
        };
        let mut file = std::io::BufReader::with_capacity(1 << 16, file);
        let mut index = Index::read(&mut file).map_err(model_error)?;
        index.split_fused_attention().map_err(model_error)?;
        let dims = Dims::of(&index).map_err(model_error)?;
        let model = match backend {
            Backend::Compute => Model::Compute {
                index,
                dir: dir.to_owned(),
                networks: Default::default(),
            },
            #[cfg(feature = "pure-wasm")]
            Backend::PureWasm => {
                let weights = crate::pure_wasm::Weights::new(&index, file);
                Model::PureWasm(
                    crate::pure_wasm::Whisper::load(&weights, dims.clone()).map_err(model_error)?,
                )
            }
        };

        let n_vocab = dims.n_vocab;
        if tokenizer.len() != n_vocab {
            return Err(LoadError::Mismatch(format!(
                "{n_vocab} output tokens, {} vocabulary lines",
                tokenizer.len()
            )));
        }
        let suppress = tokenizer.non_speech_tokens();
        let alignment_heads = alignment_heads(read("config.json").ok().as_deref(), &dims);
        Ok(Self {
            model,
            dims,
            tokenizer,
            suppress,
            alignment_heads,
        })
    }

    /// Creates the weights for `precision` (the compute backend does it on first use
    /// otherwise): call it while "loading the model" so the time shows there. The host
    /// reads them once per plugin build; the next jobs only get handles.
    pub fn prepare(&self, precision: Precision) -> Result<(), Ct2Error> {
        match &self.model {
            Model::Compute {
                index,
                dir,
                networks,
            } => network(index, dir, &self.dims, networks, precision).map(|_| ()),
            #[cfg(feature = "pure-wasm")]
            Model::PureWasm(_) => Ok(()),
        }
    }

    /// The `(decoder layer, head)` pairs word timings are read from.
    pub fn alignment_heads(&self) -> &[(usize, usize)] {
        &self.alignment_heads
    }

    /// Sizes of the model.
    pub fn dims(&self) -> &Dims {
        &self.dims
    }

    /// Whether the model knows languages other than English (and can translate).
    pub fn multilingual(&self) -> bool {
        self.dims.n_vocab >= MULTILINGUAL_VOCAB
    }

    /// Tokens the decoder never produces (non-speech symbols, task and start tokens).
    pub fn suppressed_tokens(&self) -> &[u32] {
        &self.suppress
    }

    /// Language codes the model can transcribe.
    pub fn languages(&self) -> Vec<String> {
        if self.multilingual() {
            self.tokenizer
                .languages
                .iter()
                .map(|(c, _)| c.clone())
                .collect()
        } else {
            vec!["en".into()]
        }
    }

    /// Transcribes 16 kHz mono audio (see [`crate::longform`]); a `Vec<f32>` or
    /// `[f32]` of samples is an [`AudioSource`].
    pub fn transcribe<A: AudioSource + ?Sized>(
        &self,
        audio: &A,
        config: &Config,
        observer: &mut dyn Observer,
    ) -> Result<Transcription, TranscribeError> {
        config.validate(self.multilingual())?;
        match &self.model {
            Model::Compute {
                index,
                dir,
                networks,
            } => {
                let network = network(index, dir, &self.dims, networks, config.precision)?;
                crate::longform::transcribe(self, network, audio, config, observer)
            }
            #[cfg(feature = "pure-wasm")]
            Model::PureWasm(network) => {
                crate::longform::transcribe(self, network, audio, config, observer)
            }
        }
    }
}

/// The compute network for `precision`, created the first time it is asked for.
fn network<'a>(
    index: &Index,
    dir: &Path,
    dims: &Dims,
    networks: &'a [OnceLock<crate::model::Whisper>; 3],
    precision: Precision,
) -> Result<&'a crate::model::Whisper, Ct2Error> {
    let cell = &networks[precision as usize];
    if let Some(network) = cell.get() {
        return Ok(network);
    }
    let precision = precision.compute();
    let load = || crate::model::Whisper::load(index, dims.clone(), precision);
    // Natively the SDK reads `model.bin` itself: from this engine's folder. In the
    // component the host resolves it in the plugin's assets.
    #[cfg(not(target_arch = "wasm32"))]
    let network = sandscribe_plugin_sdk::compute::native::with_assets_dir(dir, load)?;
    #[cfg(target_arch = "wasm32")]
    let network = {
        let _ = dir;
        load()?
    };
    // Another thread may have won the race; either copy is the same.
    Ok(cell.get_or_init(|| network))
}

/// The alignment heads named by a CTranslate2 `config.json` (`"alignment_heads":
/// [[layer, head], …]`) that exist in the model; without any, every head of the
/// decoder's second half.
fn alignment_heads(config_json: Option<&str>, dims: &Dims) -> Vec<(usize, usize)> {
    let named: Vec<(usize, usize)> = config_json
        .and_then(|text| serde_json::from_str::<serde_json::Value>(text).ok())
        .and_then(|config| {
            let pairs = config.get("alignment_heads")?.as_array()?.clone();
            Some(
                pairs
                    .iter()
                    .filter_map(|pair| {
                        let layer = usize::try_from(pair.get(0)?.as_u64()?).ok()?;
                        let head = usize::try_from(pair.get(1)?.as_u64()?).ok()?;
                        Some((layer, head))
                    })
                    .filter(|&(l, h)| l < dims.n_text_layer && h < dims.n_text_head)
                    .collect(),
            )
        })
        .unwrap_or_default();
    if !named.is_empty() {
        return named;
    }
    (dims.n_text_layer / 2..dims.n_text_layer)
        .flat_map(|l| (0..dims.n_text_head).map(move |h| (l, h)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dims() -> Dims {
        Dims {
            n_mels: 80,
            n_audio_ctx: 1500,
            n_audio_state: 384,
            n_audio_layer: 4,
            n_audio_head: 6,
            n_vocab: 51864,
            n_text_ctx: 448,
            n_text_state: 384,
            n_text_layer: 4,
            n_text_head: 6,
        }
    }

    #[test]
    fn alignment_heads_come_from_the_config_and_must_exist() {
        let json = r#"{"alignment_heads": [[1, 0], [3, 5], [4, 0], [0, 6]]}"#;
        assert_eq!(alignment_heads(Some(json), &dims()), vec![(1, 0), (3, 5)]);
    }

    #[test]
    fn without_alignment_heads_the_decoders_second_half_is_used() {
        let heads = alignment_heads(Some("{}"), &dims());
        assert_eq!(heads.len(), 12);
        assert_eq!((heads[0], heads[11]), ((2, 0), (3, 5)));
        assert_eq!(alignment_heads(None, &dims()), heads);
    }
}
