//! The caller of a JSON API request: an API key (or a browser login), mapped to its
//! tenant. Every handler that touches jobs or results takes a [`Caller`].

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;

use super::{ApiError, AppState};
use crate::auth::Caller;

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, ApiError> {
        state.access.caller(&parts.headers).await.map_err(|e| {
            let code = if e.status() == StatusCode::UNAUTHORIZED {
                "unauthorized"
            } else {
                "internal"
            };
            ApiError::new(e.status(), code, e.to_string())
        })
    }
}

/// 403 unless the caller is an admin.
pub fn require_admin(caller: &Caller) -> Result<(), ApiError> {
    if caller.is_admin() {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this needs an API key with the admin role",
        ))
    }
}
