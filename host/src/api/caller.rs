//! The caller of a JSON API request: an API key (or a browser login), mapped to its
//! tenant. Every handler that touches jobs or results takes a [`Caller`]; `/metrics`
//! takes a [`MetricsReader`].

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;

use super::ApiError;
use crate::app::AppState;
use crate::auth::{Caller, bearer_token};

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

/// Someone who may read `/metrics`, which names every tenant and its activity: anyone in
/// single-user mode (which is loopback only), else the configured metrics token or an
/// admin (401 without a key, 403 for a user's).
pub struct MetricsReader;

impl FromRequestParts<Arc<AppState>> for MetricsReader {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, ApiError> {
        if state.access.single_user() {
            return Ok(Self);
        }
        if bearer_token(&parts.headers).is_some_and(|token| state.config.metrics.is_token(token)) {
            return Ok(Self);
        }
        let caller = Caller::from_request_parts(parts, state).await?;
        require_admin(&caller)?;
        Ok(Self)
    }
}
