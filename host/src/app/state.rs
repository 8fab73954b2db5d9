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
