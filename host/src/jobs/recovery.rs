//! The jobs' story across restarts: every change of a job's state is written to the
//! job ledger, so after a crash or a restart the jobs that were queued or running are
//! known, marked `interrupted`, and can be resubmitted from their kept uploads.

use std::path::PathBuf;
use std::sync::Arc;

use time::OffsetDateTime;
use uuid::Uuid;

use super::entry::JobEntry;
use super::model::{FailureKind, JobError, JobSnapshot, JobStatus};
use crate::storage::{JobLedger, JobRecord};

/// Writes jobs to the ledger and reads back the ones the tracker no longer holds.
pub(super) struct Recovery {
    ledger: Arc<dyn JobLedger>,
}

impl Recovery {
    pub(super) fn new(ledger: Arc<dyn JobLedger>) -> Self {
        Self { ledger }
    }

    /// Writes the job's state to the ledger, so a restart knows about it. A failed write
    /// is logged, not fatal: the job itself is unaffected.
    pub(super) fn persist(&self, entry: &JobEntry) {
        let mut snapshot = entry.snapshot();
        // The result lives in the result store; the ledger keeps the job's story.
        snapshot.result = None;
        let status = snapshot.status;
        let record = JobRecord {
            id: entry.id,
            tenant: entry.tenant.clone(),
            status: status.as_str().to_owned(),
            // Kept while the job may still run, and for a resubmit of an interrupted one.
            upload: (!status.is_finished() || status == JobStatus::Interrupted)
                .then(|| entry.upload.clone()),
            data: serde_json::to_value(&snapshot).unwrap_or_default(),
        };
        if let Err(e) = self.ledger.save_job(&record) {
            tracing::warn!(job = %entry.id, error = %e, "could not record the job's state");
        }
    }

    /// See [`super::Tracker::recover_interrupted`]; also returns each job's new
    /// snapshot with its tenant, for the jobs' terminal event.
    pub(super) fn recover_interrupted(&self) -> (Vec<PathBuf>, Vec<(String, JobSnapshot)>) {
        let records = match self.ledger.unfinished_jobs() {
            Ok(records) => records,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the job ledger");
                return (Vec::new(), Vec::new());
            }
        };
        let mut keep = Vec::new();
        let mut ended = Vec::new();
        for mut record in records {
            if let Ok(mut snapshot) = serde_json::from_value::<JobSnapshot>(record.data.clone()) {
                snapshot.status = JobStatus::Interrupted;
                snapshot.queue_position = None;
                snapshot.stage = "interrupted".into();
                snapshot.finished_at = Some(OffsetDateTime::now_utc());
                snapshot.error = Some(JobError::new(
                    FailureKind::Interrupted,
                    "the server stopped before this job finished; resubmit it to run it again",
                ));
                record.data = serde_json::to_value(&snapshot).unwrap_or_default();
                ended.push((record.tenant.clone(), snapshot));
            }
            record.status = JobStatus::Interrupted.as_str().to_owned();
            tracing::warn!(job = %record.id, tenant = %record.tenant, "job was interrupted by a restart");
            if let Err(e) = self.ledger.save_job(&record) {
                tracing::error!(job = %record.id, error = %e, "cannot mark a job interrupted");
            }
            keep.extend(record.upload);
        }
        (keep, ended)
    }

    /// See [`super::Tracker::recorded`].
    pub(super) fn recorded(
        &self,
        tenant: &str,
        id: Uuid,
    ) -> Option<(JobSnapshot, Option<PathBuf>)> {
        let record = self.ledger.job(tenant, id).ok().flatten()?;
        let snapshot = serde_json::from_value(record.data).ok()?;
        Some((snapshot, record.upload))
    }

    /// See [`super::Tracker::mark_resubmitted`].
    pub(super) fn mark_resubmitted(&self, tenant: &str, id: Uuid, new_id: Uuid) {
        if let Ok(Some(mut record)) = self.ledger.job(tenant, id) {
            record.upload = None;
            if let Some(object) = record.data.as_object_mut() {
                object.insert("resubmitted_as".into(), serde_json::json!(new_id));
            }
            if let Err(e) = self.ledger.save_job(&record) {
                tracing::warn!(job = %id, error = %e, "could not record a resubmission");
            }
        }
    }
}
