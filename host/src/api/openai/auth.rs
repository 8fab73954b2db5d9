//! Who is calling: the `Authorization: Bearer …` header.
//!
//! Every handler of the OpenAI-compatible API takes a [`Caller`], so [`authorize`] is the
//! single place where API keys will be checked and a key mapped to its tenant. Until
//! then any bearer token, or none, is accepted as the single-user tenant: OpenAI's
//! clients insist on sending some key, and whatever they send must work.

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::error::OpenAiError;
use crate::api::DEFAULT_TENANT;

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The tenant whose jobs and results the request sees.
    pub tenant: String,
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = OpenAiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        authorize(&parts.headers)
    }
}

/// Decides who the caller is, or refuses the request (401 once keys exist).
fn authorize(headers: &HeaderMap) -> Result<Caller, OpenAiError> {
    // API keys: look the key up here and answer 401 `invalid_api_key` when it is unknown.
    let _api_key = bearer_token(headers);
    Ok(Caller {
        tenant: DEFAULT_TENANT.to_owned(),
    })
}

/// The token of an `Authorization: Bearer <token>` header.
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|token| !token.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, value.parse().unwrap());
        headers
    }

    #[test]
    fn bearer_token_is_read_case_insensitively() {
        assert_eq!(bearer_token(&headers("Bearer sk-abc")), Some("sk-abc"));
        assert_eq!(bearer_token(&headers("bearer  sk-abc ")), Some("sk-abc"));
        assert_eq!(bearer_token(&headers("Basic dXNlcg==")), None);
        assert_eq!(bearer_token(&HeaderMap::new()), None);
    }

    #[test]
    fn any_key_or_none_is_the_default_tenant_for_now() {
        for headers in [HeaderMap::new(), headers("Bearer anything")] {
            assert_eq!(authorize(&headers).unwrap().tenant, DEFAULT_TENANT);
        }
    }
}
