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
        ["echo", "flood", "liar", "oom", "slow", "spin", "trap"]
    );
    assert_eq!(ids(&list, "failed"), Vec::<String>::new());
    for plugin in list["plugins"].as_array().expect("plugins") {
        assert_eq!(plugin["status"], "loaded", "{plugin:#}");
        assert!(plugin["config_schema"].is_object(), "{plugin:#}");
        assert_eq!(plugin["sample_rate"], 16_000);
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
    assert_eq!(health["plugins"], 7);
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
