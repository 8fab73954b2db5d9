//! The browser session: a `sandscribe_session` cookie (HttpOnly, SameSite=Lax) naming
//! server-side state, so the current step survives reloads and restarts.
//!
//! The cookie holds only a random id; everything else (chosen plugin, configuration,
//! file, current job) lives in [`super::state_store`]. A request without a valid cookie
//! gets a new id, and the response sets the cookie.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use uuid::Uuid;

/// Name of the session cookie.
pub const COOKIE_NAME: &str = "sandscribe_session";

/// The browser session a request belongs to (set by [`ensure`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionId(pub Uuid);

/// The session id from the request's cookies, if it has a well-formed one.
pub fn from_headers(headers: &HeaderMap) -> Option<Uuid> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .and_then(|(_, value)| Uuid::parse_str(value.trim()).ok())
}

/// The `Set-Cookie` value for a session id. A year long; the state is on the server.
pub fn cookie(id: Uuid) -> String {
    format!("{COOKIE_NAME}={id}; Path=/; HttpOnly; SameSite=Lax; Max-Age=31536000")
}

/// Middleware: gives every page request a [`SessionId`], creating one when needed.
pub async fn ensure(mut request: Request, next: Next) -> Response {
    let existing = from_headers(request.headers());
    let id = existing.unwrap_or_else(Uuid::new_v4);
    request.extensions_mut().insert(SessionId(id));
    let mut response = next.run(request).await;
    if existing.is_none()
        && let Ok(value) = HeaderValue::from_str(&cookie(id))
    {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let id = Uuid::new_v4();
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("a=1; {COOKIE_NAME}={id}; b=2")).expect("header"),
        );
        assert_eq!(from_headers(&headers), Some(id));
    }

    #[test]
    fn a_malformed_session_cookie_is_ignored() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("sandscribe_session=../../etc"),
        );
        assert_eq!(from_headers(&headers), None);
    }

    #[test]
    fn the_cookie_is_http_only_and_same_site_lax() {
        let text = cookie(Uuid::nil());
        assert!(
            text.contains("HttpOnly") && text.contains("SameSite=Lax"),
            "{text}"
        );
    }
}
