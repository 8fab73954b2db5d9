//! Creating a job from a received upload, the one way every front end does it (`POST
//! /api/jobs`, `/v1/audio/...`, the pages' Start): the plugin must be allowed for the
//! tenant and not in quarantine, the tenant's stored results must leave room, the config
//! must match the plugin's schema, and the file must decode, before the tracker queues it.

use std::sync::Arc;

use axum::http::StatusCode;

use super::upload::{self, UploadGuard};
use super::{ApiError, AppState};
use crate::diarize::SpeakerCount;
use crate::jobs::{DiarizerChoice, JobRequest, JobSnapshot};
use crate::runtime::{LoadedPlugin, PluginKind};

/// The diarizer a submission names, before it is checked.
pub struct DiarizerAsk {
    pub id: String,
    pub speakers: SpeakerCount,
    /// Its configuration as given (`{}` for its defaults).
    pub config: serde_json::Value,
}

impl DiarizerAsk {
    /// The diarizer a job of `plugin_id` gets when it names none: the operator's
    /// `[plugins.<id>] diarizer`, with its defaults and `auto` speakers.
    pub fn default_for(state: &AppState, plugin_id: &str) -> Option<Self> {
        let id = state.config.plugins.get(plugin_id)?.diarizer.clone()?;
        Some(Self {
            id,
            speakers: SpeakerCount::Auto,
            config: serde_json::json!({}),
        })
    }
}

/// Checks a named diarizer as a job's plugin is checked (loaded, allowed for the tenant,
/// not in quarantine, its configuration valid) and that it is a diarizer.
pub fn resolve_diarizer(
    state: &AppState,
    tenant: &str,
    ask: DiarizerAsk,
) -> Result<DiarizerChoice, ApiError> {
    let plugin = state
        .plugins
        .get(&ask.id)
        .filter(|p| state.plugin_allowed(tenant, &p.meta.id))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "unknown_diarizer",
                format!(
                    "no diarizer with id \"{}\" is loaded; GET /api/plugins lists them (kind \"diarizer\")",
                    ask.id
                ),
            )
        })?;
    if plugin.meta.kind != PluginKind::Diarizer {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "not_a_diarizer",
            format!(
                "\"{}\" is a transcription plugin, not a diarizer; `diarizer` names a plugin of kind \"diarizer\"",
                ask.id
            ),
        ));
    }
    refuse_quarantined(&plugin)?;
    let config = plugin.resolve_config(&ask.config).map_err(|problems| {
        let mut error = ApiError::invalid_config(problems);
        error.message = format!("diarizer_config: {}", error.message);
        error
    })?;
    Ok(DiarizerChoice {
        plugin,
        speakers: ask.speakers,
        config,
    })
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

/// 400 for a diarizer named as a job's transcription plugin.
pub fn refuse_transcriber_only(plugin: &LoadedPlugin) -> Result<(), ApiError> {
    if plugin.meta.kind == PluginKind::Transcriber {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::BAD_REQUEST,
        "not_a_transcriber",
        format!(
            "\"{}\" is a diarizer: it finds who spoke when after a transcription; name it as `diarizer` beside a transcription `plugin`",
            plugin.meta.id
        ),
    ))
}

/// Validates a submission and queues it. Shared by every API that creates jobs;
/// `callback_url` was checked by the caller ([`crate::webhooks::Webhooks::check_callback`]).
pub async fn submit_upload(
    state: &AppState,
    upload: UploadGuard,
    plugin: Arc<LoadedPlugin>,
    config: serde_json::Value,
    tenant: &str,
    callback_url: Option<String>,
    diarizer: Option<DiarizerAsk>,
) -> Result<JobSnapshot, ApiError> {
    if !state.plugin_allowed(tenant, &plugin.meta.id) {
        return Err(ApiError::unknown_plugin(&plugin.meta.id));
    }
    refuse_transcriber_only(&plugin)?;
    refuse_quarantined(&plugin)?;
    let diarizer = diarizer
        .map(|ask| resolve_diarizer(state, tenant, ask))
        .transpose()?;
    refuse_over_storage(state, tenant).await?;
    let config = plugin
        .resolve_config(&config)
        .map_err(ApiError::invalid_config)?;
    let audio = upload::probe(&upload.path, &state.audio_limits()).await?;
    let request = JobRequest {
        tenant: tenant.to_owned(),
        plugin,
        config,
        file_name: upload.file_name.clone(),
        upload: upload.path.clone(),
        duration_ms: audio.duration_ms(),
        callback_url,
        diarizer,
    };
    let snapshot = state
        .tracker
        .submit(request)
        .await
        .map_err(ApiError::from)?;
    // The job owns the upload now.
    upload.into_job_file();
    Ok(snapshot)
}
