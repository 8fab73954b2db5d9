//! Nothing the server sends can be taken for something else. Kept audio and media files
//! are served as the type their bytes name — a valid WAV named `poly.html` with a script
//! in a chunk is `audio/wav`, an HTML file named `.wav` is a download — and are kept
//! under names without the user's extension. Every response of every kind carries
//! `X-Content-Type-Options: nosniff`; whatever is not a page is never `text/html` and is
//! sandboxed if opened, and exports are text or JSON downloads.

use std::time::Duration;

use sandscribe_e2e::{Form, RawRequest, Reply, Server, ServerOptions, files_under, sine, wav};
use serde_json::json;

/// A valid WAV whose first chunk is a page with a script, as an attacker would upload it.
fn polyglot_wav() -> Vec<u8> {
    let plain = wav(&sine(1_000, 16_000, 0.3), 16_000);
    let mut page = b"<!doctype html><html><script>document.title='pwned'</script></html>".to_vec();
    if page.len() % 2 == 1 {
        page.push(b' ');
    }
    let mut junk = b"junk".to_vec();
    junk.extend_from_slice(&u32::try_from(page.len()).expect("small").to_le_bytes());
    junk.extend_from_slice(&page);
    // RIFF header, the junk chunk, then the plain file's fmt and data chunks.
    let chunks = &plain[12..];
    let size = u32::try_from(4 + junk.len() + chunks.len()).expect("small");
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&size.to_le_bytes());
    out.extend_from_slice(b"WAVE");
    out.extend_from_slice(&junk);
    out.extend_from_slice(chunks);
    out
}

/// A response that is not a page: `nosniff`, not HTML, sandboxed.
#[track_caller]
fn assert_not_a_page(what: &str, reply: &Reply) {
    assert_eq!(
        reply.header("x-content-type-options"),
        Some("nosniff"),
        "{what}: {reply:?}"
    );
    let content_type = reply.header("content-type").unwrap_or_default();
    assert!(
        !content_type.contains("html"),
        "{what} is served as {content_type:?}"
    );
    let policy = reply.header("content-security-policy").unwrap_or_default();
    assert!(
        policy.contains("sandbox") && policy.contains("default-src 'none'"),
        "{what} has policy {policy:?}"
    );
}

/// A page: HTML with the page policy and `nosniff`.
#[track_caller]
fn assert_a_page(what: &str, reply: &Reply) {
    assert_eq!(
        reply.header("x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    let content_type = reply.header("content-type").unwrap_or_default();
    assert!(
        content_type.starts_with("text/html"),
        "{what}: {content_type:?}"
    );
    let policy = reply.header("content-security-policy").unwrap_or_default();
    assert!(
        policy.contains("script-src 'self'") && policy.contains("object-src 'none'"),
        "{what} has policy {policy:?}"
    );
}

#[test]
fn a_wav_named_html_is_served_as_audio_and_kept_without_the_name() {
    let media = tempfile::tempdir().expect("tempdir");
    let poly = polyglot_wav();
    std::fs::write(media.path().join("poly.html"), &poly).expect("write");
    std::fs::write(
        media.path().join("page.wav"),
        b"<html><script>alert(1)</script>",
    )
    .expect("write");
    let server = Server::start(ServerOptions::new().extra_toml(&format!(
        "[tenants.default]\nmedia_folders = [\"{}\"]\n",
        media.path().display()
    )));

    let id = server.submit_ok("echo", &poly, "poly.html", &json!({}));
    let job = server.wait_terminal(&id, Duration::from_secs(30));
    assert_eq!(
        job["status"], "completed",
        "the polyglot is valid audio: {job:#}"
    );
    let audio = server.get(&format!("/results/{id}/audio")).expect(200);
    assert_eq!(audio.header("content-type"), Some("audio/wav"));
    assert_not_a_page("the kept polyglot", &audio);
    assert_eq!(audio.body, poly, "served byte for byte");
    let range = RawRequest::new("GET", &format!("/results/{id}/audio"))
        .header("Range", "bytes=0-3")
        .send(&server);
    assert_eq!((range.status, range.body.as_slice()), (206, &b"RIFF"[..]));
    assert_eq!(range.header("content-type"), Some("audio/wav"));
    let kept: Vec<String> = std::fs::read_dir(server.data_dir().join("audio"))
        .expect("kept audio")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        kept,
        std::slice::from_ref(&id),
        "kept under the job id alone"
    );

    // Media folders: the bytes decide, not the name.
    let preview = server.get("/media/0/poly.html").expect(200);
    assert_eq!(preview.header("content-type"), Some("audio/wav"));
    assert_not_a_page("a media file named .html", &preview);
    let page = server.get("/media/0/page.wav").expect(200);
    assert_eq!(
        page.header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(page.header("content-disposition"), Some("attachment"));
    assert_not_a_page("an HTML file named .wav", &page);

    // The browser's upload keeps no extension either.
    let (content_type, body) = Form::new()
        .file("file", "poly.html", "text/html", &poly)
        .encode();
    let uploaded = server.post_raw("/file/upload", &content_type, &body);
    assert!(matches!(uploaded.status, 200 | 303), "{}", uploaded.text());
    let staged = files_under(&server.data_dir().join("web/staged"));
    assert_eq!(staged.len(), 1, "{staged:?}");
    for path in staged {
        assert_eq!(path.extension(), None, "staged as {}", path.display());
    }
}

#[test]
fn every_kind_of_response_carries_nosniff_and_only_pages_are_html() {
    let server = Server::start(ServerOptions::new());
    let audio = wav(&sine(1_000, 16_000, 0.3), 16_000);
    // A transcript that is valid JavaScript: as a same-origin script it would run.
    let script = "alert(document.domain)//";
    let job = server.run_job("echo", &audio, &json!({"prefix": script}));
    assert_eq!(job["status"], "completed", "{job:#}");
    let id = job["id"].as_str().expect("id").to_owned();
    let unknown = "00000000-0000-4000-8000-000000000000";

    for (format, content_type) in [
        ("txt", "text/plain; charset=utf-8"),
        ("srt", "application/x-subrip; charset=utf-8"),
        ("vtt", "text/vtt; charset=utf-8"),
        ("json", "application/json"),
    ] {
        let export = server
            .get(&format!("/api/results/{id}/export?format={format}"))
            .expect(200);
        assert!(export.text().contains(script), "{}", export.text());
        assert_eq!(
            export.header("content-type"),
            Some(content_type),
            "{format}"
        );
        assert!(
            export
                .header("content-disposition")
                .is_some_and(|d| d.starts_with("attachment;")),
            "{format} is a download: {export:?}"
        );
        assert_not_a_page(&format!("the {format} export"), &export);
    }

    let transcription = |format: &str| {
        let form = Form::new()
            .text("model", "echo")
            .text("response_format", format)
            .file("file", "a.wav", "audio/wav", &audio);
        server
            .post_form("/v1/audio/transcriptions", &form)
            .expect(200)
    };
    let mut others: Vec<(String, Reply)> = ["text", "srt", "vtt", "json", "verbose_json"]
        .into_iter()
        .map(|format| (format!("/v1 {format}"), transcription(format)))
        .collect();
    for path in [
        "/healthz".to_owned(),
        "/metrics".to_owned(),
        "/api/plugins".to_owned(),
        "/api/plugins/echo".to_owned(),
        "/api/jobs".to_owned(),
        format!("/api/jobs/{id}"),
        format!("/api/jobs/{id}/events"),
        "/api/results".to_owned(),
        format!("/api/results/{id}"),
        format!("/api/results/{unknown}"),
        format!("/api/results/{id}/export?format=doc"),
        "/v1/models".to_owned(),
        "/v1/models/nope".to_owned(),
        "/assets/app.js".to_owned(),
        "/assets/app.css".to_owned(),
        "/assets/htmx.min.js".to_owned(),
        "/assets/icon.svg".to_owned(),
        "/assets/nope".to_owned(),
        "/no/such/path".to_owned(),
        format!("/results/{id}/audio"),
    ] {
        let reply = server.get(&path);
        others.push((format!("GET {path} ({})", reply.status), reply));
    }
    // Redirects are not pages either (the client above would follow them).
    for path in ["/", "/confirm", "/file"] {
        let reply = RawRequest::new("GET", path).send(&server).expect(303);
        others.push((format!("the redirect of {path}"), reply));
    }
    others.push((
        "DELETE /healthz".to_owned(),
        server.delete("/healthz").expect(405),
    ));
    others.push((
        "a malformed job".to_owned(),
        server
            .post_raw("/api/jobs", "multipart/form-data; boundary=x", b"garbage")
            .expect(400),
    ));
    others.push((
        "a post from another site".to_owned(),
        RawRequest::new("POST", "/api/jobs")
            .header("Origin", "http://evil.example")
            .send(&server)
            .expect(403),
    ));
    for (what, reply) in &others {
        assert_not_a_page(what, reply);
    }

    for path in [
        "/plugins".to_owned(),
        "/history".to_owned(),
        "/settings".to_owned(),
        format!("/results/{id}"),
        format!("/jobs/{unknown}"),
    ] {
        assert_a_page(&path, &server.get(&path));
    }
}

#[test]
fn with_keys_the_login_page_is_a_page_and_refusals_are_not() {
    let server = Server::start(ServerOptions::new().api_key("alice-secret", "alice", "user"));
    server.use_key(None);
    assert_a_page("the login page", &server.get("/login").expect(200));
    for path in ["/api/results", "/v1/models", "/metrics"] {
        assert_not_a_page(path, &server.get(path).expect(401));
    }
    let refused = RawRequest::new("POST", "/plugins/select")
        .header("Origin", "http://evil.example")
        .body("application/x-www-form-urlencoded", b"plugin=echo")
        .send(&server)
        .expect(403);
    assert_not_a_page("a refused form", &refused);
}
