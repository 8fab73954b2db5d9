//! Results are durable: a restarted server still lists, serves and exports them.

use sandscribe_e2e::{Server, ServerOptions, sine, wav};
use serde_json::json;

#[test]
fn results_written_before_a_restart_are_served_after_it() {
    let mut server = Server::start(ServerOptions::new());
    let job = server.run_job("echo", &wav(&sine(2_000, 16_000, 0.4), 16_000), &json!({}));
    assert_eq!(job["status"], "completed", "{job:#}");
    let id = job["id"].as_str().expect("id").to_owned();
    let before = server.get(&format!("/api/results/{id}")).expect(200).json();
    let srt_before = server
        .get(&format!("/api/results/{id}/export?format=srt"))
        .expect(200)
        .text();

    server.restart();

    let list = server.get("/api/results").expect(200).json();
    assert_eq!(list["total"], 1, "{list:#}");
    assert_eq!(list["items"][0]["id"], id.as_str());

    assert_eq!(
        server.get(&format!("/api/results/{id}")).expect(200).json(),
        before
    );
    let job = server.job(&id);
    assert_eq!(job["status"], "completed", "{job:#}");
    assert_eq!(job["result"], before);
    assert!(
        job["usage"]["peak_memory_bytes"]
            .as_u64()
            .is_some_and(|b| b > 0),
        "what the job used survives the restart: {job:#}"
    );
    let srt_after = server
        .get(&format!("/api/results/{id}/export?format=srt"))
        .expect(200)
        .text();
    assert_eq!(srt_after, srt_before);

    // The job's story after a restart is its `done` event.
    let events = server.events(&id, None).to_end();
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0].event, "done");
    assert_eq!(events[0].data["result"], before);

    // A finished job cannot be cancelled after a restart either.
    assert_eq!(
        server.cancel(&id).expect(409).error_code(),
        "already_finished"
    );
    server.assert_serves_echo_job();
}

/// Waits until the job reports `running`.
fn wait_running(server: &Server, id: &str) {
    sandscribe_e2e::poll_until(std::time::Duration::from_secs(20), "the job to run", || {
        server.job(id)["status"] == "running"
    });
}

#[test]
fn after_sigkill_done_results_are_intact_and_unfinished_jobs_are_interrupted_and_resubmittable() {
    let mut server = Server::start(ServerOptions::new().max_running(1));
    let audio = wav(&sine(2_000, 16_000, 0.4), 16_000);
    let done = server.run_job("echo", &audio, &json!({}));
    assert_eq!(done["status"], "completed", "{done:#}");
    let done_id = done["id"].as_str().expect("id").to_owned();
    let before = server
        .get(&format!("/api/results/{done_id}"))
        .expect(200)
        .json();

    let running = server.submit_ok(
        "slow",
        &audio,
        "running.wav",
        &json!({"steps": 100, "step_ms": 200}),
    );
    wait_running(&server, &running);
    let queued = server.submit_ok("echo", &audio, "queued.wav", &json!({"prefix": "again "}));
    assert_eq!(server.job(&queued)["status"], "queued");

    server.restart(); // SIGKILL, then start on the same data folder

    assert_eq!(
        server
            .get(&format!("/api/results/{done_id}"))
            .expect(200)
            .json(),
        before
    );
    for id in [&running, &queued] {
        let job = server.job(id);
        assert_eq!(job["status"], "interrupted", "{job:#}");
        assert_eq!(job["error"]["kind"], "interrupted", "{job:#}");
    }
    // The upload was kept: the queued job runs again with its file and settings.
    let reply = server
        .post_empty(&format!("/api/jobs/{queued}/resubmit"))
        .expect(202)
        .json();
    let new_id = reply["id"].as_str().expect("new id").to_owned();
    let job = server.wait_terminal(&new_id, std::time::Duration::from_secs(30));
    assert_eq!(job["status"], "completed", "{job:#}");
    assert_eq!(job["file_name"], "queued.wav");
    let text = job["result"]["transcript"]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(text.starts_with("again window 1"), "{text}");
    assert_eq!(server.job(&queued)["resubmitted_as"], new_id.as_str());
    // A job that is not interrupted cannot be resubmitted.
    server
        .post_empty(&format!("/api/jobs/{done_id}/resubmit"))
        .expect(409);
}

#[test]
fn sigterm_lets_running_jobs_finish_within_the_grace_period() {
    let mut server = Server::start(
        ServerOptions::new()
            .max_running(1)
            .shutdown_grace_seconds(10),
    );
    let audio = wav(&sine(2_000, 16_000, 0.4), 16_000);
    let running = server.submit_ok(
        "slow",
        &audio,
        "short.wav",
        &json!({"steps": 4, "step_ms": 250}),
    );
    wait_running(&server, &running);
    let queued = server.submit_ok("echo", &audio, "queued.wav", &json!({}));

    let (took, clean) = server.terminate_and_restart(std::time::Duration::from_secs(20));
    assert!(clean, "the server should exit 0 after SIGTERM");
    assert!(
        took < std::time::Duration::from_secs(8),
        "shutdown took {took:?}"
    );

    let job = server.job(&running);
    assert_eq!(
        job["status"], "completed",
        "the running job had time to finish: {job:#}"
    );
    server.get(&format!("/api/results/{running}")).expect(200);
    assert_eq!(server.job(&queued)["status"], "interrupted");
}

#[test]
fn sigterm_stops_running_jobs_after_the_grace_period_and_records_them() {
    let mut server = Server::start(
        ServerOptions::new()
            .max_running(1)
            .shutdown_grace_seconds(1),
    );
    let audio = wav(&sine(2_000, 16_000, 0.4), 16_000);
    let running = server.submit_ok("spin", &audio, "spin.wav", &json!({}));
    wait_running(&server, &running);

    let (took, clean) = server.terminate_and_restart(std::time::Duration::from_secs(20));
    assert!(clean, "the server should exit 0 after SIGTERM");
    assert!(
        took < std::time::Duration::from_secs(5),
        "shutdown took {took:?}"
    );
    let job = server.job(&running);
    assert_eq!(job["status"], "interrupted", "{job:#}");
}
