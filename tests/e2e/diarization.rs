//! A job's second stage: a diarizer (the `fakespeakers` fixture, WIT 0.3.0) after the
//! `echo` transcriber. Speakers land on the stored segments; a diarizer that fails, traps,
//! breaks the contract, runs out of time or is cancelled costs the job its speakers only,
//! never its transcript.

use std::time::Duration;

use sandscribe_e2e::{Form, Reply, Server, ServerOptions, sine, wav};
use serde_json::{Value, json};

/// A 4 s tone: four 1 s echo segments.
pub(crate) fn audio() -> Vec<u8> {
    wav(&sine(4_000, 16_000, 0.4), 16_000)
}

/// `POST /api/jobs` with echo as the transcriber and `fields` added.
fn submit(server: &Server, fields: &[(&str, &str)]) -> Reply {
    let mut form = Form::new()
        .text("plugin", "echo")
        .text("config", r#"{"window_ms": 1000, "words": true}"#);
    for (name, value) in fields {
        form = form.text(name, value);
    }
    let form = form.file("file", "talk.wav", "audio/wav", &audio());
    server.post_form("/api/jobs", &form)
}

/// Runs an echo job (1 s windows, words) with `fields` added to its end and returns the
/// final snapshot.
pub(crate) fn run(server: &Server, fields: &[(&str, &str)]) -> Value {
    let reply = submit(server, fields).expect(202);
    let id = reply.json()["id"].as_str().expect("job id").to_owned();
    server.wait_terminal(&id, Duration::from_secs(60))
}

fn speakers_of(result: &Value) -> Vec<Value> {
    result["transcript"]["segments"]
        .as_array()
        .expect("segments")
        .iter()
        .map(|s| s["speaker"].clone())
        .collect()
}

#[test]
fn a_diarizer_after_the_transcriber_puts_speakers_on_segments_and_words() {
    let server = Server::start(ServerOptions::new());
    let reply = submit(&server, &[("diarizer", "fakespeakers")]).expect(202);
    let submitted = reply.json();
    assert_eq!(submitted["diarizer"]["plugin"]["id"], "fakespeakers");
    assert_eq!(submitted["diarizer"]["speakers"], "auto");
    assert_eq!(
        submitted["diarizer"]["config"]["fail"], "none",
        "defaults applied"
    );
    let id = submitted["id"].as_str().expect("id").to_owned();

    let events = server.events(&id, None).to_end();
    let stages: Vec<String> = events
        .iter()
        .filter(|e| e.event == "progress")
        .filter_map(|e| e.data["stage"].as_str().map(str::to_owned))
        .collect();
    assert!(
        stages.iter().any(|s| s.starts_with("transcribing: ")),
        "the first stage is reported: {stages:?}"
    );
    assert!(
        stages.iter().any(|s| s.starts_with("finding speakers: ")),
        "the second stage is reported: {stages:?}"
    );
    let fractions: Vec<f64> = events
        .iter()
        .filter(|e| e.event == "progress")
        .filter_map(|e| e.data["fraction"].as_f64())
        .collect();
    assert!(
        fractions.windows(2).all(|w| w[1] >= w[0] - 1e-6),
        "one progress bar over both stages never goes back: {fractions:?}"
    );

    let job = server.job(&id);
    assert_eq!(job["status"], "completed", "{job:#}");
    let result = &job["result"];
    assert_eq!(
        speakers_of(result),
        [
            json!("SPEAKER_1"),
            json!("SPEAKER_2"),
            json!("SPEAKER_1"),
            json!("SPEAKER_2")
        ]
    );
    for segment in result["transcript"]["segments"]
        .as_array()
        .expect("segments")
    {
        for word in segment["words"].as_array().expect("echo gives words") {
            assert_eq!(
                word["speaker"], segment["speaker"],
                "words follow their turn"
            );
        }
    }
    let diarization = &result["diarization"];
    assert_eq!(diarization["diarizer"], "fakespeakers");
    assert_eq!(diarization["state"], "done");
    assert_eq!(diarization["speakers"], json!(["SPEAKER_1", "SPEAKER_2"]));
    assert!(diarization.get("error").is_none(), "{diarization:#}");
    let stored = server.get(&format!("/api/results/{id}")).expect(200).json();
    assert_eq!(stored["diarization"], *diarization);
    assert_eq!(speakers_of(&stored), speakers_of(result));
}

#[test]
fn the_speakers_hint_reaches_the_diarizer_and_the_result_survives_a_restart() {
    let mut server = Server::start(ServerOptions::new());
    let job = run(&server, &[("diarizer", "fakespeakers"), ("speakers", "1")]);
    assert_eq!(job["diarizer"]["speakers"], json!({"exact": 1}));
    let result = &job["result"];
    assert_eq!(result["diarization"]["speakers"], json!(["SPEAKER_1"]));
    let id = job["id"].as_str().expect("id").to_owned();

    server.restart();
    let stored = server.get(&format!("/api/results/{id}")).expect(200).json();
    assert_eq!(
        stored["diarization"], result["diarization"],
        "kept across a restart"
    );
    assert_eq!(speakers_of(&stored), speakers_of(result));
}

#[test]
fn a_failing_diarizer_keeps_the_transcript_and_says_why() {
    let server = Server::start(ServerOptions::new());
    let plain = run(&server, &[]);
    assert_eq!(plain["status"], "completed");
    assert!(
        plain["result"].get("diarization").is_none(),
        "no stage, no record"
    );
    let transcript_of = |job: &Value| {
        let mut t = job["result"]["transcript"].clone();
        for s in t["segments"].as_array_mut().expect("segments") {
            s.as_object_mut().expect("segment").remove("speaker");
            for w in s["words"].as_array_mut().expect("words") {
                w.as_object_mut().expect("word").remove("speaker");
            }
        }
        t
    };
    for (fail, expected) in [
        ("error", "asked to fail"),
        ("trap", "asked to trap"),
        ("overlap", "must not overlap"),
    ] {
        let config = json!({ "fail": fail }).to_string();
        let job = run(
            &server,
            &[("diarizer", "fakespeakers"), ("diarizer_config", &config)],
        );
        assert_eq!(job["status"], "completed", "{fail}: {job:#}");
        let diarization = &job["result"]["diarization"];
        assert_eq!(diarization["state"], "failed", "{fail}");
        let error = diarization["error"].as_str().unwrap_or_default();
        assert!(error.contains(expected), "{fail}: {error:?}");
        assert_eq!(
            transcript_of(&job),
            transcript_of(&plain),
            "{fail}: transcript kept"
        );
        assert!(
            speakers_of(&job["result"]).iter().all(Value::is_null),
            "{fail}: no speakers from a failed stage"
        );
    }
    server.assert_serves_echo_job();
}

#[test]
fn a_diarizer_past_its_time_limit_or_cancelled_keeps_the_transcript() {
    let server = Server::start(ServerOptions::new().job_seconds(2));
    let config = json!({ "fail": "spin" }).to_string();
    let fields = [
        ("diarizer", "fakespeakers"),
        ("diarizer_config", config.as_str()),
    ];
    let job = run(&server, &fields);
    assert_eq!(job["status"], "completed", "{job:#}");
    let diarization = &job["result"]["diarization"];
    assert_eq!(diarization["state"], "failed");
    let error = diarization["error"].as_str().unwrap_or_default();
    assert!(error.contains("longer than its limit"), "{error:?}");
    assert_eq!(
        job["result"]["transcript"]["segments"]
            .as_array()
            .map(Vec::len),
        Some(4)
    );

    let id = submit(&server, &fields).expect(202).json()["id"]
        .as_str()
        .expect("id")
        .to_owned();
    // Cancel once the second stage has started.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !server.job(&id)["stage"]
        .as_str()
        .unwrap_or_default()
        .starts_with("finding speakers")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the diarizer never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    server.cancel(&id).expect(200);
    let job = server.wait_terminal(&id, Duration::from_secs(20));
    assert_eq!(
        job["status"], "completed",
        "the transcript was done: {job:#}"
    );
    let error = job["result"]["diarization"]["error"]
        .as_str()
        .unwrap_or_default();
    assert!(error.contains("cancelled"), "{error:?}");
}

#[test]
fn wrong_diarizer_requests_are_refused_with_the_reason() {
    let server = Server::start(ServerOptions::new());
    let refused = |fields: &[(&str, &str)], code: &str, words: &str| {
        let reply = submit(&server, fields).expect(400);
        let error = reply.json();
        assert_eq!(error["error"]["code"], code, "{fields:?}: {error:#}");
        let message = error["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(words), "{fields:?}: {message:?}");
    };
    refused(&[("diarizer", "nobody")], "unknown_diarizer", "nobody");
    refused(&[("diarizer", "echo")], "not_a_diarizer", "echo");
    refused(
        &[("diarizer", "fakespeakers"), ("speakers", "0")],
        "invalid_speakers",
        "\"0\"",
    );
    refused(
        &[("diarizer", "fakespeakers"), ("speakers", "5-2")],
        "invalid_speakers",
        "5-2",
    );
    refused(&[("speakers", "2")], "diarizer_missing", "speakers");
    refused(
        &[
            ("diarizer", "fakespeakers"),
            ("diarizer_config", r#"{"fail": 3}"#),
        ],
        "invalid_config",
        "diarizer_config",
    );
    // A diarizer is no transcription plugin, in either API.
    let form =
        Form::new()
            .text("plugin", "fakespeakers")
            .file("file", "a.wav", "audio/wav", &audio());
    let reply = server.post_form("/api/jobs", &form).expect(400);
    assert_eq!(reply.json()["error"]["code"], "not_a_transcriber");
    server.assert_serves_echo_job();
}

#[test]
fn diarizers_are_listed_with_their_kind_and_are_no_openai_model() {
    let server = Server::start(ServerOptions::new());
    let plugins = server.get("/api/plugins").expect(200).json();
    let kind_of = |id: &str| {
        plugins["plugins"]
            .as_array()
            .expect("plugins")
            .iter()
            .find(|p| p["id"] == id)
            .map(|p| (p["kind"].clone(), p["wit_version"].clone()))
    };
    assert_eq!(
        kind_of("fakespeakers"),
        Some((json!("diarizer"), json!("0.3.0")))
    );
    assert_eq!(kind_of("echo").map(|k| k.0), Some(json!("transcriber")));
    let models = server.get("/v1/models").expect(200).json();
    let ids: Vec<&str> = models["data"]
        .as_array()
        .expect("models")
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert!(
        ids.contains(&"echo") && !ids.contains(&"fakespeakers"),
        "{ids:?}"
    );
}

#[test]
fn a_plugins_default_diarizer_runs_unless_the_job_turns_it_off() {
    let server = Server::start(
        ServerOptions::new().extra_toml("[plugins.echo]\ndiarizer = \"fakespeakers\"\n"),
    );
    let by_default = run(&server, &[("speakers", "1")]);
    assert_eq!(by_default["diarizer"]["plugin"]["id"], "fakespeakers");
    assert_eq!(by_default["result"]["diarization"]["state"], "done");
    assert_eq!(
        by_default["result"]["diarization"]["speakers"],
        json!(["SPEAKER_1"]),
        "the job's speakers hint goes to the default diarizer"
    );
    let off = run(&server, &[("diarizer", "none")]);
    assert_eq!(off["status"], "completed");
    assert!(off.get("diarizer").is_none(), "{off:#}");
    assert!(off["result"].get("diarization").is_none());
}
