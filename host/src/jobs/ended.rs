//! The one thing the tracker tells the outside world when a job reaches its terminal
//! state, so whoever cares (the webhooks, [`crate::webhooks`]) hears of it without the
//! tracker knowing what they do with it (it never touches HTTP).

use super::model::JobSnapshot;

/// Told once per job, when it ends (completed, failed, cancelled, timed out or
/// interrupted), on whichever node recorded the ending.
pub trait JobEnded: Send + Sync {
    /// `job` is the job's final snapshot; it must not block (queue work, do not do it).
    fn job_ended(&self, tenant: &str, job: &JobSnapshot);
}
