//! The app as a whole: what the front ends share and the router that puts them together.
//!
//! The JSON API and `/v1` ([`crate::api`]) and the pages ([`crate::web`]) each build only
//! their own routes; neither knows the other. What both need lives here:
//!
//! | file | what it owns |
//! |---|---|
//! | `state.rs` | [`AppState`], everything handlers share, and its per-tenant answers |
//! | `error.rs` | [`ApiError`], the one error type that maps to HTTP |
//! | `extract.rs` | extractors whose rejections are [`ApiError`]s; the one id parser |
//! | `upload.rs` | receiving a multipart upload to disk under limits, probing it |
//! | `submit.rs` | creating a job from an upload, with every check a submission passes |
//! | `lookup.rs` | one job or stored result by id for a tenant |
//! | `guard.rs` | the Host/Origin check every request passes first |
//! | `response_headers.rs` | the headers every response carries |
//!
//! [`app`] merges the routers and wraps them all, pages included, in two layers:
//! [`guard`] (the request names our host and, if it changes state on the strength of a
//! cookie, comes from our pages) and [`response_headers`] (nothing is sniffed or run).

mod error;
pub mod extract;
pub mod guard;
pub mod lookup;
pub mod response_headers;
mod state;
pub mod submit;
pub mod upload;

use std::sync::Arc;

use axum::Router;

pub use error::{ApiError, Envelope as ApiErrorEnvelope};
pub use state::AppState;

/// The whole app: the JSON API, `/v1`, the pages, behind the request guard and with
/// the headers every response carries.
pub fn app(state: Arc<AppState>) -> Router {
    let guard = Arc::new(guard::RequestGuard::new(
        state.access.site().clone(),
        state.access.single_user(),
    ));
    let pace = crate::http::body::BodyPace {
        stall: std::time::Duration::from_secs(state.config.http.body_stall_seconds),
        min_bytes_per_second: state.config.http.body_min_bytes_per_second,
    };
    let rate = (!state.access.single_user()).then(|| {
        Arc::new(crate::http::rate::RateLimit::new(
            state.config.http.anonymous_requests_per_minute,
        ))
    });
    let app = Router::new()
        .merge(crate::api::router(&state))
        .merge(crate::api::openai::router(&state))
        .with_state(state.clone())
        .merge(crate::web::router(state))
        .layer(axum::middleware::from_fn_with_state(
            guard,
            guard::check_request,
        ))
        .layer(axum::middleware::map_request(
            move |request: axum::extract::Request| async move {
                crate::http::body::paced(request, pace)
            },
        ));
    let app = match rate {
        Some(rate) => app.layer(axum::middleware::from_fn_with_state(
            rate,
            crate::http::rate::limit,
        )),
        None => app,
    };
    app.layer(axum::middleware::map_response(response_headers::apply))
}
