//! Bad submissions are refused with a status and a code a client can act on, leave no
//! upload behind, and do not disturb the server.

use sandscribe_e2e::{Form, Server, ServerOptions, sine, wav};
use serde_json::json;

/// Small enough that a 5 s WAV is too large and a 3 s one fits.
const UPLOAD_BYTES: u64 = 100_000;

#[test]
fn bad_submissions_are_refused_with_their_code_and_leave_no_upload_behind() {
    let server = Server::start(ServerOptions::new().upload_bytes(UPLOAD_BYTES));
    let fits = wav(&sine(3_000, 16_000, 0.3), 16_000);
    assert!((fits.len() as u64) < UPLOAD_BYTES);

    // Text is not audio.
    let reply = server
        .submit(
            "echo",
            b"this is a shopping list, not audio\n",
            "notes.txt",
            &json!({}),
        )
        .expect(415);
    assert_eq!(reply.error_code(), "undecodable_audio");

    // An empty file neither.
    let reply = server
        .submit("echo", b"", "empty.wav", &json!({}))
        .expect(415);
    assert_eq!(reply.error_code(), "undecodable_audio");

    // No such plugin.
    let reply = server
        .submit("nope", &fits, "a.wav", &json!({}))
        .expect(404);
    assert_eq!(reply.error_code(), "unknown_plugin");
    assert!(reply.error_message().contains("nope"), "{}", reply.text());

    // A config that breaks the plugin's schema names the field.
    let reply = server
        .submit("echo", &fits, "a.wav", &json!({"window_ms": 5}))
        .expect(400);
    assert_eq!(reply.error_code(), "invalid_config");
    assert!(
        reply.error_message().contains("window_ms"),
        "{}",
        reply.text()
    );
    let fields = reply.json()["error"]["fields"].clone();
    assert_eq!(fields[0]["field"], "/window_ms", "{fields:#}");

    // An unknown config key is refused too (the schema has additionalProperties: false).
    let reply = server
        .submit("echo", &fits, "a.wav", &json!({"windw_ms": 500}))
        .expect(400);
    assert_eq!(reply.error_code(), "invalid_config");

    // A config that is not JSON, or not an object.
    for config in ["{window_ms: 500", "[1, 2]"] {
        let form = Form::new()
            .text("plugin", "echo")
            .text("config", config)
            .file("file", "a.wav", "audio/wav", &fits);
        let reply = server.post_form("/api/jobs", &form).expect(400);
        assert_eq!(reply.error_code(), "invalid_config", "config {config:?}");
    }

    // No file, or no plugin.
    let form = Form::new().text("plugin", "echo");
    let reply = server.post_form("/api/jobs", &form).expect(400);
    assert!(reply.error_message().contains("file"), "{}", reply.text());
    let form = Form::new().file("file", "a.wav", "audio/wav", &fits);
    let reply = server.post_form("/api/jobs", &form).expect(400);
    assert!(reply.error_message().contains("plugin"), "{}", reply.text());

    // Too large.
    let too_large = wav(&sine(5_000, 16_000, 0.3), 16_000);
    assert!(too_large.len() as u64 > UPLOAD_BYTES);
    let reply = server
        .submit("echo", &too_large, "big.wav", &json!({}))
        .expect(413);
    assert_eq!(reply.error_code(), "too_large");

    // The server still works, and none of the refused uploads is left on disk.
    server.assert_serves_echo_job();
    let uploads = server.data_dir().join("uploads");
    let left: Vec<_> = match uploads.read_dir() {
        Ok(entries) => entries.filter_map(Result::ok).map(|e| e.path()).collect(),
        Err(_) => Vec::new(),
    };
    assert!(left.is_empty(), "uploads left behind: {left:?}");
}

#[test]
fn unknown_jobs_and_results_are_404() {
    let server = Server::start(ServerOptions::new());
    let unknown = "00000000-0000-4000-8000-000000000000";
    for path in [
        format!("/api/jobs/{unknown}"),
        format!("/api/jobs/{unknown}/events"),
        format!("/api/results/{unknown}"),
        format!("/api/results/{unknown}/export?format=srt"),
        "/api/jobs/not-a-uuid".to_owned(),
    ] {
        assert_eq!(
            server.get(&path).expect(404).error_code(),
            "not_found",
            "{path}"
        );
    }
    assert_eq!(
        server.get("/api/plugins/nope").expect(404).error_code(),
        "unknown_plugin"
    );
}

#[test]
fn malformed_requests_get_a_clear_4xx_and_the_server_keeps_serving() {
    let server = Server::start(ServerOptions::new());
    let audio = sandscribe_e2e::wav(&sandscribe_e2e::sine(500, 16_000, 0.3), 16_000);
    // Not multipart at all.
    let json = server.post_raw("/api/jobs", "application/json", br#"{"plugin":"echo"}"#);
    assert!(
        (400..500).contains(&json.status),
        "{} {}",
        json.status,
        json.text()
    );
    // A multipart body whose boundary never appears, and one cut off mid-part.
    let garbage = server.post_raw(
        "/api/jobs",
        "multipart/form-data; boundary=XYZ",
        b"--ABC\r\nnonsense",
    );
    assert_eq!(garbage.status, 400, "{}", garbage.text());
    let mut cut =
        b"--XYZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n\r\n"
            .to_vec();
    cut.extend_from_slice(&audio[..100]);
    let truncated = server.post_raw("/api/jobs", "multipart/form-data; boundary=XYZ", &cut);
    assert_eq!(truncated.status, 400, "{}", truncated.text());
    // A WAV whose header promises more data than it has: what is there is transcribed.
    let mut short = audio.clone();
    short.truncate(audio.len() / 2);
    let job = server.run_job("echo", &short, &serde_json::json!({}));
    assert_eq!(job["status"], "completed", "{job:#}");
    assert!(
        job["duration_ms"]
            .as_u64()
            .is_some_and(|d| (200..=300).contains(&d)),
        "{job:#}"
    );
    // A corrupted header (format tag garbage) is refused before anything is queued.
    let mut corrupt = audio.clone();
    corrupt[20] = 0x7f;
    corrupt[21] = 0x7f;
    let reply = server.submit("echo", &corrupt, "corrupt.wav", &serde_json::json!({}));
    assert_eq!(reply.status, 415, "{}", reply.text());
    assert_eq!(
        server.get("/api/jobs").expect(200).json()["jobs"],
        serde_json::json!([])
    );
    server.assert_serves_echo_job();
}

#[test]
fn a_malformed_query_or_form_answers_in_the_json_error_envelope() {
    let server = Server::start(ServerOptions::new());
    for path in [
        "/api/results?page=x",
        "/api/results?per_page=-1",
        "/api/jobs/00000000-0000-0000-0000-000000000000/events?after=soon",
    ] {
        let reply = server.get(path);
        assert_eq!(reply.status, 400, "{path}: {}", reply.text());
        assert_eq!(
            reply.error_code(),
            "invalid_query",
            "{path}: {}",
            reply.text()
        );
        assert!(!reply.error_message().is_empty(), "{path}");
    }
    let reply = server.post_raw("/api/jobs", "text/plain", b"not a form");
    assert_eq!(reply.error_code(), "invalid_form", "{}", reply.text());
    assert!(matches!(reply.status, 400 | 415), "{}", reply.status);
    server.assert_serves_echo_job();
}
