//! The real runner: decode and resample the upload, then run the plugin in its own
//! store (and the job's diarizer after it, see [`super::second_stage`]), all on a
//! blocking task, and say how it ended. Storing the result and the fate of the upload
//! are the tracker's (see [`super::run`]).

use std::sync::Arc;

use futures::future::BoxFuture;

use super::model::JobError;
use super::run::{Ending, JobRunner, RunningJob};
use super::second_stage::{self, StageInputs, Staged, TRANSCRIPTION_SHARE};
use crate::audio::{self, DecodeLimits};
use crate::runtime::{ResourceUse, RunError, Runtime};
use crate::transcript::Transcript;

/// Runs jobs' plugins on the server's runtime.
pub struct PluginRunner {
    runtime: Arc<Runtime>,
    /// The same limits the upload was validated with, so a job decodes what was accepted.
    audio_limits: DecodeLimits,
}

impl PluginRunner {
    pub fn new(runtime: Arc<Runtime>, audio_limits: DecodeLimits) -> Self {
        Self {
            runtime,
            audio_limits,
        }
    }
}

impl JobRunner for PluginRunner {
    fn run(&self, job: RunningJob) -> BoxFuture<'static, Ending> {
        let runtime = self.runtime.clone();
        let limits = self.audio_limits.clone();
        Box::pin(async move {
            // The caller's span (the job's id and tenant) follows onto the blocking thread.
            let span = tracing::Span::current();
            let joined = tokio::task::spawn_blocking(move || {
                let _span = span.enter();
                run_blocking(&runtime, &limits, job)
            })
            .await;
            joined.unwrap_or_else(|e| {
                let error = RunError::Sandbox(format!("the job's worker failed: {e}"));
                ending_of(Err(error), ResourceUse::default())
            })
        })
    }
}

/// Decodes the upload and runs the plugin; records the plugin's health on the way.
fn run_blocking(runtime: &Runtime, limits: &DecodeLimits, job: RunningJob) -> Ending {
    let RunningJob {
        plugin,
        upload,
        config_json,
        cancel,
        reporter,
        fuel,
        diarizer,
        ..
    } = job;
    reporter.progress(0.0, "decoding audio");
    let audio = match audio::decode_file_at(&upload, limits, plugin.meta.sample_rate) {
        Ok(audio) => audio,
        Err(e) => {
            return Ending::AudioFailed {
                message: e.to_string(),
            };
        }
    };
    reporter.progress(0.0, "starting plugin");
    // With a diarizer to follow, the transcription takes the first part of the bar.
    let first: Arc<dyn crate::runtime::JobReporter> = match &diarizer {
        None => reporter.clone(),
        Some(_) => Arc::new(Staged {
            inner: reporter.clone(),
            start: 0.0,
            share: TRANSCRIPTION_SHARE,
            label: "transcribing",
            live_segments: true,
        }),
    };
    let outcome = runtime.transcribe(&plugin, &audio, &config_json, first, cancel.clone(), fuel);
    plugin.health.record(outcome.result.as_ref().map(|_| ()));
    let Some(stage) = diarizer else {
        return ending_of(outcome.result, outcome.usage);
    };
    let mut transcript = match outcome.result {
        Ok(transcript) => transcript,
        Err(error) => return ending_of(Err(error), outcome.usage),
    };
    let inputs = StageInputs {
        runtime,
        limits,
        upload: &upload,
        audio: &audio,
        reporter,
        cancel,
        fuel,
    };
    let diarization = second_stage::diarize(inputs, stage, &mut transcript);
    Ending::Completed {
        transcript,
        usage: outcome.usage,
        diarization: Some(diarization),
    }
}

/// The ending of a plugin run that got as far as the plugin.
fn ending_of(result: Result<Transcript, RunError>, usage: ResourceUse) -> Ending {
    match result {
        Ok(transcript) => Ending::Completed {
            transcript,
            usage,
            diarization: None,
        },
        Err(RunError::Cancelled) => Ending::Cancelled {
            message: "cancelled while running".into(),
        },
        Err(error @ RunError::TimedOut { .. }) => Ending::TimedOut {
            error: JobError::from(&error),
            usage,
        },
        Err(error) => Ending::Failed {
            error: JobError::from(&error),
            usage,
        },
    }
}
