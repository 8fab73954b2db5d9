//! `POST /api/jobs`, `GET /api/jobs`, `GET /api/jobs/{id}`, `POST /api/jobs/{id}/cancel`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};

use crate::app::extract::ApiMultipart;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use uuid::Uuid;

use super::{ApiError, Caller};
use crate::app::AppState;
use crate::app::lookup::find_job;
use crate::app::submit::submit_upload;
use crate::app::upload;
use crate::jobs::{CancelError, JobRequest, JobSnapshot};

/// Parses a job id from the path; a malformed id is simply not found.
pub fn parse_id(id: &str) -> Result<Uuid, ApiError> {
    crate::app::extract::parse_id(id).ok_or_else(|| ApiError::not_found("job"))
}

pub async fn submit(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    ApiMultipart(form): ApiMultipart,
) -> Result<impl IntoResponse, ApiError> {
    let upload = upload::receive(
        form,
        "file",
        &state.config.uploads_dir(),
        state.config.limits.upload_bytes,
    )
    .await?;
    let plugin_id = upload
        .field("plugin")
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .ok_or_else(|| ApiError::bad_request("the form has no `plugin` field (a plugin id)"))?;
    let plugin = state
        .plugins
        .get(plugin_id)
        .ok_or_else(|| ApiError::unknown_plugin(plugin_id))?;
    let config = match upload.field("config").map(str::trim) {
        None | Some("") => serde_json::json!({}),
        Some(text) => serde_json::from_str::<serde_json::Value>(text).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_config",
                format!("config is not valid JSON: {e}"),
            )
        })?,
    };
    if !config.is_object() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_config",
            "config must be a JSON object",
        ));
    }
    let snapshot = submit_upload(&state, upload, plugin, config, &caller.tenant).await?;
    let location = format!("/api/jobs/{}", snapshot.id);
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(snapshot),
    ))
}

pub async fn list_active(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "jobs": state.tracker.active(&caller.tenant).await }))
}

/// `POST /api/jobs/{id}/resubmit`: runs an interrupted job again from its kept upload,
/// with the same plugin and configuration. Answers 202 with the new job.
pub async fn resubmit(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id = parse_id(&id)?;
    let tenant = caller.tenant.as_str();
    let Some((old, upload)) = state.tracker.recorded(tenant, id) else {
        find_job(&state, id, tenant).await?;
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_interrupted",
            "only an interrupted job can be resubmitted",
        ));
    };
    if old.status != crate::jobs::JobStatus::Interrupted {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_interrupted",
            format!(
                "only an interrupted job can be resubmitted; this one is {}",
                old.status.as_str()
            ),
        ));
    }
    let upload = upload.filter(|p| p.is_file()).ok_or_else(|| {
        ApiError::new(
            StatusCode::GONE,
            "upload_gone",
            "the audio of this job is no longer kept; upload it again",
        )
    })?;
    let plugin = state
        .plugins
        .get(&old.plugin.id)
        .ok_or_else(|| ApiError::unknown_plugin(&old.plugin.id))?;
    let config = plugin
        .resolve_config(&old.config)
        .map_err(ApiError::invalid_config)?;
    let request = JobRequest {
        tenant: tenant.to_owned(),
        plugin,
        config,
        file_name: old.file_name.clone(),
        upload,
        duration_ms: old.duration_ms,
    };
    let snapshot = state
        .tracker
        .submit(request)
        .await
        .map_err(ApiError::from)?;
    state.tracker.mark_resubmitted(tenant, id, snapshot.id);
    let location = format!("/api/jobs/{}", snapshot.id);
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(snapshot),
    ))
}

pub async fn get_one(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<JobSnapshot>, ApiError> {
    let id = parse_id(&id)?;
    Ok(Json(find_job(&state, id, &caller.tenant).await?))
}

pub async fn cancel(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<JobSnapshot>, ApiError> {
    let id = parse_id(&id)?;
    match state.tracker.cancel(&caller.tenant, id).await {
        Ok(snapshot) => Ok(Json(snapshot)),
        Err(CancelError::NotFound) => {
            // A finished job known only to storage cannot be cancelled either.
            find_job(&state, id, &caller.tenant).await?;
            Err(ApiError::new(
                StatusCode::CONFLICT,
                "already_finished",
                "the job already finished (completed)",
            ))
        }
        Err(CancelError::DatabaseUnavailable(detail)) => {
            Err(ApiError::database_unavailable(detail))
        }
        Err(e @ CancelError::AlreadyFinished(_)) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "already_finished",
            e.to_string(),
        )),
    }
}
