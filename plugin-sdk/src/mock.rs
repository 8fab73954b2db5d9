//! A stand-in for the host, so a plugin's `transcribe` (or a diarizer's `diarize`) can be
//! unit-tested natively with
//! `cargo test` (no WebAssembly, no server): the audio comes from memory and what the
//! plugin reports (progress, live segments, log lines) is recorded instead of sent.
//! Outside WebAssembly the SDK's reporting functions write to the mock host of the
//! current thread.
//!
//! ```ignore
//! #[test]
//! fn one_segment_per_tone() {
//!     let audio = my_test_tones(16_000);
//!     let run = MockHost::new().transcribe::<MyPlugin>(&audio, 16_000, r#"{"threshold": 0.1}"#);
//!     let transcript = run.result.expect("a transcript");
//!     assert_eq!(transcript.segments.len(), 3);
//!     assert_eq!(run.segments, transcript.segments);
//! }
//! ```

use std::cell::RefCell;

use crate::{
    AudioInput, Diarizer, LogLevel, PluginError, Segment, SpeakerCount, SpeakerTurn, Transcriber,
    Transcript,
};

/// What the plugin reported during one run.
#[derive(Default)]
struct Record {
    progress: Vec<(f32, String)>,
    segments: Vec<Segment>,
    logs: Vec<(LogLevel, String)>,
    cancelled: bool,
}

thread_local! {
    static RECORD: RefCell<Record> = RefCell::new(Record::default());
}

/// A host for one test: configure it, then run a plugin's `transcribe` under it.
#[derive(Debug, Default, Clone)]
pub struct MockHost {
    cancelled: bool,
}

/// What one run returned and reported: `T` is a [`Transcript`] for a transcriber, the
/// turns for a diarizer.
#[derive(Debug)]
pub struct MockRun<T = Transcript> {
    /// What `transcribe` (or `diarize`) returned (a config that does not parse is
    /// `BadConfig`, as in the host).
    pub result: Result<T, PluginError>,
    /// Every `progress` call: the fraction (clamped, as the host gets it) and the stage.
    pub progress: Vec<(f32, String)>,
    /// Every live segment, in order.
    pub segments: Vec<Segment>,
    /// Every log line with its level.
    pub logs: Vec<(LogLevel, String)>,
}

impl MockHost {
    pub fn new() -> Self {
        Self::default()
    }

    /// The job counts as cancelled from the start: `is_cancelled` is true, so a plugin
    /// that checks can be seen to stop.
    pub fn cancelled(mut self) -> Self {
        self.cancelled = true;
        self
    }

    /// Runs `P::transcribe` on mono `samples` at `sample_rate` with `config_json` (the
    /// JSON object the host would pass, defaults not filled in).
    pub fn transcribe<P: Transcriber>(
        &self,
        samples: &[f32],
        sample_rate: u32,
        config_json: &str,
    ) -> MockRun {
        self.run(|| {
            crate::parse_config::<P::Config>(config_json).and_then(|config| {
                P::transcribe(&AudioInput::from_samples(samples, sample_rate), config)
            })
        })
    }

    /// Runs `P::diarize` on mono `samples` at `sample_rate` with the transcript's
    /// `segments`, the `speakers` hint and `config_json`, as the host's second stage would.
    pub fn diarize<P: Diarizer>(
        &self,
        samples: &[f32],
        sample_rate: u32,
        segments: &[Segment],
        speakers: SpeakerCount,
        config_json: &str,
    ) -> MockRun<Vec<SpeakerTurn>> {
        self.run(|| {
            crate::parse_config::<P::Config>(config_json).and_then(|config| {
                P::diarize(
                    &AudioInput::from_samples(samples, sample_rate),
                    segments,
                    speakers,
                    config,
                )
            })
        })
    }

    /// Runs `plugin` with a fresh record and returns what it reported.
    fn run<T>(&self, plugin: impl FnOnce() -> Result<T, PluginError>) -> MockRun<T> {
        RECORD.with(|r| {
            *r.borrow_mut() = Record {
                cancelled: self.cancelled,
                ..Record::default()
            }
        });
        let result = plugin();
        let record = RECORD.with(|r| std::mem::take(&mut *r.borrow_mut()));
        MockRun {
            result,
            progress: record.progress,
            segments: record.segments,
            logs: record.logs,
        }
    }
}

/// The host calls the reporting functions make outside WebAssembly.
pub(crate) mod host {
    use super::RECORD;
    use crate::{LogLevel, Segment};

    pub fn progress(fraction: f32, stage: &str) {
        RECORD.with(|r| r.borrow_mut().progress.push((fraction, stage.to_owned())));
    }

    pub fn emit_segment(segment: &Segment) {
        RECORD.with(|r| r.borrow_mut().segments.push(segment.clone()));
    }

    pub fn is_cancelled() -> bool {
        RECORD.with(|r| r.borrow().cancelled)
    }

    pub fn log(level: LogLevel, message: &str) {
        RECORD.with(|r| r.borrow_mut().logs.push((level, message.to_owned())));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MAX_READ_FRAMES;
    use crate::prelude::*;

    /// One segment per second of audio that is not silent; stops when cancelled.
    struct Seconds;

    #[derive(serde::Deserialize, Default)]
    #[serde(default)]
    struct Config {
        label: String,
    }

    impl Transcriber for Seconds {
        type Config = Config;

        fn info() -> PluginInfo {
            unreachable!("not called by these tests")
        }

        fn transcribe(audio: &AudioInput<'_>, config: Config) -> Result<Transcript, PluginError> {
            let mut segments = Vec::new();
            for chunk in audio.chunks(audio.sample_rate()) {
                check_cancelled()?;
                if chunk.samples.iter().any(|s| s.abs() > 0.01) {
                    let start = audio.frames_to_ms(chunk.offset);
                    let segment = Segment::new(start, start + 1000, config.label.clone());
                    emit_segment(&segment);
                    segments.push(segment);
                }
                progress(2.0, "reading");
            }
            crate::info("done");
            Ok(Transcript {
                text: config.label,
                language: None,
                segments,
            })
        }
    }

    fn audio() -> Vec<f32> {
        // 3 s: loud, silent, loud.
        let mut samples = vec![0.5f32; 1_000];
        samples.extend(vec![0.0; 1_000]);
        samples.extend(vec![-0.5; 1_000]);
        samples
    }

    #[test]
    fn a_run_returns_the_transcript_and_records_what_the_plugin_reported() {
        let run = MockHost::new().transcribe::<Seconds>(&audio(), 1_000, r#"{"label": "x"}"#);
        let transcript = run.result.expect("a transcript");
        let starts: Vec<u64> = transcript.segments.iter().map(|s| s.start_ms).collect();
        assert_eq!(starts, [0, 2_000]);
        assert_eq!(run.segments.len(), 2);
        assert_eq!(run.segments[1].text, "x");
        assert_eq!(run.progress.len(), 3);
        assert_eq!(run.logs.len(), 1);
        assert_eq!(run.logs[0].1, "done");
    }

    #[test]
    fn a_cancelled_run_stops_and_a_bad_config_is_bad_config() {
        let run = MockHost::new()
            .cancelled()
            .transcribe::<Seconds>(&audio(), 1_000, "{}");
        assert!(
            matches!(run.result, Err(PluginError::Cancelled)),
            "{:?}",
            run.result
        );
        assert!(run.segments.is_empty());
        let run = MockHost::new().transcribe::<Seconds>(&audio(), 1_000, r#"{"label": 3}"#);
        assert!(
            matches!(run.result, Err(PluginError::BadConfig(_))),
            "{:?}",
            run.result
        );
        // Nothing is left over from the earlier runs.
        assert!(run.progress.is_empty());
    }

    /// One turn per segment, alternating two speakers; stops when cancelled.
    struct Alternate;

    impl Diarizer for Alternate {
        type Config = Config;

        fn info() -> PluginInfo {
            unreachable!("not called by these tests")
        }

        fn diarize(
            audio: &AudioInput<'_>,
            segments: &[Segment],
            speakers: SpeakerCount,
            config: Config,
        ) -> Result<Vec<SpeakerTurn>, PluginError> {
            check_cancelled()?;
            let (_, max) = speakers.bounds(2);
            progress(0.5, &config.label);
            assert_eq!(audio.frames(), 3_000);
            Ok(segments
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let label = format!("SPEAKER_{}", i as u32 % max + 1);
                    SpeakerTurn::new(s.start_ms, s.end_ms, label)
                })
                .collect())
        }
    }

    #[test]
    fn a_diarizer_run_gets_the_segments_and_the_hint_and_returns_its_turns() {
        let segments = [
            Segment::new(0, 1_000, "a"),
            Segment::new(1_000, 2_000, "b"),
            Segment::new(2_000, 3_000, "c"),
        ];
        let run = MockHost::new().diarize::<Alternate>(
            &audio(),
            1_000,
            &segments,
            SpeakerCount::Exact(2),
            r#"{"label": "clustering"}"#,
        );
        let turns = run.result.expect("turns");
        let labels: Vec<&str> = turns.iter().map(|t| t.speaker.as_str()).collect();
        assert_eq!(labels, ["SPEAKER_1", "SPEAKER_2", "SPEAKER_1"]);
        assert_eq!(run.progress, [(0.5, "clustering".to_owned())]);
        let cancelled = MockHost::new().cancelled().diarize::<Alternate>(
            &audio(),
            1_000,
            &segments,
            SpeakerCount::Auto,
            "",
        );
        assert!(matches!(cancelled.result, Err(PluginError::Cancelled)));
    }

    #[test]
    fn memory_audio_is_read_under_the_hosts_cap() {
        let samples = vec![0.25f32; MAX_READ_FRAMES as usize + 10];
        let audio = AudioInput::from_samples(&samples, 16_000);
        assert_eq!(audio.read(0, u32::MAX).len(), MAX_READ_FRAMES as usize);
        assert_eq!(audio.read(MAX_READ_FRAMES as u64, 100).len(), 10);
        assert!(audio.read(u64::MAX, 100).is_empty());
        assert_eq!(audio.read_all().len(), samples.len());
    }
}
