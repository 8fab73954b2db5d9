//! Headers on every response of the app, whatever answered it (a route, an error, the
//! fallback for unknown paths), so that nothing the server sends can be read as
//! something it is not.
//!
//! - `X-Content-Type-Options: nosniff`: a browser takes the content type as given, so
//!   a transcript exported as `text/plain` is never run as a script, nor a JSON answer
//!   rendered as a page.
//! - `Content-Security-Policy: default-src 'none'; sandbox` on everything that did not
//!   set its own policy (the pages set theirs): opened directly, an export, an audio file
//!   or an error runs no script and loads nothing, and is not even same-origin with the
//!   app. Subresources (audio, scripts, styles, event streams) ignore a response's CSP,
//!   so the pages that load them are unaffected.
//! - `Cross-Origin-Resource-Policy: same-origin`: another site's page cannot embed our
//!   responses (an `<audio>` or `<script>` of a sibling origin would be sent the login
//!   cookie).

use axum::http::{HeaderValue, header};
use axum::response::Response;

/// What a response that is not a page may do when opened: nothing.
pub const SANDBOX_CSP: &str = "default-src 'none'; sandbox";

/// Adds the headers every response carries.
pub async fn apply(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(SANDBOX_CSP),
        );
    }
    response
}
