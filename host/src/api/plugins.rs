//! `GET /healthz`, `GET /api/plugins`, `GET /api/plugins/{id}`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;

use super::{ApiError, AppState};
use crate::runtime::{LoadFailure, LoadedPlugin, PluginMeta};

/// A loaded plugin as the API shows it.
#[derive(Serialize)]
pub struct PluginView {
    #[serde(flatten)]
    pub meta: PluginMeta,
    pub sha256: String,
    pub status: &'static str,
}

impl PluginView {
    pub fn of(plugin: &LoadedPlugin) -> Self {
        Self {
            meta: plugin.meta.clone(),
            sha256: plugin.sha256.clone(),
            status: "loaded",
        }
    }
}

#[derive(Serialize)]
pub struct PluginList {
    pub plugins: Vec<PluginView>,
    /// Plugin folders that failed to load, with the reason.
    pub failed: Vec<LoadFailure>,
}

pub async fn healthz(State(state): State<Arc<AppState>>) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "status": "ok",
        "plugins": state.plugins.plugins().len(),
        "queued": state.tracker.queue_len(),
    }))
}

pub async fn list(State(state): State<Arc<AppState>>) -> Json<PluginList> {
    Json(PluginList {
        plugins: state
            .plugins
            .plugins()
            .iter()
            .map(|p| PluginView::of(p))
            .collect(),
        failed: state.plugins.failures().to_vec(),
    })
}

pub async fn get_one(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
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

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(state): State<Arc<AppState>>) -> impl axum::response::IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.tracker.metrics().encode(),
    )
}
