//! `GET /healthz`, `GET /api/plugins`, `GET /api/plugins/{id}`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;

use super::ApiError;
use crate::app::AppState;
use crate::runtime::{LoadFailure, LoadedPlugin, PluginMeta};

/// A loaded plugin as the API shows it.
#[derive(Serialize)]
pub struct PluginView {
    #[serde(flatten)]
    pub meta: PluginMeta,
    pub sha256: String,
    /// `loaded`, or `quarantined` while the plugin is paused after repeated crashes.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quarantine: Option<crate::runtime::Quarantine>,
}

impl PluginView {
    pub fn of(plugin: &LoadedPlugin) -> Self {
        let quarantine = plugin.health.quarantine();
        Self {
            meta: plugin.meta.clone(),
            sha256: plugin.sha256.clone(),
            status: if quarantine.is_some() {
                "quarantined"
            } else {
                "loaded"
            },
            quarantine,
        }
    }
}

#[derive(Serialize)]
pub struct PluginList {
    pub plugins: Vec<PluginView>,
    /// Plugin folders that failed to load, with the reason.
    pub failed: Vec<LoadFailure>,
}

/// `GET /healthz`: `ok`, or `degraded` while the shared database cannot be reached
/// (the node serves on; submissions get 503 until it is back).
pub async fn healthz(State(state): State<Arc<AppState>>) -> Json<serde_json::Value> {
    let database = state.tracker.database_reachable().await;
    Json(serde_json::json!({
        "status": if database == Some(false) { "degraded" } else { "ok" },
        "node": state.tracker.node(),
        "database": if database.is_some() { "postgresql" } else { "sqlite" },
        "plugins": state.plugins.plugins().len(),
        "queued": state.tracker.queue_len(),
    }))
}

/// `GET /api/admin/cluster`: every node, its last heartbeat, slots in use and jobs
/// (with SQLite: this one node).
pub async fn cluster(
    State(state): State<Arc<AppState>>,
    caller: super::Caller,
) -> Result<Json<serde_json::Value>, ApiError> {
    super::caller::require_admin(&caller)?;
    let nodes = state.tracker.cluster_nodes().await?;
    Ok(Json(serde_json::json!({
        "node": state.tracker.node(),
        "nodes": nodes,
    })))
}

pub async fn list(State(state): State<Arc<AppState>>, caller: super::Caller) -> Json<PluginList> {
    Json(PluginList {
        plugins: state
            .plugins
            .plugins()
            .iter()
            .filter(|p| state.plugin_allowed(&caller.tenant, &p.meta.id))
            .map(|p| PluginView::of(p))
            .collect(),
        failed: state.plugins.failures().to_vec(),
    })
}

pub async fn get_one(
    State(state): State<Arc<AppState>>,
    caller: super::Caller,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    if !state.plugin_allowed(&caller.tenant, &id) {
        return Err(ApiError::unknown_plugin(&id));
    }
    if let Some(plugin) = state.plugins.get(&id) {
        return Ok(Json(
            serde_json::to_value(PluginView::of(&plugin))
                .map_err(|e| ApiError::internal(e.to_string()))?,
        ));
    }
    if let Some(failure) = state.plugins.failure(&id) {
        return Ok(Json(serde_json::json!({
            "id": failure.id,
            "status": "failed",
            "reason": failure.reason,
        })));
    }
    Err(ApiError::unknown_plugin(&id))
}

/// `GET /metrics`: Prometheus text format, for a [`super::caller::MetricsReader`].
pub async fn metrics(
    State(state): State<Arc<AppState>>,
    _reader: super::caller::MetricsReader,
) -> impl axum::response::IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.tracker.metrics().encode(),
    )
}

/// `POST /api/admin/plugins/{id}/reload`: loads the plugin folder again without a
/// restart. Jobs already submitted finish on the version they started with; a failed
/// reload keeps the old version and answers 422 with the reason.
pub async fn reload(
    State(state): State<Arc<AppState>>,
    caller: super::Caller,
    Path(id): Path<String>,
) -> Result<Json<PluginView>, ApiError> {
    super::caller::require_admin(&caller)?;
    let safe = !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !safe || !state.config.plugins_dir.join(&id).is_dir() {
        return Err(ApiError::unknown_plugin(&id));
    }
    let runtime = state.runtime.clone();
    let plugins = state.plugins.clone();
    let dir = state.config.plugins_dir.clone();
    let reloaded = tokio::task::spawn_blocking(move || runtime.reload_plugin(&plugins, &dir, &id))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let loaded = state.plugins.plugins().len();
    let failed = state.plugins.failures().len();
    state.tracker.metrics().set_plugins(loaded, failed);
    match reloaded {
        Ok(plugin) => Ok(Json(PluginView::of(&plugin))),
        Err(e) => Err(ApiError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "reload_failed",
            format!("the plugin could not be reloaded (the old version stays loaded): {e}"),
        )),
    }
}
