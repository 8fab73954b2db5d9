//! `POST /api/jobs`, `GET /api/jobs`, `GET /api/jobs/{id}`, `POST /api/jobs/{id}/cancel`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Multipart, Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use uuid::Uuid;

use super::upload::{self, UploadGuard};
use super::{ApiError, AppState, Caller};
use crate::jobs::{CancelError, JobRequest, JobSnapshot};
use crate::runtime::LoadedPlugin;

/// Parses a job id from the path; a malformed id is simply not found.
pub fn parse_id(id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id).map_err(|_| ApiError::not_found("job"))
}

/// 429 when the tenant's stored results already fill its storage quota.
async fn refuse_over_storage(state: &AppState, tenant: &str) -> Result<(), ApiError> {
    let Some(limit) = state
        .config
        .tenants
        .get(tenant)
        .and_then(|t| t.stored_bytes)
    else {
        return Ok(());
    };
    let store = state.store.clone();
    let owner = tenant.to_owned();
    let used = tokio::task::spawn_blocking(move || store.stored_bytes(&owner))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))??;
    if used < limit {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "quota_exceeded",
        format!(
            "your stored results quota ({limit} bytes, {used} used) is used up; it frees when you delete results"
        ),
    ))
}

/// 503 for a plugin in quarantine, saying why and when to retry.
pub fn refuse_quarantined(plugin: &LoadedPlugin) -> Result<(), ApiError> {
    match plugin.health.quarantine() {
        None => Ok(()),
        Some(q) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "plugin_quarantined",
            format!(
                "the plugin \"{}\" crashed {} times in a row and is paused for {} s (last crash: {})",
                plugin.meta.id, q.crashes_in_a_row, q.retry_after_seconds, q.reason
            ),
        )),
    }
}

/// Validates a submission and queues it. Shared by every API that creates jobs.
pub async fn submit_upload(
    state: &AppState,
    mut guard: UploadGuard,
    plugin: Arc<LoadedPlugin>,
    config: serde_json::Value,
    tenant: &str,
) -> Result<JobSnapshot, ApiError> {
    if !state.plugin_allowed(tenant, &plugin.meta.id) {
        return Err(ApiError::unknown_plugin(&plugin.meta.id));
    }
    refuse_quarantined(&plugin)?;
    refuse_over_storage(state, tenant).await?;
    let config = plugin
        .resolve_config(&config)
        .map_err(ApiError::invalid_config)?;
    let Some(upload) = guard.0.as_ref() else {
        return Err(ApiError::internal("upload missing"));
    };
    let audio = upload::probe(&upload.path, &state.audio_limits()).await?;
    let request = JobRequest {
        tenant: tenant.to_owned(),
        plugin,
        config,
        file_name: upload.file_name.clone(),
        upload: upload.path.clone(),
        duration_ms: audio.duration_ms(),
    };
    let snapshot = state.tracker.submit(request).map_err(ApiError::from)?;
    // The job owns the upload now.
    guard.0 = None;
    Ok(snapshot)
}

pub async fn submit(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    form: Multipart,
) -> Result<impl IntoResponse, ApiError> {
    let guard = upload::receive(
        form,
        "file",
        &state.config.uploads_dir(),
        state.config.limits.upload_bytes,
    )
    .await?;
    let Some(upload) = guard.0.as_ref() else {
        return Err(ApiError::internal("upload missing"));
    };
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
    let snapshot = submit_upload(&state, guard, plugin, config, &caller.tenant).await?;
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
    Json(serde_json::json!({ "jobs": state.tracker.active(&caller.tenant) }))
}

/// A job from the tracker, or (after a restart) rebuilt from its stored result.
pub async fn find(state: &AppState, id: Uuid, tenant: &str) -> Result<JobSnapshot, ApiError> {
    if let Some(snapshot) = state.tracker.get(tenant, id) {
        return Ok(snapshot);
    }
    let store = state.store.clone();
    let owner = tenant.to_owned();
    let stored = tokio::task::spawn_blocking(move || store.get(&owner, id))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))??;
    if let Some(result) = stored {
        // The result is in storage; what the job used is in the ledger.
        let mut snapshot = JobSnapshot::from_result(result);
        snapshot.usage = state
            .tracker
            .recorded(tenant, id)
            .and_then(|(s, _)| s.usage);
        return Ok(snapshot);
    }
    // Failed, cancelled or interrupted before a restart: the ledger remembers.
    state
        .tracker
        .recorded(tenant, id)
        .map(|(snapshot, _)| snapshot)
        .ok_or_else(|| ApiError::not_found("job"))
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
        find(&state, id, tenant).await?;
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
    let snapshot = state.tracker.submit(request).map_err(ApiError::from)?;
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
    Ok(Json(find(&state, id, &caller.tenant).await?))
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
            find(&state, id, &caller.tenant).await?;
            Err(ApiError::new(
                StatusCode::CONFLICT,
                "already_finished",
                "the job already finished (completed)",
            ))
        }
        Err(e @ CancelError::AlreadyFinished(_)) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "already_finished",
            e.to_string(),
        )),
    }
}
