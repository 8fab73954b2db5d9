//! The state every handler shares, the JSON API's, `/v1`'s and the pages' alike: the
//! configuration, the access rules, the loaded plugins, the tracker and the result store,
//! with the per-tenant answers read from them.

use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::jobs::Tracker;
use crate::runtime::PluginRegistry;
use crate::storage::ResultStore;

/// Everything handlers share.
pub struct AppState {
    pub config: Config,
    /// API keys and browser logins.
    pub access: crate::auth::Access,
    pub plugins: Arc<PluginRegistry>,
    /// The plugin runtime (for reloading plugins; jobs run on it through the tracker).
    pub runtime: Arc<crate::runtime::Runtime>,
    pub tracker: Arc<Tracker>,
    /// The database several nodes share, when they do (the web's sessions live there).
    pub database: Option<crate::storage::PgDatabase>,
    pub store: Arc<dyn ResultStore>,
    /// Deliveries of finished jobs to their `callback_url`.
    pub webhooks: Arc<crate::webhooks::Webhooks>,
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

    /// The callback URL a `POST /api/jobs` asked for (`asked`), or the tenant's default,
    /// checked (its name resolved, unless it is an address); 400 `invalid_callback_url`
    /// naming the problem.
    pub async fn callback_url(
        &self,
        tenant: &str,
        asked: Option<&str>,
    ) -> Result<Option<String>, super::ApiError> {
        let default = self
            .config
            .tenants
            .get(tenant)
            .and_then(|t| t.callback_url.as_deref());
        let Some(url) = asked.map(str::trim).filter(|u| !u.is_empty()).or(default) else {
            return Ok(None);
        };
        self.webhooks
            .check_callback(tenant, url)
            .await
            .map(Some)
            .map_err(|problem| {
                super::ApiError::new(
                    axum::http::StatusCode::BAD_REQUEST,
                    "invalid_callback_url",
                    problem,
                )
            })
    }

    pub fn audio_limits(&self) -> crate::audio::DecodeLimits {
        crate::audio::DecodeLimits {
            max_bytes: self.config.limits.upload_bytes,
            max_duration_ms: self.config.limits.audio_seconds.saturating_mul(1000),
        }
    }
}
