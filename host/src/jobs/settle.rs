//! Applying a run's [`Ending`]: a completed job's result is stored durably, exactly
//! once, before `done` is announced (a result the user was told about survives a
//! restart), and its audio is kept for playback; a job that did not complete has its
//! upload removed, unless shutdown interrupted it (then the upload stays for a resubmit).

use std::path::PathBuf;
use std::sync::Arc;

use time::OffsetDateTime;

use super::entry::JobEntry;
use super::events::EventKind;
use super::model::{FailureKind, JobError, JobStatus};
use super::run::Ending;
use super::uploads::{discard_upload, keep_audio};
use crate::runtime::ResourceUse;
use crate::storage::{ResultStore, StoredResult};
use crate::transcript::Transcript;

/// Where endings leave their traces: the result store and the kept-audio folder.
pub(super) struct Settler {
    store: Arc<dyn ResultStore>,
    audio_dir: PathBuf,
}

impl Settler {
    pub(super) fn new(store: Arc<dyn ResultStore>, audio_dir: PathBuf) -> Self {
        Self { store, audio_dir }
    }

    /// Stores what must be stored and disposes of the upload, then says which terminal
    /// state and event the job ends with.
    pub(super) async fn settle(
        &self,
        entry: &Arc<JobEntry>,
        ending: Ending,
    ) -> (JobStatus, EventKind) {
        let (result, usage) = match self.conclude(entry, ending) {
            Concluded::Ended(status, kind) => return (status, kind),
            Concluded::Store(result, usage) => (result, usage),
        };
        // The store blocks: on a blocking task.
        let store = self.store.clone();
        let stored =
            tokio::task::spawn_blocking(move || store.insert(&result).map(|()| *result)).await;
        match stored {
            Ok(Ok(result)) => {
                let result = Arc::new(result);
                (JobStatus::Completed, EventKind::Done { result, usage })
            }
            Ok(Err(e)) => {
                tracing::error!(job = %entry.id, error = %e, "could not store a result");
                not_stored(e.to_string(), usage)
            }
            Err(e) => not_stored(e.to_string(), usage),
        }
    }

    /// Disposes of the upload (kept as audio for playback when the job completed) and
    /// says how the job ends; a completed job's result still has to be stored.
    pub(super) fn conclude(&self, entry: &Arc<JobEntry>, ending: Ending) -> Concluded {
        let (status, kind) = match ending {
            Ending::Completed {
                transcript,
                usage,
                diarization,
            } => {
                let mut result = result_of(entry, transcript);
                result.diarization = diarization;
                keep_audio(&entry.upload, &self.audio_dir, entry.id);
                return Concluded::Store(Box::new(result), usage);
            }
            Ending::AudioFailed { message } => {
                // Decoding cannot be interrupted, and the audio would fail again anyway.
                discard_upload(&entry.upload);
                let error = JobError::new(FailureKind::Audio, message);
                let usage = ResourceUse::default();
                (JobStatus::Failed, EventKind::Failed { error, usage })
            }
            Ending::Failed { error, usage } => {
                discard_unless_interrupted(entry);
                (JobStatus::Failed, EventKind::Failed { error, usage })
            }
            Ending::TimedOut { error, usage } => {
                discard_unless_interrupted(entry);
                (JobStatus::TimedOut, EventKind::TimedOut { error, usage })
            }
            Ending::Cancelled { message } => {
                discard_unless_interrupted(entry);
                (JobStatus::Cancelled, EventKind::Cancelled { message })
            }
        };
        Concluded::Ended(status, kind)
    }
}

/// How a run ended, once its upload is dealt with.
pub(super) enum Concluded {
    /// Without a result: the terminal state and event.
    Ended(JobStatus, EventKind),
    /// With a result, which must be stored before the job is done.
    Store(Box<StoredResult>, ResourceUse),
}

/// The failure of a job whose result could not be stored: the server's fault.
pub(super) fn not_stored(message: String, usage: ResourceUse) -> (JobStatus, EventKind) {
    let error = JobError::new(
        FailureKind::Server,
        format!("the result could not be stored: {message}"),
    );
    (JobStatus::Failed, EventKind::Failed { error, usage })
}

/// The stored form of a completed job's transcript.
fn result_of(entry: &JobEntry, transcript: Transcript) -> StoredResult {
    let state = entry.lock();
    let s = &state.snapshot;
    let meta = &entry.plugin.meta;
    StoredResult {
        id: entry.id,
        tenant: entry.tenant.clone(),
        file_name: s.file_name.clone(),
        plugin_id: meta.id.clone(),
        plugin_name: meta.name.clone(),
        plugin_version: meta.version.clone(),
        config: s.config.clone(),
        transcript,
        duration_ms: s.duration_ms,
        created_at: s.created_at,
        started_at: s.started_at.unwrap_or_else(OffsetDateTime::now_utc),
        finished_at: OffsetDateTime::now_utc(),
        diarization: None,
    }
}

/// Removes the upload of a job that ended without a result, unless shutdown
/// interrupted the job: then the upload stays, so the job can be resubmitted.
fn discard_unless_interrupted(entry: &JobEntry) {
    if entry.lock().snapshot.status != JobStatus::Interrupted {
        discard_upload(&entry.upload);
    }
}
