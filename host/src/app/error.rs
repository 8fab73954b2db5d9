//! One error type for the app: a status, a stable code and a message a person can act on.
//!
//! The JSON API answers it as is; `/v1` and the pages put the same status and message in
//! their own shape.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::audio::AudioError;
use crate::runtime::ConfigProblem;
use crate::storage::StorageError;

/// An error answered as `{"error": {"message", "code"}}` (plus `fields` for config errors).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// For invalid configuration: each field and what is wrong with it.
    pub fields: Vec<ConfigProblem>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            fields: Vec::new(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    pub fn unknown_plugin(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "unknown_plugin",
            format!("no plugin with id \"{id}\" is loaded; GET /api/plugins lists them"),
        )
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    /// A configuration that does not match the plugin's schema.
    pub fn invalid_config(problems: Vec<ConfigProblem>) -> Self {
        let summary = problems
            .iter()
            .map(|p| {
                if p.field.is_empty() {
                    p.message.clone()
                } else {
                    format!("{}: {}", p.field.trim_start_matches('/'), p.message)
                }
            })
            .collect::<Vec<_>>()
            .join("; ");
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_config",
            message: format!("invalid config: {summary}"),
            fields: problems,
        }
    }
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: Body<'a>,
}

#[derive(Serialize)]
struct Body<'a> {
    message: &'a str,
    code: &'a str,
    #[serde(skip_serializing_if = "<[ConfigProblem]>::is_empty")]
    fields: &'a [ConfigProblem],
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Envelope {
            error: Body {
                message: &self.message,
                code: self.code,
                fields: &self.fields,
            },
        };
        (self.status, axum::Json(body)).into_response()
    }
}

impl From<AudioError> for ApiError {
    fn from(error: AudioError) -> Self {
        match error {
            AudioError::TooLarge { .. } | AudioError::TooLong { .. } => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                error.to_string(),
            ),
            AudioError::Io(_) | AudioError::Resample(_) => Self::internal(error.to_string()),
            _ => Self::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "undecodable_audio",
                error.to_string(),
            ),
        }
    }
}

impl From<StorageError> for ApiError {
    fn from(error: StorageError) -> Self {
        tracing::error!(error = %error, "storage error");
        Self::internal(format!("storage error: {error}"))
    }
}

impl From<crate::jobs::SubmitError> for ApiError {
    fn from(error: crate::jobs::SubmitError) -> Self {
        let code = match error {
            crate::jobs::SubmitError::QueueFull(_) => "queue_full",
            crate::jobs::SubmitError::QuotaExceeded { .. } => "quota_exceeded",
        };
        Self::new(StatusCode::TOO_MANY_REQUESTS, code, error.to_string())
    }
}
