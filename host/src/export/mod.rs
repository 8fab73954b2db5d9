//! Exporting a stored result as a file: plain text, SubRip, WebVTT or JSON.
//!
//! Everything here is a pure function from a [`StoredResult`] (or its segments) to a
//! `String`; the HTTP layer only picks the [`ExportFormat`] and sets the headers from
//! [`ExportFormat::content_type`] and [`ExportFormat::extension`].
//!
//! # Subtitles
//!
//! SRT and WebVTT are built from the same [`cues`], so a given [`SubtitleOptions`] splits
//! both the same way. By default each segment is one cue. With limits, a long segment is
//! wrapped at word boundaries and split into several cues, timed from the segment's word
//! timings when they match its text, otherwise by sharing the segment's duration by
//! characters. Segments without visible text are left out, no cue ever contains a blank
//! line (which would end it early), and a zero-length cue is stretched to 1 ms so players
//! do not drop it. Control characters in the text (NUL, ESC, ...) separate words like
//! spaces and are never written. Both formats are written as UTF-8 without a
//! byte-order mark, with `\n` line endings. Hours are not wrapped at 100.
//!
//! If a result has no segments but does have text, subtitles show that text as one cue
//! over the whole audio rather than coming out empty.
//!
//! # Speakers
//!
//! When a result is diarized, every format names who speaks, with the names people gave
//! the speakers or else "Speaker 1", "Speaker 2", ... ([`speakers::Speakers`], one piece
//! of logic for all formats). A segment whose words belong to several speakers is split
//! where the speaker changes, so no cue or line mixes two. WebVTT puts each cue in a
//! voice span (`<v Speaker 1>Hello.`); SRT and plain text start a cue or line with
//! `Speaker 1: ` where the speaker changes. A result without diarization exports exactly
//! as before.
//!
//! # JSON
//!
//! The JSON export is the stored result itself, pretty-printed; its shape is part of the
//! API and changes only with the storage model:
//!
//! ```json
//! {
//!   "id": "6f1c…",                  // UUID of the job that produced the result
//!   "tenant": "default",
//!   "file_name": "interview.mp3",
//!   "plugin_id": "whisper",
//!   "plugin_name": "Whisper",
//!   "plugin_version": "1.0.0",
//!   "config": { … },                // plugin configuration the job ran with
//!   "transcript": {
//!     "text": "Hello there. …",
//!     "language": "en",             // omitted when unknown
//!     "segments": [
//!       {
//!         "start_ms": 0, "end_ms": 1200, "text": "Hello there.",
//!         "confidence": 0.93,       // omitted when unknown
//!         "speaker": "SPEAKER_1",   // the diarizer's label; omitted when unknown
//!         "speaker_name": "Interviewer",  // its display name; only in diarized results
//!         "words": [                // omitted when the engine gives no word timings
//!           { "text": "Hello", "start_ms": 0, "end_ms": 500, "confidence": 0.95 }
//!         ]
//!       }
//!     ]
//!   },
//!   "duration_ms": 61000,           // length of the audio
//!   "created_at": "2025-01-01T12:00:00Z",   // RFC 3339
//!   "started_at": "2025-01-01T12:00:01Z",
//!   "finished_at": "2025-01-01T12:00:09Z",
//!   "diarization": {                // omitted when the job named no diarizer
//!     "diarizer": "pyannote", "state": "done",   // or "failed", with "error"
//!     "speakers": ["SPEAKER_1", "SPEAKER_2"],    // in order of first appearance
//!     "names": { "SPEAKER_1": "Interviewer" }    // names people gave
//!   }
//! }
//! ```
//!
//! `speaker_name` is written only by the export (it is not stored): what the other
//! formats show for the segment, so a consumer need not repeat the naming rule.

mod cues;
mod layout;
#[cfg(test)]
mod properties;
mod speakers;
mod srt;
mod timestamp;
mod timing;
mod turns;
mod txt;
mod vtt;

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

use crate::storage::StoredResult;
use crate::transcript::Segment;

pub use cues::{Cue, SubtitleOptions, cues, speaker_cues};
pub use speakers::Speakers;
pub use srt::srt;
pub use txt::txt;
pub use vtt::vtt;

/// A file format a result can be exported as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExportFormat {
    /// Plain text, one line per segment.
    Txt,
    /// SubRip subtitles.
    Srt,
    /// WebVTT subtitles, for the HTML `<track>` element.
    Vtt,
    /// The whole stored result, timings and metadata included.
    Json,
}

/// Why an export request cannot be served.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ExportError {
    /// The requested format name is not one we write.
    #[error("unknown export format {given:?}; use one of: txt, srt, vtt (or webvtt), json")]
    UnknownFormat { given: String },
}

impl ExportFormat {
    /// Every format, in the order a UI would list them.
    pub const ALL: [ExportFormat; 4] = [Self::Txt, Self::Srt, Self::Vtt, Self::Json];

    /// The `Content-Type` to serve the export with.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Txt => "text/plain; charset=utf-8",
            Self::Srt => "application/x-subrip; charset=utf-8",
            Self::Vtt => "text/vtt; charset=utf-8",
            Self::Json => "application/json",
        }
    }

    /// The file name extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Txt => "txt",
            Self::Srt => "srt",
            Self::Vtt => "vtt",
            Self::Json => "json",
        }
    }
}

impl FromStr for ExportFormat {
    type Err = ExportError;

    /// Accepts the extensions and `webvtt`, in any case.
    fn from_str(given: &str) -> Result<Self, Self::Err> {
        match given.trim().to_ascii_lowercase().as_str() {
            "txt" => Ok(Self::Txt),
            "srt" => Ok(Self::Srt),
            "vtt" | "webvtt" => Ok(Self::Vtt),
            "json" => Ok(Self::Json),
            _ => Err(ExportError::UnknownFormat {
                given: given.to_owned(),
            }),
        }
    }
}

impl fmt::Display for ExportFormat {
    /// The extension, which is also what [`FromStr`] accepts back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.extension())
    }
}

/// The result as a file in `format`; `options` only matter for SRT and WebVTT.
pub fn render(result: &StoredResult, format: ExportFormat, options: &SubtitleOptions) -> String {
    let speakers = Speakers::of(result);
    let subtitle_cues = || speaker_cues(&subtitle_segments(result), &speakers, options);
    match format {
        ExportFormat::Txt => txt::write(
            &result.transcript.segments,
            &speakers,
            &result.transcript.text,
        ),
        ExportFormat::Srt => srt::write(&subtitle_cues()),
        ExportFormat::Vtt => vtt::write(&subtitle_cues()),
        ExportFormat::Json => json(result, &speakers),
    }
}

/// The segments to subtitle: the transcript's own, or, when the engine reported none,
/// the whole text as one segment over the whole audio.
fn subtitle_segments(result: &StoredResult) -> Vec<Segment> {
    let transcript = &result.transcript;
    if !transcript.segments.is_empty() || transcript.text.trim().is_empty() {
        return transcript.segments.clone();
    }
    vec![Segment::new(0, result.duration_ms, transcript.text.clone())]
}

/// The stored result, pretty-printed, with a final newline; in a diarized result each
/// segment with a speaker also gets its `speaker_name`.
fn json(result: &StoredResult, speakers: &Speakers<'_>) -> String {
    let named = result
        .transcript
        .segments
        .iter()
        .any(|segment| speakers.name(segment).is_some());
    let document = if named {
        // Through the compact text rather than `to_value`, which would widen an `f32`
        // confidence to a long `f64` (0.93 to 0.9300000071525574); the map keeps the
        // field order (serde_json's `preserve_order`).
        serde_json::to_string(result)
            .and_then(|compact| serde_json::from_str::<serde_json::Value>(&compact))
            .and_then(|mut value| {
                name_speakers(&mut value, &result.transcript.segments, speakers);
                serde_json::to_string_pretty(&value)
            })
    } else {
        serde_json::to_string_pretty(result)
    };
    match document {
        Ok(mut json) => {
            json.push('\n');
            json
        }
        // Only a timestamp RFC 3339 cannot express (a year outside 0–9999, an offset with
        // seconds) can fail, and the server never stores one; still, a bad row must not
        // take the server down, so the client gets a JSON document saying what is wrong.
        Err(error) => {
            let mut json = serde_json::json!({ "error": error.to_string() }).to_string();
            json.push('\n');
            json
        }
    }
}

/// Adds `speaker_name` beside each serialized segment's `speaker`.
fn name_speakers(value: &mut serde_json::Value, segments: &[Segment], speakers: &Speakers<'_>) {
    let Some(serialized) = value
        .pointer_mut("/transcript/segments")
        .and_then(serde_json::Value::as_array_mut)
    else {
        return;
    };
    for (segment, serialized) in segments.iter().zip(serialized) {
        if let (Some(name), Some(object)) = (speakers.name(segment), serialized.as_object_mut()) {
            object.insert("speaker_name".to_owned(), name.into());
        }
    }
}

#[cfg(test)]
mod speaker_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transcript::{Transcript, Word};
    use time::OffsetDateTime;
    use uuid::Uuid;

    fn stored(transcript: Transcript) -> StoredResult {
        StoredResult {
            id: Uuid::nil(),
            tenant: "default".to_owned(),
            file_name: "talk.wav".to_owned(),
            plugin_id: "echo".to_owned(),
            plugin_name: "Echo".to_owned(),
            plugin_version: "1.0.0".to_owned(),
            config: serde_json::json!({ "beam": 5 }),
            transcript,
            duration_ms: 2_500,
            created_at: OffsetDateTime::UNIX_EPOCH,
            started_at: OffsetDateTime::UNIX_EPOCH,
            finished_at: OffsetDateTime::UNIX_EPOCH,
            diarization: None,
        }
    }

    fn two_segments() -> Transcript {
        Transcript {
            text: "Hello there. Bye.".to_owned(),
            language: Some("en".to_owned()),
            segments: vec![
                Segment {
                    start_ms: 0,
                    end_ms: 1_000,
                    text: "Hello there.".to_owned(),
                    confidence: Some(0.5),
                    words: vec![Word {
                        text: "Hello".to_owned(),
                        start_ms: 0,
                        end_ms: 400,
                        confidence: None,
                        speaker: None,
                    }],
                    speaker: None,
                },
                Segment::new(1_000, 2_000, "Bye."),
            ],
        }
    }

    #[test]
    fn format_names_parse_case_insensitively() {
        assert_eq!("txt".parse(), Ok(ExportFormat::Txt));
        assert_eq!("SRT".parse(), Ok(ExportFormat::Srt));
        assert_eq!("Vtt".parse(), Ok(ExportFormat::Vtt));
        assert_eq!("WebVTT".parse(), Ok(ExportFormat::Vtt));
        assert_eq!("json".parse(), Ok(ExportFormat::Json));
    }

    #[test]
    fn unknown_format_error_lists_the_known_ones() {
        let error = "docx".parse::<ExportFormat>().unwrap_err();
        assert_eq!(
            error.to_string(),
            "unknown export format \"docx\"; use one of: txt, srt, vtt (or webvtt), json"
        );
    }

    #[test]
    fn every_format_parses_back_from_its_display() {
        for format in ExportFormat::ALL {
            assert_eq!(format.to_string().parse(), Ok(format));
        }
    }

    #[test]
    fn content_types_and_extensions() {
        let table: Vec<_> = ExportFormat::ALL
            .iter()
            .map(|format| (format.extension(), format.content_type()))
            .collect();
        assert_eq!(
            table,
            [
                ("txt", "text/plain; charset=utf-8"),
                ("srt", "application/x-subrip; charset=utf-8"),
                ("vtt", "text/vtt; charset=utf-8"),
                ("json", "application/json"),
            ]
        );
    }

    #[test]
    fn render_dispatches_to_each_writer() {
        let result = stored(two_segments());
        let options = SubtitleOptions::default();
        assert_eq!(
            render(&result, ExportFormat::Txt, &options),
            "Hello there.\nBye.\n"
        );
        assert_eq!(
            render(&result, ExportFormat::Srt, &options),
            "1\n00:00:00,000 --> 00:00:01,000\nHello there.\n\n\
             2\n00:00:01,000 --> 00:00:02,000\nBye.\n"
        );
        assert_eq!(
            render(&result, ExportFormat::Vtt, &options),
            "WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nHello there.\n\n\
             00:00:01.000 --> 00:00:02.000\nBye.\n"
        );
    }

    #[test]
    fn subtitles_without_segments_show_the_text_over_the_whole_audio() {
        let result = stored(Transcript {
            text: "Just text.".to_owned(),
            ..Transcript::default()
        });
        assert_eq!(
            render(&result, ExportFormat::Srt, &SubtitleOptions::default()),
            "1\n00:00:00,000 --> 00:00:02,500\nJust text.\n"
        );
    }

    #[test]
    fn json_round_trips_to_the_stored_result() {
        let result = stored(two_segments());
        let json = render(&result, ExportFormat::Json, &SubtitleOptions::default());
        assert!(json.ends_with("}\n"));
        let parsed: StoredResult = serde_json::from_str(&json).unwrap();
        assert_eq!(parsed, result);
    }

    #[test]
    fn json_has_the_documented_shape() {
        let json = render(
            &stored(two_segments()),
            ExportFormat::Json,
            &SubtitleOptions::default(),
        );
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        let keys = |value: &serde_json::Value| -> Vec<String> {
            let mut keys: Vec<String> = value
                .as_object()
                .map(|object| object.keys().cloned().collect())
                .unwrap_or_default();
            keys.sort();
            keys
        };
        assert_eq!(
            keys(&value),
            [
                "config",
                "created_at",
                "duration_ms",
                "file_name",
                "finished_at",
                "id",
                "plugin_id",
                "plugin_name",
                "plugin_version",
                "started_at",
                "tenant",
                "transcript",
            ]
        );
        assert_eq!(keys(&value["transcript"]), ["language", "segments", "text"]);
        assert_eq!(
            keys(&value["transcript"]["segments"][0]),
            ["confidence", "end_ms", "start_ms", "text", "words"]
        );
        // Optional fields are left out, not written as null.
        assert_eq!(
            keys(&value["transcript"]["segments"][1]),
            ["end_ms", "start_ms", "text"]
        );
        assert_eq!(
            keys(&value["transcript"]["segments"][0]["words"][0]),
            ["end_ms", "start_ms", "text"]
        );
        assert_eq!(value["created_at"], "1970-01-01T00:00:00Z");
        assert_eq!(value["id"], "00000000-0000-0000-0000-000000000000");
    }

    #[test]
    fn json_of_an_unrepresentable_timestamp_is_an_error_document_not_a_panic() {
        let mut result = stored(two_segments());
        // RFC 3339 has no way to write an offset with seconds.
        let offset = time::UtcOffset::from_hms(0, 0, 30).unwrap();
        result.finished_at = OffsetDateTime::UNIX_EPOCH.to_offset(offset);
        let json = render(&result, ExportFormat::Json, &SubtitleOptions::default());
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert!(value["error"].is_string(), "{json}");
    }
}
