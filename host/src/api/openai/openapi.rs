//! `/v1`'s part of the OpenAPI document ([`crate::api::openapi`] merges it in).
//!
//! The handlers read their forms field by field ([`super::form`]), so the forms are
//! described here by types that exist only for the document; everything answered is
//! described by the types the handlers really serialize.

use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

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
