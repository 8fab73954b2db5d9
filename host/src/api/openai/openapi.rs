//! `/v1`'s part of the OpenAPI document ([`crate::api::openapi`] merges it in).
//!
//! The handlers read their forms field by field ([`super::form`]), so the forms are
//! described here by types that exist only for the document; everything answered is
//! described by the types the handlers really serialize.

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::openapi::{RefOr, Response};
use utoipa::{IntoResponses, OpenApi, ToSchema};

use super::response::{Simple, Verbose};

/// The `/v1` operations and the schemas they name.
#[derive(OpenApi)]
#[openapi(
    paths(
        super::transcriptions::transcribe,
        super::transcriptions::translate,
        super::models::list,
        super::models::get_one,
    ),
    components(schemas(super::stream::TextEvent<'static>))
)]
pub struct OpenAiDoc;

/// The 200 of `/v1/audio/transcriptions`.
pub const TRANSCRIPTION_DESCRIPTION: &str = "The transcript in the requested `response_format`: \
`json` and `verbose_json` as JSON, `text`, `srt` and `vtt` as those files. With `stream=true` \
(for `json` or `text`) Server-Sent Events without ids, each `data:` a JSON object: \
`TranscriptTextEvent`s of type `transcript.text.delta` as segments arrive, then one \
`transcript.text.done` whose `text` is the deltas joined; a job that fails mid-stream ends it \
with an `OpenAiErrorEnvelope` instead. Comment heartbeats keep an idle stream open.";

/// One event of a `stream=true` answer as an SSE parser reads it: no `id`, no `event`
/// name, only `data`.
#[derive(ToSchema)]
#[allow(
    dead_code,
    reason = "describes the stream for the document; never built"
)]
pub struct TranscriptStreamMessage {
    /// A `TranscriptTextEvent` as JSON, or an `OpenAiErrorEnvelope` ending a failed job.
    #[schema(content_media_type = "application/json")]
    data: String,
}

/// `response_format`.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(
    dead_code,
    reason = "describes the form field for the document; never built"
)]
pub enum ResponseFormatName {
    Json,
    VerboseJson,
    Text,
    Srt,
    Vtt,
}

/// `timestamp_granularities[]`.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(
    dead_code,
    reason = "describes the form field for the document; never built"
)]
pub enum Granularity {
    Segment,
    Word,
}

/// The form of `POST /v1/audio/transcriptions`, as OpenAI's clients send it. Fields a
/// model cannot take are refused with a 400 naming them, never dropped.
#[derive(ToSchema)]
#[allow(dead_code, reason = "describes the form for the document; never built")]
pub struct TranscriptionForm {
    /// The audio (or video) file; any container and codec that decodes.
    #[schema(value_type = String, format = Binary, content_media_type = "application/octet-stream")]
    file: Vec<u8>,
    /// A plugin id (`GET /v1/models` lists them).
    #[schema(pattern = "\\S")]
    model: String,
    /// The spoken language, for models with a `language` setting.
    #[schema(required = false)]
    language: String,
    /// Text to condition the model on, for models that take a prompt.
    #[schema(required = false)]
    prompt: String,
    /// For models with a `temperature` setting.
    #[schema(required = false)]
    temperature: f64,
    /// `json` by default.
    #[schema(required = false)]
    response_format: ResponseFormatName,
    /// Needs `verbose_json`; `word` needs a model with word timestamps.
    #[schema(rename = "timestamp_granularities[]", required = false)]
    timestamp_granularities: Vec<Granularity>,
    /// `true` streams the text as Server-Sent Events (with `json` or `text`).
    #[schema(required = false)]
    stream: bool,
    /// Only `auto` (the plugin chooses its windows).
    #[schema(pattern = "^auto$", required = false)]
    chunking_strategy: String,
}

/// The form of `POST /v1/audio/translations`: into English, for models that translate.
#[derive(ToSchema)]
#[allow(dead_code, reason = "describes the form for the document; never built")]
pub struct TranslationForm {
    /// The audio (or video) file; any container and codec that decodes.
    #[schema(value_type = String, format = Binary, content_media_type = "application/octet-stream")]
    file: Vec<u8>,
    /// A plugin id with the `translation` capability.
    #[schema(pattern = "\\S")]
    model: String,
    #[schema(required = false)]
    prompt: String,
    #[schema(required = false)]
    temperature: f64,
    /// `json` by default.
    #[schema(required = false)]
    response_format: ResponseFormatName,
}

/// The JSON answers of the audio endpoints: `json` or `verbose_json`.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[allow(
    dead_code,
    reason = "describes the answer for the document; never built"
)]
pub enum TranscriptionAnswer {
    Json(Simple),
    VerboseJson(Verbose),
}

/// The refusals both audio endpoints share, in OpenAI's envelope.
const AUDIO_REFUSALS: &[(u16, &str)] = &[
    (
        400,
        "A missing or unknown parameter, a value it cannot take, or a parameter the model cannot honour (`param` names it)",
    ),
    (404, "No such model for this tenant (`model_not_found`)"),
    (
        409,
        "The job was cancelled before it finished (`job_cancelled`)",
    ),
    (
        413,
        "The file, a text field or the audio's length is over its limit",
    ),
    (415, "The file is empty or not audio that decodes"),
    (
        429,
        "The queue is full, a tenant quota is used up, or too many anonymous requests",
    ),
    (
        503,
        "The model's plugin is quarantined, the database is unavailable, or too many connections",
    ),
    (
        500,
        "The job failed or timed out in the plugin or the server (the code says how)",
    ),
];

/// [`AUDIO_REFUSALS`] as the document's responses.
pub struct AudioRefusals;

impl IntoResponses for AudioRefusals {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        AUDIO_REFUSALS
            .iter()
            .map(|(status, description)| {
                (
                    status.to_string(),
                    crate::api::openapi::error_response(description, "OpenAiErrorEnvelope"),
                )
            })
            .collect()
    }
}
