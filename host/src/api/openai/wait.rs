//! Following a submitted job to its end through the tracker's event log: no polling.

use std::sync::Arc;

use axum::http::StatusCode;
use futures::{Stream, StreamExt};
use uuid::Uuid;

use super::error::OpenAiError;
use crate::api::ApiError;
use crate::app::AppState;
use crate::jobs::{EventKind, FailureKind, JobError, JobEvent, Tracker};
use crate::storage::StoredResult;

/// The job's events from its first one, then live, ending with its terminal event.
/// `None` when the tracker no longer holds the job.
pub async fn job_events(
    tracker: Arc<Tracker>,
    tenant: String,
    id: Uuid,
) -> Option<impl Stream<Item = JobEvent> + Send + 'static> {
    tracker.follow(&tenant, id, 0).await
}

/// What a terminal event means for the request; `None` for other events.
pub fn outcome(kind: &EventKind) -> Option<Result<Arc<StoredResult>, OpenAiError>> {
    match kind {
        EventKind::Done { result, .. } => Some(Ok(result.clone())),
        EventKind::Failed { error, .. } | EventKind::TimedOut { error, .. } => {
            Some(Err(job_failed(error)))
        }
        EventKind::Cancelled { message } => Some(Err(OpenAiError::from(ApiError::new(
            StatusCode::CONFLICT,
            "job_cancelled",
            format!("the transcription was cancelled ({message})"),
        ))
        .final_answer())),
        _ => None,
    }
}

/// Waits for the job to end and returns its stored result.
pub async fn result(
    state: &AppState,
    tenant: &str,
    id: Uuid,
) -> Result<Arc<StoredResult>, OpenAiError> {
    let Some(events) = job_events(state.tracker.clone(), tenant.to_owned(), id).await else {
        return stored_result(state, tenant, id).await;
    };
    let mut events = std::pin::pin!(events);
    while let Some(event) = events.next().await {
        if let Some(outcome) = outcome(&event.kind) {
            return outcome;
        }
    }
    // The tracker let go of the job between two events; storage has the last word.
    stored_result(state, tenant, id).await
}

/// The result of a job the tracker no longer holds (the server keeps only so many
/// finished jobs in memory).
pub async fn stored_result(
    state: &AppState,
    tenant: &str,
    id: Uuid,
) -> Result<Arc<StoredResult>, OpenAiError> {
    let job = crate::app::lookup::find_job(state, id, tenant).await?;
    match (job.result, job.error) {
        (Some(result), _) => Ok(result),
        (None, Some(error)) => Err(job_failed(&error)),
        (None, None) => Err(OpenAiError::from(ApiError::internal(format!(
            "the job ended {} without a result",
            job.status.as_str()
        )))),
    }
}

/// The answer for a job that failed: the client's fault where it is (a configuration
/// the plugin refused, audio it cannot use), otherwise a server error. Retrying would
/// fail the same way, so clients are told not to.
fn job_failed(error: &JobError) -> OpenAiError {
    let (status, code) = match error.kind {
        FailureKind::PluginBadConfig => (StatusCode::BAD_REQUEST, "plugin_bad_config"),
        FailureKind::PluginUnsupportedAudio | FailureKind::Audio => {
            (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_audio")
        }
        FailureKind::PluginTrap => (StatusCode::INTERNAL_SERVER_ERROR, "plugin_trap"),
        FailureKind::OutOfMemory => (StatusCode::INTERNAL_SERVER_ERROR, "out_of_memory"),
        FailureKind::StackOverflow => (StatusCode::INTERNAL_SERVER_ERROR, "stack_overflow"),
        FailureKind::InvalidOutput => (StatusCode::INTERNAL_SERVER_ERROR, "invalid_output"),
        FailureKind::InvalidComputeCall => {
            (StatusCode::INTERNAL_SERVER_ERROR, "invalid_compute_call")
        }
        FailureKind::PluginInternal => (StatusCode::INTERNAL_SERVER_ERROR, "plugin_internal"),
        FailureKind::TimedOut => (StatusCode::INTERNAL_SERVER_ERROR, "timed_out"),
        FailureKind::FuelExhausted => (StatusCode::INTERNAL_SERVER_ERROR, "fuel_exhausted"),
        FailureKind::Interrupted => (StatusCode::SERVICE_UNAVAILABLE, "interrupted"),
        FailureKind::Server => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    };
    let error = OpenAiError::from(ApiError::new(
        status,
        code,
        format!("the transcription failed: {}", error.message),
    ));
    // A server-side failure (storage, a restart) may well pass on a second try.
    if matches!(code, "internal" | "interrupted") {
        error
    } else {
        error.final_answer()
    }
}
