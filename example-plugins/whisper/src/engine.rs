//! The engine: a loaded model plus its vocabulary, callable natively or from the plugin.
//!
//! It knows nothing about the WIT bindings: audio comes in as an [`AudioSource`] (16 kHz
//! mono; a plain `Vec<f32>` is one) and
//! progress, finished segments and cancellation go through an [`Observer`], so the
//! same code runs inside the component (where `lib.rs` forwards to the host) and in
//! the native bench and tests.

use std::path::{Path, PathBuf};

use crate::audio::AudioSource;
use crate::config::{Config, ConfigError};
use crate::ct2::{Ct2Error, Weights};
use crate::model::Whisper;
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
    Inference(#[from] candle_core::Error),
}

/// One timed piece of the transcript.
#[derive(Clone, Debug, PartialEq)]
pub struct Segment {
    pub start_ms: u64,
    pub end_ms: u64,
    pub text: String,
    /// `exp` of the mean token log-probability, in 0..=1.
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

/// A loaded Whisper model, ready to transcribe.
pub struct Engine {
    pub(crate) model: Whisper,
    pub(crate) tokenizer: Tokenizer,
    /// Tokens never sampled.
    pub(crate) suppress: Vec<u32>,
}

impl Engine {
    /// Loads `model.bin`, `vocabulary.txt` and (if present) `tokenizer.json` from `dir`.
    pub fn load(dir: &Path) -> Result<Self, LoadError> {
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
        let mut weights =
            Weights::read(std::io::BufReader::with_capacity(1 << 20, file)).map_err(model_error)?;
        weights.split_fused_attention().map_err(model_error)?;
        let model = Whisper::load(&weights).map_err(model_error)?;
        drop(weights);

        let n_vocab = model.dims.n_vocab;
        if tokenizer.len() != n_vocab {
            return Err(LoadError::Mismatch(format!(
                "{n_vocab} output tokens, {} vocabulary lines",
                tokenizer.len()
            )));
        }
        let suppress = tokenizer.non_speech_tokens();
        Ok(Self {
            model,
            tokenizer,
            suppress,
        })
    }

    /// Whether the model knows languages other than English (and can translate).
    pub fn multilingual(&self) -> bool {
        self.model.dims.n_vocab >= MULTILINGUAL_VOCAB
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
        crate::longform::transcribe(self, audio, config, observer)
    }
}
