//! Static assets embedded in the binary: the stylesheet, the page script and htmx.
//!
//! Pages link them with `?v=<hash of all assets>`, so they can be cached for a year:
//! a new build with changed assets gets new URLs.

use std::sync::OnceLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

const APP_CSS: &str = include_str!("assets/app.css");
const APP_JS: &str = include_str!("assets/app.js");
/// htmx 2 from the npm package `htmx.org` (0BSD; the license heads the file).
const HTMX_JS: &str = include_str!("assets/htmx.min.js");
const ICON_SVG: &str = include_str!("assets/icon.svg");

/// Every asset: name, content type, body.
const ASSETS: &[(&str, &str, &str)] = &[
    ("app.css", "text/css; charset=utf-8", APP_CSS),
    ("app.js", "text/javascript; charset=utf-8", APP_JS),
    ("htmx.min.js", "text/javascript; charset=utf-8", HTMX_JS),
    ("icon.svg", "image/svg+xml", ICON_SVG),
];

/// A short hash of all assets, for cache-busting URLs.
pub fn version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        let mut hash = Sha256::new();
        for (name, _, body) in ASSETS {
            hash.update(name.as_bytes());
            hash.update(body.as_bytes());
        }
        hex::encode(&hash.finalize()[..6])
    })
}

pub fn router() -> Router {
    Router::new().route("/assets/{name}", get(serve))
}

async fn serve(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, content_type, body)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            *body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}
