//! The HTTP API (axum): plugins, jobs with SSE, results and exports, and the
//! OpenAI-compatible `/v1` ([`openai`]).
//!
//! Handlers are small: they read the tracker and storage, never the runtime directly
//! (the runtime reports to the tracker). What they share with the pages (the state,
//! the error type, uploads, submission, lookups) lives in [`crate::app`], which also
//! merges this module's routers with the pages' and wraps them in the app-wide layers.

pub mod caller;
pub mod events;
pub mod jobs;
pub mod openai;
pub mod openapi;
pub mod plugins;
pub mod results;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};

pub use crate::app::ApiError;
pub use crate::auth::Caller;

use crate::app::AppState;

/// The tenant every request belongs to in single-user mode.
pub use crate::auth::DEFAULT_TENANT;

/// The JSON API's routes (not `/v1`, which [`openai::router`] builds), to be merged into
/// the app's router (which adds the state).
pub fn router(state: &AppState) -> Router<Arc<AppState>> {
    // Room for the multipart framing around the largest allowed file.
    let body_limit = usize::try_from(state.config.limits.upload_bytes)
        .unwrap_or(usize::MAX)
        .saturating_add(1 << 20);
    Router::new()
        .route("/healthz", get(plugins::healthz))
        .route("/metrics", get(plugins::metrics))
        .route("/api/openapi.json", get(openapi::serve))
        .route("/api/plugins", get(plugins::list))
        .route("/api/plugins/{id}", get(plugins::get_one))
        .route("/api/admin/plugins/{id}/reload", post(plugins::reload))
        .route("/api/admin/cluster", get(plugins::cluster))
        .route("/api/jobs", post(jobs::submit).get(jobs::list_active))
        .route("/api/jobs/{id}", get(jobs::get_one))
        .route("/api/jobs/{id}/events", get(events::stream))
        .route("/api/jobs/{id}/cancel", post(jobs::cancel))
        .route("/api/jobs/{id}/resubmit", post(jobs::resubmit))
        .route("/api/jobs/{id}/deliveries", get(jobs::deliveries))
        .route("/api/results", get(results::list))
        .route(
            "/api/results/{id}",
            get(results::get_one).delete(results::delete),
        )
        .route("/api/results/{id}/export", get(results::export))
        .route("/api/results/{id}/speakers", put(results::rename_speakers))
        .layer(DefaultBodyLimit::max(body_limit))
}
