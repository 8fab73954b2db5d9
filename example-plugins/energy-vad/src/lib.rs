//! Energy VAD: an energy-based voice-activity detector as a sandscribe plugin. It emits one
//! segment per stretch of speech, with text like "[speech 1.2–3.4 s]".

use sandscribe_plugin_sdk::prelude::*;

/// The configuration a job runs with. The host checks it against [`SCHEMA`] and fills in
/// the defaults, so every field arrives set.
#[derive(Deserialize)]
#[serde(crate = "sandscribe_plugin_sdk::serde", default, deny_unknown_fields)]
struct Config {
    /// A frame at or above this level (dBFS, RMS) counts as speech.
    threshold_db: f32,
    /// Length of the frames the level is measured on.
    frame_ms: u32,
    /// Stretches shorter than this are noise, not speech.
    min_speech_ms: u32,
    /// Silence this long ends a stretch.
    min_silence_ms: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            threshold_db: -35.0,
            frame_ms: 20,
            min_speech_ms: 200,
            min_silence_ms: 300,
        }
    }
}

/// The JSON Schema of [`Config`]; `sandscribe plugins validate` checks it, defaults too.
const SCHEMA: &str = r#"{
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "threshold_db": {"type": "number", "minimum": -100, "maximum": 0, "default": -35,
                     "title": "Speech level (dBFS)"},
    "frame_ms": {"type": "integer", "minimum": 5, "maximum": 100, "default": 20,
                 "title": "Frame length (ms)"},
    "min_speech_ms": {"type": "integer", "minimum": 0, "maximum": 10000, "default": 200,
                      "title": "Shortest speech (ms)"},
    "min_silence_ms": {"type": "integer", "minimum": 0, "maximum": 10000, "default": 300,
                       "title": "Pause that ends speech (ms)"}
  }
}"#;

/// Frames per chunk read from the host: one read per second of 20 ms frames.
const FRAMES_PER_CHUNK: u32 = 50;

struct Plugin;

impl Transcriber for Plugin {
    type Config = Config;

    fn info() -> PluginInfo {
        PluginInfo::new(
            env!("CARGO_PKG_NAME"),
            "Energy VAD",
            env!("CARGO_PKG_VERSION"),
            16_000,
        )
        .description("Finds the stretches of speech in the audio by their energy.")
        .capabilities(Capabilities {
            segment_timestamps: true,
            ..Capabilities::none()
        })
        .config_schema(SCHEMA)
    }

    fn transcribe(audio: &AudioInput<'_>, config: Config) -> Result<Transcript, PluginError> {
        let frame_len = (audio.sample_rate() * config.frame_ms / 1000).max(1);
        let mut detector = Detector::new(&config);
        let mut segments = Vec::new();
        let mut keep = |stretch: Option<(u64, u64)>| {
            if let Some((start_ms, end_ms)) = stretch {
                let segment = Segment::new(start_ms, end_ms, label(start_ms, end_ms));
                emit_segment(&segment); // shown live, while the job runs
                segments.push(segment);
            }
        };
        for chunk in audio.chunks(frame_len * FRAMES_PER_CHUNK) {
            check_cancelled()?; // stop early when the job is cancelled
            for (i, frame) in chunk.samples.chunks(frame_len as usize).enumerate() {
                let at = chunk.offset + i as u64 * u64::from(frame_len);
                keep(detector.push(audio.frames_to_ms(at), rms(frame)));
            }
            let done = (chunk.offset + chunk.samples.len() as u64) as f32 / audio.frames() as f32;
            progress(done, "finding speech");
        }
        keep(detector.finish(audio.duration_ms()));
        Ok(Transcript::from_segments(segments, None))
    }
}

export_plugin!(Plugin);

/// The text of one stretch: "[speech 1.2–3.4 s]".
fn label(start_ms: u64, end_ms: u64) -> String {
    format!(
        "[speech {:.1}–{:.1} s]",
        start_ms as f64 / 1000.0,
        end_ms as f64 / 1000.0
    )
}

/// Root mean square of a frame.
fn rms(frame: &[f32]) -> f32 {
    if frame.is_empty() {
        return 0.0;
    }
    (frame.iter().map(|s| s * s).sum::<f32>() / frame.len() as f32).sqrt()
}

/// Turns frame levels into stretches of speech. Pure logic, tested natively.
struct Detector {
    threshold: f32,
    frame_ms: u64,
    min_speech_ms: u64,
    min_silence_ms: u64,
    /// Start of the stretch being heard, if any.
    start_ms: Option<u64>,
    /// End of the last loud frame of that stretch.
    voiced_until_ms: u64,
}

impl Detector {
    fn new(config: &Config) -> Self {
        Self {
            threshold: 10f32.powf(config.threshold_db / 20.0),
            frame_ms: u64::from(config.frame_ms),
            min_speech_ms: u64::from(config.min_speech_ms),
            min_silence_ms: u64::from(config.min_silence_ms),
            start_ms: None,
            voiced_until_ms: 0,
        }
    }

    /// One frame starting at `at_ms`; a stretch `(start_ms, end_ms)` when it just ended.
    fn push(&mut self, at_ms: u64, level: f32) -> Option<(u64, u64)> {
        if level >= self.threshold {
            self.start_ms.get_or_insert(at_ms);
            self.voiced_until_ms = at_ms + self.frame_ms;
            return None;
        }
        match self.start_ms {
            Some(_) if at_ms >= self.voiced_until_ms + self.min_silence_ms => self.close(),
            _ => None,
        }
    }

    /// The end of the audio: the stretch still open, if any, ends there.
    fn finish(&mut self, duration_ms: u64) -> Option<(u64, u64)> {
        self.voiced_until_ms = self.voiced_until_ms.min(duration_ms);
        self.close()
    }

    fn close(&mut self) -> Option<(u64, u64)> {
        let start_ms = self.start_ms.take()?;
        let end_ms = self.voiced_until_ms;
        (end_ms - start_ms >= self.min_speech_ms).then_some((start_ms, end_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the detector over frame levels (one per `frame_ms`), loud = 0.5, quiet = 0.
    fn stretches(pattern: &str) -> Vec<(u64, u64)> {
        let mut detector = Detector::new(&Config::default());
        let mut found = Vec::new();
        for (i, c) in pattern.chars().enumerate() {
            let level = if c == '#' { 0.5 } else { 0.0 };
            found.extend(detector.push(i as u64 * 20, level));
        }
        found.extend(detector.finish(pattern.len() as u64 * 20));
        found
    }

    #[test]
    fn two_bursts_apart_are_two_stretches() {
        let burst = "#".repeat(25); // 500 ms
        let pause = ".".repeat(25);
        let found = stretches(&format!("{pause}{burst}{pause}{burst}"));
        assert_eq!(found, [(500, 1000), (1500, 2000)]);
    }

    #[test]
    fn a_short_pause_does_not_split_a_stretch() {
        let found = stretches(&format!("{}{}{}", "#".repeat(20), ".....", "#".repeat(20)));
        assert_eq!(found, [(0, 900)]);
    }

    #[test]
    fn a_click_is_not_speech() {
        assert_eq!(
            stretches(&format!("{}##{}", ".".repeat(20), ".".repeat(20))),
            []
        );
    }

    /// The whole plugin under the SDK's mock host: no WebAssembly, no server.
    #[test]
    fn transcribe_finds_each_burst_and_shows_it_live() {
        let rate = 16_000usize;
        let mut audio = Vec::new();
        for _ in 0..2 {
            audio.extend(std::iter::repeat_n(0.0f32, rate / 2));
            audio.extend((0..rate / 2).map(|i| 0.5 * (i as f32 * 0.1).sin()));
        }
        audio.extend(std::iter::repeat_n(0.0f32, rate / 2));
        let run = sandscribe_plugin_sdk::mock::MockHost::new().transcribe::<Plugin>(
            &audio,
            rate as u32,
            "{}",
        );
        let transcript = run.result.expect("a transcript");
        let times: Vec<(u64, u64)> = transcript
            .segments
            .iter()
            .map(|s| (s.start_ms, s.end_ms))
            .collect();
        assert_eq!(times, [(500, 1000), (1500, 2000)]);
        let live: Vec<&str> = run.segments.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(live, ["[speech 0.5–1.0 s]", "[speech 1.5–2.0 s]"]);
        assert!(run.progress.last().is_some_and(|(done, _)| *done == 1.0));
    }

    #[test]
    fn the_label_shows_seconds() {
        assert_eq!(label(1200, 3400), "[speech 1.2–3.4 s]");
    }
}
