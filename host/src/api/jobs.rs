//! `POST /api/jobs`, `GET /api/jobs`, `GET /api/jobs/{id}`, `POST /api/jobs/{id}/cancel`,
//! `GET /api/jobs/{id}/deliveries`.

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
use crate::app::submit::{DiarizerAsk, submit_upload};
use crate::app::upload;
use crate::diarize::SpeakerCount;
use crate::jobs::{CancelError, JobRequest, JobSnapshot};
use crate::webhooks::store::DeliveryView;

/// Parses a job id from the path; a malformed id is simply not found.
pub fn parse_id(id: &str) -> Result<Uuid, ApiError> {
    crate::app::extract::parse_id(id).ok_or_else(|| ApiError::not_found("job"))
}

#[utoipa::path(
    post, path = "/api/jobs", operation_id = "submit_job", tag = "jobs",
    request_body(content = crate::api::openapi::JobForm, content_type = "multipart/form-data"),
    responses(
        (status = 202, description = "Queued; `Location` names the job", body = JobSnapshot,
            headers(("location" = String, description = "`/api/jobs/{id}`"))),
        (status = 400, description = "No `plugin` or `file` field, a malformed form, `config` (or `diarizer_config`) not a JSON object matching its plugin's schema (`invalid_config` lists the fields), a diarizer as `plugin` (`not_a_transcriber`), an unknown `diarizer` (`unknown_diarizer`) or a transcriber as one (`not_a_diarizer`), a bad `speakers` (`invalid_speakers`), or `speakers`/`diarizer_config` without `diarizer` (`diarizer_missing`)", body = crate::app::ApiErrorEnvelope),
        (status = 404, description = "No such plugin for this tenant (`unknown_plugin`)", body = crate::app::ApiErrorEnvelope),
        (status = 413, description = "The file, a text field or the audio's length is over its limit", body = crate::app::ApiErrorEnvelope),
        (status = 415, description = "The file is empty or not audio that decodes (`undecodable_audio`)", body = crate::app::ApiErrorEnvelope),
        (status = 429, description = "The queue is full, a tenant quota is used up (the message says which and when it frees), or too many anonymous requests", body = crate::app::ApiErrorEnvelope),
        (status = 503, description = "The plugin is quarantined after repeated crashes, or the database is unavailable (`Retry-After`)", body = crate::app::ApiErrorEnvelope),
    )
)]
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
    let config = json_object_field(&upload, "config")?;
    let callback_url = state
        .callback_url(&caller.tenant, upload.field("callback_url"))
        .await?;
    let diarizer = diarizer_ask(&upload, || {
        DiarizerAsk::default_for(&state, &plugin.meta.id)
    })?;
    let snapshot = submit_upload(
        &state,
        upload,
        plugin,
        config,
        &caller.tenant,
        callback_url,
        diarizer,
    )
    .await?;
    let location = format!("/api/jobs/{}", snapshot.id);
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(snapshot),
    ))
}

/// A JSON-object text field (`config`, `diarizer_config`); `{}` when absent or blank.
fn json_object_field(
    upload: &upload::UploadGuard,
    name: &str,
) -> Result<serde_json::Value, ApiError> {
    let config = match upload.field(name).map(str::trim) {
        None | Some("") => serde_json::json!({}),
        Some(text) => serde_json::from_str::<serde_json::Value>(text).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_config",
                format!("{name} is not valid JSON: {e}"),
            )
        })?,
    };
    if !config.is_object() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_config",
            format!("{name} must be a JSON object"),
        ));
    }
    Ok(config)
}

/// The `diarizer`, `speakers` and `diarizer_config` fields: the job's optional second
/// stage. Without `diarizer` the plugin's default applies (`default`); `diarizer=none`
/// turns it off. `speakers` or `diarizer_config` without a diarizer is a mistake worth
/// saying.
fn diarizer_ask(
    upload: &upload::UploadGuard,
    default: impl FnOnce() -> Option<DiarizerAsk>,
) -> Result<Option<DiarizerAsk>, ApiError> {
    let bad = |message: String| ApiError::new(StatusCode::BAD_REQUEST, "invalid_speakers", message);
    let speakers = SpeakerCount::parse(upload.field("speakers").unwrap_or_default())
        .map_err(|e| bad(e.to_string()))?;
    let named = upload
        .field("diarizer")
        .map(str::trim)
        .filter(|d| !d.is_empty());
    if named.is_none()
        && let Some(mut ask) = default()
    {
        ask.speakers = speakers;
        ask.config = json_object_field(upload, "diarizer_config")?;
        return Ok(Some(ask));
    }
    let Some(id) = named.filter(|d| !d.eq_ignore_ascii_case("none")) else {
        for field in ["speakers", "diarizer_config"] {
            if upload.field(field).is_some_and(|v| !v.trim().is_empty()) {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "diarizer_missing",
                    format!("`{field}` is given but no `diarizer` names the plugin it is for"),
                ));
            }
        }
        return Ok(None);
    };
    Ok(Some(DiarizerAsk {
        id: id.to_owned(),
        speakers,
        config: json_object_field(upload, "diarizer_config")?,
    }))
}

/// `GET /api/jobs`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ActiveJobs {
    /// The caller's queued and running jobs.
    pub jobs: Vec<JobSnapshot>,
}

#[utoipa::path(
    get, path = "/api/jobs", operation_id = "list_active_jobs", tag = "jobs",
    responses((status = 200, description = "The caller's queued and running jobs", body = ActiveJobs))
)]
pub async fn list_active(State(state): State<Arc<AppState>>, caller: Caller) -> Json<ActiveJobs> {
    Json(ActiveJobs {
        jobs: state.tracker.active(&caller.tenant).await,
    })
}

/// `POST /api/jobs/{id}/resubmit`: runs an interrupted job again from its kept upload,
/// with the same plugin and configuration. Answers 202 with the new job.
#[utoipa::path(
    post, path = "/api/jobs/{id}/resubmit", operation_id = "resubmit_job", tag = "jobs",
    params(("id" = String, Path, format = Uuid, description = "The job id (a malformed one is simply not found)")),
    responses(
        (status = 202, description = "The new job", body = JobSnapshot,
            headers(("location" = String, description = "`/api/jobs/{id}` of the new job"))),
        (status = 400, description = "The plugin no longer takes the job's configuration (`invalid_config`)", body = crate::app::ApiErrorEnvelope),
        (status = 404, description = "No such job, or its plugin is no longer loaded", body = crate::app::ApiErrorEnvelope),
        (status = 409, description = "The job is not `interrupted` (`not_interrupted`)", body = crate::app::ApiErrorEnvelope),
        (status = 410, description = "The job's audio is no longer kept (`upload_gone`)", body = crate::app::ApiErrorEnvelope),
        (status = 429, description = "The queue is full or a tenant quota is used up", body = crate::app::ApiErrorEnvelope),
    )
)]
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
    // The same second stage, when the diarizer still takes it (checked as at submission).
    let diarizer = old.diarizer.as_ref().and_then(|d| {
        let ask = DiarizerAsk {
            id: d.plugin.id.clone(),
            speakers: d.speakers,
            config: d.config.clone(),
        };
        crate::app::submit::resolve_diarizer(&state, tenant, ask).ok()
    });
    let request = JobRequest {
        tenant: tenant.to_owned(),
        plugin,
        config,
        file_name: old.file_name.clone(),
        upload,
        duration_ms: old.duration_ms,
        callback_url: old.callback_url.clone(),
        diarizer,
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

#[utoipa::path(
    get, path = "/api/jobs/{id}", operation_id = "get_job", tag = "jobs",
    params(("id" = String, Path, format = Uuid, description = "The job id (a malformed one is simply not found)")),
    responses(
        (status = 200, description = "The job: status, progress, times, error, resource use, and the result once completed", body = JobSnapshot),
        (status = 404, description = "No such job for this tenant", body = crate::app::ApiErrorEnvelope),
    )
)]
pub async fn get_one(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<JobSnapshot>, ApiError> {
    let id = parse_id(&id)?;
    Ok(Json(find_job(&state, id, &caller.tenant).await?))
}

/// The answer of `GET /api/jobs/{id}/deliveries`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct JobDeliveries {
    pub job_id: Uuid,
    /// Where the job's terminal event is sent, if anywhere.
    pub callback_url: Option<String>,
    pub deliveries: Vec<DeliveryView>,
}

/// `GET /api/jobs/{id}/deliveries`: the job's webhook deliveries, each with its state,
/// its next try and every attempt. Another tenant's job is not found.
#[utoipa::path(
    get, path = "/api/jobs/{id}/deliveries", operation_id = "get_job_deliveries", tag = "jobs",
    params(("id" = String, Path, format = Uuid, description = "The job id (a malformed one is simply not found)")),
    responses(
        (status = 200, description = "The job's webhook deliveries and their attempts", body = JobDeliveries),
        (status = 404, description = "No such job for this tenant", body = crate::app::ApiErrorEnvelope),
    )
)]
pub async fn deliveries(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<JobDeliveries>, ApiError> {
    let id = parse_id(&id)?;
    let job = find_job(&state, id, &caller.tenant).await?;
    let found = state
        .webhooks
        .deliveries(&caller.tenant, id)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Json(JobDeliveries {
        job_id: job.id,
        callback_url: job.callback_url,
        deliveries: found
            .iter()
            .map(|(delivery, attempts)| DeliveryView::new(delivery, attempts))
            .collect(),
    }))
}

#[utoipa::path(
    post, path = "/api/jobs/{id}/cancel", operation_id = "cancel_job", tag = "jobs",
    params(("id" = String, Path, format = Uuid, description = "The job id (a malformed one is simply not found)")),
    responses(
        (status = 200, description = "The job, once stopped", body = JobSnapshot),
        (status = 404, description = "No such job for this tenant", body = crate::app::ApiErrorEnvelope),
        (status = 409, description = "The job already finished (`already_finished`)", body = crate::app::ApiErrorEnvelope),
    )
)]
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
