//! Who is calling: API keys, tenants and roles.
//!
//! Keys are configured as sha256 hashes (never the keys themselves) and map to a tenant
//! and a role. With no keys configured the server runs in single-user mode: every
//! request is the `default` tenant with the admin role, and the server refuses to listen
//! anywhere but loopback. A caller only ever sees its own tenant's jobs and results;
//! another tenant's are "not found" (404), so nothing leaks.
//!
//! A browser logs in once with its key and then carries a cookie instead; the logins are
//! kept in the database ([`logins`]) so they outlive a restart, and each is honoured only
//! while the key that made it is still configured. Which cookie name a request is read
//! under, and which hosts and origins may use it, is the [`site`]'s business.

mod logins;
pub mod site;

use std::collections::HashMap;

use crate::digest::sha256_hex;
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};

pub use logins::{IDLE_EXPIRY, LoginStore, LoginStoreError};
pub use site::{PublicOrigin, Site, request_host};

/// The tenant of single-user mode.
pub const DEFAULT_TENANT: &str = "default";

/// The cookie that carries a browser's login (a random token; the server keeps only
/// its hash). Off loopback it is `__Host-sandscribe_login` ([`Site::cookie_name`]).
pub const LOGIN_COOKIE: &str = "sandscribe_login";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    User,
}

impl Role {
    /// The name the config file and the login table use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::User => "user",
        }
    }

    /// The role [`Role::as_str`] names.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "admin" => Some(Self::Admin),
            "user" => Some(Self::User),
            _ => None,
        }
    }
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

/// How a request proved who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// No keys are configured: every request (on loopback) is the single user.
    SingleUser,
    /// `Authorization: Bearer` with a configured key, by the key's configured sha256.
    Key(String),
    /// A browser login cookie, by the sha256 of its token (as `web_logins` keeps it).
    Login(String),
}

impl Credential {
    /// A stable name for what the credential is, for binding state to it (a browser
    /// session belongs to one login). Holds only hashes, never a secret.
    pub fn owner(&self) -> String {
        match self {
            Self::SingleUser => "single-user".to_owned(),
            Self::Key(sha256) => format!("key:{sha256}"),
            Self::Login(sha256) => format!("login:{sha256}"),
        }
    }
}

/// An authenticated request: who, and by what credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    pub caller: Caller,
    pub credential: Credential,
}

/// Why a request was not authenticated.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("this server needs an API key: send `Authorization: Bearer <key>`")]
    Missing,
    #[error("the API key is not valid")]
    Invalid,
    #[error(
        "the browser login is not valid (ended, expired, or its key was removed); log in again"
    )]
    LoginEnded,
    /// The login could not be checked: the server's fault, not the caller's.
    #[error(transparent)]
    Logins(#[from] LoginStoreError),
}

impl AuthError {
    /// 401 for the caller's credentials, 500 when the server could not check them.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Missing | Self::Invalid | Self::LoginEnded => StatusCode::UNAUTHORIZED,
            Self::Logins(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The configured keys, by hash, the browser logins they made, and the site whose
/// cookies carry those logins.
pub struct Access {
    keys: HashMap<String, Caller>,
    logins: LoginStore,
    site: Site,
}

impl Access {
    /// Checks the configured keys (64 hex digits each, no duplicates); browser logins
    /// are kept in `logins`, their cookies named and checked as `site` says.
    pub fn new(keys: &[ApiKey], logins: LoginStore, site: Site) -> Result<Self, String> {
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
            logins,
            site,
        })
    }

    /// The hosts and origin this server answers to.
    pub fn site(&self) -> &Site {
        &self.site
    }

    /// No keys configured: one user, loopback only.
    pub fn single_user(&self) -> bool {
        self.keys.is_empty()
    }

    /// The configured hash and caller of a key.
    fn configured(&self, key: &str) -> Option<(&str, &Caller)> {
        self.keys
            .get_key_value(&sha256_hex(key.trim()))
            .map(|(hash, caller)| (hash.as_str(), caller))
    }

    /// Authenticates a request: a bearer key, or a browser login cookie.
    pub async fn caller(&self, headers: &HeaderMap) -> Result<Caller, AuthError> {
        self.authenticate(headers).await.map(|a| a.caller)
    }

    /// Like [`Access::caller`], saying by what credential.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Authenticated, AuthError> {
        if self.single_user() {
            return Ok(Authenticated {
                caller: Caller::single_user(),
                credential: Credential::SingleUser,
            });
        }
        if let Some(token) = bearer_token(headers) {
            let (hash, caller) = self.configured(token).ok_or(AuthError::Invalid)?;
            return Ok(Authenticated {
                caller: caller.clone(),
                credential: Credential::Key(hash.to_owned()),
            });
        }
        if let Some(token) = self.login_token(headers) {
            let caller = self.by_login(token).await?;
            return Ok(Authenticated {
                caller,
                credential: Credential::Login(sha256_hex(token)),
            });
        }
        Err(AuthError::Missing)
    }

    /// The login token a request's cookie carries, under the name the site gives the
    /// login cookie for this request's host.
    pub fn login_token<'a>(&self, headers: &'a HeaderMap) -> Option<&'a str> {
        let name = self.site.cookie_name(LOGIN_COOKIE, request_host(headers));
        cookie(headers, &name)
    }

    /// The caller of a browser login. The key that made it must still be configured,
    /// for the same tenant and role: removing or changing a key ends its logins (for
    /// good: the row is deleted, so putting the key back does not revive them).
    async fn by_login(&self, token: &str) -> Result<Caller, AuthError> {
        let login = self
            .logins
            .find(token)
            .await?
            .ok_or(AuthError::LoginEnded)?;
        if self.keys.get(&login.key_sha256) == Some(&login.caller) {
            Ok(login.caller)
        } else {
            self.logins.delete(token).await?;
            Err(AuthError::LoginEnded)
        }
    }

    /// Starts a browser login for a configured key; returns the cookie token. (In
    /// single-user mode there is nothing to log in to, so every key is invalid.)
    pub async fn login(&self, key: &str) -> Result<String, AuthError> {
        let (hash, caller) = self.configured(key).ok_or(AuthError::Invalid)?;
        Ok(self.logins.create(hash, caller).await?)
    }

    /// Ends the request's browser login, if it has one, and says which it was, so that
    /// what was bound to it (the browser's session) can go with it.
    pub async fn logout(&self, headers: &HeaderMap) -> Result<Option<Credential>, AuthError> {
        let Some(token) = self.login_token(headers) else {
            return Ok(None);
        };
        self.logins.delete(token).await?;
        Ok(Some(Credential::Login(sha256_hex(token))))
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

/// A cookie's value (the first, if the browser sends several of that name).
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    cookie_values(headers, name).into_iter().next()
}

/// Every value of a cookie, in the order the browser sent them.
pub fn cookie_values<'a>(headers: &'a HeaderMap, name: &str) -> Vec<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: &str = "alice-key";

    fn alice_key() -> ApiKey {
        ApiKey {
            sha256: sha256_hex(ALICE),
            tenant: "alice".into(),
            role: Role::User,
        }
    }

    fn root_key() -> ApiKey {
        ApiKey {
            sha256: sha256_hex("root-key"),
            tenant: "ops".into(),
            role: Role::Admin,
        }
    }

    /// Access with `keys`, its logins in `dir`'s database (shared by every `Access` made
    /// on the same folder, like a restarted server).
    fn access_in(dir: &tempfile::TempDir, keys: &[ApiKey]) -> Access {
        Access::new(
            keys,
            LoginStore::new(dir.path().join("sandscribe.db")),
            Site::default(),
        )
        .expect("valid keys")
    }

    fn headers(name: axum::http::HeaderName, value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(name, value.parse().expect("header"));
        headers
    }

    /// A loopback request carrying the login cookie.
    fn login_cookie(token: &str) -> HeaderMap {
        let mut map = headers(COOKIE, &format!("a=b; {LOGIN_COOKIE}={token}"));
        map.insert(
            axum::http::header::HOST,
            "127.0.0.1:8080".parse().expect("host"),
        );
        map
    }

    #[tokio::test]
    async fn keys_map_to_their_tenant_and_role() {
        let dir = tempfile::tempdir().expect("tempdir");
        let access = access_in(&dir, &[alice_key(), root_key()]);
        let alice = access
            .caller(&headers(AUTHORIZATION, "Bearer alice-key"))
            .await
            .expect("alice");
        assert_eq!(alice.tenant, "alice");
        assert!(!alice.is_admin());
        assert!(
            access
                .caller(&headers(AUTHORIZATION, "Bearer root-key"))
                .await
                .expect("ops")
                .is_admin()
        );
        assert!(matches!(
            access.caller(&headers(AUTHORIZATION, "Bearer nope")).await,
            Err(AuthError::Invalid)
        ));
        assert!(matches!(
            access.caller(&HeaderMap::new()).await,
            Err(AuthError::Missing)
        ));
    }

    #[tokio::test]
    async fn a_browser_login_is_a_cookie_for_the_keys_tenant_until_logout() {
        let dir = tempfile::tempdir().expect("tempdir");
        let access = access_in(&dir, &[alice_key(), root_key()]);
        assert!(matches!(
            access.login("wrong").await,
            Err(AuthError::Invalid)
        ));
        let token = access.login(ALICE).await.expect("login");
        let cookie_header = login_cookie(&token);
        assert_eq!(
            access.caller(&cookie_header).await.expect("cookie").tenant,
            "alice"
        );
        access.logout(&cookie_header).await.expect("logout");
        assert!(matches!(
            access.caller(&cookie_header).await,
            Err(AuthError::LoginEnded)
        ));
    }

    #[tokio::test]
    async fn off_loopback_only_the_host_prefixed_cookie_is_a_login() {
        let dir = tempfile::tempdir().expect("tempdir");
        let access = access_in(&dir, &[alice_key()]);
        let token = access.login(ALICE).await.expect("login");
        let on = |host: &str, name: &str| {
            let mut map = headers(COOKIE, &format!("{name}={token}"));
            map.insert(axum::http::header::HOST, host.parse().expect("host"));
            map
        };
        let prefixed = format!("__Host-{LOGIN_COOKIE}");
        let caller = access
            .caller(&on("a.example", &prefixed))
            .await
            .expect("the prefixed cookie");
        assert_eq!(caller.tenant, "alice");
        // A cookie a sibling subdomain could have set (no prefix) is not read there.
        assert!(matches!(
            access.caller(&on("a.example", LOGIN_COOKIE)).await,
            Err(AuthError::Missing)
        ));
    }

    #[tokio::test]
    async fn a_login_outlives_a_restart_but_not_the_removal_of_its_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let token = access_in(&dir, &[alice_key(), root_key()])
            .login(ALICE)
            .await
            .expect("login");

        let restarted = access_in(&dir, &[alice_key(), root_key()]);
        let caller = restarted
            .caller(&login_cookie(&token))
            .await
            .expect("login");
        assert_eq!(caller.tenant, "alice");

        let without_alice = access_in(&dir, &[root_key()]);
        assert!(matches!(
            without_alice.caller(&login_cookie(&token)).await,
            Err(AuthError::LoginEnded)
        ));
        // The refused login is gone for good: restoring the key does not revive it.
        let restored = access_in(&dir, &[alice_key(), root_key()]);
        assert!(matches!(
            restored.caller(&login_cookie(&token)).await,
            Err(AuthError::LoginEnded)
        ));
    }

    #[tokio::test]
    async fn a_login_ends_when_its_key_is_moved_to_another_tenant_or_role() {
        let dir = tempfile::tempdir().expect("tempdir");
        let token = access_in(&dir, &[alice_key()])
            .login(ALICE)
            .await
            .expect("login");
        let promoted = ApiKey {
            role: Role::Admin,
            ..alice_key()
        };
        assert!(matches!(
            access_in(&dir, &[promoted])
                .caller(&login_cookie(&token))
                .await,
            Err(AuthError::LoginEnded)
        ));
    }

    #[tokio::test]
    async fn without_keys_everyone_is_the_single_user_and_nobody_logs_in() {
        let dir = tempfile::tempdir().expect("tempdir");
        let access = access_in(&dir, &[]);
        assert!(access.single_user());
        assert_eq!(
            access
                .caller(&HeaderMap::new())
                .await
                .expect("caller")
                .tenant,
            DEFAULT_TENANT
        );
        assert!(matches!(
            access.login("anything").await,
            Err(AuthError::Invalid)
        ));
    }

    #[test]
    fn keys_must_be_hashes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = Access::new(
            &[ApiKey {
                sha256: "plain-key".into(),
                tenant: "t".into(),
                role: Role::User,
            }],
            LoginStore::new(dir.path().join("sandscribe.db")),
            Site::default(),
        )
        .err()
        .expect("not a hash");
        assert!(err.contains("64 hex digits"), "{err}");
    }

    #[test]
    fn roles_round_trip_through_their_names() {
        for role in [Role::Admin, Role::User] {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("root"), None);
    }
}
