//! `sandscribe-whisper`: OpenAI's Whisper speech recognition as a sandscribe plugin.
//!
//! Everything but the network's arithmetic runs inside the `wasm32-wasip2` component:
//! log-mel features, the decoding rules, beam search, the tokenizer, segmentation. The
//! encoder and decoder run in the host through the SDK's compute interface, on weights
//! the host reads itself from the CTranslate2 `model.bin` in the read-only assets
//! folder (mounted at `/assets`) and shares between jobs; the plugin only reads the
//! file's index. With the `pure-wasm` feature the component runs the network itself on
//! candle instead, the reference for `cargo xtask bench`.
//!
//! ```text
//! /assets/model.json      {"id", "name", "description", "multilingual"} (written by setup)
//! /assets/model.bin       CTranslate2 Whisper weights (fp16 or fp32)
//! /assets/vocabulary.txt  one token per line
//! /assets/tokenizer.json  BPE merges (optional: only for the initial prompt)
//! ```
//!
//! The same `plugin.wasm` serves every model size; `model.json` names the install.
//!
//! ```text
//! audio ─ mel (mel.rs) ─ encoder ─┐   host: compute interface (model.rs)
//!                                 ├ decoder + KV caches ─ logits ─ timestamp rules,
//! model.bin index ─ ct2.rs ───────┘   beam search, fallback (decode.rs) ─ seek loop
//!                                     (longform.rs)
//! ```
//!
//! [`engine::Engine`] is independent of the WIT bindings, so the native bench
//! (`examples/whisper-bench.rs`) and the tests run exactly the code the component runs;
//! this file only adapts it to the SDK.

pub mod audio;
pub mod config;
pub mod ct2;
pub mod decode;
pub mod engine;
pub mod eval;
pub mod longform;
pub mod mel;
pub mod model;
pub mod network;
#[cfg(feature = "pure-wasm")]
pub mod pure_wasm;
pub mod timing;
pub mod tokenizer;

use std::path::Path;
use std::sync::OnceLock;

use sandscribe_plugin_sdk::prelude::*;

use crate::engine::{Backend, Engine, Observer, TranscribeError};

/// Where the host mounts the plugin's assets folder.
pub const ASSETS_DIR: &str = "/assets";

/// What the setup tool writes to `assets/model.json` for one install.
#[derive(serde::Deserialize)]
#[serde(default)]
pub struct Manifest {
    pub id: String,
    pub name: String,
    pub description: String,
    pub multilingual: bool,
}

impl Default for Manifest {
    fn default() -> Self {
        Self {
            id: "whisper".into(),
            name: "Whisper".into(),
            description: "OpenAI Whisper speech recognition (CTranslate2 weights).".into(),
            multilingual: false,
        }
    }
}

impl Manifest {
    /// Reads `dir/model.json`; a missing or unreadable file gives the defaults.
    pub fn load(dir: &Path) -> Self {
        std::fs::read_to_string(dir.join("model.json"))
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default()
    }
}

/// The model, loaded on the first job and kept for the next ones.
static ENGINE: OnceLock<Result<Engine, String>> = OnceLock::new();

/// The network this build runs: the compute interface, or with the `pure-wasm`
/// feature candle inside the component (the benchmark's reference).
#[cfg(not(feature = "pure-wasm"))]
const BACKEND: Backend = Backend::Compute;
#[cfg(feature = "pure-wasm")]
const BACKEND: Backend = Backend::PureWasm;

struct Whisper;

impl Transcriber for Whisper {
    type Config = config::Config;

    fn info() -> PluginInfo {
        let manifest = Manifest::load(Path::new(ASSETS_DIR));
        let languages: Vec<&str> = if manifest.multilingual {
            config::LANGUAGES.to_vec()
        } else {
            vec!["en"]
        };
        PluginInfo::new(
            &manifest.id,
            &manifest.name,
            env!("CARGO_PKG_VERSION"),
            mel::SAMPLE_RATE as u32,
        )
        .description(&manifest.description)
        .languages(&languages)
        .capabilities(Capabilities {
            segment_timestamps: true,
            word_timestamps: true,
            language_detection: manifest.multilingual,
            translation: manifest.multilingual,
        })
        .config_schema(&config::schema(manifest.multilingual))
    }

    fn transcribe(
        audio: &AudioInput<'_>,
        config: config::Config,
    ) -> Result<Transcript, PluginError> {
        if audio.sample_rate() != mel::SAMPLE_RATE as u32 {
            return Err(PluginError::UnsupportedAudio(format!(
                "expected {} Hz audio, got {} Hz",
                mel::SAMPLE_RATE,
                audio.sample_rate()
            )));
        }
        if audio.frames() == 0 {
            return Err(PluginError::UnsupportedAudio("the audio is empty".into()));
        }
        progress(0.0, "loading the model");
        let engine = ENGINE
            .get_or_init(|| {
                Engine::load_with(Path::new(ASSETS_DIR), BACKEND).map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(|e| PluginError::Internal(format!("cannot load the model: {e}")))?;
        engine
            .prepare(config.precision)
            .map_err(|e| PluginError::Internal(format!("cannot load the model: {e}")))?;
        let result = engine
            .transcribe(&HostAudio(audio), &config, &mut HostObserver)
            .map_err(|e| match e {
                TranscribeError::BadConfig(e) => PluginError::BadConfig(e.to_string()),
                TranscribeError::Cancelled => PluginError::Cancelled,
                other => PluginError::Internal(other.to_string()),
            })?;
        let segments = result.segments.iter().map(to_sdk_segment).collect();
        Ok(Transcript::from_segments(segments, Some(result.language)))
    }
}

fn to_sdk_segment(s: &engine::Segment) -> Segment {
    let mut segment = Segment::new(s.start_ms, s.end_ms, s.text.clone());
    segment.confidence = Some(s.confidence);
    segment.words = s
        .words
        .iter()
        .map(|w| {
            let mut word = Word::new(w.text.clone(), w.start_ms, w.end_ms);
            word.confidence = Some(w.confidence);
            word
        })
        .collect();
    segment
}

/// The host's audio, read a window at a time.
struct HostAudio<'a, 'b>(&'a AudioInput<'b>);

impl audio::AudioSource for HostAudio<'_, '_> {
    fn len(&self) -> usize {
        usize::try_from(self.0.frames()).unwrap_or(usize::MAX)
    }

    fn read(&self, offset: usize, count: usize) -> Vec<f32> {
        // The host caps one read; loop until the range is complete or the audio ends.
        let mut out = Vec::with_capacity(count);
        while out.len() < count {
            let want = u32::try_from(count - out.len()).unwrap_or(u32::MAX);
            let piece = self.0.read((offset + out.len()) as u64, want);
            if piece.is_empty() {
                break;
            }
            out.extend_from_slice(&piece);
        }
        out
    }
}

/// Forwards the engine's reports to the host.
struct HostObserver;

impl Observer for HostObserver {
    fn progress(&mut self, fraction: f32, stage: &str) {
        progress(fraction, stage);
    }

    fn segment(&mut self, segment: &engine::Segment) {
        emit_segment(&to_sdk_segment(segment));
    }

    fn is_cancelled(&mut self) -> bool {
        is_cancelled()
    }
}

export_plugin!(Whisper);
