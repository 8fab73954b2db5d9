//! A browser's side of the pages, without a browser: it keeps the cookies the server
//! sets, sends them back, sends `Origin` on form posts (as browsers do, and as the
//! server's cross-site check expects) and does not follow redirects, so a test sees
//! where a page sends it (`/login`, say).
//!
//! It holds no connection of its own and takes the [`Server`] on every call, so it
//! outlives [`Server::restart`] like a real browser's cookie jar does.

use std::collections::BTreeMap;

use super::{Form, Reply, Server};

/// A cookie jar and the requests a browser makes with it.
#[derive(Debug, Clone, Default)]
pub struct Browser {
    cookies: BTreeMap<String, String>,
}

impl Browser {
    pub fn new() -> Self {
        Self::default()
    }

    /// The value of a cookie the server set and has not cleared.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies.get(name).map(String::as_str)
    }

    /// Puts a cookie into the jar as another page of the same site could (a sibling
    /// origin planting a session id, say).
    pub fn set_cookie(&mut self, name: &str, value: &str) {
        self.cookies.insert(name.to_owned(), value.to_owned());
    }

    /// The `Cookie` header this jar sends (empty when it holds none).
    pub fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// `POST path` with a multipart form (the file page's upload), from the server's own
    /// pages; redirects are returned, not followed.
    pub fn post_multipart(&mut self, server: &Server, path: &str, form: &Form) -> Reply {
        let (content_type, body) = form.encode();
        let request = server
            .agent
            .post(server.url(path))
            .header("Content-Type", content_type)
            .header("Origin", &server.base_url);
        let sent = self
            .with_cookies(request)
            .config()
            .max_redirects(0)
            .build()
            .send(&body[..]);
        self.keep_cookies(server.call(path, sent))
    }

    /// Logs in through the login form with `key`, as a person would; the server must
    /// answer with the way in (303 to `/`).
    #[track_caller]
    pub fn log_in(&mut self, server: &Server, key: &str) {
        let reply = self.post_form(server, "/login", &[("key", key)]);
        assert_eq!(
            (reply.status, reply.header("location")),
            (303, Some("/")),
            "logging in with {key:?}: {}",
            reply.text()
        );
    }

    /// `GET path` with the cookies; redirects are returned, not followed.
    pub fn get(&mut self, server: &Server, path: &str) -> Reply {
        let request = server.agent.get(server.url(path));
        let request = self.with_cookies(request);
        let sent = request.config().max_redirects(0).build().call();
        self.keep_cookies(server.call(path, sent))
    }

    /// `POST path` with an `application/x-www-form-urlencoded` form, from the server's
    /// own pages; redirects are returned, not followed.
    pub fn post_form(&mut self, server: &Server, path: &str, fields: &[(&str, &str)]) -> Reply {
        self.post_form_from(server, &server.base_url, path, fields)
    }

    /// Like [`Browser::post_form`], from a page of `origin` (another site, for forgery).
    pub fn post_form_from(
        &mut self,
        server: &Server,
        origin: &str,
        path: &str,
        fields: &[(&str, &str)],
    ) -> Reply {
        let body = fields
            .iter()
            .map(|(name, value)| format!("{}={}", url_encode(name), url_encode(value)))
            .collect::<Vec<_>>()
            .join("&");
        let request = server
            .agent
            .post(server.url(path))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("Origin", origin);
        let sent = self
            .with_cookies(request)
            .config()
            .max_redirects(0)
            .build()
            .send(body.as_bytes());
        self.keep_cookies(server.call(path, sent))
    }

    fn with_cookies<B>(&self, request: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        if self.cookies.is_empty() {
            return request;
        }
        request.header("Cookie", self.cookie_header())
    }

    /// Stores each `Set-Cookie`, and forgets those the server expires (`Max-Age=0`).
    fn keep_cookies(&mut self, reply: Reply) -> Reply {
        for set in reply.headers_named("set-cookie") {
            let mut attributes = set.split(';').map(str::trim);
            let Some((name, value)) = attributes.next().and_then(|pair| pair.split_once('='))
            else {
                continue;
            };
            let expired = attributes.any(|a| a.eq_ignore_ascii_case("max-age=0"));
            if expired || value.is_empty() {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        reply
    }
}

/// Percent-encodes a form field the way browsers do (space as `+`).
fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                out.push(char::from(byte));
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}
