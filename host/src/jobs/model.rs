//! The job model: states, failure reasons, and the snapshot the APIs show.

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::diarize::SpeakerCount;
use crate::runtime::{LoadedPlugin, PluginErrorKind, ResourceUse, RunError};
use crate::storage::StoredResult;

/// Where a job is in its life: queued → running → one of the four terminal states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Queued,
    Running,
    Completed,
    Failed,
    Cancelled,
    TimedOut,
    /// The server stopped (crash, kill, shutdown) before the job finished; it can be
    /// resubmitted from its kept upload.
    Interrupted,
}

impl JobStatus {
    pub fn is_finished(self) -> bool {
        !matches!(self, Self::Queued | Self::Running)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::TimedOut => "timed_out",
            Self::Interrupted => "interrupted",
        }
    }
}

/// The typed reason a job failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The plugin trapped (a panic, an unreachable instruction, ...).
    PluginTrap,
    OutOfMemory,
    StackOverflow,
    /// The plugin returned output that failed validation.
    InvalidOutput,
    /// The plugin called the compute interface wrongly (shapes, handles, regions).
    InvalidComputeCall,
    /// The plugin refused its configuration.
    PluginBadConfig,
    /// The plugin refused the audio.
    PluginUnsupportedAudio,
    /// The plugin reported an internal failure.
    PluginInternal,
    /// The job ran past its time limit.
    TimedOut,
    /// The job burnt all the fuel its tenant's budget allows (metered jobs only).
    FuelExhausted,
    /// The uploaded audio could not be decoded when the job ran.
    Audio,
    /// The sandbox could not be set up, or the result could not be stored.
    Server,
    /// The server stopped before the job finished.
    Interrupted,
}

/// A failure: its kind and a message a person understands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobError {
    pub kind: FailureKind,
    pub message: String,
}

impl JobError {
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

impl From<&RunError> for JobError {
    fn from(error: &RunError) -> Self {
        let kind = match error {
            RunError::Cancelled => FailureKind::Server,
            RunError::TimedOut { .. } => FailureKind::TimedOut,
            RunError::FuelExhausted { .. } => FailureKind::FuelExhausted,
            RunError::OutOfMemory { .. } => FailureKind::OutOfMemory,
            RunError::StackOverflow => FailureKind::StackOverflow,
            RunError::Trap(_) => FailureKind::PluginTrap,
            RunError::Plugin { kind, .. } => match kind {
                PluginErrorKind::BadConfig => FailureKind::PluginBadConfig,
                PluginErrorKind::UnsupportedAudio => FailureKind::PluginUnsupportedAudio,
                PluginErrorKind::Internal => FailureKind::PluginInternal,
            },
            RunError::InvalidOutput(_) => FailureKind::InvalidOutput,
            RunError::InvalidComputeCall(_) => FailureKind::InvalidComputeCall,
            RunError::SharedModelMemory(_) => FailureKind::OutOfMemory,
            RunError::Sandbox(_) => FailureKind::Server,
        };
        Self {
            kind,
            message: error.to_string(),
        }
    }
}

/// What a client asks for when it submits a job.
pub struct JobRequest {
    pub tenant: String,
    pub plugin: Arc<LoadedPlugin>,
    /// The configuration after validation and defaults.
    pub config: serde_json::Value,
    /// The name the user gave the file.
    pub file_name: String,
    /// The upload on disk; removed when the job fails or is cancelled.
    pub upload: PathBuf,
    /// Length of the audio, known from the validation decode.
    pub duration_ms: u64,
    /// Where the job's terminal event is POSTed ([`crate::webhooks`]); checked at
    /// submission.
    pub callback_url: Option<String>,
    /// The second stage, when the job names a diarizer.
    pub diarizer: Option<DiarizerChoice>,
}

/// A diarizer a job runs after its transcription, checked at submission.
pub struct DiarizerChoice {
    pub plugin: Arc<LoadedPlugin>,
    pub speakers: SpeakerCount,
    /// The diarizer's configuration after validation and defaults.
    pub config: serde_json::Value,
}

/// A job's second stage, as shown to clients (and kept in the ledger, so a node that
/// claims the job runs it too).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DiarizerRequest {
    pub plugin: PluginRef,
    /// How many speakers the person expects.
    pub speakers: SpeakerCount,
    /// The diarizer's configuration (after defaults were applied).
    #[schema(value_type = Object)]
    pub config: serde_json::Value,
}

impl PluginRef {
    pub fn of(plugin: &LoadedPlugin) -> Self {
        Self {
            id: plugin.meta.id.clone(),
            name: plugin.meta.name.clone(),
            version: plugin.meta.version.clone(),
        }
    }
}

/// Which plugin a job runs, as shown to clients.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PluginRef {
    pub id: String,
    pub name: String,
    pub version: String,
}

/// A job as the APIs show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobSnapshot {
    pub id: Uuid,
    pub status: JobStatus,
    pub plugin: PluginRef,
    pub file_name: String,
    /// The plugin configuration the job runs with (after defaults were applied).
    #[schema(value_type = Object)]
    pub config: serde_json::Value,
    /// Length of the audio in milliseconds.
    pub duration_ms: u64,
    /// 0..=1.
    pub progress: f32,
    pub stage: String,
    /// 1 = next to run; only while queued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_position: Option<usize>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub started_at: Option<OffsetDateTime>,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub finished_at: Option<OffsetDateTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<JobError>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<ResourceUse>,
    /// The stored result, once completed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Arc<StoredResult>>,
    /// For an interrupted job that was run again: the new job's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resubmitted_as: Option<Uuid>,
    /// The node that runs (or ran) the job, once it has started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Where the job's terminal event is delivered as a signed webhook, if anywhere.
    /// Absent from ledger rows of earlier versions (serde default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
    /// The diarizer that runs after the transcription, when the job names one (the
    /// outcome is the result's `diarization`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diarizer: Option<DiarizerRequest>,
}

impl JobSnapshot {
    /// A job just submitted, waiting for its turn.
    pub fn queued(request: &JobRequest) -> Self {
        Self {
            id: Uuid::new_v4(),
            status: JobStatus::Queued,
            plugin: PluginRef::of(&request.plugin),
            file_name: request.file_name.clone(),
            config: request.config.clone(),
            duration_ms: request.duration_ms,
            progress: 0.0,
            stage: "queued".into(),
            queue_position: None,
            created_at: OffsetDateTime::now_utc(),
            started_at: None,
            finished_at: None,
            error: None,
            usage: None,
            result: None,
            resubmitted_as: None,
            node: None,
            callback_url: request.callback_url.clone(),
            diarizer: request.diarizer.as_ref().map(|d| DiarizerRequest {
                plugin: PluginRef::of(&d.plugin),
                speakers: d.speakers,
                config: d.config.clone(),
            }),
        }
    }

    /// A completed job rebuilt from its stored result (after a restart the tracker no
    /// longer knows it, but storage does).
    pub fn from_result(result: StoredResult) -> Self {
        Self {
            id: result.id,
            status: JobStatus::Completed,
            plugin: PluginRef {
                id: result.plugin_id.clone(),
                name: result.plugin_name.clone(),
                version: result.plugin_version.clone(),
            },
            file_name: result.file_name.clone(),
            config: result.config.clone(),
            duration_ms: result.duration_ms,
            progress: 1.0,
            stage: "done".into(),
            queue_position: None,
            created_at: result.created_at,
            started_at: Some(result.started_at),
            finished_at: Some(result.finished_at),
            error: None,
            usage: None,
            result: Some(Arc::new(result)),
            resubmitted_as: None,
            node: None,
            callback_url: None,
            diarizer: None,
        }
    }
}
