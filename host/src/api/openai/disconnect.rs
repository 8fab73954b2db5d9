//! Cancelling a request's job when its client goes away.
//!
//! When a client disconnects, the server drops the handler's future (while it waits for
//! the job) or the response body stream (while it streams events). A [`CancelOnDrop`]
//! held by either is dropped with it and cancels the job, unless it was disarmed because
//! the job had already reached its end.

use std::sync::Arc;

use uuid::Uuid;

use crate::jobs::Tracker;

/// Cancels a job when dropped while armed.
pub struct CancelOnDrop {
    tracker: Arc<Tracker>,
    tenant: String,
    id: Uuid,
    armed: bool,
}

impl CancelOnDrop {
    /// A guard for job `id`; `armed: false` (the operator's choice) never cancels.
    pub fn new(tracker: Arc<Tracker>, tenant: &str, id: Uuid, armed: bool) -> Self {
        Self {
            tracker,
            tenant: tenant.to_owned(),
            id,
            armed,
        }
    }

    /// The job has finished (or the answer is on its way): dropping no longer cancels.
    pub fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        // Drop runs inside the server's runtime; outside one (a test) there is no job to
        // stop either.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let tracker = self.tracker.clone();
        let tenant = std::mem::take(&mut self.tenant);
        let id = self.id;
        runtime.spawn(async move {
            if tracker.cancel(&tenant, id).await.is_ok() {
                tracing::info!(job = %id, "client disconnected; job cancelled");
            }
        });
    }
}
