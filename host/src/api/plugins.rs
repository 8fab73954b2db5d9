//! `GET /healthz`, `GET /api/plugins`, `GET /api/plugins/{id}`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;
use utoipa::ToSchema;

use super::ApiError;
use crate::app::AppState;
use crate::runtime::{LoadFailure, LoadedPlugin, PluginMeta};

/// A loaded plugin as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct PluginView {
    #[serde(flatten)]
    pub meta: PluginMeta,
    pub sha256: String,
    /// `loaded`, or `quarantined` while the plugin is paused after repeated crashes.
    pub status: PluginStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quarantine: Option<crate::runtime::Quarantine>,
}

/// Whether a plugin takes jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PluginStatus {
    Loaded,
    /// Paused after repeated crashes; new jobs get 503 until `retry_after_seconds` pass.
    Quarantined,
    /// The folder did not load (only in [`PluginAnswer::Failed`]).
    Failed,
}

/// `GET /api/plugins/{id}`: the plugin, or why its folder did not load.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum PluginAnswer {
    Loaded(Box<PluginView>),
    Failed(FailedPlugin),
}

/// A plugin folder that did not load.
#[derive(Serialize, ToSchema)]
pub struct FailedPlugin {
    pub id: String,
    /// Always `failed`.
    pub status: PluginStatus,
    pub reason: String,
}

/// `GET /healthz`.
#[derive(Serialize, ToSchema)]
pub struct Health {
    pub status: HealthStatus,
    /// This node's name.
    pub node: String,
    pub database: DatabaseKind,
    /// How many plugins are loaded.
    pub plugins: usize,
    /// Jobs waiting in this node's queue.
    pub queued: usize,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    Ok,
    /// The shared database cannot be reached: the node serves on, submissions get 503.
    Degraded,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DatabaseKind {
    Sqlite,
    Postgresql,
}

/// `GET /api/admin/cluster`.
#[derive(Serialize, ToSchema)]
pub struct Cluster {
    /// The node that answered.
    pub node: String,
    pub nodes: Vec<crate::storage::postgres::queue::NodeRow>,
}

impl PluginView {
    pub fn of(plugin: &LoadedPlugin) -> Self {
        let quarantine = plugin.health.quarantine();
        Self {
            meta: plugin.meta.clone(),
            sha256: plugin.sha256.clone(),
            status: if quarantine.is_some() {
                PluginStatus::Quarantined
            } else {
                PluginStatus::Loaded
            },
            quarantine,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct PluginList {
    pub plugins: Vec<PluginView>,
    /// Plugin folders that failed to load, with the reason.
    pub failed: Vec<LoadFailure>,
}

/// `GET /healthz`: `ok`, or `degraded` while the shared database cannot be reached
/// (the node serves on; submissions get 503 until it is back).
#[utoipa::path(
    get, path = "/healthz", operation_id = "get_health", tag = "health",
    responses((status = 200, description = "The server is up", body = Health))
)]
pub async fn healthz(State(state): State<Arc<AppState>>) -> Json<Health> {
    let database = state.tracker.database_reachable().await;
    Json(Health {
        status: if database == Some(false) {
            HealthStatus::Degraded
        } else {
            HealthStatus::Ok
        },
        node: state.tracker.node().to_owned(),
        database: if database.is_some() {
            DatabaseKind::Postgresql
        } else {
            DatabaseKind::Sqlite
        },
        plugins: state.plugins.plugins().len(),
        queued: state.tracker.queue_len(),
    })
}

/// `GET /api/admin/cluster`: every node, its last heartbeat, slots in use and jobs
/// (with SQLite: this one node).
#[utoipa::path(
    get, path = "/api/admin/cluster", operation_id = "get_cluster", tag = "admin",
    responses(
        (status = 200, description = "The nodes sharing the database (with SQLite: this one)", body = Cluster),
        (status = 403, description = "The key is not an admin's (`forbidden`), or the request's host or origin is refused", body = crate::app::ApiErrorEnvelope),
    )
)]
pub async fn cluster(
    State(state): State<Arc<AppState>>,
    caller: super::Caller,
) -> Result<Json<Cluster>, ApiError> {
    super::caller::require_admin(&caller)?;
    let nodes = state.tracker.cluster_nodes().await?;
    Ok(Json(Cluster {
        node: state.tracker.node().to_owned(),
        nodes,
    }))
}

#[utoipa::path(
    get, path = "/api/plugins", operation_id = "list_plugins", tag = "plugins",
    responses((status = 200, description = "The plugins this tenant may use, and the folders that failed to load", body = PluginList))
)]
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

#[utoipa::path(
    get, path = "/api/plugins/{id}", operation_id = "get_plugin", tag = "plugins",
    params(("id" = String, Path, description = "The plugin id (its folder name)")),
    responses(
        (status = 200, description = "The plugin, or why its folder did not load", body = PluginAnswer),
        (status = 404, description = "No such plugin for this tenant (`unknown_plugin`)", body = crate::app::ApiErrorEnvelope),
    )
)]
pub async fn get_one(
    State(state): State<Arc<AppState>>,
    caller: super::Caller,
    Path(id): Path<String>,
) -> Result<Json<PluginAnswer>, ApiError> {
    if !state.plugin_allowed(&caller.tenant, &id) {
        return Err(ApiError::unknown_plugin(&id));
    }
    if let Some(plugin) = state.plugins.get(&id) {
        return Ok(Json(PluginAnswer::Loaded(Box::new(PluginView::of(
            &plugin,
        )))));
    }
    if let Some(failure) = state.plugins.failure(&id) {
        return Ok(Json(PluginAnswer::Failed(FailedPlugin {
            id: failure.id,
            status: PluginStatus::Failed,
            reason: failure.reason,
        })));
    }
    Err(ApiError::unknown_plugin(&id))
}

/// `GET /metrics`: Prometheus text format, for a [`super::caller::MetricsReader`].
#[utoipa::path(
    get, path = "/metrics", operation_id = "get_metrics", tag = "admin",
    responses(
        (status = 200, description = "Prometheus metrics in the OpenMetrics text format",
            content((String = "application/openmetrics-text"))),
        (status = 403, description = "The key is not an admin's (`forbidden`), or the request's host or origin is refused", body = crate::app::ApiErrorEnvelope),
    )
)]
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
#[utoipa::path(
    post, path = "/api/admin/plugins/{id}/reload", operation_id = "reload_plugin", tag = "admin",
    params(("id" = String, Path, description = "The plugin id (its folder name)")),
    responses(
        (status = 200, description = "The plugin as now loaded", body = PluginView),
        (status = 403, description = "The key is not an admin's (`forbidden`), or the request's host or origin is refused", body = crate::app::ApiErrorEnvelope),
        (status = 404, description = "No plugin folder of that name (`unknown_plugin`)", body = crate::app::ApiErrorEnvelope),
        (status = 422, description = "The folder did not load; the old version stays (`reload_failed`)", body = crate::app::ApiErrorEnvelope),
    )
)]
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
