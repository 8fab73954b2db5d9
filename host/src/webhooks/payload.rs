//! The body of a delivery: the job's terminal event, as the receiver reads it.
//!
//! ```json
//! {"type": "job.done", "timestamp": "2026-01-01T00:00:00Z",
//!  "data": {"job_id": "…", "status": "completed", "result_id": "…",
//!           "links": {"job": "/api/jobs/…", "result": "/api/results/…",
//!                     "export": "/api/results/…/export?format=txt"}}}
//! ```

use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::jobs::{JobSnapshot, JobStatus};

/// The event type of a job that ended with `status`; `None` while it has not ended.
pub fn event_type(status: JobStatus) -> Option<&'static str> {
    Some(match status {
        JobStatus::Completed => "job.done",
        JobStatus::Failed => "job.failed",
        JobStatus::Cancelled => "job.cancelled",
        JobStatus::TimedOut => "job.timed_out",
        JobStatus::Interrupted => "job.interrupted",
        JobStatus::Queued | JobStatus::Running => return None,
    })
}

/// The body for `job`, with links relative to the server, or absolute under `base`
/// (`public_url`, without a trailing `/`).
pub fn body(job: &JobSnapshot, base: Option<&str>, now: OffsetDateTime) -> Option<Value> {
    let kind = event_type(job.status)?;
    let base = base.unwrap_or("").trim_end_matches('/');
    let id = job.id;
    let mut links = json!({ "job": format!("{base}/api/jobs/{id}") });
    let mut data = json!({ "job_id": id, "status": job.status.as_str() });
    if job.status == JobStatus::Completed {
        // A result is stored under its job's id.
        data["result_id"] = json!(id);
        links["result"] = json!(format!("{base}/api/results/{id}"));
        links["export"] = json!(format!("{base}/api/results/{id}/export?format=txt"));
    }
    if let Some(error) = &job.error {
        data["error"] = json!(error);
    }
    data["links"] = links;
    Some(json!({
        "type": kind,
        "timestamp": now.format(&Rfc3339).unwrap_or_default(),
        "data": data,
    }))
}
