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
    let metrics = server.get("/metrics").expect(200).text();
    assert!(metrics.contains(r#"tenant="alice""#), "{metrics}");
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
