//! A job's diarization stage: after the transcription, the diarizer reads the same audio
//! (decoded again only when it wants another sample rate) and the transcript's segments;
//! its turns put speakers on the transcript. Whatever goes wrong here, the transcript
//! stands: the stage's outcome is a [`Diarization`] record, done or failed.

use std::sync::Arc;
use std::time::Instant;

use super::run::SecondStage;
use crate::audio::{self, Audio, DecodeLimits};
use crate::diarize::assign_speakers;
use crate::runtime::{CancelFlag, JobReporter, LogLevel, RunError, Runtime};
use crate::storage::{Diarization, DiarizationState};
use crate::transcript::{Segment, Transcript};

/// The share of the job's progress bar the transcription takes when a diarizer follows.
pub(super) const TRANSCRIPTION_SHARE: f32 = 0.75;

/// What the diarization stage needs besides the transcript.
pub(super) struct StageInputs<'a> {
    pub runtime: &'a Runtime,
    pub limits: &'a DecodeLimits,
    pub upload: &'a std::path::Path,
    /// The audio as decoded for the transcriber.
    pub audio: &'a Audio,
    pub reporter: Arc<dyn JobReporter>,
    pub cancel: CancelFlag,
    pub fuel: Option<std::num::NonZeroU64>,
}

/// Runs the diarizer and puts its speakers on `transcript`; a failure leaves the
/// transcript as it was and says why in the record.
pub(super) fn diarize(
    inputs: StageInputs<'_>,
    stage: SecondStage,
    transcript: &mut Transcript,
) -> Diarization {
    let started = Instant::now();
    let mut record = Diarization {
        diarizer: stage.id.clone(),
        state: DiarizationState::Failed,
        error: None,
        speakers: Vec::new(),
        names: Default::default(),
        wall_ms: 0,
    };
    let reporter: Arc<dyn JobReporter> = Arc::new(Staged {
        inner: inputs.reporter.clone(),
        start: TRANSCRIPTION_SHARE,
        share: 1.0 - TRANSCRIPTION_SHARE,
        label: "finding speakers",
        live_segments: false,
    });
    match run(&inputs, &stage, &transcript.segments, reporter) {
        Ok(turns) => {
            record.speakers = assign_speakers(transcript, &turns);
            record.state = DiarizationState::Done;
        }
        Err(error) => {
            inputs.reporter.log(
                LogLevel::Warn,
                &format!("speaker detection failed, the transcript is kept: {error}"),
            );
            record.error = Some(error);
        }
    }
    record.wall_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    inputs.reporter.progress(1.0, "done");
    record
}

fn run(
    inputs: &StageInputs<'_>,
    stage: &SecondStage,
    segments: &[Segment],
    reporter: Arc<dyn JobReporter>,
) -> Result<Vec<crate::diarize::SpeakerTurn>, String> {
    let Some(plugin) = &stage.plugin else {
        return Err(format!("the diarizer \"{}\" is not loaded", stage.id));
    };
    reporter.progress(0.0, "starting the diarizer");
    let rate = plugin.meta.sample_rate;
    let resampled;
    let audio = if inputs.audio.sample_rate == rate {
        inputs.audio
    } else {
        resampled = audio::decode_file_at(inputs.upload, inputs.limits, rate)
            .map_err(|e| format!("the audio could not be decoded for the diarizer: {e}"))?;
        &resampled
    };
    let outcome = inputs.runtime.diarize(
        plugin,
        audio,
        segments,
        stage.speakers,
        &stage.config_json,
        reporter,
        inputs.cancel.clone(),
        inputs.fuel,
    );
    plugin.health.record(outcome.result.as_ref().map(|_| ()));
    outcome.result.map_err(|e| match e {
        RunError::Cancelled => "cancelled before the speakers were found".to_owned(),
        other => other.to_string(),
    })
}

/// Reports one stage of a two-stage job: its progress mapped onto its share of the bar
/// and its stage text prefixed, so the job's one progress bar covers both stages.
pub(super) struct Staged {
    pub inner: Arc<dyn JobReporter>,
    /// Where the stage starts on the job's bar, and how much of it the stage takes.
    pub start: f32,
    pub share: f32,
    pub label: &'static str,
    /// Whether the stage's live segments are the job's (the transcription's are; a
    /// diarizer's `emit-segment` is ignored, as the WIT says).
    pub live_segments: bool,
}

impl JobReporter for Staged {
    fn progress(&self, fraction: f32, stage: &str) {
        let fraction = self.start + fraction.clamp(0.0, 1.0) * self.share;
        self.inner
            .progress(fraction, &format!("{}: {stage}", self.label));
    }

    fn segment(&self, segment: Segment) {
        if self.live_segments {
            self.inner.segment(segment);
        }
    }

    fn log(&self, level: LogLevel, line: &str) {
        self.inner.log(level, line);
    }
}
