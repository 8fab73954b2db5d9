//! Speakers everywhere a transcript goes: a diarized result (`echo` then the
//! `fakespeakers` fixture, which alternates `SPEAKER_1` and `SPEAKER_2` one segment each)
//! names its speakers in every export, in `verbose_json` and on the results page; a
//! person renames them through the API or the page's plain form, every export follows,
//! and a bad rename is refused with the reason and changes nothing.

use sandscribe_e2e::{Browser, Form, Server, ServerOptions};
use serde_json::{Value, json};

use crate::diarization::audio;

/// Runs an echo job with `fields` (see [`crate::diarization::run`]) and returns its
/// result, which must be completed.
fn run(server: &Server, fields: &[(&str, &str)]) -> Value {
    let job = crate::diarization::run(server, fields);
    assert_eq!(job["status"], "completed", "{job:#}");
    job["result"].clone()
}

fn diarized(server: &Server) -> Value {
    run(server, &[("diarizer", "fakespeakers")])
}

fn id_of(result: &Value) -> String {
    result["id"].as_str().expect("result id").to_owned()
}

fn export(server: &Server, id: &str, format: &str) -> String {
    server
        .get(&format!("/api/results/{id}/export?format={format}"))
        .expect(200)
        .text()
}

fn rename(server: &Server, id: &str, names: Value) -> sandscribe_e2e::Reply {
    server.put_json(
        &format!("/api/results/{id}/speakers"),
        &json!({ "names": names }),
    )
}

/// `(start_ms, end_ms, text)` of each stored segment.
fn segments(result: &Value) -> Vec<(u64, u64, String)> {
    result["transcript"]["segments"]
        .as_array()
        .expect("segments")
        .iter()
        .map(|s| {
            (
                s["start_ms"].as_u64().expect("start"),
                s["end_ms"].as_u64().expect("end"),
                s["text"].as_str().expect("text").trim().to_owned(),
            )
        })
        .collect()
}

fn clock(ms: u64, separator: char) -> String {
    let (h, m, s, ms) = (
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1_000 % 60,
        ms % 1_000,
    );
    format!("{h:02}:{m:02}:{s:02}{separator}{ms:03}")
}

/// The WebVTT a result with these speaker names (one per segment) must export as.
fn expected_vtt(result: &Value, voices: &[&str]) -> String {
    let mut out = String::from("WEBVTT\n");
    for ((start, end, text), voice) in segments(result).iter().zip(voices) {
        out.push_str(&format!(
            "\n{} --> {}\n<v {voice}>{text}\n",
            clock(*start, '.'),
            clock(*end, '.')
        ));
    }
    out
}

#[test]
fn a_diarized_result_names_its_speakers_in_every_export() {
    let server = Server::start(ServerOptions::new());
    let result = diarized(&server);
    let id = id_of(&result);
    let labels: Vec<Value> = result["transcript"]["segments"]
        .as_array()
        .expect("segments")
        .iter()
        .map(|s| s["speaker"].clone())
        .collect();
    assert_eq!(
        labels,
        [
            json!("SPEAKER_1"),
            json!("SPEAKER_2"),
            json!("SPEAKER_1"),
            json!("SPEAKER_2")
        ]
    );
    let segments = segments(&result);
    assert_eq!(segments.len(), 4);

    let vtt = export(&server, &id, "vtt");
    assert_eq!(
        vtt,
        expected_vtt(
            &result,
            &["Speaker 1", "Speaker 2", "Speaker 1", "Speaker 2"]
        )
    );

    // Every cue changes speaker here, so every SRT cue and TXT line is prefixed.
    let srt = export(&server, &id, "srt");
    let mut expected_srt = String::new();
    for (index, (start, end, text)) in segments.iter().enumerate() {
        if index > 0 {
            expected_srt.push('\n');
        }
        expected_srt.push_str(&format!(
            "{}\n{} --> {}\nSpeaker {}: {text}\n",
            index + 1,
            clock(*start, ','),
            clock(*end, ','),
            index % 2 + 1
        ));
    }
    assert_eq!(srt, expected_srt);
    let txt = export(&server, &id, "txt");
    let expected_txt: String = segments
        .iter()
        .enumerate()
        .map(|(index, (_, _, text))| format!("Speaker {}: {text}\n", index % 2 + 1))
        .collect();
    assert_eq!(txt, expected_txt);

    let json: Value = serde_json::from_str(&export(&server, &id, "json")).expect("JSON");
    assert_eq!(json["transcript"]["segments"][0]["speaker"], "SPEAKER_1");
    assert_eq!(
        json["transcript"]["segments"][1]["speaker_name"],
        "Speaker 2"
    );
    assert_eq!(
        json["diarization"]["speakers"],
        json!(["SPEAKER_1", "SPEAKER_2"])
    );

    // A `/v1` job of a plugin without a default diarizer keeps OpenAI's shape.
    let form = Form::new()
        .text("model", "echo")
        .text("response_format", "verbose_json")
        .file("file", "talk.wav", "audio/wav", &audio());
    let plain = server
        .post_form("/v1/audio/transcriptions", &form)
        .expect(200)
        .json();
    assert!(
        plain["segments"][0].get("speaker").is_none(),
        "no diarizer, no speaker: {plain:#}"
    );
}

#[test]
fn a_plain_result_exports_without_any_speaker_marks() {
    let server = Server::start(ServerOptions::new());
    let result = run(&server, &[]);
    let id = id_of(&result);
    assert!(result.get("diarization").is_none());
    let vtt = export(&server, &id, "vtt");
    assert!(!vtt.contains("<v "), "{vtt}");
    let txt = export(&server, &id, "txt");
    assert!(txt.starts_with("window 1 level"), "{txt}");
    let json = export(&server, &id, "json");
    assert!(!json.contains("speaker"), "{json}");
}

#[test]
fn renaming_a_speaker_changes_every_export_and_survives_a_restart() {
    let mut server = Server::start(ServerOptions::new());
    let result = diarized(&server);
    let id = id_of(&result);

    let renamed = rename(&server, &id, json!({"SPEAKER_1": "  Interviewer "}))
        .expect(200)
        .json();
    assert_eq!(
        renamed["diarization"]["names"],
        json!({"SPEAKER_1": "Interviewer"})
    );
    assert_eq!(
        renamed["transcript"], result["transcript"],
        "only names change"
    );
    assert_eq!(
        export(&server, &id, "vtt"),
        expected_vtt(
            &result,
            &["Interviewer", "Speaker 2", "Interviewer", "Speaker 2"]
        )
    );
    assert!(export(&server, &id, "txt").starts_with("Interviewer: window 1"));
    assert!(export(&server, &id, "srt").contains("\nInterviewer: window 3"));

    // Markup in a name is escaped in WebVTT's voice span and kept as it is in SRT.
    rename(&server, &id, json!({"SPEAKER_2": "Ann & <Bo>"})).expect(200);
    let vtt = export(&server, &id, "vtt");
    assert!(vtt.contains("\n<v Ann &amp; &lt;Bo&gt;>window 2"), "{vtt}");
    assert!(
        vtt.contains("\n<v Interviewer>window 1"),
        "the other name is kept: {vtt}"
    );
    assert!(export(&server, &id, "srt").contains("\nAnn & <Bo>: window 2"));

    server.restart();
    let stored = server.get(&format!("/api/results/{id}")).expect(200).json();
    assert_eq!(
        stored["diarization"]["names"],
        json!({"SPEAKER_1": "Interviewer", "SPEAKER_2": "Ann & <Bo>"})
    );
    // An empty name gives the default back.
    rename(&server, &id, json!({"SPEAKER_1": ""})).expect(200);
    assert!(export(&server, &id, "txt").starts_with("Speaker 1: window 1"));
}

#[test]
fn bad_renames_are_refused_with_the_reason_and_change_nothing() {
    let server = Server::start(
        ServerOptions::new()
            .api_key("alice-secret", "alice", "user")
            .api_key("bob-secret", "bob", "user"),
    );
    server.use_key(Some("alice-secret"));
    let result = diarized(&server);
    let id = id_of(&result);
    rename(&server, &id, json!({"SPEAKER_2": "Guest"})).expect(200);

    let refused = |names: Value, status: u16, code: &str, words: &str| {
        let reply = rename(&server, &id, names.clone()).expect(status);
        assert_eq!(reply.error_code(), code, "{names}");
        let message = reply.error_message();
        assert!(message.contains(words), "{names}: {message:?}");
    };
    refused(
        json!({"SPEAKER_9": "Nobody"}),
        400,
        "unknown_speaker",
        "SPEAKER_9",
    );
    refused(
        json!({"SPEAKER_1": "x".repeat(65)}),
        400,
        "invalid_speaker_name",
        "64",
    );
    refused(
        json!({"SPEAKER_1": "two\nlines"}),
        400,
        "invalid_speaker_name",
        "control character",
    );
    refused(
        json!({"SPEAKER_1": "a", "SPEAKER_2": "b", "SPEAKER_3": "c"}),
        400,
        "too_many_names",
        "2 speakers",
    );
    // A good entry beside a bad one is not applied either.
    refused(
        json!({"SPEAKER_1": "Fine", "SPEAKER_2": "bad\u{7}"}),
        400,
        "invalid_speaker_name",
        "SPEAKER_2",
    );
    let reply = server.put_json(
        &format!("/api/results/{id}/speakers"),
        &json!({"SPEAKER_1": "no names object"}),
    );
    assert_eq!(reply.expect(400).error_code(), "invalid_body");
    let stored = server.get(&format!("/api/results/{id}")).expect(200).json();
    assert_eq!(
        stored["diarization"]["names"],
        json!({"SPEAKER_2": "Guest"})
    );

    let plain = run(&server, &[]);
    let reply = rename(&server, &id_of(&plain), json!({"SPEAKER_1": "x"})).expect(409);
    assert_eq!(reply.error_code(), "not_diarized");
    let failed = run(
        &server,
        &[
            ("diarizer", "fakespeakers"),
            ("diarizer_config", r#"{"fail": "error"}"#),
        ],
    );
    let reply = rename(&server, &id_of(&failed), json!({"SPEAKER_1": "x"})).expect(409);
    assert_eq!(reply.error_code(), "not_diarized");

    rename(
        &server,
        "00000000-0000-0000-0000-000000000000",
        json!({"SPEAKER_1": "x"}),
    )
    .expect(404);
    rename(&server, "not-a-uuid", json!({"SPEAKER_1": "x"})).expect(404);
    server.use_key(Some("bob-secret"));
    let reply = rename(&server, &id, json!({"SPEAKER_1": "Mallory"})).expect(404);
    assert_eq!(reply.error_code(), "not_found");
    server.use_key(Some("alice-secret"));
    let stored = server.get(&format!("/api/results/{id}")).expect(200).json();
    assert_eq!(
        stored["diarization"]["names"],
        json!({"SPEAKER_2": "Guest"}),
        "another tenant changed nothing"
    );
}

#[test]
fn the_results_page_shows_and_renames_speakers_without_javascript() {
    let server = Server::start(ServerOptions::new());
    let result = diarized(&server);
    let id = id_of(&result);
    let mut browser = Browser::new();
    let page = browser
        .get(&server, &format!("/results/{id}"))
        .expect(200)
        .text();
    assert!(page.contains("id=\"speakers\""), "{page}");
    assert!(
        page.contains(r#"<span class="speaker speaker-c0">Speaker 1</span>"#),
        "{page}"
    );
    assert!(
        page.contains(r#"<span class="speaker speaker-c1">Speaker 2</span>"#),
        "{page}"
    );
    assert!(page.contains(r#"name="speaker.SPEAKER_1""#), "{page}");

    let path = format!("/results/{id}/speakers");
    let reply = browser.post_form(
        &server,
        &path,
        &[
            ("speaker.SPEAKER_1", "<script>alert(1)</script>"),
            ("speaker.SPEAKER_2", ""),
        ],
    );
    assert_eq!(
        (reply.status, reply.header("location")),
        (303, Some(format!("/results/{id}").as_str())),
        "{}",
        reply.text()
    );
    let page = browser
        .get(&server, &format!("/results/{id}"))
        .expect(200)
        .text();
    assert!(!page.contains("<script>alert(1)"), "escaped: {page}");
    // askama writes `<` and `>` as numeric references.
    let escaped = "&#60;script&#62;alert(1)&#60;/script&#62;";
    assert!(
        page.contains(&format!(
            r#"<span class="speaker speaker-c0">{escaped}</span>"#
        )),
        "{page}"
    );
    assert!(page.contains(&format!(r#"value="{escaped}""#)), "{page}");
    assert!(export(&server, &id, "txt").starts_with("<script>alert(1)</script>: window 1"));

    // A refused name shows the page again with the reason and what was typed.
    let long = "y".repeat(70);
    let reply = browser.post_form(&server, &path, &[("speaker.SPEAKER_2", &long)]);
    assert_eq!(reply.status, 400);
    let page = reply.text();
    assert!(page.contains("id=\"speaker-error\""), "{page}");
    assert!(page.contains("at most 64"), "{page}");
    assert!(page.contains(&format!("value=\"{long}\"")), "{page}");
    let stored = server.get(&format!("/api/results/{id}")).expect(200).json();
    assert_eq!(
        stored["diarization"]["names"],
        json!({"SPEAKER_1": "<script>alert(1)</script>"})
    );
}

#[test]
fn a_failed_detection_is_said_on_the_page_above_the_transcript() {
    let server = Server::start(ServerOptions::new());
    let failed = run(
        &server,
        &[
            ("diarizer", "fakespeakers"),
            ("diarizer_config", r#"{"fail": "error"}"#),
        ],
    );
    let id = id_of(&failed);
    let mut browser = Browser::new();
    let page = browser
        .get(&server, &format!("/results/{id}"))
        .expect(200)
        .text();
    let notice = page.find("Speaker detection failed: ").expect("the notice");
    let error = failed["diarization"]["error"].as_str().expect("error");
    assert!(error.contains("asked to fail"), "{error}");
    assert!(
        page[notice..].contains("asked to fail"),
        "the reason follows: {page}"
    );
    assert!(
        page.contains("window 1 level"),
        "the transcript is shown: {page}"
    );
    assert!(notice < page.find("window 1 level").unwrap_or(0));
    assert!(
        !page.contains("id=\"speakers\""),
        "nothing to rename: {page}"
    );
}

#[test]
fn verbose_json_names_the_speakers_of_a_default_diarizer() {
    let server = Server::start(
        ServerOptions::new().extra_toml("[plugins.echo]\ndiarizer = \"fakespeakers\"\n"),
    );
    let form = Form::new()
        .text("model", "echo")
        .text("response_format", "verbose_json")
        .file("file", "talk.wav", "audio/wav", &audio());
    let answer = server
        .post_form("/v1/audio/transcriptions", &form)
        .expect(200)
        .json();
    let speakers: Vec<&str> = answer["segments"]
        .as_array()
        .expect("segments")
        .iter()
        .map(|s| s["speaker"].as_str().unwrap_or("(none)"))
        .collect();
    assert_eq!(
        speakers,
        ["Speaker 1", "Speaker 2"]
            .iter()
            .cycle()
            .take(speakers.len())
            .copied()
            .collect::<Vec<_>>()
    );
    assert!(speakers.len() >= 2, "{answer:#}");
    // The plain `vtt` answer is the export writer's, voice spans included.
    let form = Form::new()
        .text("model", "echo")
        .text("response_format", "vtt")
        .file("file", "talk.wav", "audio/wav", &audio());
    let vtt = server
        .post_form("/v1/audio/transcriptions", &form)
        .expect(200)
        .text();
    assert!(vtt.contains("\n<v Speaker 2>"), "{vtt}");
}
