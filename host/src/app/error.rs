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
    /// Seconds after which a retry may succeed (`Retry-After`), for passing trouble.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            fields: Vec::new(),
            retry_after: None,
        }
    }

    /// The shared database cannot be reached right now: 503, try again shortly.
    pub fn database_unavailable(detail: impl std::fmt::Display) -> Self {
        Self {
            retry_after: Some(2),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "database_unavailable",
                format!(
                    "the database is unavailable ({detail}); nothing was queued, try again in a few seconds"
                ),
            )
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
            retry_after: None,
        }
    }
}

/// The JSON body of every error of the JSON API (`/api/*`, `/metrics`).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ApiErrorEnvelope)]
pub struct Envelope<'a> {
    #[schema(inline)]
    error: Body<'a>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ApiErrorBody)]
pub struct Body<'a> {
    /// What went wrong and what to do about it, for a person.
    message: &'a str,
    /// A stable name for the error, for programs (`not_found`, `invalid_config`, ...).
    code: &'a str,
    /// For `invalid_config`: each field and what is wrong with it.
    #[serde(skip_serializing_if = "<[ConfigProblem]>::is_empty")]
    #[schema(value_type = Vec<ConfigProblem>, required = false)]
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
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
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
        if error.is_unavailable() {
            return Self::database_unavailable(error);
        }
        tracing::error!(error = %error, "storage error");
        Self::internal(format!("storage error: {error}"))
    }
}

impl From<crate::jobs::SubmitError> for ApiError {
    fn from(error: crate::jobs::SubmitError) -> Self {
        let code = match error {
            crate::jobs::SubmitError::QueueFull(_) => "queue_full",
            crate::jobs::SubmitError::QuotaExceeded { .. } => "quota_exceeded",
            crate::jobs::SubmitError::DatabaseUnavailable(detail) => {
                return Self::database_unavailable(detail);
            }
            crate::jobs::SubmitError::Database(detail) => {
                return Self::internal(format!("the job could not be recorded: {detail}"));
            }
        };
        Self::new(StatusCode::TOO_MANY_REQUESTS, code, error.to_string())
    }
}
