//! `GET /v1/models` and `GET /v1/models/{id}`: the loaded plugins, as OpenAI lists models.

use std::sync::Arc;
use std::time::UNIX_EPOCH;

use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;

use super::auth::Caller;
use super::error::OpenAiError;
use crate::api::ApiError;
use crate::app::AppState;
use crate::runtime::LoadedPlugin;

/// One model in OpenAI's shape.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Model {
    /// The plugin id.
    pub id: String,
    /// Always `model`.
    pub object: &'static str,
    /// When the plugin was installed (its `plugin.wasm` last changed), in Unix seconds.
    pub created: u64,
    pub owned_by: &'static str,
}

impl Model {
    fn of(plugin: &LoadedPlugin) -> Self {
        let created = std::fs::metadata(plugin.dir.join("plugin.wasm"))
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        Self {
            id: plugin.meta.id.clone(),
            object: "model",
            created,
            owned_by: "sandscribe",
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ModelList {
    /// Always `list`.
    object: &'static str,
    data: Vec<Model>,
}

#[utoipa::path(
    get, path = "/v1/models", operation_id = "list_models", tag = "openai",
    responses((status = 200, description = "The loaded plugins this tenant may use, as models", body = ModelList))
)]
pub async fn list(State(state): State<Arc<AppState>>, caller: Caller) -> Json<ModelList> {
    Json(ModelList {
        object: "list",
        data: state
            .plugins
            // A diarizer is no transcription model.
            .plugins_of(crate::runtime::PluginKind::Transcriber)
            .iter()
            .filter(|p| state.plugin_allowed(&caller.tenant, &p.meta.id))
            .map(|p| Model::of(p))
            .collect(),
    })
}

#[utoipa::path(
    get, path = "/v1/models/{id}", operation_id = "get_model", tag = "openai",
    params(("id" = String, Path, description = "The model id: a plugin id")),
    responses(
        (status = 200, description = "The model", body = Model),
        (status = 404, description = "No such model for this tenant (`model_not_found`)", body = super::error::Envelope),
    )
)]
pub async fn get_one(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Model>, OpenAiError> {
    let plugin = state
        .plugins
        .get(&id)
        .filter(|p| state.plugin_allowed(&caller.tenant, &p.meta.id))
        .ok_or_else(|| unknown_model(&id))?;
    Ok(Json(Model::of(&plugin)))
}

/// 404 for a model id that is not a loaded plugin.
pub fn unknown_model(id: &str) -> OpenAiError {
    let mut error = ApiError::unknown_plugin(id);
    error.message =
        format!("the model `{id}` does not exist; GET /v1/models lists the loaded plugins");
    OpenAiError::from(error).param("model")
}
