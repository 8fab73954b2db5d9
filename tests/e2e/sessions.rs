//! A browser session belongs to the login that made it. In a browser shared by two
//! people in turn, the second finds nothing of the first: no chosen file on `/confirm`,
//! no upload for Start to use, no audio. A session id the server did not issue for this
//! login (one a sibling site planted, or another person's) is ignored, so it can never
//! tie one person's upload to another's Start.

use std::time::Duration;

use sandscribe_e2e::{Browser, Form, Server, ServerOptions, files_under, sine, wav};

const SESSION_COOKIE: &str = "sandscribe_session";

fn alice_and_bob() -> Server {
    Server::start(
        ServerOptions::new()
            .api_key("alice-secret", "alice", "user")
            .api_key("bob-secret", "bob", "user"),
    )
}

/// Chooses the echo plugin and uploads `audio` as `name`: the browser is then at Confirm.
fn stage_upload(browser: &mut Browser, server: &Server, name: &str, audio: &[u8]) {
    let chosen = browser.post_form(server, "/plugins/select", &[("plugin", "echo")]);
    assert_eq!(chosen.status, 303, "choosing echo: {}", chosen.text());
    let form = Form::new().file("file", name, "audio/wav", audio);
    let uploaded = browser.post_multipart(server, "/file/upload", &form);
    assert_eq!(
        (uploaded.status, uploaded.header("location")),
        (303, Some("/confirm")),
        "uploading {name}: {}",
        uploaded.text()
    );
}

/// Where `GET path` sends the browser (the `Location` of a redirect), or `None` for a
/// page.
fn lands_on(browser: &mut Browser, server: &Server, path: &str) -> Option<String> {
    let reply = browser.get(server, path);
    match reply.status {
        200 => None,
        303 => reply.header("location").map(str::to_owned),
        other => panic!("GET {path} answered {other}: {}", reply.text()),
    }
}

/// The job Start created, if it created one (it redirects to the job's page).
fn start(browser: &mut Browser, server: &Server) -> Option<String> {
    let reply = browser.post_form(server, "/start", &[]);
    assert_eq!(reply.status, 303, "Start: {}", reply.text());
    reply
        .header("location")
        .and_then(|to| to.strip_prefix("/jobs/"))
        .map(str::to_owned)
}

/// The files waiting in the staging folders.
fn staged_files(server: &Server) -> Vec<std::path::PathBuf> {
    files_under(&server.data_dir().join("web/staged"))
}

/// Bob's jobs and results, through his own key: what Start made for him.
fn assert_bob_has_nothing(server: &Server) {
    server.use_key(Some("bob-secret"));
    let jobs = server.get("/api/jobs").expect(200).json();
    assert_eq!(jobs["jobs"], serde_json::json!([]), "bob's jobs: {jobs:#}");
    let results = server.get("/api/results").expect(200).json();
    assert_eq!(results["total"], 0, "bob's results: {results:#}");
}

#[test]
fn the_next_login_in_a_shared_browser_finds_nothing_of_the_last() {
    let server = alice_and_bob();
    let first = wav(&sine(600, 16_000, 0.3), 16_000);
    let private = wav(&sine(700, 16_000, 0.2), 16_000);
    let mut browser = Browser::new();

    // Alice transcribes one file (its audio is kept for playback) and uploads another.
    browser.log_in(&server, "alice-secret");
    stage_upload(&mut browser, &server, "alice-first.wav", &first);
    let done = start(&mut browser, &server).expect("alice's Start makes a job");
    server.use_key(Some("alice-secret"));
    let job = server.wait_terminal(&done, Duration::from_secs(30));
    assert_eq!(job["status"], "completed", "{job:#}");
    let audio = browser.get(&server, &format!("/results/{done}/audio"));
    assert_eq!((audio.status, audio.body == first), (200, true));
    stage_upload(&mut browser, &server, "alice-private.wav", &private);
    let confirm = browser.get(&server, "/confirm").expect(200).text();
    assert!(confirm.contains("alice-private.wav"), "{confirm}");
    assert_eq!(staged_files(&server).len(), 1);
    let alice_session = browser
        .cookie(SESSION_COOKIE)
        .expect("a session cookie")
        .to_owned();

    // Alice logs out: her staged upload goes with her session.
    let out = browser.post_form(&server, "/logout", &[]);
    assert_eq!(out.header("location"), Some("/login"), "{}", out.text());
    assert_eq!(staged_files(&server), Vec::<std::path::PathBuf>::new());

    // Bob, in the same browser.
    browser.log_in(&server, "bob-secret");
    assert_eq!(
        lands_on(&mut browser, &server, "/").as_deref(),
        Some("/plugins")
    );
    assert_eq!(
        lands_on(&mut browser, &server, "/confirm").as_deref(),
        Some("/plugins")
    );
    browser
        .post_form(&server, "/plugins/select", &[("plugin", "echo")])
        .expect(303);
    assert_eq!(
        lands_on(&mut browser, &server, "/confirm").as_deref(),
        Some("/file")
    );
    let file_page = browser.get(&server, "/file").expect(200).text();
    assert!(!file_page.contains("alice-private"), "{file_page}");
    assert_eq!(
        start(&mut browser, &server),
        None,
        "Start has no file to use"
    );
    let audio = browser.get(&server, &format!("/results/{done}/audio"));
    assert_eq!(audio.status, 404, "alice's audio for bob");
    assert_ne!(audio.body, first);

    // Even Alice's old session cookie, put back, is not Bob's to use.
    browser.set_cookie(SESSION_COOKIE, &alice_session);
    assert_eq!(
        lands_on(&mut browser, &server, "/confirm").as_deref(),
        Some("/plugins")
    );
    assert_ne!(
        browser.cookie(SESSION_COOKIE),
        Some(alice_session.as_str()),
        "a fresh session replaces it"
    );
    assert_eq!(start(&mut browser, &server), None);
    assert_bob_has_nothing(&server);
}

#[test]
fn a_session_id_chosen_by_another_page_is_ignored_and_binds_nothing() {
    let server = alice_and_bob();
    let audio = wav(&sine(800, 16_000, 0.3), 16_000);
    // A page of a sibling origin plants this id in every browser of the site it can.
    let chosen = "0f0f0f0f-0f0f-4f0f-8f0f-0f0f0f0f0f0f";

    let mut alice = Browser::new();
    alice.set_cookie(SESSION_COOKIE, chosen);
    alice.log_in(&server, "alice-secret");
    alice.set_cookie(SESSION_COOKIE, chosen);
    stage_upload(&mut alice, &server, "alice-fixed.wav", &audio);
    let issued = alice
        .cookie(SESSION_COOKIE)
        .expect("a session cookie")
        .to_owned();
    assert_ne!(issued, chosen, "the server makes its own session ids");

    let mut bob = Browser::new();
    bob.log_in(&server, "bob-secret");
    for planted in [chosen, issued.as_str()] {
        bob.set_cookie(SESSION_COOKIE, planted);
        assert_eq!(
            lands_on(&mut bob, &server, "/confirm").as_deref(),
            Some("/plugins"),
            "bob with session {planted}"
        );
        bob.set_cookie(SESSION_COOKIE, planted);
        assert_eq!(start(&mut bob, &server), None, "bob's Start with {planted}");
    }
    assert_bob_has_nothing(&server);

    // Alice's upload is still hers, under the session the server gave her.
    let confirm = alice.get(&server, "/confirm").expect(200).text();
    assert!(confirm.contains("alice-fixed.wav"), "{confirm}");
    let job = start(&mut alice, &server).expect("alice's Start makes a job");
    server.use_key(Some("alice-secret"));
    let done = server.wait_terminal(&job, Duration::from_secs(30));
    assert_eq!(done["file_name"], "alice-fixed.wav", "{done:#}");
}
