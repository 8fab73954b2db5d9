//! Logging in with an API key (when keys are configured), and the checks every page
//! passes first: who the browser is, and that a form post comes from our own pages.
//!
//! The login is an HttpOnly, SameSite=Strict cookie holding a random token; the server
//! keeps only its hash, in the database, so logins outlive a restart
//! ([`crate::auth::LoginStore`]). Every page's header names the tenant and offers
//! "Log out", which ends the login on the server too.
//!
//! State-changing requests must come from this site: their `Origin` (or `Referer`) must
//! name the host they are sent to, which stops cross-site request forgery even where a
//! browser ignores SameSite.

use std::sync::Arc;

use axum::Form;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::{Web, WebError};
use crate::auth::{AuthError, LOGIN_COOKIE, cookie};

tokio::task_local! {
    /// The tenant a page is rendered for when API keys are configured, so that every
    /// page's header can name it and offer "Log out" without each handler passing it on.
    static LOGGED_IN_AS: Option<String>;
}

/// The tenant the current page's browser is logged in as; `None` in single-user mode
/// (and outside a page request).
pub fn logged_in_as() -> Option<String> {
    LOGGED_IN_AS.try_with(Clone::clone).ok().flatten()
}

/// Pages need a logged-in browser when API keys are configured. The caller is handed on
/// to the handler as a request extension, so the login is looked up once per request.
pub async fn require_login(
    State(web): State<Arc<Web>>,
    mut request: Request,
    next: Next,
) -> Response {
    let access = &web.app.access;
    match access.caller(request.headers()).await {
        Ok(caller) => {
            let shown = (!access.single_user()).then(|| caller.tenant.clone());
            request.extensions_mut().insert(caller);
            LOGGED_IN_AS.scope(shown, next.run(request)).await
        }
        Err(e @ AuthError::Logins(_)) => {
            tracing::error!(error = %e, "checking a browser login");
            WebError::new(e.status(), e.to_string()).into_response()
        }
        Err(e) => {
            let mut response = if request.method() == Method::GET {
                Redirect::to("/login").into_response()
            } else {
                (e.status(), e.to_string()).into_response()
            };
            // A login the server no longer honours is of no use to keep sending.
            if cookie(request.headers(), LOGIN_COOKIE).is_some() {
                clear_login_cookie(&mut response);
            }
            response
        }
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
<div class="field"><label for="key">API key</label>
<input id="key" name="key" type="password" autocomplete="current-password" required autofocus></div>
<div class="actions"><button type="submit" class="button primary">Log in</button></div>
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
    if web.app.access.single_user() {
        return Redirect::to("/").into_response();
    }
    match web.app.access.login(&form.key).await {
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
        Err(e @ AuthError::Logins(_)) => {
            tracing::error!(error = %e, "storing a browser login");
            (
                e.status(),
                page(Some(
                    "The login could not be saved; try again, or tell the operator.",
                )),
            )
                .into_response()
        }
        Err(_) => (
            StatusCode::UNAUTHORIZED,
            page(Some("That key is not valid.")),
        )
            .into_response(),
    }
}

/// `POST /logout`: ends the login on the server (its cookie is refused from then on,
/// even if a copy of it survives) and in the browser. Open without a valid login, so
/// that a browser whose login already lapsed can still log out cleanly.
pub async fn logout(State(web): State<Arc<Web>>, headers: HeaderMap) -> Response {
    if let Err(e) = web.app.access.logout(&headers).await {
        tracing::error!(error = %e, "ending a browser login");
        return WebError::new(e.status(), e.to_string()).into_response();
    }
    let mut response = Redirect::to("/login").into_response();
    clear_login_cookie(&mut response);
    response
}

/// Tells the browser to forget its login cookie.
fn clear_login_cookie(response: &mut Response) {
    let expired = format!("{LOGIN_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    if let Ok(value) = HeaderValue::from_str(&expired) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
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
