//! Tenants: with API keys configured every request needs a key, and a tenant sees
//! nothing of another's jobs and results (404, not 403) through any API.

use sandscribe_e2e::{Server, ServerOptions, sine, wav};
use serde_json::json;

fn two_tenant_server() -> Server {
    Server::start(
        ServerOptions::new()
            .api_key("alice-secret", "alice", "user")
            .api_key("bob-secret", "bob", "user")
            .api_key("ops-secret", "ops", "admin"),
    )
}

#[test]
fn a_tenant_cannot_see_or_touch_another_tenants_jobs_and_results() {
    let server = two_tenant_server();
    let audio = wav(&sine(1_000, 16_000, 0.3), 16_000);

    server.use_key(Some("alice-secret"));
    let done = server.run_job("echo", &audio, &json!({}));
    assert_eq!(done["status"], "completed", "{done:#}");
    let done_id = done["id"].as_str().expect("id").to_owned();
    let running = server.submit_ok(
        "slow",
        &audio,
        "slow.wav",
        &json!({"steps": 40, "step_ms": 250}),
    );
    assert_eq!(server.get("/api/results").expect(200).json()["total"], 1);

    server.use_key(Some("bob-secret"));
    for path in [
        format!("/api/jobs/{done_id}"),
        format!("/api/jobs/{running}"),
        format!("/api/jobs/{running}/events"),
        format!("/api/results/{done_id}"),
        format!("/api/results/{done_id}/export?format=srt"),
    ] {
        let reply = server.get(&path);
        assert_eq!(reply.status, 404, "bob reading {path}: {}", reply.text());
    }
    assert_eq!(
        server
            .post_empty(&format!("/api/jobs/{running}/cancel"))
            .status,
        404
    );
    assert_eq!(
        server.delete(&format!("/api/results/{done_id}")).status,
        404
    );
    assert_eq!(server.get("/api/results").expect(200).json()["total"], 0);
    assert_eq!(
        server.get("/api/results?q=window").expect(200).json()["total"],
        0
    );
    assert_eq!(
        server.get("/api/jobs").expect(200).json()["jobs"],
        json!([])
    );

    // Alice still has everything, and can cancel her own job.
    server.use_key(Some("alice-secret"));
    server.get(&format!("/api/results/{done_id}")).expect(200);
    let cancelled = server.cancel(&running).expect(200).json();
    assert_eq!(cancelled["status"], "cancelled");
    server.use_key(Some("ops-secret"));
    let metrics = server.get("/metrics").expect(200).text();
    assert!(metrics.contains(r#"tenant="alice""#), "{metrics}");
}

#[test]
fn the_metrics_which_name_every_tenant_need_an_admin_or_the_metrics_token() {
    let server = Server::start(
        ServerOptions::new()
            .api_key("alice-secret", "alice", "user")
            .api_key("ops-secret", "ops", "admin")
            .metrics_token("scrape-token"),
    );
    server.use_key(Some("alice-secret"));
    server.assert_serves_echo_job();
    for (key, status) in [
        (None, 401),
        (Some("alice-secret"), 403),
        (Some("wrong"), 401),
        (Some("ops-secret"), 200),
        (Some("scrape-token"), 200),
    ] {
        server.use_key(key);
        let reply = server.get("/metrics");
        assert_eq!(reply.status, status, "{key:?}: {}", reply.text());
        assert_eq!(
            reply.text().contains(r#"tenant="alice""#),
            status == 200,
            "{key:?}"
        );
    }
    // An admin's browser login reads them too; a user's does not.
    let mut admin = sandscribe_e2e::Browser::new();
    admin.log_in(&server, "ops-secret");
    assert_eq!(admin.get(&server, "/metrics").status, 200);
    let mut user = sandscribe_e2e::Browser::new();
    user.log_in(&server, "alice-secret");
    assert_eq!(user.get(&server, "/metrics").status, 403);
}

#[test]
fn with_keys_configured_every_api_needs_a_valid_key() {
    let server = two_tenant_server();
    let audio = wav(&sine(500, 16_000, 0.3), 16_000);
    server.use_key(None);
    let reply = server.submit("echo", &audio, "a.wav", &json!({}));
    assert_eq!(reply.status, 401, "{}", reply.text());
    assert_eq!(reply.error_code(), "unauthorized");
    assert_eq!(server.get("/api/results").status, 401);
    assert_eq!(server.get("/v1/models").status, 401);
    server.use_key(Some("wrong"));
    assert_eq!(server.get("/api/jobs").status, 401);
    // The browser is sent to the login page (the client follows the redirect).
    let page = server.get("/plugins").expect(200).text();
    assert!(
        page.contains("Log in") && page.contains(r#"name="key""#),
        "{page}"
    );
    // Admin-only endpoints need the admin role.
    server.use_key(Some("bob-secret"));
    assert_eq!(
        server.post_empty("/api/admin/plugins/echo/reload").status,
        403
    );
    server.use_key(Some("ops-secret"));
    server
        .post_empty("/api/admin/plugins/echo/reload")
        .expect(200);
    // The health check stays open for load balancers.
    server.use_key(None);
    server.get("/healthz").expect(200);
}

#[test]
fn without_keys_the_server_refuses_to_listen_beyond_loopback() {
    let data = tempfile::tempdir().expect("tempdir");
    let out = std::process::Command::new(sandscribe_e2e::server_binary())
        .args(["serve", "--listen", "0.0.0.0:0", "--plugins"])
        .arg(sandscribe_e2e::fixture_plugins_dir())
        .arg("--data")
        .arg(data.path())
        .output()
        .expect("run the server");
    assert!(!out.status.success(), "the server must refuse to start");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("refusing to listen on 0.0.0.0"), "{stderr}");
    assert!(
        stderr.contains("api_keys"),
        "the message says what to do: {stderr}"
    );
}

#[test]
fn one_tenants_backlog_does_not_starve_another_tenants_job() {
    let server = Server::start(
        ServerOptions::new()
            .api_key("alice-secret", "alice", "user")
            .api_key("bob-secret", "bob", "user")
            .max_running(1)
            .max_queued(100),
    );
    let audio = wav(&sine(300, 16_000, 0.3), 16_000);
    server.use_key(Some("alice-secret"));
    let slow = json!({"steps": 2, "step_ms": 200});
    let alice: Vec<String> = (0..8)
        .map(|n| server.submit_ok("slow", &audio, &format!("a{n}.wav"), &slow))
        .collect();
    server.use_key(Some("bob-secret"));
    let bob = server.submit_ok("slow", &audio, "b.wav", &slow);
    // Bob is next in turn: only Alice's running job is ahead of him.
    assert_eq!(
        server.job(&bob)["queue_position"],
        1,
        "{:#}",
        server.job(&bob)
    );
    let bob_done = server.wait_terminal(&bob, std::time::Duration::from_secs(60));
    server.use_key(Some("alice-secret"));
    let finished_before_bob = alice
        .iter()
        .map(|id| server.job(id))
        .filter(|job| {
            job["finished_at"].as_str().is_some_and(|f| {
                sandscribe_e2e::timestamp(&json!(f))
                    <= sandscribe_e2e::timestamp(&bob_done["started_at"])
            })
        })
        .count();
    assert!(
        finished_before_bob <= 1,
        "{finished_before_bob} of alice's jobs ran before bob's single job"
    );
}

#[test]
fn a_tenant_over_its_quota_gets_429_saying_which_quota_and_when_it_frees() {
    let server = Server::start(
        ServerOptions::new()
            .api_key("alice-secret", "alice", "user")
            .api_key("bob-secret", "bob", "user")
            .max_running(1)
            .extra_toml("[tenants.alice]\nmax_queued = 1\naudio_minutes_per_day = 1\n"),
    );
    let audio = wav(&sine(20_000, 16_000, 0.3), 16_000);
    server.use_key(Some("alice-secret"));
    let slow = json!({"steps": 20, "step_ms": 200});
    server.submit_ok("slow", &audio, "running.wav", &slow);
    let queued = server.submit_ok("slow", &audio, "queued.wav", &slow);
    let refused = server.submit("slow", &audio, "third.wav", &slow);
    assert_eq!(refused.status, 429, "{}", refused.text());
    assert_eq!(refused.error_code(), "quota_exceeded");
    assert!(
        refused.error_message().contains("queued jobs"),
        "{}",
        refused.error_message()
    );
    // Bob has no quota of his own and is not affected.
    server.use_key(Some("bob-secret"));
    server.submit_ok("echo", &audio, "bob.wav", &json!({}));
    // 40 s of audio used of Alice's minute: 30 s more is over the daily quota.
    // Cancelling the queued job frees the queue quota but not the audio used.
    server.use_key(Some("alice-secret"));
    server.cancel(&queued).expect(200);
    let over = server.submit(
        "echo",
        &wav(&sine(30_000, 16_000, 0.3), 16_000),
        "long.wav",
        &json!({}),
    );
    assert_eq!(over.status, 429, "{}", over.text());
    assert!(
        over.error_message().contains("audio minutes per day"),
        "{}",
        over.error_message()
    );
    assert!(
        over.error_message().contains("T00:00:00Z"),
        "says when it resets: {}",
        over.error_message()
    );
}

#[test]
fn a_tenant_sees_and_uses_only_the_plugins_on_its_allow_list() {
    let server = Server::start(
        ServerOptions::new()
            .api_key("alice-secret", "alice", "user")
            .api_key("bob-secret", "bob", "user")
            .extra_toml("[tenants.alice]\nplugins = [\"echo\"]\n"),
    );
    let audio = wav(&sine(500, 16_000, 0.3), 16_000);
    server.use_key(Some("alice-secret"));
    let list = server.get("/api/plugins").expect(200).json();
    let ids: Vec<&str> = list["plugins"]
        .as_array()
        .expect("plugins")
        .iter()
        .filter_map(|p| p["id"].as_str())
        .collect();
    assert_eq!(ids, ["echo"]);
    assert_eq!(server.get("/api/plugins/slow").status, 404);
    let refused = server.submit("slow", &audio, "a.wav", &json!({}));
    assert_eq!(refused.status, 404, "{}", refused.text());
    assert_eq!(refused.error_code(), "unknown_plugin");
    let models = server.get("/v1/models").expect(200).json();
    assert_eq!(
        models["data"].as_array().map(Vec::len),
        Some(1),
        "{models:#}"
    );
    server.submit_ok("echo", &audio, "a.wav", &json!({}));
    // The browser's plugin step: a blocked plugin's form is not there either.
    let mut browser = sandscribe_e2e::Browser::new();
    browser.log_in(&server, "alice-secret");
    let page = browser.get(&server, "/plugins").expect(200).text();
    assert!(!page.contains("Slow (test)"), "{page}");
    for (path, fields) in [
        ("/plugins/select", vec![("plugin", "slow")]),
        (
            "/plugins/config",
            vec![("plugin", "slow"), ("action", "next")],
        ),
        (
            "/plugins/config",
            vec![("plugin", "slow"), ("action", "save_defaults")],
        ),
    ] {
        let reply = browser.post_form(&server, path, &fields);
        assert_eq!(reply.status, 404, "{path} {fields:?}: {}", reply.text());
        assert!(
            !reply.text().contains("Settings for Slow"),
            "{}",
            reply.text()
        );
    }
    browser
        .post_form(&server, "/plugins/select", &[("plugin", "echo")])
        .expect(303);
    // Bob has no list: he sees them all.
    server.use_key(Some("bob-secret"));
    assert!(
        server.get("/api/plugins").expect(200).json()["plugins"]
            .as_array()
            .is_some_and(|p| p.len() > 1)
    );
}

#[test]
fn a_tenant_whose_stored_results_fill_its_quota_gets_429_until_it_deletes() {
    let server = Server::start(
        ServerOptions::new()
            .api_key("alice-secret", "alice", "user")
            .extra_toml("[tenants.alice]\nstored_bytes = 50\n"),
    );
    let audio = wav(&sine(2_000, 16_000, 0.3), 16_000);
    server.use_key(Some("alice-secret"));
    let job = server.run_job("echo", &audio, &json!({}));
    assert_eq!(job["status"], "completed", "{job:#}");
    let refused = server.submit("echo", &audio, "b.wav", &json!({}));
    assert_eq!(refused.status, 429, "{}", refused.text());
    assert_eq!(refused.error_code(), "quota_exceeded");
    assert!(
        refused.error_message().contains("stored results"),
        "{}",
        refused.error_message()
    );
    let id = job["id"].as_str().expect("id");
    server.delete(&format!("/api/results/{id}")).expect(204);
    server.submit_ok("echo", &audio, "c.wav", &json!({}));
}

#[test]
fn each_tenant_picks_media_only_from_its_own_folders() {
    let media = tempfile::tempdir().expect("tempdir");
    let (alice_dir, bob_dir) = (media.path().join("alice"), media.path().join("bob"));
    std::fs::create_dir_all(&alice_dir).expect("mkdir");
    std::fs::create_dir_all(&bob_dir).expect("mkdir");
    std::fs::write(
        alice_dir.join("talk.wav"),
        wav(&sine(500, 16_000, 0.3), 16_000),
    )
    .expect("write");
    let server = Server::start(
        ServerOptions::new()
            .api_key("alice-secret", "alice", "user")
            .api_key("bob-secret", "bob", "user")
            .extra_toml(&format!(
                "[tenants.alice]\nmedia_folders = [\"{}\"]\n[tenants.bob]\nmedia_folders = [\"{}\"]\n",
                alice_dir.display(),
                bob_dir.display()
            )),
    );
    server.use_key(Some("alice-secret"));
    let file = server.get("/media/0/talk.wav");
    assert_eq!(file.status, 200, "{}", file.text());
    server.use_key(Some("bob-secret"));
    assert_eq!(server.get("/media/0/talk.wav").status, 404);
    assert_eq!(server.get("/media/0/..%2Falice%2Ftalk.wav").status, 403);
}
