//! `POST /v1/audio/transcriptions` and `POST /v1/audio/translations`.
//!
//! A request is a job like any other: the upload goes through the shared submission
//! path (size limit, probe decode, queue), so it shows up in the tracker, the history
//! and `/api/results`. The handler then follows the job's events until it ends and
//! answers in the requested format, or streams it. Every answer about a job carries the
//! job id as `x-request-id`.

use std::sync::Arc;

use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, State};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};

use super::auth::Caller;
use super::disconnect::CancelOnDrop;
use super::error::OpenAiError;
use super::form::{self, Task, TranscriptionRequest};
use super::models::unknown_model;
use super::{response, stream, wait};
use crate::api::ApiError;
use crate::app::AppState;
use crate::app::submit::submit_upload;
use crate::app::upload;

#[utoipa::path(
    post, path = "/v1/audio/transcriptions", operation_id = "create_transcription", tag = "openai",
    request_body(content = super::openapi::TranscriptionForm, content_type = "multipart/form-data"),
    responses(
        (status = 200, description = super::openapi::TRANSCRIPTION_DESCRIPTION,
            headers(("x-request-id" = String, description = "The job's id (see `/api/jobs/{id}`)")),
            content(
                (super::openapi::TranscriptionAnswer = "application/json"),
                (String = "text/plain"),
                (String = "application/x-subrip"),
                (String = "text/vtt"),
                (super::openapi::TranscriptStreamMessage = "text/event-stream"),
            )),
        super::openapi::AudioRefusals,
    )
)]
pub async fn transcribe(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, OpenAiError> {
    handle(state, caller, multipart, Task::Transcribe).await
}

#[utoipa::path(
    post, path = "/v1/audio/translations", operation_id = "create_translation", tag = "openai",
    request_body(content = super::openapi::TranslationForm, content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "The English translation in the requested `response_format`",
            headers(("x-request-id" = String, description = "The job's id (see `/api/jobs/{id}`)")),
            content(
                (super::openapi::TranscriptionAnswer = "application/json"),
                (String = "text/plain"),
                (String = "application/x-subrip"),
                (String = "text/vtt"),
            )),
        super::openapi::AudioRefusals,
    )
)]
pub async fn translate(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, OpenAiError> {
    handle(state, caller, multipart, Task::Translate).await
}

async fn handle(
    state: Arc<AppState>,
    caller: Caller,
    multipart: Result<Multipart, MultipartRejection>,
    task: Task,
) -> Result<Response, OpenAiError> {
    let multipart = multipart.map_err(|rejection| {
        ApiError::new(rejection.status(), "invalid_form", rejection.body_text())
    })?;
    let received = upload::receive(
        multipart,
        "file",
        &state.config.uploads_dir(),
        state.config.limits.upload_bytes,
    )
    .await?;
    let request = TranscriptionRequest::parse(&received.fields, task)?;
    let plugin = state
        .plugins
        .get(&request.model)
        .ok_or_else(|| unknown_model(&request.model))?;
    let mapped = form::plugin_config(&request, &plugin.meta)?;
    let job = submit_upload(
        &state,
        received,
        plugin,
        mapped.config.clone(),
        &caller.tenant,
        // OpenAI's API has no callbacks: the answer is the transcript.
        None,
        crate::app::submit::DiarizerAsk::default_for(&state, &request.model),
    )
    .await
    .map_err(|e| mapped.explain(e))?;
    tracing::info!(job = %job.id, model = %request.model, task = task.as_str(), "OpenAI-compatible request");

    let mut cancel = CancelOnDrop::new(
        state.tracker.clone(),
        &caller.tenant,
        job.id,
        state.config.openai.cancel_on_disconnect,
    );
    let mut response = if request.stream {
        stream::respond(state, caller.tenant, job.id, cancel)
    } else {
        // If the client disconnects now, this future is dropped, and `cancel` with it.
        let outcome = wait::result(&state, &caller.tenant, job.id).await;
        cancel.disarm();
        match outcome {
            Ok(result) => response::render(&request, &result),
            Err(error) => error.into_response(),
        }
    };
    // OpenAI's clients expose this header as `_request_id`; with the job id there, a
    // client can find the job in /api/jobs and its result in /api/results.
    if let Ok(id) = HeaderValue::from_str(&job.id.to_string()) {
        response.headers_mut().insert("x-request-id", id);
    }
    Ok(response)
}
