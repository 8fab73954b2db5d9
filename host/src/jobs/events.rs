//! Job events: what SSE subscribers receive, numbered so they can resume.

use std::borrow::Cow;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize};

use super::model::{JobError, JobStatus};
use crate::runtime::ResourceUse;
use crate::storage::StoredResult;
use crate::transcript::Segment;

/// One event of a job's log. `seq` starts at 1 and has no gaps; it is the SSE event id.
/// With several nodes the log lives in the database as each event's [`EventKind`] JSON,
/// so events read back from there (on any node) are the ones the running node wrote.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobEvent {
    pub seq: u64,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What happened. The SSE event name is the `type`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    Status {
        status: JobStatus,
        #[serde(skip_serializing_if = "Option::is_none")]
        queue_position: Option<usize>,
    },
    Progress {
        fraction: f32,
        stage: String,
    },
    Segment {
        /// Position of this segment among the live segments, from 0.
        index: usize,
        segment: Segment,
    },
    Log {
        #[serde(deserialize_with = "log_level")]
        #[schema(value_type = String)]
        level: Cow<'static, str>,
        message: String,
    },
    Done {
        result: Arc<StoredResult>,
        usage: ResourceUse,
    },
    Failed {
        error: JobError,
        usage: ResourceUse,
    },
    Cancelled {
        message: String,
    },
    TimedOut {
        error: JobError,
        usage: ResourceUse,
    },
}

/// A log level read back from the database: one of the levels the runtime writes.
fn log_level<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Cow<'static, str>, D::Error> {
    let level = String::deserialize(deserializer)?;
    Ok(Cow::Borrowed(
        crate::runtime::LogLevel::ALL
            .iter()
            .map(|l| l.as_str())
            .find(|name| *name == level)
            .unwrap_or("info"),
    ))
}

impl EventKind {
    /// The SSE event name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Status { .. } => "status",
            Self::Progress { .. } => "progress",
            Self::Segment { .. } => "segment",
            Self::Log { .. } => "log",
            Self::Done { .. } => "done",
            Self::Failed { .. } => "failed",
            Self::Cancelled { .. } => "cancelled",
            Self::TimedOut { .. } => "timed_out",
        }
    }

    /// Whether this event ends the job's stream.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Self::Done { .. }
                | Self::Failed { .. }
                | Self::Cancelled { .. }
                | Self::TimedOut { .. }
        )
    }
}
