//! The host's own transcript types: what a plugin returned, after validation.
//!
//! These are deliberately separate from the WIT bindings so that storage, export and the
//! APIs do not depend on one WIT version (a second contract version maps onto these).

use serde::{Deserialize, Serialize};

/// A finished transcript: the full text plus timed segments.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Transcript {
    /// The whole text, as the plugin reported it.
    pub text: String,
    /// Spoken language (BCP-47 / ISO 639-1 code) when the plugin knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// Segments in time order.
    #[serde(default)]
    pub segments: Vec<Segment>,
}

/// One timed piece of the transcript.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Segment {
    /// Start, in milliseconds from the start of the audio.
    pub start_ms: u64,
    /// End, in milliseconds from the start of the audio; never before `start_ms`.
    pub end_ms: u64,
    pub text: String,
    /// Confidence in 0..=1 when the engine provides one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f32>,
    /// Word timings, when the engine provides them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub words: Vec<Word>,
    /// Who spoke it (a label such as `SPEAKER_1`), when a diarizer or the engine knows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speaker: Option<String>,
}

impl Segment {
    /// A segment with just its times and text (no confidence, no word timings).
    pub fn new(start_ms: u64, end_ms: u64, text: impl Into<String>) -> Self {
        Self {
            start_ms,
            end_ms,
            text: text.into(),
            ..Self::default()
        }
    }
}

/// One timed word inside a segment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Word {
    pub text: String,
    pub start_ms: u64,
    pub end_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f32>,
    /// Who said it, when known (see [`Segment::speaker`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speaker: Option<String>,
}
