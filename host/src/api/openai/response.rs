//! The answer in the requested `response_format`.
//!
//! `json` and `verbose_json` follow OpenAI's shapes; `text`, `srt` and `vtt` are written
//! by the shared export writers (the same bytes as `GET /api/results/{id}/export` and
//! `sandscribe transcribe`) and sent as they are, with their own content type.
//!
//! `verbose_json` segments carry every field OpenAI's do. What sandscribe knows is
//! filled in: times, text, the temperature the job ran with, and `avg_logprob` from the
//! segment's confidence (the Whisper plugin reports `exp(mean token log-probability)`,
//! so this is exact there). Unknown values are neutral: `tokens` is empty, `seek` is the
//! segment's start in 10 ms frames (Whisper's unit), `compression_ratio`,
//! `no_speech_prob` and an unknown `avg_logprob` are 0.
//!
//! One field is sandscribe's own: in a diarized result a segment has `speaker`, the
//! name of who speaks it as every export writes it ("Interviewer", else "Speaker 1");
//! it is absent otherwise, so OpenAI's clients, which ignore unknown fields, see
//! OpenAI's shape.

use axum::Json;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::form::{ResponseFormat, TranscriptionRequest};
use super::languages;
use crate::export::{self, Speakers, SubtitleOptions};
use crate::storage::StoredResult;
use crate::transcript::{Segment, Transcript};

/// The transcript as one text: the plugin's own, or its segments joined by spaces.
pub fn transcript_text(transcript: &Transcript) -> String {
    let text = transcript.text.trim();
    if !text.is_empty() {
        return text.to_owned();
    }
    transcript
        .segments
        .iter()
        .map(|s| s.text.trim())
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The response for a completed job.
pub fn render(request: &TranscriptionRequest, result: &StoredResult) -> Response {
    match request.response_format {
        ResponseFormat::Json => Json(Simple {
            text: transcript_text(&result.transcript),
            usage: Usage::of(result),
        })
        .into_response(),
        ResponseFormat::VerboseJson => Json(verbose(request, result)).into_response(),
        ResponseFormat::File(format) => (
            [(header::CONTENT_TYPE, format.content_type())],
            export::render(result, format, &SubtitleOptions::default()),
        )
            .into_response(),
    }
}

/// `response_format=json`. Strict (no other properties), so it is told apart from
/// [`Verbose`] in the OpenAPI document's `oneOf`.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = TranscriptionJson)]
pub(super) struct Simple {
    text: String,
    usage: Usage,
}

/// Billing-style usage as OpenAI reports it for Whisper: the audio's whole seconds.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = TranscriptionUsage)]
pub(super) struct Usage {
    /// Always `duration`.
    #[serde(rename = "type")]
    kind: &'static str,
    seconds: u64,
}

impl Usage {
    fn of(result: &StoredResult) -> Self {
        Self {
            kind: "duration",
            seconds: result.duration_ms.div_ceil(1000),
        }
    }
}

/// `response_format=verbose_json`.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = TranscriptionVerboseJson)]
pub(super) struct Verbose {
    task: &'static str,
    language: String,
    duration: f64,
    text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    segments: Option<Vec<VerboseSegment>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    words: Option<Vec<VerboseWord>>,
    usage: Usage,
}

#[derive(Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub(super) struct VerboseSegment {
    id: usize,
    seek: u64,
    start: f64,
    end: f64,
    text: String,
    tokens: Vec<u32>,
    temperature: f64,
    avg_logprob: f64,
    compression_ratio: f64,
    no_speech_prob: f64,
    /// sandscribe's extension: the display name of who speaks, in a diarized result.
    #[serde(skip_serializing_if = "Option::is_none")]
    speaker: Option<String>,
}

#[derive(Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub(super) struct VerboseWord {
    word: String,
    start: f64,
    end: f64,
}

fn seconds(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

fn verbose(request: &TranscriptionRequest, result: &StoredResult) -> Verbose {
    let transcript = &result.transcript;
    let temperature = result
        .config
        .get("temperature")
        .and_then(serde_json::Value::as_f64)
        .unwrap_or(0.0);
    // Segments by default; with explicit granularities, what was asked for.
    let want_segments = request.segment_timestamps || !request.word_timestamps;
    let speakers = Speakers::of(result);
    Verbose {
        task: request.task.as_str(),
        language: language(result),
        duration: seconds(result.duration_ms),
        text: transcript_text(transcript),
        segments: want_segments.then(|| {
            transcript
                .segments
                .iter()
                .enumerate()
                .map(|(id, segment)| {
                    let mut verbose = verbose_segment(id, segment, temperature);
                    verbose.speaker = speakers.name(segment);
                    verbose
                })
                .collect()
        }),
        words: request.word_timestamps.then(|| words(&transcript.segments)),
        usage: Usage::of(result),
    }
}

fn verbose_segment(id: usize, segment: &Segment, temperature: f64) -> VerboseSegment {
    VerboseSegment {
        id,
        seek: segment.start_ms / 10,
        start: seconds(segment.start_ms),
        end: seconds(segment.end_ms),
        text: segment.text.clone(),
        tokens: Vec::new(),
        temperature,
        // ln(0) is -inf, which JSON cannot carry; the floor is far below any real value.
        avg_logprob: segment
            .confidence
            .map_or(0.0, |c| f64::from(c).max(1e-10).ln()),
        compression_ratio: 0.0,
        no_speech_prob: 0.0,
        speaker: None,
    }
}

fn words(segments: &[Segment]) -> Vec<VerboseWord> {
    segments
        .iter()
        .flat_map(|segment| &segment.words)
        .map(|word| VerboseWord {
            word: word.text.clone(),
            start: seconds(word.start_ms),
            end: seconds(word.end_ms),
        })
        .collect()
}

/// The detected language, else the one asked for, as OpenAI names it.
fn language(result: &StoredResult) -> String {
    let asked = result
        .config
        .get("language")
        .and_then(serde_json::Value::as_str)
        .filter(|l| !l.is_empty() && *l != "auto");
    result
        .transcript
        .language
        .as_deref()
        .or(asked)
        .map_or_else(|| "unknown".to_owned(), languages::name)
}

#[cfg(test)]
mod tests {
    use super::super::form::Task;
    use super::*;
    use crate::transcript::Word;
    use serde_json::json;
    use time::OffsetDateTime;

    fn result(transcript: Transcript, config: serde_json::Value) -> StoredResult {
        StoredResult {
            id: uuid::Uuid::nil(),
            tenant: "default".into(),
            file_name: "a.wav".into(),
            plugin_id: "echo".into(),
            plugin_name: "Echo".into(),
            plugin_version: "1".into(),
            config,
            transcript,
            duration_ms: 2_345,
            created_at: OffsetDateTime::UNIX_EPOCH,
            started_at: OffsetDateTime::UNIX_EPOCH,
            finished_at: OffsetDateTime::UNIX_EPOCH,
            diarization: None,
        }
    }

    fn request(words: bool) -> TranscriptionRequest {
        TranscriptionRequest {
            task: Task::Transcribe,
            model: "echo".into(),
            language: None,
            prompt: None,
            temperature: None,
            response_format: ResponseFormat::VerboseJson,
            segment_timestamps: false,
            word_timestamps: words,
            stream: false,
        }
    }

    fn transcript() -> Transcript {
        Transcript {
            text: "Hello there. Bye.".into(),
            language: Some("en".into()),
            segments: vec![
                Segment {
                    start_ms: 0,
                    end_ms: 1_250,
                    text: "Hello there.".into(),
                    confidence: Some(1.0),
                    words: vec![Word {
                        text: "Hello".into(),
                        start_ms: 0,
                        end_ms: 500,
                        confidence: None,
                        speaker: None,
                    }],
                    speaker: None,
                },
                Segment {
                    start_ms: 1_250,
                    end_ms: 2_000,
                    text: "Bye.".into(),
                    confidence: Some(0.0),
                    words: vec![],
                    speaker: None,
                },
            ],
        }
    }

    #[test]
    fn verbose_json_has_openai_fields_and_known_values() {
        let result = result(transcript(), json!({"temperature": 0.2}));
        let value = serde_json::to_value(verbose(&request(false), &result)).unwrap();
        assert_eq!(value["task"], "transcribe");
        assert_eq!(value["language"], "english");
        assert_eq!(value["duration"], 2.345);
        assert_eq!(value["text"], "Hello there. Bye.");
        assert_eq!(value["usage"], json!({"type": "duration", "seconds": 3}));
        assert!(value.get("words").is_none());
        assert_eq!(
            value["segments"][0],
            json!({
                "id": 0, "seek": 0, "start": 0.0, "end": 1.25, "text": "Hello there.",
                "tokens": [], "temperature": 0.2, "avg_logprob": 0.0,
                "compression_ratio": 0.0, "no_speech_prob": 0.0,
            })
        );
        // A confidence of 0 gives a very low but finite log-probability.
        let low = value["segments"][1]["avg_logprob"].as_f64().unwrap();
        assert!(low < -20.0, "{low}");
        assert_eq!(value["segments"][1]["seek"], 125);
    }

    #[test]
    fn verbose_json_segments_name_their_speakers_when_diarized() {
        let mut t = transcript();
        t.segments[0].speaker = Some("SPEAKER_1".into());
        t.segments[1].speaker = Some("SPEAKER_2".into());
        let mut result = result(t, json!({}));
        let plain = serde_json::to_value(verbose(&request(false), &result)).unwrap();
        assert!(plain["segments"][0].get("speaker").is_none(), "{plain}");
        result.diarization = Some(crate::storage::Diarization {
            diarizer: "fakespeakers".into(),
            state: crate::storage::DiarizationState::Done,
            error: None,
            speakers: vec!["SPEAKER_1".into(), "SPEAKER_2".into()],
            names: [("SPEAKER_2".to_owned(), "Guest".to_owned())].into(),
            wall_ms: 0,
        });
        let value = serde_json::to_value(verbose(&request(false), &result)).unwrap();
        assert_eq!(value["segments"][0]["speaker"], "Speaker 1");
        assert_eq!(value["segments"][1]["speaker"], "Guest");
    }

    #[test]
    fn words_alone_leave_out_segments() {
        let result = result(transcript(), json!({}));
        let value = serde_json::to_value(verbose(&request(true), &result)).unwrap();
        assert!(value.get("segments").is_none());
        assert_eq!(
            value["words"],
            json!([{"word": "Hello", "start": 0.0, "end": 0.5}])
        );
    }

    #[test]
    fn language_falls_back_to_the_requested_one_then_unknown() {
        let mut t = transcript();
        t.language = None;
        assert_eq!(
            language(&result(t.clone(), json!({"language": "de"}))),
            "german"
        );
        assert_eq!(
            language(&result(t.clone(), json!({"language": "auto"}))),
            "unknown"
        );
        assert_eq!(language(&result(t, json!({}))), "unknown");
    }

    #[test]
    fn text_comes_from_segments_when_the_plugin_gave_none() {
        let mut t = transcript();
        t.text = " ".into();
        assert_eq!(transcript_text(&t), "Hello there. Bye.");
    }
}
