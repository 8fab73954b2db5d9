//! The OpenAI-compatible API: `/v1/audio/transcriptions`, `/v1/audio/translations` and
//! `/v1/models`, so that OpenAI's clients (and tools built on them) can use sandscribe
//! by changing only their base URL.
//!
//! A model is a loaded plugin, named by its id. A request is an ordinary job: the same
//! upload limits, probe decode and queue as `POST /api/jobs` (via
//! [`submit_upload`](crate::app::submit::submit_upload)), so it appears in the tracker, the
//! history and `/api/results`. The handler follows the job's events in the tracker until
//! the job ends, then answers in the requested `response_format` (`text`, `srt` and
//! `vtt` from the shared export writers), or streams `transcript.text.delta` events as
//! segments arrive. A client that disconnects cancels its job
//! (`[openai] cancel_on_disconnect`).
//!
//! Errors use OpenAI's envelope (`{"error": {"message", "type", "param", "code"}}`) with
//! the status of the shared [`ApiError`](crate::app::ApiError). Form fields map onto the
//! plugin's configuration by its schema ([`form`]); a field the plugin cannot take is
//! a 400 naming it.
//!
//! | file | what |
//! |---|---|
//! | `auth.rs` | the `Authorization: Bearer` header: where API keys will be checked |
//! | `form.rs` | form fields, checked and mapped onto the plugin's config |
//! | `transcriptions.rs` | the two audio endpoints |
//! | `wait.rs` | following a job to its end through the tracker's events |
//! | `response.rs` | `json`, `verbose_json`, `text`, `srt`, `vtt` |
//! | `stream.rs` | `stream=true` as Server-Sent Events |
//! | `disconnect.rs` | cancelling the job of a client that went away |
//! | `models.rs` | `/v1/models` |
//! | `error.rs` | the error envelope |
//! | `openapi.rs` | `/v1`'s part of the OpenAPI document |

mod auth;
mod disconnect;
mod error;
mod form;
mod languages;
mod models;
mod openapi;
mod response;
mod stream;
mod transcriptions;
mod wait;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

pub use error::OpenAiError;
pub use openapi::OpenAiDoc;

use crate::app::AppState;

/// The `/v1` routes, to be merged into the app's router (which adds the state).
pub fn router(state: &AppState) -> Router<Arc<AppState>> {
    // Room for the multipart framing around the largest allowed file, as on /api/jobs.
    let body_limit = usize::try_from(state.config.limits.upload_bytes)
        .unwrap_or(usize::MAX)
        .saturating_add(1 << 20);
    Router::new()
        .route("/v1/audio/transcriptions", post(transcriptions::transcribe))
        .route("/v1/audio/translations", post(transcriptions::translate))
        .route("/v1/models", get(models::list))
        .route("/v1/models/{id}", get(models::get_one))
        .layer(DefaultBodyLimit::max(body_limit))
}
