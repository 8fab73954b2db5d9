//! Writes SRT and WebVTT files for tricky transcripts through the real export writers,
//! so that independent parsers can check them (`tests/openai/test_exports.py` runs
//! PyPI `srt` and npm `webvtt-parser` over every file).
//!
//! ```sh
//! cargo run --release -p sandscribe --example export-samples -- target/export-samples
//! ```
//!
//! For each case `<name>` it writes `<name>.srt`, `<name>.vtt` and `<name>.cues.json`:
//! the cues both files must contain (start and end in milliseconds, and the lines), as
//! the writers' own [`cues`] computes them, for the validators to compare against.

use std::path::PathBuf;
use std::process::ExitCode;

use sandscribe::export::{self, ExportFormat, SubtitleOptions, cues};
use sandscribe::storage::StoredResult;
use sandscribe::transcript::{Segment, Transcript, Word};
use time::OffsetDateTime;

const HOUR: u64 = 3_600_000;

/// A segment whose words are timed evenly across it.
fn timed_segment(start_ms: u64, end_ms: u64, text: &str) -> Segment {
    let words: Vec<&str> = text.split_whitespace().collect();
    let count = words.len().max(1) as u64;
    let span = end_ms - start_ms;
    let mut segment = Segment::new(start_ms, end_ms, text);
    segment.words = words
        .iter()
        .zip(0u64..)
        .map(|(word, index)| Word {
            text: (*word).to_owned(),
            start_ms: start_ms + span * index / count,
            end_ms: start_ms + span * (index + 1) / count,
            confidence: None,
            speaker: None,
        })
        .collect();
    segment
}

struct Case {
    name: &'static str,
    segments: Vec<Segment>,
    /// The transcript's own text (used when there are no segments).
    text: &'static str,
    duration_ms: u64,
    options: SubtitleOptions,
}

impl Case {
    fn new(name: &'static str, duration_ms: u64, segments: Vec<Segment>) -> Self {
        Self {
            name,
            segments,
            text: "",
            duration_ms,
            options: SubtitleOptions::default(),
        }
    }

    fn split(mut self, max_chars_per_line: usize, max_lines_per_cue: usize) -> Self {
        self.options = SubtitleOptions {
            max_chars_per_line: Some(max_chars_per_line),
            max_lines_per_cue: Some(max_lines_per_cue),
            ..self.options
        };
        self
    }

    /// WebVTT timestamp tags before the words (see `SubtitleOptions::word_timestamps`).
    fn word_timestamps(mut self) -> Self {
        self.options.word_timestamps = true;
        self
    }
}

fn cases() -> Vec<Case> {
    let mut text_only = Case::new("text-without-segments", 4_321, vec![]);
    text_only.text = "A transcript with text & <no> segments --> still shown.";
    vec![
        Case::new(
            "empty-segments",
            5_000,
            vec![
                Segment::new(0, 1_000, ""),
                Segment::new(1_000, 2_000, "   "),
                Segment::new(2_000, 3_000, "\n\t\n"),
                Segment::new(3_000, 4_000, "\u{feff}"),
            ],
        ),
        Case::new(
            "empty-segments-between-text",
            5_000,
            vec![
                Segment::new(0, 1_000, "before"),
                Segment::new(1_000, 2_000, " "),
                Segment::new(2_000, 3_000, "after"),
            ],
        ),
        Case::new(
            "markup-and-arrows",
            6_000,
            vec![
                Segment::new(0, 1_000, "<b>bold</b> & <i>italic</i> <script>x</script>"),
                Segment::new(1_000, 2_000, "a --> b"),
                Segment::new(2_000, 3_000, "-->"),
                Segment::new(3_000, 4_000, "&amp; &lt; &#62; & ; &&"),
                Segment::new(4_000, 5_000, "1\n00:00:01,000 --> 00:00:02,000\nnot a cue"),
                Segment::new(5_000, 6_000, "WEBVTT\nNOTE not a comment"),
            ],
        ),
        Case::new(
            "over-an-hour",
            101 * HOUR,
            vec![
                Segment::new(HOUR - 1, HOUR + 1, "across the first hour"),
                Segment::new(HOUR + 2 * 60_000 + 3_004, 2 * HOUR, "an hour in"),
                Segment::new(99 * HOUR + 59 * 60_000 + 59_999, 100 * HOUR, "to a hundred"),
                Segment::new(100 * HOUR, 100 * HOUR + 1_500, "past a hundred hours"),
            ],
        ),
        Case::new(
            "zero-length",
            3_000,
            vec![
                Segment::new(0, 0, "at the very start"),
                Segment::new(1_000, 1_000, "blink"),
                Segment::new(1_000, 2_000, "same start"),
                Segment::new(3_000, 3_000, "at the very end"),
            ],
        ),
        Case::new(
            "end-before-start",
            3_000,
            vec![
                Segment::new(1_000, 2_000, "normal"),
                Segment::new(2_500, 2_000, "backwards"),
            ],
        ),
        Case::new(
            "control-characters",
            3_000,
            vec![
                Segment::new(0, 1_000, "bell\u{7} nul\u{0} escape\u{1b}[31m red"),
                Segment::new(
                    1_000,
                    2_000,
                    "vertical\u{b}tab form\u{c}feed next\u{85}line",
                ),
                Segment::new(
                    2_000,
                    3_000,
                    "line\u{2028}separator paragraph\u{2029}separator",
                ),
            ],
        ),
        Case::new(
            "line-breaks-and-whitespace",
            3_000,
            vec![
                Segment::new(0, 1_000, "first line\n\n\nsecond line\r\n"),
                Segment::new(1_000, 2_000, "\u{feff}  spaced \t out  "),
                Segment::new(2_000, 3_000, "crlf\r\nlines\rand cr"),
            ],
        ),
        Case::new(
            "out-of-order",
            3_000,
            vec![
                Segment::new(2_000, 3_000, "third"),
                Segment::new(0, 1_000, "first"),
                Segment::new(1_000, 2_000, "second"),
            ],
        ),
        Case::new(
            "split-by-characters",
            20_000,
            vec![Segment::new(
                0,
                10_000,
                "the quick brown fox jumps over the lazy dog and keeps running far away",
            )],
        )
        .split(16, 2),
        Case::new(
            "split-by-word-timings",
            20_000,
            vec![
                timed_segment(
                    1_000,
                    9_000,
                    "one two three four five six seven eight nine ten eleven twelve",
                ),
                timed_segment(
                    9_000,
                    9_001,
                    "tiny segment with many words in one millisecond",
                ),
            ],
        )
        .split(12, 1),
        Case::new(
            "word-timestamps",
            20_000,
            vec![
                timed_segment(1_000, 9_000, "one two three four five six seven eight"),
                // A millisecond per word: most tags would fall on the same time, and
                // WebVTT wants each later than the one before, so those are left out.
                timed_segment(9_000, 9_004, "four words one millisecond"),
                timed_segment(10_000, 12_000, "<b>markup</b> & more words"),
            ],
        )
        .split(20, 1)
        .word_timestamps(),
        Case::new(
            "unicode",
            2_000,
            vec![
                Segment::new(0, 1_000, "Grüße, 世界! ½ — “quotes”"),
                Segment::new(1_000, 2_000, "emoji 🎙️ and RTL שלום"),
            ],
        )
        .split(10, 3),
        text_only,
    ]
}

fn stored(case: &Case) -> StoredResult {
    StoredResult {
        id: uuid::Uuid::nil(),
        tenant: "default".into(),
        file_name: format!("{}.wav", case.name),
        plugin_id: "samples".into(),
        plugin_name: "Samples".into(),
        plugin_version: "1".into(),
        config: serde_json::json!({}),
        transcript: Transcript {
            text: case.text.to_owned(),
            language: None,
            segments: case.segments.clone(),
        },
        duration_ms: case.duration_ms,
        created_at: OffsetDateTime::UNIX_EPOCH,
        started_at: OffsetDateTime::UNIX_EPOCH,
        finished_at: OffsetDateTime::UNIX_EPOCH,
        diarization: None,
    }
}

/// The cues the files must hold, as JSON.
fn expected_cues(case: &Case) -> serde_json::Value {
    // Without segments the writers show the transcript's text over the whole audio.
    let segments = if case.segments.is_empty() && !case.text.trim().is_empty() {
        vec![Segment::new(0, case.duration_ms, case.text)]
    } else {
        case.segments.clone()
    };
    let cues: Vec<serde_json::Value> = cues(&segments, &case.options)
        .iter()
        .map(|cue| {
            serde_json::json!({
                "start_ms": cue.start_ms,
                "end_ms": cue.shown_end_ms(),
                "lines": cue.lines,
            })
        })
        .collect();
    serde_json::Value::from(cues)
}

fn main() -> ExitCode {
    let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: export-samples <output folder>");
        return ExitCode::from(2);
    };
    let written = (|| -> std::io::Result<usize> {
        std::fs::create_dir_all(&dir)?;
        let cases = cases();
        for case in &cases {
            let result = stored(case);
            for format in [ExportFormat::Srt, ExportFormat::Vtt] {
                let path = dir.join(format!("{}.{}", case.name, format.extension()));
                std::fs::write(path, export::render(&result, format, &case.options))?;
            }
            let cues = serde_json::to_string_pretty(&expected_cues(case))?;
            std::fs::write(dir.join(format!("{}.cues.json", case.name)), cues)?;
        }
        Ok(cases.len())
    })();
    match written {
        Ok(count) => {
            println!("wrote {count} SRT/WebVTT samples to {}", dir.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("export-samples: cannot write to {}: {e}", dir.display());
            ExitCode::FAILURE
        }
    }
}
