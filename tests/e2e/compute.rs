//! WIT 0.2.0's compute interface holds the sandbox's limits: a wrong call fails only its
//! own job with `invalid_compute_call` and a reason; cancellation and time limits reach
//! into a long call; host tensors count toward the job's memory cap; shared weights are
//! one copy; and a plugin built against 0.1.0 keeps running beside newer ones (the SDK's
//! fixtures are 0.3.0; the Python and PocketSphinx plugins stay 0.2.0).

use std::path::Path;
use std::time::{Duration, Instant};

use sandscribe_e2e::{Server, ServerOptions, fixture_wasm, sine, wav};
use serde_json::json;

fn one_second() -> Vec<u8> {
    wav(&sine(1_000, 16_000, 0.3), 16_000)
}

/// A plugins folder with `echo`, `legacy` and `badcompute`, whose assets hold `w.bin`:
/// the f32 values 0, 1, 2, ... 15.
fn plugins(dir: &Path) {
    for id in ["echo", "legacy", "badcompute"] {
        let folder = dir.join(id);
        std::fs::create_dir_all(&folder).expect("plugin folder");
        std::fs::copy(fixture_wasm(id), folder.join("plugin.wasm")).expect("copy plugin");
    }
    let assets = dir.join("badcompute/assets");
    std::fs::create_dir_all(&assets).expect("assets");
    let values: Vec<u8> = (0..16).flat_map(|v| (v as f32).to_le_bytes()).collect();
    std::fs::write(assets.join("w.bin"), values).expect("w.bin");
}

fn start(options: ServerOptions) -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    plugins(dir.path());
    (Server::start(options.plugins_dir(dir.path())), dir)
}

fn run_mode(server: &Server, mode: &str) -> serde_json::Value {
    server.run_job("badcompute", &one_second(), &json!({ "mode": mode }))
}

#[test]
fn the_host_computes_what_the_plugin_asked_for() {
    let (server, _dir) = start(ServerOptions::new());
    let job = run_mode(&server, "ok");
    assert_eq!(job["status"], "completed", "{job:#}");
    let text = job["result"]["transcript"]["text"]
        .as_str()
        .unwrap_or_default();
    // [1, 2] · [[0, 1], [2, 3]]ᵀ + [10, 20]
    assert!(text.starts_with("linear [12.0, 28.0] on "), "{text}");
    assert!(
        text.ends_with("with 1 thread(s)"),
        "threads_per_job defaults to 1: {text}"
    );
}

#[test]
fn wrong_compute_calls_fail_their_job_with_a_reason_and_the_server_goes_on() {
    let (server, _dir) = start(ServerOptions::new());
    let cases = [
        ("shape", "linear"),
        ("foreign", "handle"),
        ("dropped", "handle"),
        ("past-end", "past the end"),
        ("overlap", "overlaps"),
        ("outside", ".."),
        ("huge", "cache"),
    ];
    for (mode, reason) in cases {
        let job = run_mode(&server, mode);
        assert_eq!(job["status"], "failed", "{mode}: {job:#}");
        assert_eq!(
            job["error"]["kind"], "invalid_compute_call",
            "{mode}: {job:#}"
        );
        let message = job["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(reason),
            "{mode}: the reason should mention \"{reason}\": {message}"
        );
    }
    server.assert_serves_echo_job();
    assert_eq!(run_mode(&server, "ok")["status"], "completed");
}

#[test]
fn cancel_stops_a_long_matmul_within_50ms() {
    let (server, _dir) = start(ServerOptions::new().memory_bytes(1 << 30));
    let id = server.submit_ok(
        "badcompute",
        &one_second(),
        "a.wav",
        &json!({"mode": "long-matmul"}),
    );
    let mut events = server.events(&id, None);
    assert!(
        events.any(|e| e.event == "progress" && e.data["stage"] == "multiplying"),
        "the job never started multiplying"
    );
    // Inside a multi-second matrix product by now.
    std::thread::sleep(Duration::from_millis(400));
    let sent = Instant::now();
    let job = server.cancel(&id).expect(200).json();
    let latency = sent.elapsed();
    println!("cancel latency during a long matmul: {latency:?}");
    assert_eq!(job["status"], "cancelled", "{job:#}");
    assert!(
        latency < Duration::from_millis(50),
        "took {latency:?} to stop"
    );
    server.assert_serves_echo_job();
}

#[test]
fn a_time_limit_stops_a_long_matmul() {
    let (server, _dir) = start(ServerOptions::new().memory_bytes(1 << 30).job_seconds(1));
    let started = Instant::now();
    let job = run_mode(&server, "long-matmul");
    assert_eq!(job["status"], "timed_out", "{job:#}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn host_tensors_count_toward_the_memory_cap() {
    let (server, _dir) = start(ServerOptions::new().memory_bytes(128 << 20));
    let job = run_mode(&server, "hoard");
    assert_eq!(job["status"], "failed", "{job:#}");
    assert_eq!(job["error"]["kind"], "out_of_memory", "{job:#}");
    let peak = job["usage"]["peak_memory_bytes"]
        .as_u64()
        .unwrap_or_default();
    assert!(peak <= 128 << 20, "peak {peak} over the cap");
    assert!(
        peak > 64 << 20,
        "the host tensors were counted: peak {peak}"
    );
    server.assert_serves_echo_job();
}

#[test]
fn jobs_of_one_plugin_build_share_one_copy_of_its_weights() {
    let (server, _dir) = start(ServerOptions::new());
    let first = server.submit_ok("badcompute", &one_second(), "a.wav", &json!({"mode": "ok"}));
    let second = server.submit_ok("badcompute", &one_second(), "b.wav", &json!({"mode": "ok"}));
    let shared: Vec<u64> = [&first, &second]
        .iter()
        .map(|id| {
            let job = server.wait_terminal(id, Duration::from_secs(30));
            assert_eq!(job["status"], "completed", "{job:#}");
            job["usage"]["shared_weights_bytes"]
                .as_u64()
                .unwrap_or_default()
        })
        .collect();
    // The 2 x 2 f32 region of w.bin (16 bytes), as the kernels keep it.
    assert!(shared[0] >= 16, "{shared:?}");
    assert_eq!(shared[0], shared[1], "both jobs hold the same weights");
    let metrics = server.get("/metrics").expect(200).text();
    let expected = format!("sandscribe_shared_model_bytes {}", shared[0]);
    assert!(
        metrics.lines().any(|l| l == expected),
        "one copy for both jobs ({expected}):\n{metrics}"
    );
}

#[test]
fn a_plugin_built_against_wit_0_1_keeps_running_beside_newer_ones() {
    let (server, _dir) = start(ServerOptions::new());
    let plugins = server.get("/api/plugins").expect(200).json();
    let version_of = |id: &str| {
        plugins["plugins"]
            .as_array()
            .and_then(|list| list.iter().find(|p| p["id"] == id))
            .map(|p| p["wit_version"].clone())
    };
    assert_eq!(version_of("legacy"), Some(json!("0.1.0")), "{plugins:#}");
    assert_eq!(version_of("echo"), Some(json!("0.3.0")), "{plugins:#}");

    let audio = wav(&sine(2_000, 16_000, 0.5), 16_000);
    let id = server.submit_ok("legacy", &audio, "two.wav", &json!({}));
    let segments = server
        .events(&id, None)
        .filter(|e| e.event == "segment")
        .count();
    let job = server.wait_terminal(&id, Duration::from_secs(30));
    assert_eq!(job["status"], "completed", "{job:#}");
    assert_eq!(
        segments, 2,
        "live segments through the 0.1.0 host interface"
    );
    let text = job["result"]["transcript"]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(
        text.starts_with("second 0 level 354 second 1 level 354"),
        "{text}"
    );
    let refused = server.run_job("legacy", &audio, &json!({"fail": true}));
    assert_eq!(refused["error"]["kind"], "plugin_bad_config", "{refused:#}");
}

#[test]
fn compute_calls_charge_the_same_fuel_every_time() {
    let (server, _dir) = start(ServerOptions::new().limit("fuel_per_job", 100_000_000_000));
    let fuel = |job: &serde_json::Value| job["usage"]["fuel_consumed"].as_u64();
    let first = run_mode(&server, "ok");
    let second = run_mode(&server, "ok");
    assert_eq!(first["status"], "completed", "{first:#}");
    assert!(fuel(&first).is_some_and(|f| f > 0), "{first:#}");
    assert_eq!(fuel(&first), fuel(&second));
    // A budget smaller than one long product's work stops it as fuel, not as time.
    let (tight, _dir) = start(
        ServerOptions::new()
            .memory_bytes(1 << 30)
            .limit("fuel_per_job", 2_000_000_000),
    );
    let job = run_mode(&tight, "long-matmul");
    assert_eq!(job["error"]["kind"], "fuel_exhausted", "{job:#}");
}

#[test]
fn a_job_gets_the_threads_the_operator_allows() {
    let (server, _dir) = start(ServerOptions::new().limit("threads_per_job", 2));
    let job = run_mode(&server, "ok");
    let text = job["result"]["transcript"]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(
        text.starts_with("linear [12.0, 28.0] on "),
        "the same numbers: {text}"
    );
    assert!(text.ends_with("with 2 thread(s)"), "{text}");
}
