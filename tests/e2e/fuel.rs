//! Fuel metering: a tenant with `fuel_per_job` runs its jobs metered, so the same job
//! burns the same fuel every time, a runaway plugin stops when its budget is spent (not
//! at the time limit), and what a job burnt is kept like the rest of its resource use.

use std::time::Duration;

use sandscribe_e2e::{Server, ServerOptions, sine, wav};
use serde_json::{Value, json};

/// Enough for any echo job here (a second of audio burns well under a million units),
/// and gone in a fraction of a second by the `spin` fixture.
const BUDGET: u64 = 200_000_000;

/// What the metrics scraper sends (no tenant's key reads the metrics).
const METRICS_TOKEN: &str = "scrape-token";

/// A server with a metered tenant (`metered`, budget [`BUDGET`]) and an unmetered one
/// (`free`), and a time limit far above what spending the budget takes.
fn metered_server() -> Server {
    Server::start(
        ServerOptions::new()
            .api_key("metered-secret", "metered", "user")
            .api_key("free-secret", "free", "user")
            .metrics_token(METRICS_TOKEN)
            .max_running(3)
            .job_seconds(60)
            .extra_toml(&format!("[tenants.metered]\nfuel_per_job = {BUDGET}\n")),
    )
}

fn fuel_of(job: &Value) -> Option<u64> {
    job["usage"]["fuel_consumed"].as_u64()
}

#[test]
fn the_same_job_burns_the_same_fuel_each_time_and_unmetered_jobs_report_none() {
    let server = metered_server();
    let audio = wav(&sine(1_000, 16_000, 0.3), 16_000);
    let config = json!({"window_ms": 250});

    server.use_key(Some("metered-secret"));
    let first = server.run_job("echo", &audio, &config);
    let second = server.run_job("echo", &audio, &config);
    for job in [&first, &second] {
        assert_eq!(job["status"], "completed", "{job:#}");
    }
    let fuel = fuel_of(&first).expect("a metered job reports its fuel");
    assert!(fuel > 0 && fuel < BUDGET, "{first:#}");
    assert_eq!(
        fuel_of(&second),
        Some(fuel),
        "the same job burns the same fuel: {second:#}"
    );
    let id = first["id"].as_str().expect("id");
    let page = server.get(&format!("/results/{id}")).expect(200).text();
    assert!(
        page.contains("units of fuel"),
        "the results page shows the fuel: {page}"
    );
    server.use_key(Some(METRICS_TOKEN));
    let metrics = server.get("/metrics").expect(200).text();
    assert!(
        metrics.contains(r#"sandscribe_job_fuel_consumed_count{plugin="echo"} 2"#),
        "{metrics}"
    );

    server.use_key(Some("free-secret"));
    let free = server.run_job("echo", &audio, &config);
    assert_eq!(free["status"], "completed", "{free:#}");
    assert_eq!(
        free["usage"].get("fuel_consumed"),
        Some(&Value::Null),
        "an unmetered job says so: {free:#}"
    );
    assert!(
        free["usage"]["peak_memory_bytes"]
            .as_u64()
            .is_some_and(|b| b > 0),
        "{free:#}"
    );
}

#[test]
fn a_spinning_plugin_fails_with_fuel_exhausted_long_before_its_time_limit() {
    let server = metered_server();
    let audio = wav(&sine(1_000, 16_000, 0.3), 16_000);

    server.use_key(Some("metered-secret"));
    let spin = server.submit_ok("spin", &audio, "spin.wav", &json!({}));
    let healthy = server.submit_ok("echo", &audio, "echo.wav", &json!({}));
    server.use_key(Some("free-secret"));
    let neighbour = server.submit_ok("echo", &audio, "echo.wav", &json!({}));
    let neighbour = server.wait_terminal(&neighbour, Duration::from_secs(30));
    assert_eq!(neighbour["status"], "completed", "{neighbour:#}");

    server.use_key(Some("metered-secret"));
    let healthy = server.wait_terminal(&healthy, Duration::from_secs(30));
    assert_eq!(healthy["status"], "completed", "{healthy:#}");
    assert!(fuel_of(&healthy).is_some_and(|f| f < BUDGET), "{healthy:#}");

    let spin = server.wait_terminal(&spin, Duration::from_secs(30));
    assert_eq!(spin["status"], "failed", "{spin:#}");
    assert_eq!(spin["error"]["kind"], "fuel_exhausted", "{spin:#}");
    let message = spin["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&format!("used all {BUDGET} units of fuel")),
        "{message}"
    );
    assert_eq!(fuel_of(&spin), Some(BUDGET), "{spin:#}");
    let wall_ms = spin["usage"]["wall_ms"].as_u64().expect("wall time");
    assert!(
        wall_ms < 10_000,
        "the budget, not the 60 s limit, stopped it: {wall_ms} ms"
    );
}

#[test]
fn fuel_use_and_fuel_exhaustion_survive_a_restart() {
    let mut server = metered_server();
    let audio = wav(&sine(1_000, 16_000, 0.3), 16_000);
    server.use_key(Some("metered-secret"));
    let done = server.run_job("echo", &audio, &json!({}));
    assert_eq!(done["status"], "completed", "{done:#}");
    let spun = server.run_job("spin", &audio, &json!({}));
    assert_eq!(spun["error"]["kind"], "fuel_exhausted", "{spun:#}");

    server.restart();

    for before in [&done, &spun] {
        let id = before["id"].as_str().expect("id");
        let after = server.job(id);
        assert_eq!(after["status"], before["status"], "{after:#}");
        assert_eq!(
            fuel_of(&after),
            fuel_of(before),
            "the fuel a job burnt is kept in the ledger: {after:#}"
        );
        assert!(fuel_of(&after).is_some(), "{after:#}");
    }
    assert_eq!(
        server.job(spun["id"].as_str().expect("id"))["error"]["kind"],
        "fuel_exhausted"
    );
}
