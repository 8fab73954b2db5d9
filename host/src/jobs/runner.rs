//! Running one job: decode and resample on a blocking task, run the plugin in its own
//! store, then store the result durably before announcing `done`.

use std::path::Path;
use std::sync::Arc;

use time::OffsetDateTime;
use tracing::Instrument;

use super::events::EventKind;
use super::model::{FailureKind, JobStatus};
use super::tracker::{JobEntry, Tracker, job_error};
use crate::audio;
use crate::runtime::{JobReporter, LogLevel, ResourceUse, RunError};
use crate::storage::StoredResult;
use crate::transcript::{Segment, Transcript};

/// Progress events are recorded when the stage changes or the fraction moves by this
/// much; finer updates only change the snapshot. Keeps a chatty plugin's log small.
const PROGRESS_STEP: f32 = 0.01;

/// Reports a running plugin's output into its job's event log.
struct EntryReporter {
    entry: Arc<JobEntry>,
}

impl JobReporter for EntryReporter {
    fn progress(&self, fraction: f32, stage: &str) {
        let mut state = self.entry.lock();
        let moved = (fraction - state.snapshot.progress).abs() >= PROGRESS_STEP
            || fraction >= 1.0
            || state.snapshot.stage != stage;
        state.snapshot.progress = fraction;
        if moved {
            state.snapshot.stage = stage.to_owned();
            self.entry.push(
                &mut state,
                EventKind::Progress {
                    fraction,
                    stage: stage.to_owned(),
                },
            );
        }
    }

    fn segment(&self, segment: Segment) {
        let mut state = self.entry.lock();
        let index = state.live_segments;
        state.live_segments += 1;
        self.entry
            .push(&mut state, EventKind::Segment { index, segment });
    }

    fn log(&self, level: LogLevel, line: &str) {
        let level = level.as_str();
        let mut state = self.entry.lock();
        self.entry.push(
            &mut state,
            EventKind::Log {
                level: level.into(),
                message: line.to_owned(),
            },
        );
    }
}

/// What the blocking part hands back.
enum Ran {
    Transcript(Transcript, ResourceUse),
    RunFailed(RunError, ResourceUse),
    AudioFailed(audio::AudioError),
}

/// Runs a job that the scheduler has just started.
pub(super) async fn run(tracker: Arc<Tracker>, entry: Arc<JobEntry>) {
    // Every log line of the job, here and on its blocking thread, carries its id and tenant.
    let span = tracing::info_span!("job", job = %entry.id, tenant = %entry.tenant);
    run_in_span(tracker, entry).instrument(span).await;
}

async fn run_in_span(tracker: Arc<Tracker>, entry: Arc<JobEntry>) {
    let span = tracing::Span::current();
    let started_at = entry
        .lock()
        .snapshot
        .started_at
        .unwrap_or_else(OffsetDateTime::now_utc);
    let runtime = tracker.runtime.clone();
    let plugin = entry.plugin.clone();
    let limits = tracker.audio_limits.clone();
    let upload = entry.upload.clone();
    let cancel = entry.cancel.clone();
    let config_json = entry.lock().snapshot.config.to_string();
    let fuel = tracker.tenant_limits(&entry.tenant).fuel_per_job;
    let reporter: Arc<dyn JobReporter> = Arc::new(EntryReporter {
        entry: entry.clone(),
    });
    let joined = tokio::task::spawn_blocking(move || {
        let _span = span.enter();
        reporter.progress(0.0, "decoding audio");
        let decoded = audio::decode_file_at(&upload, &limits, plugin.meta.sample_rate);
        let audio = match decoded {
            Ok(audio) => audio,
            Err(e) => return Ran::AudioFailed(e),
        };
        reporter.progress(0.0, "starting plugin");
        let outcome = runtime.transcribe(&plugin, &audio, &config_json, reporter, cancel, fuel);
        plugin.health.record(outcome.result.as_ref().map(|_| ()));
        match outcome.result {
            Ok(t) => Ran::Transcript(t, outcome.usage),
            Err(e) => Ran::RunFailed(e, outcome.usage),
        }
    })
    .await;

    let ran = match joined {
        Ok(ran) => ran,
        Err(e) => Ran::RunFailed(
            RunError::Sandbox(format!("the job's worker failed: {e}")),
            ResourceUse::default(),
        ),
    };
    match ran {
        Ran::Transcript(transcript, usage) => {
            complete(&tracker, &entry, transcript, usage, started_at).await
        }
        Ran::AudioFailed(e) => {
            discard_upload(&entry.upload);
            let error = job_error(FailureKind::Audio, e.to_string());
            let usage = ResourceUse::default();
            tracker.finish(
                &entry,
                JobStatus::Failed,
                EventKind::Failed { error, usage },
                true,
            );
        }
        Ran::RunFailed(error, usage) => {
            // A job interrupted by shutdown keeps its upload for a resubmit.
            if entry.lock().snapshot.status != JobStatus::Interrupted {
                discard_upload(&entry.upload);
            }
            let (status, kind) = match &error {
                RunError::Cancelled => (
                    JobStatus::Cancelled,
                    EventKind::Cancelled {
                        message: "cancelled while running".into(),
                    },
                ),
                RunError::TimedOut { .. } => (
                    JobStatus::TimedOut,
                    EventKind::TimedOut {
                        error: (&error).into(),
                        usage,
                    },
                ),
                _ => (
                    JobStatus::Failed,
                    EventKind::Failed {
                        error: (&error).into(),
                        usage,
                    },
                ),
            };
            tracker.finish(&entry, status, kind, true);
        }
    }
}

/// Stores the result (durably, exactly once) and only then announces `done`.
async fn complete(
    tracker: &Arc<Tracker>,
    entry: &Arc<JobEntry>,
    transcript: Transcript,
    usage: ResourceUse,
    started_at: OffsetDateTime,
) {
    let (file_name, config, duration_ms, created_at) = {
        let state = entry.lock();
        let s = &state.snapshot;
        (
            s.file_name.clone(),
            s.config.clone(),
            s.duration_ms,
            s.created_at,
        )
    };
    let meta = &entry.plugin.meta;
    let result = StoredResult {
        id: entry.id,
        tenant: entry.tenant.clone(),
        file_name,
        plugin_id: meta.id.clone(),
        plugin_name: meta.name.clone(),
        plugin_version: meta.version.clone(),
        config,
        transcript,
        duration_ms,
        created_at,
        started_at,
        finished_at: OffsetDateTime::now_utc(),
    };
    keep_audio(&entry.upload, &tracker.audio_dir, entry.id);
    let store = tracker.store.clone();
    let stored = tokio::task::spawn_blocking(move || store.insert(&result).map(|()| result)).await;
    match stored {
        Ok(Ok(result)) => tracker.finish(
            entry,
            JobStatus::Completed,
            EventKind::Done {
                result: Arc::new(result),
                usage,
            },
            true,
        ),
        Ok(Err(e)) => {
            tracing::error!(job = %entry.id, error = %e, "could not store a result");
            let error = job_error(
                FailureKind::Server,
                format!("the result could not be stored: {e}"),
            );
            tracker.finish(
                entry,
                JobStatus::Failed,
                EventKind::Failed { error, usage },
                true,
            );
        }
        Err(e) => {
            let error = job_error(
                FailureKind::Server,
                format!("the result could not be stored: {e}"),
            );
            tracker.finish(
                entry,
                JobStatus::Failed,
                EventKind::Failed { error, usage },
                true,
            );
        }
    }
}

/// Removes an upload whose job will not need it any more.
pub(super) fn discard_upload(path: &Path) {
    if let Err(e) = std::fs::remove_file(path)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %path.display(), error = %e, "could not remove an upload");
    }
}

/// Moves a completed job's upload to the kept-audio folder, named by the job id.
fn keep_audio(upload: &Path, audio_dir: &Path, id: uuid::Uuid) {
    let ext = upload
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| format!(".{e}"))
        .unwrap_or_default();
    let target = audio_dir.join(format!("{id}{ext}"));
    let moved = std::fs::create_dir_all(audio_dir).and_then(|()| std::fs::rename(upload, &target));
    if let Err(e) = moved {
        tracing::warn!(job = %id, error = %e, "could not keep the audio of a finished job");
        discard_upload(upload);
    }
}

/// The kept audio file of a job, if there is one.
pub fn kept_audio(audio_dir: &Path, id: uuid::Uuid) -> Option<std::path::PathBuf> {
    let prefix = id.to_string();
    std::fs::read_dir(audio_dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.file_stem().and_then(|s| s.to_str()) == Some(prefix.as_str()))
}
