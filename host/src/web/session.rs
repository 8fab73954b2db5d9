//! The browser session: a `sandscribe_session` cookie (HttpOnly, SameSite=Lax; Secure and
//! named `__Host-sandscribe_session` off loopback) naming server-side state, so the
//! current step survives reloads and restarts.
//!
//! The cookie holds only a random id; everything else (chosen plugin, configuration,
//! file, current job) lives in [`super::state_store`], stored with the login it belongs
//! to ([`Credential::owner`]: the login token's hash, the key's, or the single user) and
//! its tenant. Only the server makes session ids, and a cookie counts only for the login
//! it was issued to: one from before a logout, another user's in a shared browser, or
//! one planted by a sibling site (session fixation) finds nothing, and the request gets a
//! fresh session and a cookie naming it. Logging in or out drops the session
//! ([`super::login`]).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use uuid::Uuid;

use super::state_store::WizardState;
use super::{Web, WebError};
use crate::auth::{Authenticated, Site, cookie_values, request_host};

/// Name of the session cookie (before the `__Host-` prefix, where it applies).
pub const COOKIE_NAME: &str = "sandscribe_session";

/// A year: the state is on the server and ends with the login anyway.
const MAX_AGE_SECONDS: u64 = 31_536_000;

/// The request's browser session and its state, as found (or made) by [`ensure`].
#[derive(Debug, Clone)]
pub struct Session {
    pub id: Uuid,
    /// The login it belongs to ([`crate::auth::Credential::owner`]).
    pub owner: String,
    pub state: WizardState,
}

/// The session ids a request's cookies name (a browser may send several cookies of one
/// name, one of them planted), well-formed ones only.
pub fn ids_from_headers(site: &Site, headers: &HeaderMap) -> Vec<Uuid> {
    let name = site.cookie_name(COOKIE_NAME, request_host(headers));
    cookie_values(headers, &name)
        .into_iter()
        .filter_map(|value| Uuid::parse_str(value.trim()).ok())
        .collect()
}

/// The `Set-Cookie` value naming session `id`.
pub fn cookie(site: &Site, id: Uuid, host: Option<&str>) -> String {
    site.set_cookie(
        COOKIE_NAME,
        &id.to_string(),
        "Lax",
        Some(MAX_AGE_SECONDS),
        host,
    )
}

/// The `Set-Cookie` value that makes the browser forget its session cookie.
pub fn clear_cookie(site: &Site, host: Option<&str>) -> String {
    site.set_cookie(COOKIE_NAME, "", "Lax", Some(0), host)
}

/// Middleware (after the login check): gives every page request the [`Session`] its
/// cookie names for this login, or a new one, whose cookie the response then sets.
pub async fn ensure(State(web): State<Arc<Web>>, mut request: Request, next: Next) -> Response {
    let Some(auth) = request.extensions().get::<Authenticated>().cloned() else {
        return WebError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "no login was checked for this page",
        )
        .into_response();
    };
    let site = web.app.access.site();
    let candidates = ids_from_headers(site, request.headers());
    let owner = auth.credential.owner();
    let tenant = auth.caller.tenant.clone();
    let found = match web.store.find_session(candidates, &owner, &tenant).await {
        Ok(found) => found,
        Err(e) => return WebError::from(e).into_response(),
    };
    let (session, issued) = match found {
        Some((id, state)) => (Session { id, owner, state }, false),
        None => match web.store.issue_session(&owner, &tenant).await {
            Ok(id) => (
                Session {
                    id,
                    owner,
                    state: WizardState::default(),
                },
                true,
            ),
            Err(e) => return WebError::from(e).into_response(),
        },
    };
    let set = issued.then(|| cookie(site, session.id, request_host(request.headers())));
    request.extensions_mut().insert(session);
    let mut response = next.run(request).await;
    if let Some(value) = set.and_then(|v| HeaderValue::from_str(&v).ok()) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on_loopback(cookies: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(cookies).expect("header"),
        );
        headers
    }

    #[test]
    fn every_well_formed_session_cookie_is_a_candidate() {
        let (planted, ours) = (Uuid::new_v4(), Uuid::new_v4());
        let headers = on_loopback(&format!(
            "a=1; {COOKIE_NAME}={planted}; {COOKIE_NAME}=../../etc; {COOKIE_NAME}={ours}"
        ));
        assert_eq!(
            ids_from_headers(&Site::default(), &headers),
            vec![planted, ours]
        );
    }

    #[test]
    fn the_cookie_is_http_only_and_same_site_lax() {
        let text = cookie(&Site::default(), Uuid::nil(), Some("127.0.0.1:8080"));
        assert!(
            text.contains("HttpOnly") && text.contains("SameSite=Lax"),
            "{text}"
        );
        let off_loopback = cookie(&Site::default(), Uuid::nil(), Some("a.example"));
        assert!(
            off_loopback.starts_with("__Host-sandscribe_session=")
                && off_loopback.contains("Secure"),
            "{off_loopback}"
        );
    }
}
