//! Every format of a diarized result, byte for byte: names where the speaker changes,
//! voice spans in WebVTT, given names over "Speaker N", and results without speakers
//! unchanged.

use std::collections::BTreeMap;

use time::OffsetDateTime;
use uuid::Uuid;

use super::{ExportFormat, SubtitleOptions, render};
use crate::storage::{Diarization, DiarizationState, StoredResult};
use crate::transcript::{Segment, Transcript, Word};

fn spoken(start_ms: u64, end_ms: u64, text: &str, speaker: &str) -> Segment {
    Segment {
        speaker: Some(speaker.to_owned()),
        ..Segment::new(start_ms, end_ms, text)
    }
}

fn word(text: &str, start_ms: u64, end_ms: u64, speaker: &str) -> Word {
    Word {
        text: text.to_owned(),
        start_ms,
        end_ms,
        confidence: None,
        speaker: Some(speaker.to_owned()),
    }
}

/// Two speakers, the second named with characters WebVTT gives a meaning to, and a last
/// segment whose words change speaker half way.
fn interview() -> StoredResult {
    let mut first = spoken(0, 1_000, "Hello there.", "SPEAKER_1");
    first.confidence = Some(0.93);
    let mut mixed = spoken(3_000, 4_500, "Good. And you?", "SPEAKER_1");
    mixed.words = vec![
        word("Good.", 3_000, 3_400, "SPEAKER_1"),
        word("And", 3_500, 3_800, "SPEAKER_2"),
        word("you?", 3_800, 4_200, "SPEAKER_2"),
    ];
    let segments = vec![
        first,
        spoken(1_000, 2_000, "How are you?", "SPEAKER_1"),
        spoken(2_000, 3_000, "Fine.", "SPEAKER_2"),
        mixed,
    ];
    let names = BTreeMap::from([("SPEAKER_2".to_owned(), "Dr. <Who> & Co".to_owned())]);
    StoredResult {
        id: Uuid::nil(),
        tenant: "default".to_owned(),
        file_name: "interview.wav".to_owned(),
        plugin_id: "echo".to_owned(),
        plugin_name: "Echo".to_owned(),
        plugin_version: "1.0.0".to_owned(),
        config: serde_json::json!({}),
        transcript: Transcript {
            text: "Hello there. How are you? Fine. Good. And you?".to_owned(),
            language: Some("en".to_owned()),
            segments,
        },
        duration_ms: 4_500,
        created_at: OffsetDateTime::UNIX_EPOCH,
        started_at: OffsetDateTime::UNIX_EPOCH,
        finished_at: OffsetDateTime::UNIX_EPOCH,
        diarization: Some(Diarization {
            diarizer: "fakespeakers".to_owned(),
            state: DiarizationState::Done,
            error: None,
            speakers: vec!["SPEAKER_1".to_owned(), "SPEAKER_2".to_owned()],
            names,
            wall_ms: 120,
        }),
    }
}

fn export(result: &StoredResult, format: ExportFormat) -> String {
    render(result, format, &SubtitleOptions::default())
}

#[test]
fn vtt_puts_every_cue_in_its_speakers_voice_span_with_the_name_escaped() {
    assert_eq!(
        export(&interview(), ExportFormat::Vtt),
        "WEBVTT\n\n\
         00:00:00.000 --> 00:00:01.000\n<v Speaker 1>Hello there.\n\n\
         00:00:01.000 --> 00:00:02.000\n<v Speaker 1>How are you?\n\n\
         00:00:02.000 --> 00:00:03.000\n<v Dr. &lt;Who&gt; &amp; Co>Fine.\n\n\
         00:00:03.000 --> 00:00:03.400\n<v Speaker 1>Good.\n\n\
         00:00:03.500 --> 00:00:04.500\n<v Dr. &lt;Who&gt; &amp; Co>And you?\n"
    );
}

#[test]
fn srt_names_the_speaker_only_where_it_changes() {
    assert_eq!(
        export(&interview(), ExportFormat::Srt),
        "1\n00:00:00,000 --> 00:00:01,000\nSpeaker 1: Hello there.\n\n\
         2\n00:00:01,000 --> 00:00:02,000\nHow are you?\n\n\
         3\n00:00:02,000 --> 00:00:03,000\nDr. <Who> & Co: Fine.\n\n\
         4\n00:00:03,000 --> 00:00:03,400\nSpeaker 1: Good.\n\n\
         5\n00:00:03,500 --> 00:00:04,500\nDr. <Who> & Co: And you?\n"
    );
}

#[test]
fn txt_reads_like_a_script() {
    assert_eq!(
        export(&interview(), ExportFormat::Txt),
        "Speaker 1: Hello there.\nHow are you?\nDr. <Who> & Co: Fine.\n\
         Speaker 1: Good.\nDr. <Who> & Co: And you?\n"
    );
}

#[test]
fn a_split_segment_keeps_its_voice_on_every_cue_but_its_name_once_in_srt() {
    let mut result = interview();
    result.transcript.segments = vec![spoken(0, 2_000, "aaaa bbbb cccc dddd", "SPEAKER_2")];
    let options = SubtitleOptions {
        max_chars_per_line: Some(9),
        max_lines_per_cue: Some(1),
        ..SubtitleOptions::default()
    };
    assert_eq!(
        render(&result, ExportFormat::Srt, &options),
        "1\n00:00:00,000 --> 00:00:01,000\nDr. <Who> & Co: aaaa bbbb\n\n\
         2\n00:00:01,000 --> 00:00:02,000\ncccc dddd\n"
    );
    assert_eq!(
        render(&result, ExportFormat::Vtt, &options),
        "WEBVTT\n\n\
         00:00:00.000 --> 00:00:01.000\n<v Dr. &lt;Who&gt; &amp; Co>aaaa bbbb\n\n\
         00:00:01.000 --> 00:00:02.000\n<v Dr. &lt;Who&gt; &amp; Co>cccc dddd\n"
    );
}

#[test]
fn json_keeps_labels_and_diarization_and_adds_display_names() {
    let json = export(&interview(), ExportFormat::Json);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    let segments = &value["transcript"]["segments"];
    assert_eq!(segments[0]["speaker"], "SPEAKER_1");
    assert_eq!(segments[0]["speaker_name"], "Speaker 1");
    assert_eq!(segments[2]["speaker"], "SPEAKER_2");
    assert_eq!(segments[2]["speaker_name"], "Dr. <Who> & Co");
    assert_eq!(
        value["diarization"],
        serde_json::json!({
            "diarizer": "fakespeakers", "state": "done",
            "speakers": ["SPEAKER_1", "SPEAKER_2"],
            "names": {"SPEAKER_2": "Dr. <Who> & Co"},
            "wall_ms": 120,
        })
    );
    // The detour through a JSON value neither reorders fields nor widens an f32.
    assert!(json.contains("\"confidence\": 0.93,"), "{json}");
    assert!(json.starts_with("{\n  \"id\": "), "{json}");
}

#[test]
fn without_diarization_labelled_segments_export_as_they_always_did() {
    let mut labelled = interview();
    labelled.diarization = None;
    let mut plain = labelled.clone();
    for segment in &mut plain.transcript.segments {
        segment.speaker = None;
        for word in &mut segment.words {
            word.speaker = None;
        }
    }
    for format in [ExportFormat::Txt, ExportFormat::Srt, ExportFormat::Vtt] {
        assert_eq!(
            export(&labelled, format),
            export(&plain, format),
            "{format}"
        );
    }
    assert_eq!(
        export(&plain, ExportFormat::Txt),
        "Hello there.\nHow are you?\nFine.\nGood. And you?\n"
    );
    let json = export(&labelled, ExportFormat::Json);
    assert!(!json.contains("speaker_name"), "{json}");
    assert_eq!(
        json,
        format!("{}\n", serde_json::to_string_pretty(&labelled).unwrap())
    );
}

#[test]
fn a_failed_diarization_without_speakers_changes_nothing_but_the_json_record() {
    let mut failed = interview();
    for segment in &mut failed.transcript.segments {
        segment.speaker = None;
        segment.words.clear();
    }
    let mut plain = failed.clone();
    plain.diarization = None;
    failed.diarization = Some(Diarization {
        diarizer: "fakespeakers".to_owned(),
        state: DiarizationState::Failed,
        error: Some("out of memory".to_owned()),
        speakers: Vec::new(),
        names: BTreeMap::new(),
        wall_ms: 0,
    });
    for format in [ExportFormat::Txt, ExportFormat::Srt, ExportFormat::Vtt] {
        assert_eq!(export(&failed, format), export(&plain, format), "{format}");
    }
    let value: serde_json::Value =
        serde_json::from_str(&export(&failed, ExportFormat::Json)).unwrap();
    assert_eq!(value["diarization"]["state"], "failed");
    assert_eq!(value["diarization"]["error"], "out of memory");
}
