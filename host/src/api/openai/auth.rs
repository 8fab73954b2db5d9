//! Who is calling: the `Authorization: Bearer …` header, checked against the configured
//! API keys by [`crate::auth::Access`] (any key, or none, in single-user mode: OpenAI's
//! clients insist on sending some key). A bad key is answered 401 `invalid_api_key`.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;

use super::error::OpenAiError;
use crate::api::ApiError;
use crate::app::AppState;

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The tenant whose jobs and results the request sees.
    pub tenant: String,
}

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = OpenAiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let caller = state.access.caller(&parts.headers).await.map_err(|e| {
            let code = if e.status() == StatusCode::UNAUTHORIZED {
                "invalid_api_key"
            } else {
                "internal"
            };
            OpenAiError::from(ApiError::new(e.status(), code, e.to_string()))
        })?;
        Ok(Caller {
            tenant: caller.tenant,
        })
    }
}
