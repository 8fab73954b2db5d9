//! Logging in with an API key (when keys are configured), and the checks every page
//! passes first: who the browser is, and that a form post comes from our own pages.
//!
//! The login is an HttpOnly, SameSite=Strict cookie holding a random token (the server
//! keeps only its hash). State-changing requests must come from this site: their
//! `Origin` (or `Referer`) must name the host they are sent to, which stops cross-site
//! request forgery even where a browser ignores SameSite.

use std::sync::Arc;

use axum::Form;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::Web;
use crate::auth::LOGIN_COOKIE;

/// Pages need a logged-in browser when API keys are configured.
pub async fn require_login(State(web): State<Arc<Web>>, request: Request, next: Next) -> Response {
    match web.app.access.caller(request.headers()) {
        Ok(_) => next.run(request).await,
        Err(_) if request.method() == Method::GET => Redirect::to("/login").into_response(),
        Err(e) => (StatusCode::UNAUTHORIZED, e.to_string()).into_response(),
    }
}

/// Refuses a state-changing request that did not come from this site's own pages.
pub async fn same_origin(request: Request, next: Next) -> Response {
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if safe || from_this_site(request.headers()) {
        next.run(request).await
    } else {
        (
            StatusCode::FORBIDDEN,
            "this form was sent from another site; go back to sandscribe and try again",
        )
            .into_response()
    }
}

/// Whether `Origin` (or, without it, `Referer`) names the host the request went to.
/// A request with neither (not a browser, or a same-origin request from an old one)
/// passes: forgery needs a browser, and browsers send `Origin` on cross-site posts.
fn from_this_site(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let source = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .and_then(|v| v.to_str().ok());
    match source {
        None => true,
        Some(url) => url
            .split_once("://")
            .map(|(_, rest)| rest.split('/').next().unwrap_or_default())
            .is_some_and(|authority| authority.eq_ignore_ascii_case(host)),
    }
}

const PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Log in · sandscribe</title><link rel="stylesheet" href="/assets/app.css"></head>
<body><main class="container"><section class="card">
<h1>Log in</h1>
<p>This server is shared. Enter the API key you were given; the browser keeps you logged in.</p>
{error}
<form method="post" action="/login">
<label for="key">API key</label>
<input id="key" name="key" type="password" autocomplete="current-password" required autofocus>
<button type="submit" class="button primary">Log in</button>
</form></section></main></body></html>"#;

fn page(error: Option<&str>) -> Html<String> {
    // The only inserted text is one of our own fixed messages, never user input.
    let error = error.map_or(String::new(), |e| {
        format!(r#"<p class="error" role="alert">{e}</p>"#)
    });
    Html(PAGE.replace("{error}", &error))
}

pub async fn show(State(web): State<Arc<Web>>) -> Response {
    if web.app.access.single_user() {
        return Redirect::to("/").into_response();
    }
    page(None).into_response()
}

#[derive(Deserialize)]
pub struct LoginForm {
    key: String,
}

pub async fn submit(
    State(web): State<Arc<Web>>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    match web.app.access.login(&form.key) {
        Ok(token) => {
            let local = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .is_some_and(|h| {
                    h.starts_with("127.0.0.1")
                        || h.starts_with("localhost")
                        || h.starts_with("[::1]")
                });
            // Secure everywhere but on loopback, where there is no TLS to require.
            let secure = if local { "" } else { "; Secure" };
            let cookie =
                format!("{LOGIN_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict{secure}");
            let mut response = Redirect::to("/").into_response();
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            response
        }
        Err(_) => (
            StatusCode::UNAUTHORIZED,
            page(Some("That key is not valid.")),
        )
            .into_response(),
    }
}

pub async fn logout(State(web): State<Arc<Web>>, headers: HeaderMap) -> Response {
    web.app.access.logout(&headers);
    let mut response = Redirect::to("/login").into_response();
    let expired = format!("{LOGIN_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    if let Ok(value) = HeaderValue::from_str(&expired) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(name.clone(), value.parse().expect("header"));
        }
        map
    }

    #[test]
    fn posts_from_another_site_are_refused() {
        assert!(from_this_site(&headers(&[
            (header::HOST, "a.example:8080"),
            (header::ORIGIN, "http://a.example:8080")
        ])));
        assert!(!from_this_site(&headers(&[
            (header::HOST, "a.example:8080"),
            (header::ORIGIN, "http://evil.example")
        ])));
        assert!(!from_this_site(&headers(&[
            (header::HOST, "a.example"),
            (header::REFERER, "https://evil.example/a.example")
        ])));
        assert!(from_this_site(&headers(&[(header::HOST, "a.example")])));
    }
}
