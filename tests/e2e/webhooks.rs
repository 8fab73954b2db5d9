//! Webhooks: a job's `callback_url` gets the job's terminal event, once, retried with
//! backoff while the receiver fails (each try recorded in `GET /api/jobs/{id}/deliveries`),
//! still after a restart; non-public targets are refused unless the operator allows them.
//!
//! The receiver is a small HTTP server on loopback started by each test
//! ([`sandscribe_e2e::Receiver`]), so the servers here set `[webhooks] allow_private =
//! true` (but the one that checks the refusal) and a short `retry_base_seconds`. The
//! signature is checked by an independent implementation, the PyPI `standardwebhooks`
//! package, in the Python suite (`tests/openai/test_webhooks.py`); here its headers'
//! form is.

use std::time::Duration;

use sandscribe_e2e::{Form, Receiver, Reply, Server, ServerOptions, poll_until, sine, wav};
use serde_json::{Value, json};

/// A signing secret in the specification's `whsec_<base64>` form (24 bytes).
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// How long a delivery may take to settle here (the tries are 50 ms, 200 ms, ... apart).
const SETTLE: Duration = Duration::from_secs(30);

/// A server whose webhooks may go to the loopback receiver, retried quickly.
fn options() -> ServerOptions {
    ServerOptions::new()
        .setting("webhooks", "secret", SECRET)
        .setting("webhooks", "allow_private", true)
        .setting("webhooks", "retry_base_seconds", 0.05)
}

fn audio() -> Vec<u8> {
    wav(&sine(1_000, 16_000, 0.3), 16_000)
}

/// `POST /api/jobs` with a `callback_url` field (none: the field is left out).
fn submit(server: &Server, plugin: &str, config: &Value, callback: Option<&str>) -> Reply {
    let mut form = Form::new()
        .text("plugin", plugin)
        .text("config", &config.to_string())
        .file("file", "tone.wav", "audio/wav", &audio());
    if let Some(url) = callback {
        form = form.text("callback_url", url);
    }
    server.post_form("/api/jobs", &form)
}

fn submit_ok(server: &Server, plugin: &str, config: &Value, callback: Option<&str>) -> String {
    submit(server, plugin, config, callback).expect(202).json()["id"]
        .as_str()
        .expect("a job id")
        .to_owned()
}

/// `GET /api/jobs/{id}/deliveries`' deliveries.
fn deliveries(server: &Server, id: &str) -> Vec<Value> {
    let reply = server
        .get(&format!("/api/jobs/{id}/deliveries"))
        .expect(200)
        .json();
    assert_eq!(reply["job_id"], id, "{reply:#}");
    reply["deliveries"].as_array().expect("a list").clone()
}

/// Waits until the job's one delivery is no longer pending; returns it.
fn settled(server: &Server, id: &str) -> Value {
    let mut last = Value::Null;
    poll_until(SETTLE, "the job's delivery to settle", || {
        let found = deliveries(server, id);
        assert!(found.len() <= 1, "one delivery per job: {found:#?}");
        last = found.into_iter().next().unwrap_or(Value::Null);
        last["state"] == "delivered" || last["state"] == "failed"
    });
    last
}

/// Waits until the job's delivery has `count` attempts recorded; returns it.
fn with_attempts(server: &Server, id: &str, count: usize) -> Value {
    let mut last = Value::Null;
    poll_until(SETTLE, &format!("{count} attempts of the delivery"), || {
        last = deliveries(server, id)
            .into_iter()
            .next()
            .unwrap_or(Value::Null);
        last["attempts"].as_array().map_or(0, Vec::len) >= count
    });
    last
}

fn attempt_statuses(delivery: &Value) -> Vec<Value> {
    delivery["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .map(|a| a["status"].clone())
        .collect()
}

#[test]
fn every_ending_is_delivered_once_with_its_terminal_event_and_the_standard_headers() {
    let receiver = Receiver::start(200);
    let server = Server::start(options().job_seconds(2));
    let url = receiver.url("/hooks/done?from=sandscribe");

    let done = submit_ok(&server, "echo", &json!({}), Some(&url));
    let failed = submit_ok(&server, "trap", &json!({}), Some(&url));
    let timed_out = submit_ok(
        &server,
        "slow",
        &json!({"steps": 100, "step_ms": 200}),
        Some(&url),
    );
    let cancelled = submit_ok(
        &server,
        "slow",
        &json!({"steps": 100, "step_ms": 200}),
        Some(&url),
    );
    server.cancel(&cancelled).expect(200);
    assert_eq!(server.job(&done)["callback_url"], url.as_str());

    let expected = [
        (&done, "job.done", "completed"),
        (&failed, "job.failed", "failed"),
        (&timed_out, "job.timed_out", "timed_out"),
        (&cancelled, "job.cancelled", "cancelled"),
    ];
    for (id, kind, status) in expected {
        let job = server.wait_terminal(id, SETTLE);
        assert_eq!(job["status"], status, "{job:#}");
        let delivery = settled(&server, id);
        assert_eq!(delivery["state"], "delivered", "{delivery:#}");
        assert_eq!(delivery["type"], kind, "{delivery:#}");
        assert_eq!(delivery["url"], url.as_str());
        assert_eq!(attempt_statuses(&delivery), [json!(200)], "{delivery:#}");
        assert!(delivery["next_attempt_at"].is_null(), "{delivery:#}");
    }
    // No delivery comes twice: wait a little for any that would.
    std::thread::sleep(Duration::from_millis(500));
    let got = receiver.requests();
    assert_eq!(got.len(), 4, "one request per job: {got:#?}");

    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    for (id, kind, status) in expected {
        let mine: Vec<_> = got
            .iter()
            .filter(|r| r.json()["data"]["job_id"] == id.as_str())
            .collect();
        assert_eq!(mine.len(), 1, "exactly one delivery of {kind}: {got:#?}");
        let request = mine[0];
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/hooks/done?from=sandscribe");
        assert_eq!(request.header("content-type"), Some("application/json"));
        let delivery = &deliveries(&server, id)[0];
        assert_eq!(request.header("webhook-id"), delivery["id"].as_str());
        assert!(
            request
                .header("webhook-id")
                .is_some_and(|id| id.starts_with("msg_")),
            "{request:#?}"
        );
        let timestamp: i64 = request
            .header("webhook-timestamp")
            .and_then(|t| t.parse().ok())
            .expect("webhook-timestamp: unix seconds");
        assert!(
            (now - 60..=now + 5).contains(&timestamp),
            "{timestamp} vs {now}"
        );
        let signature = request.header("webhook-signature").expect("a signature");
        let encoded = signature.strip_prefix("v1,").expect("v1,<base64>");
        assert_eq!(encoded.len(), 44, "base64 of 32 bytes: {signature}");

        let body = request.json();
        assert_eq!(body["type"], kind, "{body:#}");
        assert_eq!(body["data"]["status"], status, "{body:#}");
        sandscribe_e2e::timestamp(&body["timestamp"]);
        assert_eq!(body["data"]["links"]["job"], format!("/api/jobs/{id}"));
    }

    // `done` names its result, and the links work.
    let body = got
        .iter()
        .map(|r| r.json())
        .find(|b| b["type"] == "job.done")
        .expect("the done event");
    assert_eq!(body["data"]["result_id"], done.as_str(), "{body:#}");
    let links = &body["data"]["links"];
    let result = server
        .get(links["result"].as_str().expect("a result link"))
        .expect(200)
        .json();
    assert_eq!(result["id"], done.as_str(), "{result:#}");
    let export = server
        .get(links["export"].as_str().expect("an export link"))
        .expect(200)
        .text();
    assert!(!export.trim().is_empty());
    server
        .get(links["job"].as_str().expect("a job link"))
        .expect(200);

    // `failed` and `timed_out` say why.
    for kind in ["job.failed", "job.timed_out"] {
        let body = got
            .iter()
            .map(|r| r.json())
            .find(|b| b["type"] == kind)
            .expect("the event");
        assert!(body["data"]["error"]["kind"].is_string(), "{body:#}");
        assert!(body["data"].get("result_id").is_none(), "{body:#}");
    }
}

#[test]
fn a_receiver_that_fails_twice_gets_three_tries_each_recorded() {
    let receiver = Receiver::start(200);
    receiver.answer_next(&[500, 500]);
    let server = Server::start(options());
    let id = submit_ok(&server, "echo", &json!({}), Some(&receiver.url("/flaky")));
    server.wait_terminal(&id, SETTLE);

    let delivery = settled(&server, &id);
    assert_eq!(delivery["state"], "delivered", "{delivery:#}");
    assert_eq!(
        attempt_statuses(&delivery),
        [json!(500), json!(500), json!(200)],
        "{delivery:#}"
    );
    let attempts = delivery["attempts"].as_array().expect("attempts");
    let mut previous = None;
    for (n, attempt) in attempts.iter().enumerate() {
        assert_eq!(attempt["attempt"], n + 1, "{attempt:#}");
        assert!(
            attempt["latency_ms"].as_i64().is_some_and(|ms| ms >= 0),
            "{attempt:#}"
        );
        let at = sandscribe_e2e::timestamp(&attempt["at"]);
        assert!(
            previous.is_none_or(|p| p <= at),
            "tries in order: {delivery:#}"
        );
        previous = Some(at);
        if n < 2 {
            let error = attempt["error"].as_str().expect("a failed try says why");
            assert!(error.contains("500"), "{error}");
        } else {
            assert!(attempt["error"].is_null(), "{attempt:#}");
        }
    }
    assert!(delivery["last_error"].is_null(), "{delivery:#}");

    std::thread::sleep(Duration::from_millis(300));
    let got = receiver.requests();
    assert_eq!(got.len(), 3, "{got:#?}");
    // One message, tried three times: the same id and body, each try signed anew.
    for request in &got {
        assert_eq!(request.header("webhook-id"), delivery["id"].as_str());
        assert_eq!(request.body, got[0].body);
    }
    assert_eq!(
        got.iter().map(|r| r.answered).collect::<Vec<_>>(),
        [500, 500, 200]
    );
}

#[test]
fn client_errors_are_final_but_408_429_and_connection_errors_are_retried() {
    let receiver = Receiver::start(200);
    let server = Server::start(options().setting("webhooks", "max_attempts", 3));

    // 410: the receiver does not want it; no second try.
    receiver.answer_next(&[410]);
    let gone = submit_ok(&server, "echo", &json!({}), Some(&receiver.url("/gone")));
    let delivery = settled(&server, &gone);
    assert_eq!(delivery["state"], "failed", "{delivery:#}");
    assert_eq!(attempt_statuses(&delivery), [json!(410)], "{delivery:#}");
    assert!(
        delivery["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("410")),
        "{delivery:#}"
    );

    // 429 and 408 are "later", not "no".
    receiver.answer_next(&[429, 408]);
    let later = submit_ok(&server, "echo", &json!({}), Some(&receiver.url("/later")));
    let delivery = settled(&server, &later);
    assert_eq!(delivery["state"], "delivered", "{delivery:#}");
    assert_eq!(
        attempt_statuses(&delivery),
        [json!(429), json!(408), json!(200)],
        "{delivery:#}"
    );

    // Nobody listening: tried max_attempts times, then given up.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").port()
    };
    let nobody = submit_ok(
        &server,
        "echo",
        &json!({}),
        Some(&format!("http://127.0.0.1:{closed}/")),
    );
    let delivery = settled(&server, &nobody);
    assert_eq!(delivery["state"], "failed", "{delivery:#}");
    assert_eq!(
        attempt_statuses(&delivery),
        [Value::Null, Value::Null, Value::Null],
        "{delivery:#}"
    );
    let error = delivery["last_error"].as_str().expect("why");
    assert!(error.contains("cannot connect"), "{error}");
    assert!(error.contains("gave up after 3 tries"), "{error}");
    assert_eq!(receiver.requests().len(), 1 + 3);
}

#[test]
fn private_and_loopback_targets_are_refused_unless_allowed() {
    let receiver = Receiver::start(200);
    let port = receiver.port();
    let server = Server::start(ServerOptions::new().setting("webhooks", "secret", SECRET));
    for (url, kind) in [
        (format!("http://127.0.0.1:{port}/"), "loopback"),
        // A name is resolved at submission: `localhost` is loopback too.
        (format!("http://localhost:{port}/"), "loopback"),
        (format!("http://[::1]:{port}/"), "loopback"),
        ("http://10.1.2.3/hook".to_owned(), "private"),
        ("https://192.168.0.10/hook".to_owned(), "private"),
        ("http://169.254.169.254/latest".to_owned(), "link-local"),
        ("http://[::ffff:127.0.0.1]/".to_owned(), "loopback"),
    ] {
        let reply = submit(&server, "echo", &json!({}), Some(&url)).expect(400);
        assert_eq!(reply.error_code(), "invalid_callback_url", "{url}");
        let message = reply.error_message();
        assert!(message.contains(kind), "{url}: {message}");
        assert!(message.contains("allow_private"), "{url}: {message}");
    }
    for url in ["ftp://hooks.example/", "file:///etc/passwd", "not a url"] {
        let reply = submit(&server, "echo", &json!({}), Some(url)).expect(400);
        assert_eq!(reply.error_code(), "invalid_callback_url", "{url}");
    }
    let jobs = server.get("/api/jobs").expect(200).json();
    assert_eq!(jobs["jobs"], json!([]), "no job was created: {jobs:#}");

    // Without a secret to sign with there are no webhooks at all.
    let no_secret = Server::start(ServerOptions::new().setting("webhooks", "allow_private", true));
    let reply = submit(&no_secret, "echo", &json!({}), Some(&receiver.url("/"))).expect(400);
    assert_eq!(reply.error_code(), "invalid_callback_url");
    assert!(reply.error_message().contains("secret"), "{}", reply.text());

    // Allowed, the same loopback target is delivered to.
    let allowed = Server::start(options());
    let id = submit_ok(&allowed, "echo", &json!({}), Some(&receiver.url("/ok")));
    assert_eq!(settled(&allowed, &id)["state"], "delivered");
    assert_eq!(receiver.requests().len(), 1);
}

#[test]
fn a_target_no_longer_allowed_when_its_retry_comes_is_refused_and_recorded() {
    let receiver = Receiver::start(500);
    // Retries far enough apart that the restart comes between two of them.
    let allowing = options().setting("webhooks", "retry_base_seconds", 2);
    let mut server = Server::start(allowing);
    let id = submit_ok(&server, "echo", &json!({}), Some(&receiver.url("/hook")));
    with_attempts(&server, &id, 1);

    server.restart_with(ServerOptions::new().setting("webhooks", "secret", SECRET));
    let delivery = settled(&server, &id);
    assert_eq!(delivery["state"], "failed", "{delivery:#}");
    assert_eq!(
        attempt_statuses(&delivery),
        [json!(500), Value::Null],
        "{delivery:#}"
    );
    let error = delivery["attempts"][1]["error"].as_str().expect("why");
    assert!(error.contains("loopback"), "{error}");
    assert!(error.contains("allow_private"), "{error}");
    assert_eq!(receiver.requests().len(), 1, "the refused try sent nothing");
}

#[test]
fn a_restart_in_the_middle_of_retries_still_delivers() {
    let receiver = Receiver::start(500);
    let mut server = Server::start(options());
    let id = submit_ok(&server, "echo", &json!({}), Some(&receiver.url("/later")));
    server.wait_terminal(&id, SETTLE);
    // Two tries failed (50 ms apart); the third is due some 200 ms later.
    with_attempts(&server, &id, 2);
    server.kill();
    let before = receiver.requests().len();
    assert!(before >= 2, "{before}");

    receiver.answer_by_default(200);
    server.restart();
    let delivery = settled(&server, &id);
    assert_eq!(delivery["state"], "delivered", "{delivery:#}");
    let statuses = attempt_statuses(&delivery);
    assert_eq!(statuses.last(), Some(&json!(200)), "{delivery:#}");
    assert!(
        statuses[..statuses.len() - 1].iter().all(|s| s == 500),
        "{delivery:#}"
    );
    std::thread::sleep(Duration::from_millis(300));
    let got = receiver.requests();
    assert_eq!(
        got.iter().filter(|r| r.answered == 200).count(),
        1,
        "delivered once: {got:#?}"
    );
    assert!(
        got.iter()
            .all(|r| r.header("webhook-id") == delivery["id"].as_str())
    );
}

#[test]
fn jobs_cut_short_by_a_shutdown_or_a_crash_report_interrupted() {
    let receiver = Receiver::start(200);
    let mut server = Server::start(options().max_running(1).shutdown_grace_seconds(0));
    let slow = json!({"steps": 200, "step_ms": 100});
    let url = receiver.url("/cut");

    // SIGTERM: the running job is interrupted and its delivery recorded before the exit.
    let stopped = submit_ok(&server, "slow", &slow, Some(&url));
    poll_until(Duration::from_secs(20), "the job to run", || {
        server.job(&stopped)["status"] == "running"
    });
    let (_, clean) = server.terminate_and_restart(Duration::from_secs(30));
    assert!(clean, "a clean exit");
    assert_eq!(settled(&server, &stopped)["state"], "delivered");

    // SIGKILL: nothing runs on; the restart finds the job unfinished and reports it.
    let crashed = submit_ok(&server, "slow", &slow, Some(&url));
    poll_until(Duration::from_secs(20), "the job to run", || {
        server.job(&crashed)["status"] == "running"
    });
    server.restart();
    assert_eq!(server.job(&crashed)["status"], "interrupted");
    assert_eq!(settled(&server, &crashed)["state"], "delivered");

    std::thread::sleep(Duration::from_millis(300));
    let got = receiver.requests();
    assert_eq!(got.len(), 2, "{got:#?}");
    for (request, id) in got.iter().zip([&stopped, &crashed]) {
        let body = request.json();
        assert_eq!(body["type"], "job.interrupted", "{body:#}");
        assert_eq!(body["data"]["job_id"], id.as_str(), "{body:#}");
    }
}

#[test]
fn a_tenants_default_callback_serves_its_api_jobs_but_not_openai_requests() {
    let receiver = Receiver::start(200);
    let server = Server::start(
        options()
            .api_key("alice-key", "alice", "user")
            .api_key("bob-key", "bob", "user")
            .setting("tenants.alice", "callback_url", receiver.url("/alice"))
            .setting(
                "tenants.alice",
                "webhook_secret",
                "whsec_QWxpY2UncyBvd24gc2lnbmluZyBrZXkhIQ==",
            ),
    );

    server.use_key(Some("alice-key"));
    let by_default = submit_ok(&server, "echo", &json!({}), None);
    assert_eq!(settled(&server, &by_default)["state"], "delivered");
    let explicit = submit_ok(&server, "echo", &json!({}), Some(&receiver.url("/own")));
    assert_eq!(settled(&server, &explicit)["state"], "delivered");
    // The OpenAI API has no callbacks, the tenant's default included.
    let form = Form::new()
        .text("model", "echo")
        .file("file", "tone.wav", "audio/wav", &audio());
    server
        .post_form("/v1/audio/transcriptions", &form)
        .expect(200);

    server.use_key(Some("bob-key"));
    let bobs = submit_ok(&server, "echo", &json!({}), None);
    server.wait_terminal(&bobs, SETTLE);
    assert_eq!(deliveries(&server, &bobs), Vec::<Value>::new());
    // Another tenant's job's deliveries are not found.
    server
        .get(&format!("/api/jobs/{by_default}/deliveries"))
        .expect(404);

    std::thread::sleep(Duration::from_millis(500));
    let got = receiver.requests();
    let paths: Vec<&str> = got.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, ["/alice", "/own"], "{got:#?}");

    server.use_key(Some("alice-key"));
    let results = server.get("/api/results").expect(200).json();
    assert_eq!(results["total"], 3, "{results:#}");
    for item in results["items"].as_array().expect("items") {
        let id = item["id"].as_str().expect("id");
        let expected = usize::from(id == by_default || id == explicit);
        assert_eq!(deliveries(&server, id).len(), expected, "{id}");
    }
}

#[test]
fn a_tenant_over_its_cap_of_pending_deliveries_gets_them_recorded_failed() {
    let receiver = Receiver::start(500);
    let server = Server::start(
        options()
            .setting("webhooks", "max_pending_per_tenant", 1)
            .setting("webhooks", "retry_base_seconds", 30),
    );
    let first = submit_ok(&server, "echo", &json!({}), Some(&receiver.url("/a")));
    let pending = with_attempts(&server, &first, 1);
    assert_eq!(pending["state"], "pending", "{pending:#}");
    assert!(pending["next_attempt_at"].is_string(), "{pending:#}");

    let second = submit_ok(&server, "echo", &json!({}), Some(&receiver.url("/b")));
    let refused = settled(&server, &second);
    assert_eq!(refused["state"], "failed", "{refused:#}");
    assert_eq!(refused["attempts"], json!([]), "{refused:#}");
    let error = refused["last_error"].as_str().expect("why");
    assert!(error.contains("max_pending_per_tenant"), "{error}");
    assert_eq!(receiver.requests().len(), 1);
}
