//! The queue: at most `max_running` jobs run, the rest wait in order, a full queue says 429.

use std::time::Duration;

use sandscribe_e2e::{Server, ServerOptions, sine, timestamp, wav};
use serde_json::json;

fn audio() -> Vec<u8> {
    wav(&sine(1_000, 16_000, 0.3), 16_000)
}

#[test]
fn with_one_slot_the_second_job_waits_at_position_1_until_the_first_has_finished() {
    let server = Server::start(ServerOptions::new().max_running(1));
    let first = server.submit_ok(
        "slow",
        &audio(),
        "first.wav",
        &json!({"steps": 5, "step_ms": 100}),
    );
    let reply = server
        .submit("echo", &audio(), "second.wav", &json!({}))
        .expect(202);
    let second = reply.json();
    assert_eq!(second["status"], "queued", "{second:#}");
    assert_eq!(second["queue_position"], 1, "{second:#}");
    let second_id = second["id"].as_str().expect("id").to_owned();
    assert!(
        server.get("/api/jobs").expect(200).json()["jobs"]
            .as_array()
            .expect("active jobs")
            .len()
            == 2
    );

    // The second job's `running` status comes only after the first job has finished.
    let mut events = server.events(&second_id, None);
    let running = events
        .by_ref()
        .find(|e| e.event == "status" && e.data["status"] == "running")
        .expect("the second job starts");
    let first_job = server.job(&first);
    assert_eq!(
        first_job["status"], "completed",
        "when the second job starts (event {}), the first one has finished",
        running.id
    );
    let rest: Vec<_> = events.collect();
    assert_eq!(rest.last().map(|e| e.event.as_str()), Some("done"));

    let second_job = server.job(&second_id);
    assert!(
        timestamp(&first_job["finished_at"]) <= timestamp(&second_job["started_at"]),
        "first finished at {}, second started at {}",
        first_job["finished_at"],
        second_job["started_at"]
    );
}

#[test]
fn a_full_queue_answers_429_queue_full() {
    let server = Server::start(ServerOptions::new().max_running(1).max_queued(1));
    let slow = json!({"steps": 10, "step_ms": 200});
    let running = server.submit_ok("slow", &audio(), "1.wav", &slow);
    let waiting = server.submit_ok("slow", &audio(), "2.wav", &slow);
    let refused = server.submit("slow", &audio(), "3.wav", &slow).expect(429);
    assert_eq!(refused.error_code(), "queue_full");
    assert!(
        server
            .data_dir()
            .join("uploads")
            .read_dir()
            .is_ok_and(|d| d.count() == 2)
    );

    // Free the server quickly: cancel both.
    assert_eq!(
        server.cancel(&waiting).expect(200).json()["status"],
        "cancelled"
    );
    assert_eq!(
        server.cancel(&running).expect(200).json()["status"],
        "cancelled"
    );
}

#[test]
fn a_queued_job_can_be_cancelled_and_never_runs() {
    let server = Server::start(ServerOptions::new().max_running(1));
    let blocker = server.submit_ok(
        "slow",
        &audio(),
        "1.wav",
        &json!({"steps": 10, "step_ms": 100}),
    );
    let queued = server.submit_ok("echo", &audio(), "2.wav", &json!({}));
    assert_eq!(server.job(&queued)["status"], "queued");

    let cancelled = server.cancel(&queued).expect(200).json();
    assert_eq!(cancelled["status"], "cancelled", "{cancelled:#}");
    assert!(
        cancelled.get("started_at").is_none(),
        "it never started: {cancelled:#}"
    );

    let events = server.events(&queued, None).to_end();
    assert_eq!(events.last().map(|e| e.event.as_str()), Some("cancelled"));
    assert!(
        !events
            .iter()
            .any(|e| e.event == "status" && e.data["status"] == "running"),
        "a cancelled queued job never runs: {events:#?}"
    );

    // The slot goes to nobody else; the blocker finishes normally.
    let blocker = server.wait_terminal(&blocker, Duration::from_secs(30));
    assert_eq!(blocker["status"], "completed");
    assert!(
        server.get(&format!("/api/results/{queued}")).status == 404,
        "a cancelled job has no result"
    );
}
