//! Where a webhook may be sent. A tenant names the URL, so without care the server
//! would POST into its own network for them (SSRF): only `http`/`https`, and by default
//! only public addresses — checked on every address the name resolves to, after
//! resolution, and the connection then goes to exactly those checked addresses (the
//! client is pinned to them), so a name that resolves differently a moment later (DNS
//! rebinding) changes nothing.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::Url;

/// The longest callback URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// Why a callback URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("callback_url is longer than {MAX_URL_LEN} characters")]
    TooLong,
    #[error("callback_url is not a URL: {0}")]
    NotAUrl(String),
    #[error("callback_url must be http:// or https://, not {0}://")]
    Scheme(String),
    #[error("callback_url has no host")]
    NoHost,
    #[error(
        "{host} is {address}, a {kind} address; webhooks go only to public addresses \
         (set [webhooks] allow_private = true to allow it)"
    )]
    NotPublic {
        host: String,
        address: IpAddr,
        kind: &'static str,
    },
    #[error("cannot resolve {host}: {reason}")]
    Unresolved { host: String, reason: String },
}

/// A URL checked at submission: the form, and an IP literal's address. Names are
/// resolved (and checked) at each delivery attempt.
pub fn check_url(text: &str, allow_private: bool) -> Result<Url, TargetError> {
    if text.len() > MAX_URL_LEN {
        return Err(TargetError::TooLong);
    }
    let url = Url::parse(text.trim()).map_err(|e| TargetError::NotAUrl(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(TargetError::Scheme(url.scheme().to_owned()));
    }
    let host = url.host().ok_or(TargetError::NoHost)?;
    let literal = match host {
        url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        url::Host::Domain(_) => None,
    };
    if let (Some(address), false) = (literal, allow_private) {
        refuse_non_public(&host.to_string(), address)?;
    }
    Ok(url)
}

/// The addresses to connect to for `url`: every one the host resolves to, each checked
/// unless `allow_private`. The host as the client sees it comes along, for pinning.
pub async fn resolve(url: &Url, allow_private: bool) -> Result<Vec<SocketAddr>, TargetError> {
    let host = url.host_str().ok_or(TargetError::NoHost)?.to_owned();
    let port = url.port_or_known_default().unwrap_or(80);
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let addresses: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((bare, port))
            .await
            .map_err(|e| TargetError::Unresolved {
                host: host.clone(),
                reason: e.to_string(),
            })?
            .collect(),
    };
    if addresses.is_empty() {
        return Err(TargetError::Unresolved {
            host,
            reason: "no addresses".into(),
        });
    }
    if !allow_private {
        for address in &addresses {
            refuse_non_public(&host, address.ip())?;
        }
    }
    Ok(addresses)
}

fn refuse_non_public(host: &str, address: IpAddr) -> Result<(), TargetError> {
    match non_public_kind(address) {
        None => Ok(()),
        Some(kind) => Err(TargetError::NotPublic {
            host: host.to_owned(),
            address,
            kind,
        }),
    }
}

/// What kind of non-public address `ip` is, or `None` for a public one.
pub fn non_public_kind(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_kind(v4),
        IpAddr::V6(v6) => {
            // An IPv4 address written as IPv6 (::ffff:10.0.0.1) is that IPv4 address.
            if let Some(v4) = v6.to_ipv4_mapped() {
                return v4_kind(v4);
            }
            v6_kind(v6)
        }
    }
}

fn v4_kind(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    Some(match () {
        () if a == 0 => "\"this network\" (0.0.0.0/8)",
        () if ip.is_loopback() => "loopback",
        () if a == 10 || (a == 172 && (16..32).contains(&b)) || (a == 192 && b == 168) => {
            "private (RFC 1918)"
        }
        () if a == 100 && (64..128).contains(&b) => "shared (CGNAT, 100.64.0.0/10)",
        () if ip.is_link_local() => "link-local",
        () if ip.is_broadcast() => "broadcast",
        () if ip.is_multicast() => "multicast",
        () if a >= 240 => "reserved (240.0.0.0/4)",
        () => return None,
    })
}

fn v6_kind(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    Some(match () {
        () if ip.is_unspecified() => "unspecified",
        () if ip.is_loopback() => "loopback",
        () if first & 0xfe00 == 0xfc00 => "unique local (fc00::/7)",
        () if first & 0xffc0 == 0xfe80 => "link-local (fe80::/10)",
        () if ip.is_multicast() => "multicast",
        () => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(text: &str) -> Option<&'static str> {
        non_public_kind(text.parse().expect("an address"))
    }

    #[test]
    fn loopback_private_link_local_cgnat_multicast_and_broadcast_are_not_public() {
        for address in [
            "127.0.0.1",
            "127.9.9.9",
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "100.127.255.255",
            "169.254.169.254",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
        ] {
            assert!(kind(address).is_some(), "{address} is not public");
        }
    }

    #[test]
    fn public_addresses_are_allowed() {
        for address in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "192.169.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert_eq!(kind(address), None, "{address} is public");
        }
    }

    #[test]
    fn only_http_and_https_urls_of_bounded_length_are_accepted() {
        assert!(check_url("https://hooks.example/done?x=1", false).is_ok());
        assert!(check_url("http://127.0.0.1:9/x", true).is_ok());
        assert!(matches!(
            check_url("ftp://hooks.example/", false),
            Err(TargetError::Scheme(_))
        ));
        assert!(matches!(
            check_url("not a url", false),
            Err(TargetError::NotAUrl(_))
        ));
        let long = format!("https://hooks.example/{}", "a".repeat(MAX_URL_LEN));
        assert_eq!(check_url(&long, false), Err(TargetError::TooLong));
        let refused = check_url("http://[::1]:8080/", false).unwrap_err();
        assert!(
            matches!(refused, TargetError::NotPublic { .. }),
            "{refused}"
        );
        assert!(refused.to_string().contains("allow_private"), "{refused}");
    }

    #[tokio::test]
    async fn a_name_resolving_to_loopback_is_refused_after_resolution() {
        let url = Url::parse("http://localhost:9/").expect("url");
        let refused = resolve(&url, false).await.unwrap_err();
        assert!(
            matches!(refused, TargetError::NotPublic { .. }),
            "{refused}"
        );
        assert!(!resolve(&url, true).await.expect("allowed").is_empty());
    }
}
