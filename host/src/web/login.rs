//! Logging in with an API key (when keys are configured), and the check every page
//! passes first: who the browser is.
//!
//! The login is an HttpOnly, SameSite=Strict cookie holding a random token (Secure and
//! named `__Host-sandscribe_login` off loopback); the server keeps only its hash, in the
//! database, so logins outlive a restart ([`crate::auth::LoginStore`]). Every page's
//! header names the tenant and offers "Log out", which ends the login on the server too.
//! Logging in or out also drops the browser's session and the upload it staged: the
//! next person in the same browser starts from nothing.
//!
//! That a form post comes from our own pages is checked for every route at once, by
//! [`crate::app::guard`].

use std::sync::Arc;

use axum::Form;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::{Web, WebError, file, session};
use crate::auth::{AuthError, Credential, LOGIN_COOKIE, request_host};

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

/// Pages need a logged-in browser when API keys are configured. The caller (and the
/// credential, which the session is bound to) is handed on to the handler as a request
/// extension, so the login is looked up once per request.
pub async fn require_login(
    State(web): State<Arc<Web>>,
    mut request: Request,
    next: Next,
) -> Response {
    let access = &web.app.access;
    match access.authenticate(request.headers()).await {
        Ok(auth) => {
            let shown = (!access.single_user()).then(|| auth.caller.tenant.clone());
            request.extensions_mut().insert(auth);
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
            if access.login_token(request.headers()).is_some() {
                clear_cookies(&web, request.headers(), &mut response);
            }
            response
        }
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
            // The browser's earlier login (someone else's, on a shared machine) ends here,
            // with its session: nothing of it carries over to this one.
            if let Err(e) = end_login(&web, &headers).await {
                return e.into_response();
            }
            let site = web.app.access.site();
            let host = request_host(&headers);
            let mut response = Redirect::to("/").into_response();
            set_cookies(
                &mut response,
                [
                    site.set_cookie(LOGIN_COOKIE, &token, "Strict", None, host),
                    session::clear_cookie(site, host),
                ],
            );
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
/// even if a copy of it survives), drops its session and staged upload, and clears both
/// cookies in the browser. Open without a valid login, so that a browser whose login
/// already lapsed can still log out cleanly.
pub async fn logout(State(web): State<Arc<Web>>, headers: HeaderMap) -> Response {
    if let Err(e) = end_login(&web, &headers).await {
        return e.into_response();
    }
    let mut response = Redirect::to("/login").into_response();
    clear_cookies(&web, &headers, &mut response);
    response
}

/// Ends the request's login, if it has one, with the sessions bound to it.
async fn end_login(web: &Web, headers: &HeaderMap) -> Result<(), WebError> {
    let ended = web.app.access.logout(headers).await.map_err(|e| {
        tracing::error!(error = %e, "ending a browser login");
        WebError::new(e.status(), e.to_string())
    })?;
    if let Some(login @ Credential::Login(_)) = ended {
        for chosen in web.store.drop_sessions(&login.owner()).await? {
            file::discard_staged(web, Some(&chosen));
        }
    }
    Ok(())
}

/// Tells the browser to forget its login and session cookies.
fn clear_cookies(web: &Web, headers: &HeaderMap, response: &mut Response) {
    let site = web.app.access.site();
    let host = request_host(headers);
    set_cookies(
        response,
        [
            site.set_cookie(LOGIN_COOKIE, "", "Strict", Some(0), host),
            session::clear_cookie(site, host),
        ],
    );
}

fn set_cookies(response: &mut Response, cookies: [String; 2]) {
    for cookie in cookies {
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
}
