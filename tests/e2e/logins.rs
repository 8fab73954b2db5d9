//! Browser logins: a browser logs in once with its API key at `/login` and then carries
//! a cookie. The server keeps the logins in its database, so they outlive a restart;
//! a login ends when the browser logs out or when its key leaves the config.

use sandscribe_e2e::{Browser, Reply, Server, ServerOptions};

const LOGIN_COOKIE: &str = "sandscribe_login";

fn alice_and_bob() -> ServerOptions {
    ServerOptions::new()
        .api_key("alice-secret", "alice", "user")
        .api_key("bob-secret", "bob", "user")
}

/// Logs in with `key` through the login form, as the browser posts it.
fn log_in(browser: &mut Browser, server: &Server, key: &str) {
    browser.log_in(server, key);
    assert!(
        browser.cookie(LOGIN_COOKIE).is_some(),
        "the login sets its cookie"
    );
}

#[track_caller]
fn assert_sent_to_login(reply: &Reply, what: &str) {
    assert_eq!(
        (reply.status, reply.header("location")),
        (303, Some("/login")),
        "{what} should be sent to the login page: {}",
        reply.text()
    );
}

/// The start page leads into the workflow (not to `/login`), whose page names the tenant.
#[track_caller]
fn assert_logged_in_as(browser: &mut Browser, server: &Server, tenant: &str) {
    let start = browser.get(server, "/");
    assert_eq!(start.status, 303, "{}", start.text());
    assert_eq!(start.header("location"), Some("/plugins"));
    let page = browser.get(server, "/plugins");
    assert_eq!(page.status, 200, "{}", page.text());
    let html = page.text();
    assert!(html.contains("Choose a plugin"), "{html}");
    assert!(
        html.contains(&format!(
            r#"Logged in as <strong id="logged-in-as">{tenant}</strong>"#
        )),
        "the header names the tenant: {html}"
    );
    assert!(
        !html.contains(r#"name="key""#),
        "not the login form: {html}"
    );
}

#[test]
fn a_browser_login_survives_a_restart_but_not_the_removal_of_its_key() {
    let mut server = Server::start(alice_and_bob());
    let mut browser = Browser::new();
    assert_sent_to_login(
        &browser.get(&server, "/plugins"),
        "a browser without a login",
    );
    let refused = browser.post_form(&server, "/login", &[("key", "not-a-key")]);
    assert_eq!(refused.status, 401);
    assert!(refused.text().contains("That key is not valid."));

    log_in(&mut browser, &server, "alice-secret");
    assert_logged_in_as(&mut browser, &server, "alice");

    server.restart();
    assert_logged_in_as(&mut browser, &server, "alice");
    // The JSON API (which the pages' scripts call) takes the same cookie.
    browser.get(&server, "/api/results").expect(200);

    // Alice's key is taken out of the config: her login ends with it.
    server.restart_with(ServerOptions::new().api_key("bob-secret", "bob", "user"));
    let api = browser.get(&server, "/api/results");
    assert_eq!(api.status, 401, "{}", api.text());
    assert!(
        api.error_message().contains("log in again"),
        "{}",
        api.text()
    );
    assert_sent_to_login(&browser.get(&server, "/"), "a login whose key was removed");
    assert_eq!(
        browser.cookie(LOGIN_COOKIE),
        None,
        "the refused login's cookie is cleared"
    );

    // Bob, whose key stayed, logs in as usual.
    log_in(&mut browser, &server, "bob-secret");
    assert_logged_in_as(&mut browser, &server, "bob");
}

#[test]
fn logging_out_ends_the_login_on_the_server_not_only_in_the_browser() {
    let server = Server::start(alice_and_bob());
    let mut browser = Browser::new();
    log_in(&mut browser, &server, "alice-secret");
    // A copy of the cookie taken before the logout (a stolen one, say).
    let mut copy = browser.clone();

    let out = browser.post_form(&server, "/logout", &[]);
    assert_sent_to_login(&out, "logging out");
    assert_eq!(browser.cookie(LOGIN_COOKIE), None);
    assert_sent_to_login(&browser.get(&server, "/plugins"), "a logged-out browser");

    assert!(copy.cookie(LOGIN_COOKIE).is_some());
    assert_eq!(copy.get(&server, "/api/results").status, 401);
    // Logging out with a login that has already ended still lands on the login page.
    assert_sent_to_login(
        &copy.clone().post_form(&server, "/logout", &[]),
        "logging out again",
    );
    assert_sent_to_login(&copy.get(&server, "/plugins"), "the old cookie");
    assert_eq!(
        copy.cookie(LOGIN_COOKIE),
        None,
        "the dead cookie is cleared"
    );
}

#[test]
fn a_login_form_posted_from_another_site_is_refused() {
    let server = Server::start(alice_and_bob());
    let mut browser = Browser::new();
    // The form is sent from elsewhere: the browser names that site in `Origin`.
    let reply = browser.post_form_from(
        &server,
        "https://evil.example",
        "/login",
        &[("key", "alice-secret")],
    );
    assert_eq!(reply.status, 403, "{}", reply.text());
    assert_eq!(browser.cookie(LOGIN_COOKIE), None);
}
