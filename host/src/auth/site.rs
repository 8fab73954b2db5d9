//! The server's own origin, and the checks that keep other sites from using a browser's
//! ambient credentials against it.
//!
//! Two kinds of credential reach the server without the calling page having to know
//! them: the browser's login cookie, which a browser attaches to requests from *any* page
//! of the same site (another port or a subdomain counts as the same site, so
//! `SameSite=Strict` does not stop it), and, in single-user mode, simply being on
//! loopback. Against the first, a state-changing request must come from this origin
//! ([`Site::same_origin`]); against the second, and against DNS rebinding (a hostile name
//! that resolves to this server, whose pages are then "same-origin" with it), the `Host`
//! a request names must be one this server answers to ([`Site::host_allowed`]).
//!
//! Where a response is served over TLS, the cookies are `Secure` and carry the
//! `__Host-` prefix, which a browser only accepts from this exact origin (never from a
//! sibling subdomain tossing cookies at it); [`Site::cookie_name`] picks the name a
//! request's cookies are read under, so a tossed cookie without the prefix is ignored.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use axum::http::{HeaderMap, header};
use serde::{Deserialize, Serialize};

/// The origin browsers reach the server at, as the config's `public_url` names it:
/// `http` or `https`, a host and a port (the scheme's default when not given).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PublicOrigin {
    https: bool,
    /// Lower case; an IPv6 address keeps its brackets.
    host: String,
    port: u16,
}

/// Why a `public_url` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublicOriginError {
    #[error("public_url must start with http:// or https://, not {0:?}")]
    Scheme(String),
    #[error(
        "public_url must be an origin only (scheme, host and port), without a path, query or user: {0:?}"
    )]
    NotAnOrigin(String),
    #[error("public_url has no host: {0:?}")]
    NoHost(String),
    #[error("public_url has a port that is not a number from 1 to 65535: {0:?}")]
    Port(String),
}

impl PublicOrigin {
    /// Parses `scheme://host[:port]`, with at most a trailing `/`.
    pub fn parse(text: &str) -> Result<Self, PublicOriginError> {
        let trimmed = text.trim();
        let (https, rest) = if let Some(rest) = strip_prefix_ignore_case(trimmed, "https://") {
            (true, rest)
        } else if let Some(rest) = strip_prefix_ignore_case(trimmed, "http://") {
            (false, rest)
        } else {
            return Err(PublicOriginError::Scheme(text.to_owned()));
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains(['/', '?', '#', '@', ' ']) {
            return Err(PublicOriginError::NotAnOrigin(text.to_owned()));
        }
        let (host, port) = split_authority(authority);
        if host.is_empty() {
            return Err(PublicOriginError::NoHost(text.to_owned()));
        }
        let port = match port {
            None => default_port(https),
            Some(port) => port
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| PublicOriginError::Port(text.to_owned()))?,
        };
        Ok(Self {
            https,
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    /// The origin as browsers write it in `Origin`: the default port left out.
    fn serialize(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        if self.port == default_port(self.https) {
            format!("{scheme}://{}", self.host)
        } else {
            format!("{scheme}://{}:{}", self.host, self.port)
        }
    }

    /// Whether a `Host` header (`host[:port]`) names this origin.
    fn is_host(&self, authority: &str) -> bool {
        let (host, port) = split_authority(authority);
        let port = match port {
            None => Some(default_port(self.https)),
            Some(port) => port.parse::<u16>().ok(),
        };
        host.eq_ignore_ascii_case(&self.host) && port == Some(self.port)
    }
}

impl fmt::Display for PublicOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.serialize())
    }
}

impl TryFrom<String> for PublicOrigin {
    type Error = PublicOriginError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::parse(&text)
    }
}

impl From<PublicOrigin> for String {
    fn from(origin: PublicOrigin) -> Self {
        origin.serialize()
    }
}

/// The hosts and origin this server answers to, from the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    public: Option<PublicOrigin>,
    /// No `public_url` and listening beyond loopback: the names the server is reached by
    /// are unknown, so any `Host` is taken. (Only with API keys configured: single-user
    /// mode listens on loopback only, and a rebinding page has no key and no cookie.)
    any_host: bool,
}

impl Default for Site {
    /// Listening on loopback without a `public_url`: loopback host names only.
    fn default() -> Self {
        Self {
            public: None,
            any_host: false,
        }
    }
}

impl Site {
    /// The site of a server listening on `listen`, reached at `public` when given.
    pub fn new(public: Option<PublicOrigin>, listen: SocketAddr) -> Self {
        let any_host = public.is_none() && !listen.ip().is_loopback();
        Self { public, any_host }
    }

    /// The configured public origin, if any.
    pub fn public(&self) -> Option<&PublicOrigin> {
        self.public.as_ref()
    }

    /// Whether this server answers to the `Host` a request names: a loopback name
    /// (which a hostile page can never make a browser send for its own origin), the
    /// public origin's host, or, without a public origin beyond loopback, any.
    pub fn host_allowed(&self, host: Option<&str>) -> bool {
        if self.any_host {
            return true;
        }
        let Some(host) = host else {
            return false;
        };
        is_loopback_host(host) || self.public.as_ref().is_some_and(|p| p.is_host(host))
    }

    /// Whether a request was sent by a page of this origin: its `Origin` (or, without
    /// one, its `Referer`) names the same host and port as `Host`, or is the public
    /// origin (a proxy may pass its own `Host` on). A request with neither header
    /// passes: forgery needs a browser, and browsers send `Origin` on every post.
    pub fn same_origin(&self, headers: &HeaderMap, host: Option<&str>) -> bool {
        let source = headers
            .get(header::ORIGIN)
            .or_else(|| headers.get(header::REFERER))
            .map(|v| v.to_str().unwrap_or_default());
        let Some(source) = source else {
            return true;
        };
        let Some((scheme, authority)) = origin_of(source) else {
            // `Origin: null` (a sandboxed frame, a redirect) or garbage: not ours.
            return false;
        };
        let same_host = host.is_some_and(|h| authority.eq_ignore_ascii_case(h));
        let public = self.public.as_ref().is_some_and(|p| {
            (scheme.eq_ignore_ascii_case("https") == p.https) && p.is_host(authority)
        });
        same_host || public
    }

    /// Whether cookies for a request to `host` are `Secure` (and `__Host-` named): with a
    /// `public_url`, exactly when it is `https` (also for a proxy that passes a loopback
    /// host on; browsers take secure cookies from loopback); without one, everywhere but
    /// on loopback, where there is no TLS to require.
    pub fn secure(&self, host: Option<&str>) -> bool {
        match &self.public {
            Some(public) => public.https,
            None => !host.is_some_and(is_loopback_host),
        }
    }

    /// The name cookie `base` has on a request to `host`: `__Host-<base>` where cookies
    /// are secure, so that only this origin can have set it.
    pub fn cookie_name(&self, base: &str, host: Option<&str>) -> String {
        if self.secure(host) {
            format!("__Host-{base}")
        } else {
            base.to_owned()
        }
    }

    /// A `Set-Cookie` value for cookie `base` on a request to `host`: HttpOnly, path `/`,
    /// `Secure` (and named `__Host-…`) where [`Site::secure`] says so. `value` empty
    /// with `max_age` 0 clears it.
    pub fn set_cookie(
        &self,
        base: &str,
        value: &str,
        same_site: &str,
        max_age: Option<u64>,
        host: Option<&str>,
    ) -> String {
        let name = self.cookie_name(base, host);
        let secure = if self.secure(host) { "; Secure" } else { "" };
        let max_age = max_age.map_or(String::new(), |s| format!("; Max-Age={s}"));
        format!("{name}={value}; Path=/; HttpOnly; SameSite={same_site}{secure}{max_age}")
    }
}

/// The `Host` a request names (set from the URI's authority for HTTP/2 by the guard).
pub fn request_host(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::HOST).and_then(|h| h.to_str().ok())
}

/// Whether `authority` (`host[:port]`) is a loopback name: `localhost` (and names under
/// it, which resolve to loopback by RFC 6761), `127.0.0.0/8` or `[::1]`.
pub fn is_loopback_host(authority: &str) -> bool {
    let (host, _) = split_authority(authority);
    let host = host.to_ascii_lowercase();
    if host == "localhost" || host.ends_with(".localhost") {
        return true;
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// `host` and `port` of `host[:port]` or `[v6][:port]`.
fn split_authority(authority: &str) -> (&str, Option<&str>) {
    if authority.starts_with('[') {
        return match authority.find(']') {
            Some(end) => {
                let (host, rest) = authority.split_at(end + 1);
                (host, rest.strip_prefix(':'))
            }
            None => (authority, None),
        };
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    }
}

/// The scheme and authority of a URL (`Origin` or `Referer`).
fn origin_of(url: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    (!authority.is_empty() && !authority.contains('@')).then_some((scheme, authority))
}

fn default_port(https: bool) -> u16 {
    if https { 443 } else { 80 }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// Request headers from name-value pairs, for the tests of the request checks.
#[cfg(test)]
pub(crate) fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.insert(name.clone(), value.parse().expect("header"));
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(url: &str) -> Site {
        Site::new(
            Some(PublicOrigin::parse(url).expect("valid")),
            "0.0.0.0:8080".parse().expect("address"),
        )
    }

    #[test]
    fn public_urls_are_origins_and_round_trip() {
        let origin = PublicOrigin::parse("HTTPS://Transcribe.Example/").expect("valid");
        assert_eq!(origin.to_string(), "https://transcribe.example");
        let with_port = PublicOrigin::parse("http://[::1]:8080").expect("valid");
        assert_eq!(String::from(with_port.clone()), "http://[::1]:8080");
        assert_eq!(PublicOrigin::parse(&with_port.to_string()), Ok(with_port));
        for (bad, expected) in [
            ("transcribe.example", "http:// or https://"),
            ("ftp://x", "http:// or https://"),
            ("https://x/app", "origin only"),
            ("https://user@x", "origin only"),
            ("https://", "no host"),
            ("https://x:0", "port"),
            ("https://x:99999", "port"),
        ] {
            let err = PublicOrigin::parse(bad).expect_err(bad).to_string();
            assert!(err.contains(expected), "{bad}: {err}");
        }
    }

    #[test]
    fn on_loopback_only_loopback_host_names_are_answered() {
        let site = Site::new(None, "127.0.0.1:8080".parse().expect("address"));
        for host in [
            "127.0.0.1:8080",
            "127.3.4.5",
            "localhost:9000",
            "app.localhost",
            "[::1]:8080",
        ] {
            assert!(site.host_allowed(Some(host)), "{host}");
        }
        for host in [
            "evil.example:8080",
            "127.0.0.1.evil.example",
            "10.0.0.1:8080",
        ] {
            assert!(!site.host_allowed(Some(host)), "{host}");
        }
        assert!(!site.host_allowed(None));
    }

    #[test]
    fn with_a_public_url_its_host_and_loopback_are_answered() {
        let site = public("https://transcribe.example");
        assert!(site.host_allowed(Some("transcribe.example")));
        assert!(site.host_allowed(Some("Transcribe.Example:443")));
        assert!(site.host_allowed(Some("127.0.0.1:8080")), "a local proxy");
        assert!(!site.host_allowed(Some("transcribe.example:8443")));
        assert!(!site.host_allowed(Some("evil.example")));
        // Without one, beyond loopback, the names are unknown: any is taken.
        let open = Site::new(None, "0.0.0.0:8080".parse().expect("address"));
        assert!(open.host_allowed(Some("evil.example")));
    }

    #[test]
    fn posts_from_another_site_or_port_are_refused() {
        let site = Site::default();
        let same = |pairs: &[(header::HeaderName, &str)], host: &str| {
            site.same_origin(&headers(pairs), Some(host))
        };
        assert!(same(
            &[(header::ORIGIN, "http://a.example:8080")],
            "a.example:8080"
        ));
        assert!(!same(
            &[(header::ORIGIN, "http://evil.example")],
            "a.example:8080"
        ));
        assert!(
            !same(
                &[(header::ORIGIN, "http://a.example:8081")],
                "a.example:8080"
            ),
            "a sibling port is another origin"
        );
        assert!(!same(&[(header::ORIGIN, "null")], "a.example"));
        assert!(!same(
            &[(header::REFERER, "https://evil.example/a.example")],
            "a.example"
        ));
        assert!(same(
            &[(header::REFERER, "http://a.example/plugins?x=1")],
            "a.example"
        ));
        assert!(same(&[], "a.example"), "no browser, no forgery");
    }

    #[test]
    fn behind_a_proxy_the_public_origin_counts_as_ours() {
        let site = public("https://transcribe.example");
        let from = |origin: &str| {
            site.same_origin(
                &headers(&[(header::ORIGIN, origin)]),
                Some("127.0.0.1:8080"),
            )
        };
        assert!(from("https://transcribe.example"));
        assert!(!from("http://transcribe.example"), "another scheme");
        assert!(!from("https://evil.transcribe.example"));
    }

    #[test]
    fn cookies_are_secure_and_host_prefixed_off_loopback() {
        let site = Site::default();
        assert_eq!(site.cookie_name("c", Some("127.0.0.1:8080")), "c");
        assert_eq!(site.cookie_name("c", Some("a.example")), "__Host-c");
        let set = site.set_cookie("c", "v", "Strict", None, Some("a.example"));
        assert_eq!(set, "__Host-c=v; Path=/; HttpOnly; SameSite=Strict; Secure");
        let behind_tls = public("https://transcribe.example");
        assert_eq!(
            behind_tls.cookie_name("c", Some("127.0.0.1:8080")),
            "__Host-c",
            "a proxy passing its loopback host on"
        );
        let plain_http = public("http://intranet.example");
        assert_eq!(plain_http.cookie_name("c", Some("intranet.example")), "c");
        let cleared = plain_http.set_cookie("c", "", "Lax", Some(0), Some("intranet.example"));
        assert_eq!(cleared, "c=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0");
    }
}
