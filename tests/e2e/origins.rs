//! Every route, with the credential it takes, and one rule for all of them: a request
//! that changes state on the strength of the browser's login cookie must come from this
//! origin and name this host, or it is refused (403) before it does anything, while the
//! same request with a bearer key is unaffected. A page of a sibling origin (another
//! port of the same host: the same *site*, so `SameSite=Strict` cookies go along) and a
//! DNS-rebinding page (a hostile name resolved to this server) are the two attackers.
//! In single-user mode, where being on loopback is the credential, a foreign host is
//! refused even with a key. The table is checked against the routes the server's source
//! declares, so a new route cannot be left out.

use std::collections::BTreeSet;
use std::path::Path;

use sandscribe_e2e::{Browser, Form, RawRequest, Reply, Server, ServerOptions, sine, wav};
use serde_json::json;

/// The credential a route takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Auth {
    /// Anyone: the health check, assets, the login form and logging out.
    Open,
    /// A key or a browser login, of any tenant; 401 without.
    Tenant,
    /// A key or a browser login with the admin role; 403 for a user's.
    Admin,
    /// `/metrics`: an admin, or the metrics token.
    Metrics,
    /// A page: a browser login (or a key); without one a GET goes to `/login` and a
    /// post is 401.
    Page,
}

/// Method, path as the router declares it, credential.
const ROUTES: &[(&str, &str, Auth)] = &[
    ("GET", "/healthz", Auth::Open),
    ("GET", "/metrics", Auth::Metrics),
    ("GET", "/api/openapi.json", Auth::Open),
    ("GET", "/api/plugins", Auth::Tenant),
    ("GET", "/api/plugins/{id}", Auth::Tenant),
    ("POST", "/api/admin/plugins/{id}/reload", Auth::Admin),
    ("GET", "/api/admin/cluster", Auth::Admin),
    ("POST", "/api/jobs", Auth::Tenant),
    ("GET", "/api/jobs", Auth::Tenant),
    ("GET", "/api/jobs/{id}", Auth::Tenant),
    ("GET", "/api/jobs/{id}/events", Auth::Tenant),
    ("POST", "/api/jobs/{id}/cancel", Auth::Tenant),
    ("POST", "/api/jobs/{id}/resubmit", Auth::Tenant),
    ("GET", "/api/jobs/{id}/deliveries", Auth::Tenant),
    ("GET", "/api/results", Auth::Tenant),
    ("GET", "/api/results/{id}", Auth::Tenant),
    ("DELETE", "/api/results/{id}", Auth::Tenant),
    ("GET", "/api/results/{id}/export", Auth::Tenant),
    ("PUT", "/api/results/{id}/speakers", Auth::Tenant),
    ("POST", "/v1/audio/transcriptions", Auth::Tenant),
    ("POST", "/v1/audio/translations", Auth::Tenant),
    ("GET", "/v1/models", Auth::Tenant),
    ("GET", "/v1/models/{id}", Auth::Tenant),
    ("GET", "/", Auth::Page),
    ("GET", "/plugins", Auth::Page),
    ("POST", "/plugins/select", Auth::Page),
    ("POST", "/plugins/config", Auth::Page),
    ("GET", "/file", Auth::Page),
    ("POST", "/file/upload", Auth::Page),
    ("GET", "/file/media", Auth::Page),
    ("POST", "/file/media", Auth::Page),
    ("GET", "/media/{folder}/{*path}", Auth::Page),
    ("GET", "/confirm", Auth::Page),
    ("POST", "/start", Auth::Page),
    ("GET", "/jobs/{id}", Auth::Page),
    ("POST", "/jobs/{id}/cancel", Auth::Page),
    ("GET", "/results/{id}", Auth::Page),
    ("GET", "/results/{id}/audio", Auth::Page),
    ("POST", "/results/{id}/speakers", Auth::Page),
    ("POST", "/another", Auth::Page),
    ("GET", "/history", Auth::Page),
    ("POST", "/history/{id}/delete", Auth::Page),
    ("GET", "/settings", Auth::Page),
    ("POST", "/settings", Auth::Page),
    ("GET", "/login", Auth::Open),
    ("POST", "/login", Auth::Open),
    ("POST", "/logout", Auth::Open),
    ("GET", "/assets/{name}", Auth::Open),
];

/// What the ids in a path stand for on the test server.
struct Ids {
    /// A job that is still running.
    running: String,
    /// A stored result.
    result: String,
}

/// A request for a route: its path with real ids, and a body that would do what the
/// route does (a real job, a real upload) if it were let through.
fn request(method: &str, path: &str, ids: &Ids, audio: &[u8]) -> RawRequest {
    let id = if path.contains("/cancel") || path.contains("/resubmit") || path == "/jobs/{id}" {
        &ids.running
    } else {
        &ids.result
    };
    let concrete = path
        .replace("/api/plugins/{id}", "/api/plugins/echo")
        .replace("/plugins/{id}/reload", "/plugins/echo/reload")
        .replace("/v1/models/{id}", "/v1/models/echo")
        .replace("{id}", id)
        .replace("{folder}/{*path}", "0/talk.wav")
        .replace("{name}", "app.css");
    let request = RawRequest::new(method, &concrete);
    let form = |form: Form| {
        let (content_type, body) = form.encode();
        RawRequest::new(method, &concrete).body(&content_type, &body)
    };
    let urlencoded = |body: &str| {
        RawRequest::new(method, &concrete)
            .body("application/x-www-form-urlencoded", body.as_bytes())
    };
    match (method, path) {
        ("POST", "/api/jobs") => form(Form::new().text("plugin", "echo").file(
            "file",
            "a.wav",
            "audio/wav",
            audio,
        )),
        ("POST", "/v1/audio/transcriptions" | "/v1/audio/translations") => form(
            Form::new()
                .text("model", "echo")
                .file("file", "a.wav", "audio/wav", audio),
        ),
        ("POST", "/file/upload") => form(Form::new().file("file", "a.wav", "audio/wav", audio)),
        ("POST", "/plugins/select") => urlencoded("plugin=echo"),
        ("POST", "/plugins/config") => urlencoded("plugin=echo&action=save_defaults"),
        ("POST", "/file/media") => urlencoded("folder=0&path=talk.wav"),
        ("POST", "/settings") => urlencoded("auto_save=on"),
        ("PUT", "/api/results/{id}/speakers") => RawRequest::new(method, &concrete).body(
            "application/json",
            br#"{"names": {"SPEAKER_1": "Interviewer"}}"#,
        ),
        ("POST", "/results/{id}/speakers") => urlencoded("speaker.SPEAKER_1=Interviewer"),
        ("POST", "/login") => urlencoded("key=ops-secret"),
        _ => request,
    }
}

/// The paths `.route("…"` declares anywhere in the server's source.
fn declared_routes() -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut pending = vec![sandscribe_e2e::workspace_root().join("host/src")];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir)
            .expect("the server's source")
            .flatten()
        {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                collect_routes(&path, &mut found);
            }
        }
    }
    found
}

fn collect_routes(file: &Path, found: &mut BTreeSet<String>) {
    let text = std::fs::read_to_string(file).expect("a source file");
    // A file's unit tests (its `#[cfg(test)]` module, last by convention) serve nothing.
    let text = text.split("#[cfg(test)]").next().unwrap_or_default();
    for (at, _) in text.match_indices(".route(") {
        let rest = text[at + ".route(".len()..].trim_start();
        if let Some(literal) = rest.strip_prefix('"')
            && let Some(end) = literal.find('"')
        {
            found.insert(literal[..end].to_owned());
        }
    }
}

/// An admin tenant `ops` with a media folder, and a user `bob`; the folder lives as long
/// as the returned guard.
fn server_with_keys() -> (Server, tempfile::TempDir) {
    let media = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        media.path().join("talk.wav"),
        wav(&sine(500, 16_000, 0.3), 16_000),
    )
    .expect("write");
    let server = Server::start(
        ServerOptions::new()
            .api_key("ops-secret", "ops", "admin")
            .api_key("bob-secret", "bob", "user")
            .extra_toml(&format!(
                "[tenants.ops]\nmedia_folders = [\"{}\"]\n",
                media.path().display()
            )),
    );
    (server, media)
}

/// A running job and a stored result of the admin tenant `ops`.
fn ids_of_ops(server: &Server, audio: &[u8]) -> Ids {
    server.use_key(Some("ops-secret"));
    let done = server.run_job("echo", audio, &json!({}));
    assert_eq!(done["status"], "completed", "{done:#}");
    let running = server.submit_ok(
        "slow",
        audio,
        "slow.wav",
        &json!({"steps": 400, "step_ms": 250}),
    );
    Ids {
        running,
        result: done["id"].as_str().expect("id").to_owned(),
    }
}

fn is_state_changing(method: &str) -> bool {
    !matches!(method, "GET" | "HEAD" | "OPTIONS")
}

#[test]
fn the_table_names_every_route_the_server_declares() {
    let table: BTreeSet<String> = ROUTES.iter().map(|(_, p, _)| (*p).to_owned()).collect();
    assert_eq!(
        declared_routes(),
        table,
        "a route is missing from this file's table (or the table names one that is gone)"
    );
}

#[test]
fn each_route_takes_the_credential_the_table_says() {
    let (server, _media) = server_with_keys();
    let audio = wav(&sine(500, 16_000, 0.3), 16_000);
    let ids = ids_of_ops(&server, &audio);
    let own = server.base_url().to_owned();
    for (method, path, auth) in ROUTES {
        let send = |key: Option<&str>| -> Reply {
            let mut request = request(method, path, &ids, &audio).header("Origin", &own);
            if let Some(key) = key {
                request = request.header("Authorization", &format!("Bearer {key}"));
            }
            request.send(&server)
        };
        let anonymous = send(None);
        let what = format!("{method} {path} without a credential");
        match (auth, *method) {
            (Auth::Open, _) => assert!(
                !matches!(anonymous.status, 401 | 403),
                "{what}: {}",
                anonymous.status
            ),
            (Auth::Tenant | Auth::Admin | Auth::Metrics, _) | (Auth::Page, "POST") => {
                assert_eq!(anonymous.status, 401, "{what}: {}", anonymous.text());
            }
            (Auth::Page, _) => assert_eq!(
                (anonymous.status, anonymous.header("location")),
                (303, Some("/login")),
                "{what}"
            ),
        }
        let user = send(Some("bob-secret"));
        let what = format!("{method} {path} with a user's key");
        match auth {
            Auth::Admin | Auth::Metrics => {
                assert_eq!(user.status, 403, "{what}: {}", user.text());
            }
            _ => assert!(
                !matches!(user.status, 401 | 403),
                "{what}: {} {}",
                user.status,
                user.text()
            ),
        }
    }
}

#[test]
fn cookie_requests_that_change_state_must_come_from_this_origin_and_host() {
    let (server, _media) = server_with_keys();
    let audio = wav(&sine(500, 16_000, 0.3), 16_000);
    let ids = ids_of_ops(&server, &audio);
    let mut browser = Browser::new();
    browser.log_in(&server, "ops-secret");
    let cookies = browser.cookie_header();
    let port: u16 = server
        .authority()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a port");
    let sibling = format!("http://127.0.0.1:{}", port + 1);
    let rebound_host = format!("evil.example:{port}");
    let rebound = format!("http://{rebound_host}");
    let changing: Vec<_> = ROUTES
        .iter()
        .filter(|(method, _, _)| is_state_changing(method))
        .collect();
    assert!(
        changing.len() >= 18,
        "{} state-changing routes",
        changing.len()
    );

    for (method, path, _) in &changing {
        let cookie = || request(method, path, &ids, &audio).header("Cookie", &cookies);
        for (attacker, reply) in [
            (
                "a sibling origin",
                cookie().header("Origin", &sibling).send(&server),
            ),
            (
                "a rebinding page",
                cookie()
                    .header("Host", &rebound_host)
                    .header("Origin", &rebound)
                    .send(&server),
            ),
            (
                "a foreign host without an origin",
                cookie().header("Host", &rebound_host).send(&server),
            ),
        ] {
            assert_eq!(
                reply.status,
                403,
                "{method} {path} from {attacker}: {}",
                reply.text()
            );
        }
    }
    // Nothing the refused requests asked for happened.
    server.use_key(Some("ops-secret"));
    let jobs = server.get("/api/jobs").expect(200).json();
    assert_eq!(
        jobs["jobs"].as_array().map(Vec::len),
        Some(1),
        "only the running job: {jobs:#}"
    );
    assert_eq!(server.job(&ids.running)["status"], "running");
    server
        .get(&format!("/api/results/{}", ids.result))
        .expect(200);
    assert_eq!(server.get("/api/results").expect(200).json()["total"], 1);
    assert_eq!(
        browser.get(&server, "/settings").status,
        200,
        "still logged in"
    );

    // A bearer key is unaffected by origin and host; the cookie from our own pages too.
    for (method, path, _) in &changing {
        let keyed = request(method, path, &ids, &audio)
            .header("Authorization", "Bearer ops-secret")
            .header("Host", &rebound_host)
            .header("Origin", &sibling)
            .send(&server);
        assert_ne!(
            keyed.status,
            403,
            "{method} {path} with a key: {}",
            keyed.text()
        );
    }
    for (method, path, _) in &changing {
        // Log out last: it ends the login the others use.
        if *path == "/logout" {
            continue;
        }
        let ours = request(method, path, &ids, &audio)
            .header("Cookie", &cookies)
            .header("Origin", server.base_url())
            .send(&server);
        assert_ne!(
            ours.status,
            403,
            "{method} {path} from our pages: {}",
            ours.text()
        );
    }
    let out = RawRequest::new("POST", "/logout")
        .header("Cookie", &cookies)
        .header("Origin", server.base_url())
        .send(&server);
    assert_eq!(out.status, 303, "{}", out.text());
}

#[test]
fn in_single_user_mode_a_foreign_host_is_refused_even_with_a_key() {
    let server = Server::start(ServerOptions::new());
    let audio = wav(&sine(500, 16_000, 0.3), 16_000);
    let rebound = |method: &str, path: &str| {
        RawRequest::new(method, path).header("Host", "evil.example:8080")
    };
    for path in ["/api/results", "/plugins", "/metrics", "/v1/models"] {
        let reply = rebound("GET", path).send(&server);
        assert_eq!(reply.status, 403, "reading {path} through a rebound name");
        let keyed = rebound("GET", path)
            .header("Authorization", "Bearer anything")
            .send(&server);
        assert_eq!(keyed.status, 403, "{path} with a key: any key works here");
    }
    assert_eq!(rebound("GET", "/healthz").send(&server).status, 200);

    let (content_type, body) = Form::new()
        .text("plugin", "echo")
        .file("file", "a.wav", "audio/wav", &audio)
        .encode();
    let from = |origin: &str| {
        RawRequest::new("POST", "/api/jobs")
            .header("Origin", origin)
            .body(&content_type, &body)
    };
    let sibling = from("http://127.0.0.1:1");
    assert_eq!(sibling.send(&server).status, 403, "a page on another port");
    assert_eq!(
        sibling
            .header("Authorization", "Bearer x")
            .send(&server)
            .status,
        202
    );
    assert_eq!(from(server.base_url()).send(&server).status, 202);
    assert_eq!(
        RawRequest::new("GET", "/api/results")
            .header("Host", "localhost")
            .send(&server)
            .status,
        200,
        "loopback names are fine"
    );
}

#[test]
fn with_a_public_url_only_its_host_is_answered_and_cookies_are_host_prefixed() {
    let server = Server::start(
        ServerOptions::new()
            .public_url("https://sandscribe.example")
            .api_key("alice-secret", "alice", "user"),
    );
    let public = |method: &str, path: &str| {
        RawRequest::new(method, path).header("Host", "sandscribe.example")
    };
    let login = public("POST", "/login")
        .header("Origin", "https://sandscribe.example")
        .body("application/x-www-form-urlencoded", b"key=alice-secret")
        .send(&server);
    assert_eq!(login.status, 303, "{}", login.text());
    let set = login
        .headers_named("set-cookie")
        .find(|c| c.contains("sandscribe_login="))
        .expect("a login cookie")
        .to_owned();
    assert!(
        set.starts_with("__Host-sandscribe_login=") && set.contains("; Secure"),
        "{set}"
    );
    let token = set
        .split(';')
        .next()
        .and_then(|pair| pair.split_once('='))
        .map(|(_, v)| v.to_owned())
        .expect("a token");

    let cookie = format!("__Host-sandscribe_login={token}");
    let page = public("GET", "/settings")
        .header("Cookie", &cookie)
        .send(&server);
    assert_eq!(page.status, 200, "{}", page.text());
    // Another name for the same server is refused, cookie or not.
    let elsewhere = RawRequest::new("GET", "/settings")
        .header("Host", "other.example")
        .header("Cookie", &cookie)
        .send(&server);
    assert_eq!(elsewhere.status, 403);
    // A cookie without the prefix (which a sibling subdomain could set) is no login here.
    let tossed = public("GET", "/settings")
        .header("Cookie", &format!("sandscribe_login={token}"))
        .send(&server);
    assert_eq!(tossed.header("location"), Some("/login"));
    // Behind a proxy that passes its own host on, the public origin is ours.
    let proxied = RawRequest::new("POST", "/settings")
        .header("Cookie", &cookie)
        .header("Origin", "https://sandscribe.example")
        .body("application/x-www-form-urlencoded", b"auto_save=on")
        .send(&server);
    assert_eq!(proxied.status, 303, "{}", proxied.text());
}
