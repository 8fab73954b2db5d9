//! Faults are contained: misbehaving plugins run beside healthy jobs, every healthy job
//! still completes with a correct result, and every bad one fails with its own typed
//! reason.

use std::time::Duration;

use sandscribe_e2e::{Server, ServerOptions, sine, wav};
use serde_json::{Value, json};

/// The echo fixture's answer for a 3 s sine at the given amplitude, computed from a
/// quiet run on its own server: the reference the jobs under fire must match.
fn reference_segments(amplitude: f32) -> Value {
    let server = Server::start(ServerOptions::new());
    let job = server.run_job(
        "echo",
        &wav(&sine(3_000, 16_000, amplitude), 16_000),
        &json!({}),
    );
    assert_eq!(job["status"], "completed", "{job:#}");
    job["result"]["transcript"]["segments"].clone()
}

#[test]
fn healthy_jobs_complete_correctly_while_bad_plugins_fail_beside_them() {
    let expected = reference_segments(0.5);
    let server = Server::start(
        ServerOptions::new()
            .max_running(4)
            .max_queued(100)
            .job_seconds(3)
            .log_bytes(64 << 10)
            .output_bytes(1 << 20),
    );
    let audio = wav(&sine(3_000, 16_000, 0.5), 16_000);
    let bad: Vec<(&str, Value, &str, &str)> = vec![
        ("spin", json!({}), "timed_out", "timed_out"),
        ("oom", json!({}), "failed", "out_of_memory"),
        ("trap", json!({}), "failed", "plugin_trap"),
        ("flood", json!({}), "failed", "invalid_output"),
        (
            "liar",
            json!({"lie": "out_of_order"}),
            "failed",
            "invalid_output",
        ),
        (
            "liar",
            json!({"lie": "past_end"}),
            "failed",
            "invalid_output",
        ),
        (
            "liar",
            json!({"lie": "end_before_start"}),
            "failed",
            "invalid_output",
        ),
        (
            "liar",
            json!({"lie": "huge_text"}),
            "failed",
            "invalid_output",
        ),
        (
            "liar",
            json!({"lie": "bad_config"}),
            "failed",
            "plugin_bad_config",
        ),
    ];
    let mut healthy = Vec::new();
    let mut faulty = Vec::new();
    let mut quarantined = 0;
    for (plugin, config, status, kind) in &bad {
        let reply = server.submit(plugin, &audio, "bad.wav", config);
        if reply.status == 503 {
            // After three crashes in a row a plugin is paused: also its own typed reason.
            assert_eq!(
                reply.error_code(),
                "plugin_quarantined",
                "{plugin}: {}",
                reply.text()
            );
            quarantined += 1;
        } else {
            let id = reply.expect(202).json()["id"]
                .as_str()
                .expect("id")
                .to_owned();
            faulty.push((id, *status, *kind, *plugin));
        }
        healthy.push(server.submit_ok("echo", &audio, "good.wav", &json!({})));
    }
    assert!(
        quarantined <= 2,
        "only the liar's later jobs can meet a quarantine"
    );
    for (id, status, kind, plugin) in faulty {
        let job = server.wait_terminal(&id, Duration::from_secs(60));
        assert_eq!(job["status"], status, "{plugin}: {job:#}");
        assert_eq!(job["error"]["kind"], kind, "{plugin}: {job:#}");
        assert!(
            job["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{plugin}: a failure says why: {job:#}"
        );
    }
    for id in healthy {
        let job = server.wait_terminal(&id, Duration::from_secs(60));
        assert_eq!(job["status"], "completed", "{job:#}");
        assert_eq!(job["result"]["transcript"]["segments"], expected, "{job:#}");
    }
    server.assert_serves_echo_job();
}

#[test]
fn a_stack_overflow_is_its_own_failure_kind() {
    // Deep recursion in a plugin: the capped wasm stack stops it, the job says why. The
    // cap is set above a default thread's 2 MiB: the server must size its threads for it.
    let server = Server::start(ServerOptions::new().stack_bytes(6 << 20));
    let job = server.run_job(
        "trap",
        &wav(&sine(500, 16_000, 0.1), 16_000),
        &json!({"mode": "stack_overflow"}),
    );
    assert_eq!(job["status"], "failed", "{job:#}");
    assert_eq!(job["error"]["kind"], "stack_overflow", "{job:#}");
    server.assert_serves_echo_job();
}
