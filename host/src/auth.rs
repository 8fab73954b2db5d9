//! Who is calling: API keys, tenants and roles.
//!
//! Keys are configured as sha256 hashes (never the keys themselves) and map to a tenant
//! and a role. With no keys configured the server runs in single-user mode: every
//! request is the `default` tenant with the admin role, and the server refuses to listen
//! anywhere but loopback. A caller only ever sees its own tenant's jobs and results;
//! another tenant's are "not found" (404), so nothing leaks.

use std::collections::HashMap;

use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, COOKIE};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The tenant of single-user mode.
pub const DEFAULT_TENANT: &str = "default";

/// The cookie that carries a browser's login (a random token; the server keeps only
/// its hash).
pub const LOGIN_COOKIE: &str = "sandscribe_login";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    User,
}

/// One configured API key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKey {
    /// Hex sha256 of the key (`printf %s KEY | sha256sum`).
    pub sha256: String,
    pub tenant: String,
    pub role: Role,
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub tenant: String,
    pub role: Role,
}

impl Caller {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    fn single_user() -> Self {
        Self {
            tenant: DEFAULT_TENANT.to_owned(),
            role: Role::Admin,
        }
    }
}

/// Why a request was not authenticated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("this server needs an API key: send `Authorization: Bearer <key>`")]
    Missing,
    #[error("the API key is not valid")]
    Invalid,
}

/// The configured keys, by hash.
#[derive(Debug, Default)]
pub struct Access {
    keys: HashMap<String, Caller>,
    /// Browser logins: hash of the cookie token → caller.
    logins: std::sync::RwLock<HashMap<String, Caller>>,
}

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

impl Access {
    /// Checks the configured keys (64 hex digits each, no duplicates).
    pub fn new(keys: &[ApiKey]) -> Result<Self, String> {
        let mut map = HashMap::new();
        for key in keys {
            let hash = key.sha256.trim().to_ascii_lowercase();
            if hash.len() != 64 || !hash.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(format!(
                    "api key for tenant \"{}\": sha256 must be 64 hex digits (the hash of the key, not the key)",
                    key.tenant
                ));
            }
            if key.tenant.trim().is_empty() {
                return Err("api key: tenant must not be empty".into());
            }
            let caller = Caller {
                tenant: key.tenant.clone(),
                role: key.role,
            };
            if map.insert(hash, caller).is_some() {
                return Err(format!(
                    "api key for tenant \"{}\" is listed twice",
                    key.tenant
                ));
            }
        }
        Ok(Self {
            keys: map,
            logins: Default::default(),
        })
    }

    /// No keys configured: one user, loopback only.
    pub fn single_user(&self) -> bool {
        self.keys.is_empty()
    }

    /// The caller a key belongs to.
    pub fn by_key(&self, key: &str) -> Result<Caller, AuthError> {
        if self.single_user() {
            return Ok(Caller::single_user());
        }
        self.keys
            .get(&sha256_hex(key.trim()))
            .cloned()
            .ok_or(AuthError::Invalid)
    }

    /// Authenticates a request: a bearer key, or a browser login cookie.
    pub fn caller(&self, headers: &HeaderMap) -> Result<Caller, AuthError> {
        if self.single_user() {
            return Ok(Caller::single_user());
        }
        if let Some(token) = bearer_token(headers) {
            return self.by_key(token);
        }
        if let Some(token) = cookie(headers, LOGIN_COOKIE) {
            let logins = self.logins.read().unwrap_or_else(|e| e.into_inner());
            return logins
                .get(&sha256_hex(token))
                .cloned()
                .ok_or(AuthError::Invalid);
        }
        Err(AuthError::Missing)
    }

    /// Starts a browser login for a valid key; returns the cookie token.
    pub fn login(&self, key: &str) -> Result<String, AuthError> {
        let caller = self.by_key(key)?;
        let token =
            uuid::Uuid::new_v4().simple().to_string() + &uuid::Uuid::new_v4().simple().to_string();
        self.logins
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(sha256_hex(&token), caller);
        Ok(token)
    }

    /// Ends a browser login.
    pub fn logout(&self, headers: &HeaderMap) {
        if let Some(token) = cookie(headers, LOGIN_COOKIE) {
            self.logins
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&sha256_hex(token));
        }
    }
}

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|token| !token.is_empty())
}

/// A cookie's value.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access() -> Access {
        Access::new(&[
            ApiKey {
                sha256: sha256_hex("alice-key"),
                tenant: "alice".into(),
                role: Role::User,
            },
            ApiKey {
                sha256: sha256_hex("root-key"),
                tenant: "ops".into(),
                role: Role::Admin,
            },
        ])
        .expect("valid keys")
    }

    fn headers(name: axum::http::HeaderName, value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(name, value.parse().expect("header"));
        headers
    }

    #[test]
    fn keys_map_to_their_tenant_and_role() {
        let access = access();
        let alice = access
            .caller(&headers(AUTHORIZATION, "Bearer alice-key"))
            .expect("alice");
        assert_eq!(alice.tenant, "alice");
        assert!(!alice.is_admin());
        assert!(
            access
                .caller(&headers(AUTHORIZATION, "Bearer root-key"))
                .expect("ops")
                .is_admin()
        );
        assert_eq!(
            access.caller(&headers(AUTHORIZATION, "Bearer nope")),
            Err(AuthError::Invalid)
        );
        assert_eq!(access.caller(&HeaderMap::new()), Err(AuthError::Missing));
    }

    #[test]
    fn a_browser_login_is_a_cookie_for_the_keys_tenant() {
        let access = access();
        assert_eq!(access.login("wrong"), Err(AuthError::Invalid));
        let token = access.login("alice-key").expect("login");
        let cookie_header = headers(COOKIE, &format!("a=b; {LOGIN_COOKIE}={token}"));
        assert_eq!(
            access.caller(&cookie_header).expect("cookie").tenant,
            "alice"
        );
        access.logout(&cookie_header);
        assert_eq!(access.caller(&cookie_header), Err(AuthError::Invalid));
    }

    #[test]
    fn without_keys_everyone_is_the_single_user() {
        let access = Access::new(&[]).expect("empty");
        assert!(access.single_user());
        assert_eq!(
            access.caller(&HeaderMap::new()).expect("caller").tenant,
            DEFAULT_TENANT
        );
    }

    #[test]
    fn keys_must_be_hashes() {
        let err = Access::new(&[ApiKey {
            sha256: "plain-key".into(),
            tenant: "t".into(),
            role: Role::User,
        }])
        .expect_err("not a hash");
        assert!(err.contains("64 hex digits"), "{err}");
    }
}
