//! Misbehaving plugins: the sandbox stops them, reports why, and the server goes on.

use std::time::{Duration, Instant};

use sandscribe_e2e::{Server, ServerOptions, SseEvent, sine, wav};
use serde_json::json;

fn one_second() -> Vec<u8> {
    wav(&sine(1_000, 16_000, 0.3), 16_000)
}

/// Follows a job's events until the plugin has been started.
fn wait_until_plugin_started(events: &mut impl Iterator<Item = SseEvent>) {
    let started = events.any(|e| e.event == "progress" && e.data["stage"] == "starting plugin");
    assert!(started, "the job never reached the plugin");
}

#[test]
fn cancel_stops_a_spinning_plugin_within_100ms() {
    let server = Server::start(ServerOptions::new());
    let id = server.submit_ok("spin", &one_second(), "spin.wav", &json!({}));
    let mut events = server.events(&id, None);
    wait_until_plugin_started(&mut events);
    // Not synchronisation: the scenario is a plugin that has been stuck in its loop for
    // a while (no event marks "inside the loop").
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(server.job(&id)["status"], "running");

    let sent = Instant::now();
    let reply = server.cancel(&id).expect(200);
    let latency = sent.elapsed();
    println!("cancel latency (POST /cancel to the job stopped): {latency:?}");
    let job = reply.json();
    assert_eq!(job["status"], "cancelled", "{job:#}");
    assert!(
        latency < Duration::from_millis(100),
        "the spinning plugin took {latency:?} to stop"
    );

    let rest: Vec<SseEvent> = events.collect();
    assert_eq!(
        rest.last().map(|e| e.event.as_str()),
        Some("cancelled"),
        "{rest:#?}"
    );
    assert_eq!(server.job(&id)["status"], "cancelled");
    server.assert_serves_echo_job();
}

#[test]
fn cancelling_a_finished_job_answers_409() {
    let server = Server::start(ServerOptions::new());
    let id = server.submit_ok("echo", &one_second(), "done.wav", &json!({}));
    assert_eq!(
        server.wait_terminal(&id, Duration::from_secs(30))["status"],
        "completed"
    );
    let reply = server.cancel(&id).expect(409);
    assert_eq!(reply.error_code(), "already_finished");
    assert_eq!(server.job(&id)["status"], "completed");

    let unknown = "00000000-0000-4000-8000-000000000000";
    assert_eq!(server.cancel(unknown).expect(404).error_code(), "not_found");
}

#[test]
fn a_spinning_plugin_is_timed_out_by_the_job_time_limit() {
    let server = Server::start(ServerOptions::new().job_seconds(1));
    let submitted = Instant::now();
    let id = server.submit_ok("spin", &one_second(), "spin.wav", &json!({}));
    let events = server
        .events_within(&id, None, Duration::from_secs(10))
        .to_end();
    let elapsed = submitted.elapsed();
    println!("time limit: a 1 s job stopped {elapsed:?} after it was submitted");
    let last = events.last().expect("events");
    assert_eq!(last.event, "timed_out", "{events:#?}");
    assert_eq!(last.data["error"]["kind"], "timed_out");
    assert!(
        (Duration::from_millis(900)..Duration::from_secs(3)).contains(&elapsed),
        "a 1 s limit stopped the job after {elapsed:?}"
    );
    let job = server.job(&id);
    assert_eq!(job["status"], "timed_out");
    assert_eq!(job["error"]["kind"], "timed_out");
    server.assert_serves_echo_job();
}

#[test]
fn a_plugin_that_allocates_without_end_fails_with_out_of_memory() {
    let server = Server::start(ServerOptions::new().memory_bytes(256 << 20));
    let job = server.run_job("oom", &one_second(), &json!({}));
    assert_eq!(job["status"], "failed", "{job:#}");
    assert_eq!(job["error"]["kind"], "out_of_memory", "{job:#}");
    assert!(
        job["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("256 MiB")),
        "{job:#}"
    );
    let peak = job["usage"]["peak_memory_bytes"].as_u64().expect("usage");
    assert!(peak <= 256 << 20, "peak memory {peak} is within the limit");
    server.assert_serves_echo_job();
}

#[test]
fn a_panicking_plugin_fails_with_plugin_trap_and_its_panic_message() {
    let server = Server::start(ServerOptions::new());
    let id = server.submit_ok("trap", &one_second(), "trap.wav", &json!({}));
    let events = server.events(&id, None).to_end();
    assert!(
        events
            .iter()
            .any(|e| e.event == "progress" && e.data["stage"] == "about to fail"),
        "the progress before the panic arrives: {events:#?}"
    );
    let last = events.last().expect("events");
    assert_eq!(last.event, "failed", "{events:#?}");
    let job = server.job(&id);
    assert_eq!(job["status"], "failed");
    assert_eq!(job["error"]["kind"], "plugin_trap", "{job:#}");
    assert!(
        job["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("the trap fixture panics on purpose")),
        "the error quotes the panic: {job:#}"
    );
    server.assert_serves_echo_job();
}

#[test]
fn a_flooding_plugin_has_its_logs_and_segments_capped() {
    const LOG_BYTES: u64 = 64 * 1024;
    const OUTPUT_BYTES: u64 = 256 * 1024;
    let server = Server::start(
        ServerOptions::new()
            .log_bytes(LOG_BYTES)
            .output_bytes(OUTPUT_BYTES),
    );
    let id = server.submit_ok("flood", &one_second(), "flood.wav", &json!({}));
    let events = server
        .events_within(&id, None, Duration::from_secs(60))
        .to_end();
    let last = events.last().expect("events");
    match last.event.as_str() {
        "done" => {}
        "failed" => assert_eq!(last.data["error"]["kind"], "invalid_output", "{last:#?}"),
        other => panic!("the flood job ended with {other}: {last:#?}"),
    }

    let logs: Vec<&str> = events
        .iter()
        .filter(|e| e.event == "log")
        .map(|e| e.data["message"].as_str().expect("log message"))
        .collect();
    let notice = "log output exceeded the job's byte limit; further lines are dropped";
    assert_eq!(
        logs.iter().filter(|m| **m == notice).count(),
        1,
        "the log says once that lines were dropped"
    );
    let log_bytes: usize = logs.iter().map(|m| m.len()).sum();
    assert!(
        log_bytes as u64 <= LOG_BYTES + notice.len() as u64,
        "{log_bytes} bytes of log lines arrived; the limit is {LOG_BYTES} plus the notice"
    );
    assert!(
        log_bytes as u64 > LOG_BYTES / 2,
        "lines up to the limit are kept ({log_bytes} bytes)"
    );

    let segment_bytes: usize = events
        .iter()
        .filter(|e| e.event == "segment")
        .map(|e| e.data["segment"]["text"].as_str().expect("text").len())
        .sum();
    assert!(
        segment_bytes as u64 <= OUTPUT_BYTES,
        "{segment_bytes} bytes of live segments arrived; the limit is {OUTPUT_BYTES}"
    );

    println!(
        "flood: ended with {}, {log_bytes} bytes in {} log events, {segment_bytes} bytes of live segments",
        last.event,
        logs.len()
    );

    let job = server.job(&id);
    let usage = &job["usage"];
    assert!(usage["log_bytes"].as_u64().expect("usage") <= LOG_BYTES);
    assert!(usage["output_bytes"].as_u64().expect("usage") <= OUTPUT_BYTES);
    server.assert_serves_echo_job();
}
