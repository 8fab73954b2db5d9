//! Reading one job or one stored result by id for a tenant, as every front end does:
//! a job from the tracker or, after a restart, from storage and the ledger; a result from
//! storage. Anything of another tenant is simply not found.

use uuid::Uuid;

use super::{ApiError, AppState};
use crate::jobs::JobSnapshot;
use crate::storage::{StorageError, StoredResult};

/// Runs a blocking storage call off the async threads.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(ApiError::from)
}

/// A job from the tracker, or (after a restart) rebuilt from its stored result.
pub async fn find_job(state: &AppState, id: Uuid, tenant: &str) -> Result<JobSnapshot, ApiError> {
    if let Some(mut snapshot) = state.tracker.lookup(tenant, id).await? {
        if snapshot.status == crate::jobs::JobStatus::Completed && snapshot.result.is_none() {
            // With several nodes the job's record comes from the shared ledger, which
            // keeps the result where every result is: in the result store.
            let store = state.store.clone();
            let owner = tenant.to_owned();
            snapshot.result = tokio::task::spawn_blocking(move || store.get(&owner, id))
                .await
                .map_err(|e| ApiError::internal(e.to_string()))??
                .map(std::sync::Arc::new);
        }
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

/// The tenant's stored result or 404.
pub async fn load_result(
    state: &AppState,
    id: Uuid,
    tenant: &str,
) -> Result<StoredResult, ApiError> {
    let store = state.store.clone();
    let tenant = tenant.to_owned();
    blocking(move || store.get(&tenant, id))
        .await?
        .ok_or_else(|| ApiError::not_found("result"))
}
