//! The check every request passes before any route sees it: that it names a host this
//! server answers to, and that a state-changing request relying on the browser's ambient
//! credentials was sent by this site's own pages.
//!
//! It is one layer on the whole app (JSON API, admin, `/v1`, pages, assets, unknown
//! paths), so no route can be forgotten:
//! - **Host.** A request must name a host the [`Site`] answers to, which stops DNS
//!   rebinding (a hostile name resolved to this server, whose pages would then be
//!   same-origin with it). Exempt: `GET /healthz` (load balancers probe by address), and
//!   requests with a bearer key when keys are configured (a key is proof enough, and a
//!   rebinding page has none). In single-user mode any key is accepted, so there the
//!   check covers bearer requests too.
//! - **Origin.** A request that changes state (anything but GET, HEAD, OPTIONS) and
//!   carries no bearer key must come from this origin ([`Site::same_origin`]). That covers
//!   the login cookie, which a browser attaches to requests from sibling origins (other
//!   ports, subdomains: the same *site*, so `SameSite=Strict` lets them through), and
//!   single-user mode, where being on loopback is the credential. A bearer key cannot
//!   be sent cross-origin without a CORS preflight, which this server never grants.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiError;
use crate::api::openai::OpenAiError;
use crate::auth::{Site, bearer_token, request_host};

/// The host and origin rules of one server.
#[derive(Debug, Clone)]
pub struct RequestGuard {
    site: Site,
    /// No keys: every request is the admin, so even a bearer request must name our host.
    single_user: bool,
}

/// Why a request was refused before reaching its route.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "this server does not answer to the host {host:?}; it answers as {expected}. If that \
         is its address, set public_url in the config"
    )]
    ForeignHost { host: String, expected: String },
    #[error(
        "this request was sent by a page of another site ({origin}), not by sandscribe's own \
         pages; go back to sandscribe and try again"
    )]
    ForeignOrigin { origin: String },
}

impl Refusal {
    fn code(&self) -> &'static str {
        match self {
            Self::ForeignHost { .. } => "foreign_host",
            Self::ForeignOrigin { .. } => "foreign_origin",
        }
    }
}

impl RequestGuard {
    pub fn new(site: Site, single_user: bool) -> Self {
        Self { site, single_user }
    }

    /// Whether a request with this method, path and headers may go on to its route.
    pub fn check(&self, method: &Method, path: &str, headers: &HeaderMap) -> Result<(), Refusal> {
        let host = request_host(headers);
        let bearer = bearer_token(headers).is_some();
        let host_exempt = path == "/healthz" || (bearer && !self.single_user);
        if !host_exempt && !self.site.host_allowed(host) {
            return Err(Refusal::ForeignHost {
                host: host.unwrap_or_default().to_owned(),
                expected: self.site.public().map_or_else(
                    || "a loopback address (localhost, 127.0.0.1, [::1])".to_owned(),
                    |p| format!("{p} (or a loopback address)"),
                ),
            });
        }
        let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
        if !safe && !bearer && !self.site.same_origin(headers, host) {
            let origin = headers
                .get(header::ORIGIN)
                .or_else(|| headers.get(header::REFERER))
                .and_then(|v| v.to_str().ok())
                .unwrap_or("unknown")
                .to_owned();
            return Err(Refusal::ForeignOrigin { origin });
        }
        Ok(())
    }
}

/// Middleware: refuses what [`RequestGuard::check`] refuses (403), in the error shape the
/// path's API uses.
pub async fn check_request(
    State(guard): State<Arc<RequestGuard>>,
    mut request: Request,
    next: Next,
) -> Response {
    // HTTP/2 names the host in the URI, not in a header: give it one, so the checks and
    // the cookie names all read the same place.
    if !request.headers().contains_key(header::HOST)
        && let Some(value) = request
            .uri()
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    {
        request.headers_mut().insert(header::HOST, value);
    }
    let path = request.uri().path();
    match guard.check(request.method(), path, request.headers()) {
        Ok(()) => next.run(request).await,
        Err(refusal) => {
            tracing::warn!(path, %refusal, "refused a request");
            refuse(path, &refusal)
        }
    }
}

fn refuse(path: &str, refusal: &Refusal) -> Response {
    let error = ApiError::new(StatusCode::FORBIDDEN, refusal.code(), refusal.to_string());
    if path.starts_with("/v1/") {
        OpenAiError::from(error).into_response()
    } else if path.starts_with("/api/") || path == "/metrics" {
        error.into_response()
    } else {
        (StatusCode::FORBIDDEN, refusal.to_string()).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::PublicOrigin;
    use crate::auth::site::headers;

    const OURS: (header::HeaderName, &str) = (header::HOST, "127.0.0.1:8080");
    const EVIL_HOST: (header::HeaderName, &str) = (header::HOST, "evil.example:8080");
    const EVIL_ORIGIN: (header::HeaderName, &str) = (header::ORIGIN, "http://127.0.0.1:8081");
    const BEARER: (header::HeaderName, &str) = (header::AUTHORIZATION, "Bearer some-key");

    fn with_keys() -> RequestGuard {
        RequestGuard::new(Site::default(), false)
    }

    #[test]
    fn a_post_from_a_sibling_origin_is_refused_unless_it_carries_a_key() {
        let guard = with_keys();
        let post = |pairs: &[(header::HeaderName, &str)]| {
            guard.check(&Method::POST, "/api/jobs", &headers(pairs))
        };
        assert!(matches!(
            post(&[OURS, EVIL_ORIGIN]),
            Err(Refusal::ForeignOrigin { .. })
        ));
        assert_eq!(post(&[OURS, EVIL_ORIGIN, BEARER]), Ok(()));
        assert_eq!(
            post(&[OURS, (header::ORIGIN, "http://127.0.0.1:8080")]),
            Ok(())
        );
        assert_eq!(post(&[OURS]), Ok(()), "no browser sent it");
        // Reading is not forgery.
        assert_eq!(
            guard.check(&Method::GET, "/api/jobs", &headers(&[OURS, EVIL_ORIGIN])),
            Ok(())
        );
    }

    #[test]
    fn a_foreign_host_is_refused_except_with_a_key_or_for_the_health_check() {
        let guard = with_keys();
        for method in [Method::GET, Method::POST] {
            assert!(matches!(
                guard.check(&method, "/results", &headers(&[EVIL_HOST])),
                Err(Refusal::ForeignHost { .. })
            ));
        }
        assert_eq!(
            guard.check(&Method::POST, "/api/jobs", &headers(&[EVIL_HOST, BEARER])),
            Ok(())
        );
        assert_eq!(
            guard.check(&Method::GET, "/healthz", &headers(&[EVIL_HOST])),
            Ok(())
        );
        assert!(guard.check(&Method::GET, "/", &HeaderMap::new()).is_err());
    }

    #[test]
    fn in_single_user_mode_a_key_does_not_excuse_a_foreign_host() {
        let guard = RequestGuard::new(Site::default(), true);
        assert!(matches!(
            guard.check(&Method::GET, "/api/results", &headers(&[EVIL_HOST, BEARER])),
            Err(Refusal::ForeignHost { .. })
        ));
        assert_eq!(
            guard.check(&Method::POST, "/api/jobs", &headers(&[OURS, BEARER])),
            Ok(())
        );
    }

    #[test]
    fn the_refusal_names_the_public_origin() {
        let site = Site::new(
            Some(PublicOrigin::parse("https://transcribe.example").expect("valid")),
            "0.0.0.0:8080".parse().expect("address"),
        );
        let refusal = RequestGuard::new(site, false)
            .check(&Method::GET, "/", &headers(&[EVIL_HOST]))
            .expect_err("foreign host");
        assert!(
            refusal.to_string().contains("https://transcribe.example"),
            "{refusal}"
        );
    }
}
