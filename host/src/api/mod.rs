//! The HTTP API (axum): plugins, jobs with SSE, results and exports.
//!
//! Handlers are small: they read the tracker and storage, never the runtime directly
//! (the runtime reports to the tracker). Two layers wrap the whole app, pages included:
//! [`guard`] (the request names our host and, if it changes state on the strength of a
//! cookie, comes from our pages) and [`response_headers`] (nothing is sniffed or run).

pub mod caller;
mod error;
pub mod events;
pub mod guard;
pub mod jobs;
pub mod media_type;
pub mod openai;
pub mod plugins;
pub mod response_headers;
pub mod results;
pub mod upload;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

pub use crate::auth::Caller;
pub use error::ApiError;

use crate::config::Config;
use crate::jobs::Tracker;
use crate::runtime::{PluginRegistry, Runtime};
use crate::storage::ResultStore;

/// Everything handlers share.
pub struct AppState {
    pub config: Config,
    /// API keys and browser logins.
    pub access: crate::auth::Access,
    pub plugins: Arc<PluginRegistry>,
    /// The plugin runtime (for reloading plugins; jobs run on it through the tracker).
    pub runtime: Arc<Runtime>,
    pub tracker: Arc<Tracker>,
    pub store: Arc<dyn ResultStore>,
}

impl AppState {
    pub fn heartbeat(&self) -> Duration {
        Duration::from_secs(self.config.jobs.heartbeat_seconds.max(1))
    }

    /// Whether `tenant` may see and use the plugin (its allow-list, if it has one).
    pub fn plugin_allowed(&self, tenant: &str, id: &str) -> bool {
        self.config
            .tenants
            .get(tenant)
            .and_then(|t| t.plugins.as_ref())
            .is_none_or(|allowed| allowed.iter().any(|p| p == id))
    }

    /// The media folders `tenant` may pick from: its own if configured, else the server's.
    pub fn media_folders_for(&self, tenant: &str) -> &[std::path::PathBuf] {
        self.config
            .tenants
            .get(tenant)
            .and_then(|t| t.media_folders.as_deref())
            .unwrap_or(&self.config.media_folders)
    }

    pub fn audio_limits(&self) -> crate::audio::DecodeLimits {
        crate::audio::DecodeLimits {
            max_bytes: self.config.limits.upload_bytes,
            max_duration_ms: self.config.limits.audio_seconds.saturating_mul(1000),
        }
    }
}

/// The tenant every request belongs to in single-user mode.
pub use crate::auth::DEFAULT_TENANT;

/// The whole app: the JSON API, `/v1`, the pages, behind the request guard and with
/// the headers every response carries.
pub fn router(state: Arc<AppState>) -> Router {
    // Room for the multipart framing around the largest allowed file.
    let body_limit = usize::try_from(state.config.limits.upload_bytes)
        .unwrap_or(usize::MAX)
        .saturating_add(1 << 20);
    let guard = Arc::new(guard::RequestGuard::new(
        state.access.site().clone(),
        state.access.single_user(),
    ));
    Router::new()
        .route("/healthz", get(plugins::healthz))
        .route("/metrics", get(plugins::metrics))
        .route("/api/plugins", get(plugins::list))
        .route("/api/plugins/{id}", get(plugins::get_one))
        .route("/api/admin/plugins/{id}/reload", post(plugins::reload))
        .route("/api/jobs", post(jobs::submit).get(jobs::list_active))
        .route("/api/jobs/{id}", get(jobs::get_one))
        .route("/api/jobs/{id}/events", get(events::stream))
        .route("/api/jobs/{id}/cancel", post(jobs::cancel))
        .route("/api/jobs/{id}/resubmit", post(jobs::resubmit))
        .route("/api/results", get(results::list))
        .route(
            "/api/results/{id}",
            get(results::get_one).delete(results::delete),
        )
        .route("/api/results/{id}/export", get(results::export))
        .layer(DefaultBodyLimit::max(body_limit))
        .merge(openai::router(&state))
        .with_state(state.clone())
        .merge(crate::web::router(state))
        .layer(axum::middleware::from_fn_with_state(
            guard,
            guard::check_request,
        ))
        .layer(axum::middleware::map_response(response_headers::apply))
}
