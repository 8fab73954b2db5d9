//! The seam between the tracker and whatever executes a job: the tracker hands a
//! [`JobRunner`] a [`RunningJob`] and applies the [`Ending`] it gets back (storing the
//! result, keeping or discarding the upload, freeing the slot). A runner never sees the
//! tracker, so the tracker can be tested with a fake one and the plugin runner on its own.

use std::num::NonZeroU64;
use std::path::PathBuf;
use std::sync::Arc;

use futures::future::BoxFuture;
use uuid::Uuid;

use super::model::JobError;
use crate::diarize::SpeakerCount;
use crate::runtime::{CancelFlag, JobReporter, LoadedPlugin, ResourceUse};
use crate::storage::Diarization;
use crate::transcript::Transcript;

/// Executes jobs the scheduler has started.
pub trait JobRunner: Send + Sync {
    /// Runs `job` to its end. Called while the tracker holds its queue, so it must
    /// return at once and do the work in the future. The future must finish soon after
    /// `job.cancel` is raised (the slot stays taken until it does), and the job's live
    /// output goes through `job.reporter`.
    fn run(&self, job: RunningJob) -> BoxFuture<'static, Ending>;
}

/// Everything one run needs, taken from the job when it starts.
pub struct RunningJob {
    pub id: Uuid,
    pub tenant: String,
    pub plugin: Arc<LoadedPlugin>,
    /// The upload on disk. The runner reads it; what becomes of it is the tracker's call.
    pub upload: PathBuf,
    /// The job's configuration (validated, with defaults) as JSON text.
    pub config_json: String,
    /// Raised when the job is cancelled or the server shuts down.
    pub cancel: CancelFlag,
    /// Writes progress, live segments and log lines into the job's event log.
    pub reporter: Arc<dyn JobReporter>,
    /// The tenant's fuel budget per job (`None`: the tenant sets none).
    pub fuel: Option<NonZeroU64>,
    /// The diarizer to run after the transcription, when the job names one.
    pub diarizer: Option<SecondStage>,
}

/// A job's diarization stage, as the runner gets it.
pub struct SecondStage {
    /// The diarizer's id (for the message when it is not loaded here).
    pub id: String,
    /// `None` when the diarizer is not loaded on this node: the stage then fails, the
    /// transcript is kept.
    pub plugin: Option<Arc<LoadedPlugin>>,
    pub speakers: SpeakerCount,
    pub config_json: String,
}

/// How a run ended: everything the tracker needs to record the job's terminal state.
#[derive(Debug)]
pub enum Ending {
    /// The plugin produced a transcript. The job is `done` only once it is stored.
    Completed {
        transcript: Transcript,
        usage: ResourceUse,
        /// How the diarization stage went, when the job had one (its speakers are on
        /// the transcript already).
        diarization: Option<Diarization>,
    },
    /// The upload could not be decoded. It is discarded, as it will never decode.
    AudioFailed { message: String },
    /// The plugin or its sandbox failed.
    Failed { error: JobError, usage: ResourceUse },
    /// The job ran past its time limit.
    TimedOut { error: JobError, usage: ResourceUse },
    /// The cancel flag stopped the job.
    Cancelled { message: String },
}
