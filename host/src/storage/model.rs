//! What the result store keeps and how it is queried.

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
