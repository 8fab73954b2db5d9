//! A multipart text field is read in chunks and refused the moment it passes its cap
//! (413 naming the field), on each of the three endpoints that take forms: `/api/jobs`,
//! the browser's `/file/upload` and `/v1/audio/transcriptions`. A 400 MiB `prompt`
//! costs the server no more memory than a small one, and many fields cannot add up to
//! what one may not be.

use sandscribe_e2e::{Form, PeakMemory, RawRequest, Reply, Server, ServerOptions, sine, wav};

/// The three form endpoints, with the fields each needs besides the file.
const ENDPOINTS: &[(&str, &[(&str, &str)])] = &[
    ("/api/jobs", &[("plugin", "echo")]),
    ("/file/upload", &[]),
    ("/v1/audio/transcriptions", &[("model", "echo")]),
];

/// A text field this long is far past the 256 KiB cap: what one request held in memory
/// before (916 MiB resident for a single one).
const HUGE_FIELD_BYTES: u64 = 400 << 20;

const BOUNDARY: &str = "field-cap-1b9c4e";

fn part_head(name: &str) -> String {
    format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n")
}

/// The status and message of a refusal, in whichever envelope the endpoint answers.
fn refusal(reply: &Reply) -> (u16, String) {
    let json = reply.json();
    let message = json["error"]["message"]
        .as_str()
        .or_else(|| json["error"].as_str())
        .unwrap_or_default()
        .to_owned();
    (reply.status, message)
}

/// A post to `path` that asks for JSON (the browser's upload answers in JSON when
/// asked, as the page's script does).
fn request_for(path: &str) -> RawRequest {
    RawRequest::new("POST", path).header("Accept", "application/json")
}

#[test]
fn a_400_mib_text_field_is_refused_at_its_cap_without_being_held() {
    let server = Server::start(ServerOptions::new());
    let audio = wav(&sine(500, 16_000, 0.3), 16_000);
    // Warm up every endpoint once, so what is measured is the field alone.
    server.assert_serves_echo_job();
    for (path, fields) in ENDPOINTS {
        let mut form = Form::new();
        for (name, value) in *fields {
            form = form.text(name, value);
        }
        let form = form
            .text("prompt", "short")
            .file("file", "a.wav", "audio/wav", &audio);
        let reply = server.post_form(path, &form);
        assert!(reply.status < 500, "{path}: {}", reply.text());
    }

    let (outcomes, memory) = PeakMemory::during(server.pid(), || {
        ENDPOINTS
            .iter()
            .map(|(path, fields)| {
                let mut prefix = String::new();
                for (name, value) in *fields {
                    prefix.push_str(&part_head(name));
                    prefix.push_str(value);
                    prefix.push_str("\r\n");
                }
                prefix.push_str(&part_head("prompt"));
                let suffix = format!("\r\n--{BOUNDARY}--\r\n");
                let content_type = format!("multipart/form-data; boundary={BOUNDARY}");
                let (reply, sent) = request_for(path)
                    .header("Content-Type", &content_type)
                    .send_streamed(
                        &server,
                        prefix.as_bytes(),
                        b'a',
                        HUGE_FIELD_BYTES,
                        suffix.as_bytes(),
                    );
                (*path, reply, sent)
            })
            .collect::<Vec<_>>()
    });
    eprintln!(
        "server resident memory {} KiB before, peak {} KiB while three 400 MiB fields were sent (+{} KiB)",
        memory.before_kib,
        memory.peak_kib,
        memory.growth_kib()
    );
    for (path, reply, sent) in outcomes {
        assert!(
            sent < 64 << 20,
            "{path}: the server read {sent} bytes of the field before refusing it"
        );
        // The answer races the server closing the connection on the unread rest; when
        // it arrives, it names the field.
        if let Some(reply) = reply {
            let (status, message) = refusal(&reply);
            assert_eq!(status, 413, "{path}: {message}");
            assert!(message.contains("`prompt`"), "{path}: {message}");
        }
    }
    assert!(
        memory.growth_kib() < 8 << 10,
        "the server's peak memory grew by {} KiB while the fields were sent",
        memory.growth_kib()
    );
    server.assert_serves_echo_job();
}

#[test]
fn fields_past_the_caps_are_refused_naming_the_field_on_every_endpoint() {
    let server = Server::start(ServerOptions::new());
    let audio = wav(&sine(500, 16_000, 0.3), 16_000);
    let send = |path: &str, fields: &[(&str, &str)], extra: &[(String, String)]| {
        let mut form = Form::new();
        for (name, value) in fields {
            form = form.text(name, value);
        }
        for (name, value) in extra {
            form = form.text(name, value);
        }
        let (content_type, body) = form.file("file", "a.wav", "audio/wav", &audio).encode();
        request_for(path).body(&content_type, &body).send(&server)
    };
    let long = "p".repeat(300 << 10);
    let quarter = "q".repeat(250 << 10);
    for (path, fields) in ENDPOINTS {
        let reply = send(path, fields, &[("prompt".into(), long.clone())]);
        let (status, message) = refusal(&reply);
        assert_eq!(status, 413, "{path}: {message}");
        assert!(
            message.contains("`prompt`") && message.contains("256 KiB"),
            "{path}: {message}"
        );
        // Each of these is under its own cap; the fifth takes the form past 1 MiB.
        let many: Vec<(String, String)> = (1..=5)
            .map(|n| (format!("note{n}"), quarter.clone()))
            .collect();
        let (status, message) = refusal(&send(path, fields, &many));
        assert_eq!(status, 413, "{path}: {message}");
        assert!(message.contains("`note5`"), "{path}: {message}");
        let crowd: Vec<(String, String)> =
            (0..70).map(|n| (format!("f{n}"), "x".to_owned())).collect();
        let (status, message) = refusal(&send(path, fields, &crowd));
        assert_eq!(status, 413, "{path}: {message}");
        assert!(message.contains("text fields"), "{path}: {message}");
    }
    // The OpenAI envelope names the parameter.
    let reply = send(
        "/v1/audio/transcriptions",
        &[("model", "echo")],
        &[("prompt".into(), long)],
    );
    assert_eq!(reply.json()["error"]["param"], "prompt", "{}", reply.text());
    server.assert_serves_echo_job();
}
