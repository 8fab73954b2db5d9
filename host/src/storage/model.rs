//! What the result store keeps and how it is queried.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::transcript::Transcript;

/// A finished job's result, stored exactly once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StoredResult {
    /// The id of the job that produced it (results and jobs share ids).
    pub id: Uuid,
    /// Owner of the result; "default" in single-user mode.
    pub tenant: String,
    /// Name of the uploaded or picked file, as the user gave it.
    pub file_name: String,
    pub plugin_id: String,
    pub plugin_name: String,
    pub plugin_version: String,
    /// The plugin configuration the job ran with (after defaults were applied).
    #[schema(value_type = Object)]
    pub config: serde_json::Value,
    pub transcript: Transcript,
    /// Length of the audio, in milliseconds.
    pub duration_ms: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub finished_at: OffsetDateTime,
    /// Who spoke when, when the job named a diarizer (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diarization: Option<Diarization>,
}

/// The diarization stage of a result: which diarizer ran, how it went, the speakers it
/// found and the names people gave them. A failed stage keeps the transcript.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Diarization {
    /// The diarizer plugin's id.
    pub diarizer: String,
    pub state: DiarizationState,
    /// Why the stage failed (state `failed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The diarizer's speaker labels ("SPEAKER_1", ...), in order of first appearance.
    #[serde(default)]
    pub speakers: Vec<String>,
    /// Names people gave to labels ("SPEAKER_1" → "Interviewer"); every export uses them.
    #[serde(default)]
    pub names: BTreeMap<String, String>,
    /// How long the stage ran, in milliseconds.
    #[serde(default)]
    pub wall_ms: u64,
}

/// How a result's diarization stage ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DiarizationState {
    Done,
    Failed,
}

impl Diarization {
    /// The name a person reads for `label`: the one given to it, else "Speaker N" for the
    /// diarizer's `SPEAKER_N`, else the label itself.
    pub fn display_name(&self, label: &str) -> String {
        if let Some(name) = self.names.get(label) {
            return name.clone();
        }
        default_speaker_name(label)
    }
}

/// "Speaker 2" for the label `SPEAKER_2`; any other label as it is.
pub fn default_speaker_name(label: &str) -> String {
    match label.strip_prefix("SPEAKER_") {
        Some(n) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
            format!("Speaker {n}")
        }
        _ => label.to_owned(),
    }
}

/// A page request for the history list.
#[derive(Debug, Clone, Default)]
pub struct ResultQuery {
    /// Only results of this tenant.
    pub tenant: String,
    /// Full-text search over transcript text and file name; empty means all.
    pub text: Option<String>,
    /// Zero-based page number.
    pub page: u32,
    /// Results per page (at least 1).
    pub per_page: u32,
}

/// One row of the history list: everything but the segments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ResultSummary {
    pub id: Uuid,
    pub file_name: String,
    pub plugin_id: String,
    pub plugin_name: String,
    pub language: Option<String>,
    pub duration_ms: u64,
    /// The first characters of the text, for the list view.
    pub preview: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub finished_at: OffsetDateTime,
}

/// A page of the history list, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ResultPage {
    pub items: Vec<ResultSummary>,
    pub page: u32,
    pub per_page: u32,
    /// How many results match the query in all.
    pub total: u64,
}

impl ResultSummary {
    /// How many characters of the text the list view shows.
    pub const PREVIEW_CHARS: usize = 160;

    /// The start of `text` for the list view: at most [`Self::PREVIEW_CHARS`] characters
    /// (never a split UTF-8 sequence), ending in "…" when the text was cut.
    pub fn preview_of(text: &str) -> String {
        match text.char_indices().nth(Self::PREVIEW_CHARS) {
            None => text.to_owned(),
            Some((cut, _)) => format!("{}…", text[..cut].trim_end()),
        }
    }
}
