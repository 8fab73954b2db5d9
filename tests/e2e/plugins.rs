//! Plugin discovery: what loads is listed with its schema; what does not is reported
//! with a reason, and the rest of the server works.

use std::fs;

use sandscribe_e2e::{Server, ServerOptions, fixture_wasm};
use serde_json::Value;

fn ids(list: &Value, key: &str) -> Vec<String> {
    list[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key} list: {list:#}"))
        .iter()
        .map(|p| p["id"].as_str().expect("id").to_owned())
        .collect()
}

#[test]
fn every_fixture_is_listed_with_its_config_schema() {
    let server = Server::start(ServerOptions::new());
    let list = server.get("/api/plugins").expect(200).json();
    assert_eq!(
        ids(&list, "plugins"),
        [
            "badcompute",
            "echo",
            "fakespeakers",
            "flood",
            "legacy",
            "liar",
            "oom",
            "slow",
            "spin",
            "trap"
        ]
    );
    assert_eq!(ids(&list, "failed"), Vec::<String>::new());
    for plugin in list["plugins"].as_array().expect("plugins") {
        assert_eq!(plugin["status"], "loaded", "{plugin:#}");
        assert!(plugin["config_schema"].is_object(), "{plugin:#}");
        // The diarizer fixture reads at 8 kHz, so the host decodes again for it.
        let rate = if plugin["id"] == "fakespeakers" {
            8_000
        } else {
            16_000
        };
        assert_eq!(plugin["sample_rate"], rate, "{plugin:#}");
        assert_eq!(
            plugin["sha256"].as_str().map(str::len),
            Some(64),
            "{plugin:#}"
        );
    }

    let echo = server.get("/api/plugins/echo").expect(200).json();
    assert_eq!(echo["name"], "Echo (test)");
    let window = &echo["config_schema"]["properties"]["window_ms"];
    assert_eq!(window["default"], 1000, "{echo:#}");
    assert_eq!(window["minimum"], 100, "{echo:#}");
    assert_eq!(
        server.get("/api/plugins/slow").expect(200).json()["config_schema"]["properties"]["steps"]
            ["default"],
        10
    );

    let health = server.get("/healthz").expect(200).json();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["plugins"], 10);
}

#[test]
fn a_broken_plugin_folder_is_reported_with_a_reason_while_the_others_load() {
    let plugins = tempfile::tempdir().expect("temporary plugins folder");
    fs::create_dir(plugins.path().join("echo")).expect("echo folder");
    fs::copy(
        fixture_wasm("echo"),
        plugins.path().join("echo/plugin.wasm"),
    )
    .expect("copy echo");
    fs::create_dir(plugins.path().join("broken")).expect("broken folder");
    fs::write(
        plugins.path().join("broken/plugin.wasm"),
        b"\0asm but not really a component",
    )
    .expect("garbage wasm");
    fs::create_dir(plugins.path().join("empty")).expect("empty folder");

    let server = Server::start(ServerOptions::new().plugins_dir(plugins.path()));
    let list = server.get("/api/plugins").expect(200).json();
    assert_eq!(ids(&list, "plugins"), ["echo"]);
    assert_eq!(ids(&list, "failed"), ["broken", "empty"]);
    for failure in list["failed"].as_array().expect("failed") {
        assert!(
            failure["reason"].as_str().is_some_and(|r| !r.is_empty()),
            "{failure:#}"
        );
    }
    assert!(
        list["failed"][1]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("no plugin.wasm")),
        "{list:#}"
    );

    let broken = server.get("/api/plugins/broken").expect(200).json();
    assert_eq!(broken["status"], "failed", "{broken:#}");
    assert_eq!(
        server
            .submit("broken", b"RIFF", "a.wav", &serde_json::json!({}))
            .expect(404)
            .error_code(),
        "unknown_plugin"
    );
    server.assert_serves_echo_job();
}

#[test]
fn a_plugin_whose_hash_does_not_match_its_pin_is_refused() {
    let plugins = tempfile::tempdir().expect("temporary plugins folder");
    let echo = plugins.path().join("echo");
    fs::create_dir(&echo).expect("echo folder");
    fs::copy(fixture_wasm("echo"), echo.join("plugin.wasm")).expect("copy echo");
    fs::write(
        echo.join("plugin.toml"),
        format!("sha256 = \"{}\"\n", "0".repeat(64)),
    )
    .expect("write plugin.toml");

    let server = Server::start(ServerOptions::new().plugins_dir(plugins.path()));
    let list = server.get("/api/plugins").expect(200).json();
    assert_eq!(ids(&list, "plugins"), Vec::<String>::new());
    assert_eq!(ids(&list, "failed"), ["echo"]);
    let reason = list["failed"][0]["reason"].as_str().expect("reason");
    assert!(reason.contains("sha256"), "{reason}");

    let health = server.get("/healthz").expect(200).json();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["plugins"], 0);
}

#[test]
fn a_plugin_that_keeps_crashing_is_quarantined_until_an_admin_reloads_it() {
    let server = Server::start(ServerOptions::new().max_running(1));
    let audio = sandscribe_e2e::wav(&sandscribe_e2e::sine(300, 16_000, 0.2), 16_000);
    for _ in 0..3 {
        let job = server.run_job("trap", &audio, &serde_json::json!({}));
        assert_eq!(job["error"]["kind"], "plugin_trap", "{job:#}");
    }
    let refused = server.submit("trap", &audio, "a.wav", &serde_json::json!({}));
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert_eq!(refused.error_code(), "plugin_quarantined");
    assert!(
        refused.error_message().contains("panics on purpose"),
        "{}",
        refused.error_message()
    );
    let view = server.get("/api/plugins/trap").expect(200).json();
    assert_eq!(view["status"], "quarantined", "{view:#}");
    assert!(
        view["quarantine"]["retry_after_seconds"]
            .as_u64()
            .is_some_and(|s| s > 0),
        "{view:#}"
    );
    // Other plugins are unaffected.
    server.assert_serves_echo_job();

    let reloaded = server
        .post_empty("/api/admin/plugins/trap/reload")
        .expect(200)
        .json();
    assert_eq!(reloaded["status"], "loaded", "{reloaded:#}");
    server
        .submit("trap", &audio, "b.wav", &serde_json::json!({}))
        .expect(202);
}

#[test]
fn reloading_a_plugin_lets_submitted_jobs_finish_on_the_old_version() {
    let dir = tempfile::tempdir().expect("tempdir");
    let slow = dir.path().join("slow");
    fs::create_dir_all(&slow).expect("mkdir");
    fs::copy(fixture_wasm("slow"), slow.join("plugin.wasm")).expect("copy");
    let server = Server::start(ServerOptions::new().plugins_dir(dir.path()).max_running(2));
    let audio = sandscribe_e2e::wav(&sandscribe_e2e::sine(300, 16_000, 0.2), 16_000);
    let config = serde_json::json!({"steps": 8, "step_ms": 250});
    let old = server.submit_ok("slow", &audio, "old.wav", &config);

    // A bad update is refused and the working version stays.
    fs::write(
        slow.join("plugin.toml"),
        format!("sha256 = \"{}\"\n", "0".repeat(64)),
    )
    .expect("toml");
    let failed = server.post_empty("/api/admin/plugins/slow/reload");
    assert_eq!(failed.status, 422, "{}", failed.text());
    assert!(
        failed.error_message().contains("sha256"),
        "{}",
        failed.error_message()
    );
    assert_eq!(
        server.get("/api/plugins/slow").expect(200).json()["status"],
        "loaded"
    );

    // The new version allows 1 s per job: new jobs time out, the old one is unaffected.
    fs::write(slow.join("plugin.toml"), "[limits]\njob_seconds = 1\n").expect("toml");
    server
        .post_empty("/api/admin/plugins/slow/reload")
        .expect(200);
    let new = server.submit_ok("slow", &audio, "new.wav", &config);
    let new_job = server.wait_terminal(&new, std::time::Duration::from_secs(30));
    assert_eq!(new_job["status"], "timed_out", "{new_job:#}");
    let old_job = server.wait_terminal(&old, std::time::Duration::from_secs(30));
    assert_eq!(old_job["status"], "completed", "{old_job:#}");
    server
        .post_empty("/api/admin/plugins/nope/reload")
        .expect(404);
}
