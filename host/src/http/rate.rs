//! Requests without a credential (no API key, no login cookie) are limited per client
//! address: a token bucket of `anonymous_requests_per_minute`, refilled continuously, so a
//! guesser at `/login` or a flood of 401s slows to that pace while every authenticated
//! client is untouched. `/healthz` (load balancers) is exempt. Off in single-user mode,
//! where only loopback is served.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::app::ApiError;

/// Addresses remembered at most; past it, full buckets (idle clients) are forgotten.
const MAX_CLIENTS: usize = 100_000;

/// The least time between two sweeps of full buckets: a sweep walks every bucket, so
/// with the map full of busy clients it must not run on every request.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// The buckets of every client address seen lately.
pub struct RateLimit {
    per_minute: u32,
    buckets: Mutex<Buckets>,
}

#[derive(Default)]
struct Buckets {
    by_client: HashMap<IpAddr, Bucket>,
    swept: Option<Instant>,
}

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimit {
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute: per_minute.max(1),
            buckets: Mutex::default(),
        }
    }

    /// Takes a token for `client` at `now`; the wait until the next one when none is left.
    pub fn take(&self, client: IpAddr, now: Instant) -> Result<(), Duration> {
        let capacity = f64::from(self.per_minute);
        let per_second = capacity / 60.0;
        let mut guard = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let Buckets { by_client, swept } = &mut *guard;
        if by_client.len() >= MAX_CLIENTS
            && swept.is_none_or(|at| now.saturating_duration_since(at) >= SWEEP_EVERY)
        {
            by_client.retain(|_, b| {
                b.tokens + per_second * now.saturating_duration_since(b.at).as_secs_f64() < capacity
            });
            *swept = Some(now);
        }
        let bucket = by_client.entry(client).or_insert(Bucket {
            tokens: capacity,
            at: now,
        });
        let refilled = per_second * now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + refilled).min(capacity);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / per_second))
        }
    }
}

/// Whether the request carries a credential (checked later, by the routes themselves).
fn has_credential(headers: &HeaderMap) -> bool {
    headers.contains_key(header::AUTHORIZATION)
        || headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|cookies| cookies.contains(&format!("{}=", crate::auth::LOGIN_COOKIE)))
}

/// The middleware: 429 with `Retry-After` for an anonymous client over its rate.
pub async fn limit(
    axum::extract::State(limit): axum::extract::State<std::sync::Arc<RateLimit>>,
    request: Request,
    next: Next,
) -> Response {
    let exempt = request.uri().path() == "/healthz" || has_credential(request.headers());
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| address.ip());
    if !exempt
        && let Some(client) = client
        && let Err(wait) = limit.take(client, Instant::now())
    {
        let seconds = wait.as_secs().max(1);
        let mut error = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "too many requests without a credential from your address; try again in {seconds} s"
            ),
        );
        error.retry_after = Some(seconds);
        // OpenAI's clients read their own envelope (and retry a 429 by themselves).
        if request.uri().path().starts_with("/v1/") {
            return crate::api::openai::OpenAiError::from(error).into_response();
        }
        return error.into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_gets_its_rate_and_then_waits_while_others_do_not() {
        let limit = RateLimit::new(60);
        let (a, b) = (IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2]));
        let t0 = Instant::now();
        for _ in 0..60 {
            assert!(limit.take(a, t0).is_ok());
        }
        let wait = limit.take(a, t0).expect_err("the bucket is empty");
        assert!(
            wait <= Duration::from_secs(1) && wait > Duration::ZERO,
            "{wait:?}"
        );
        assert!(
            limit.take(b, t0).is_ok(),
            "another address has its own bucket"
        );
        assert!(
            limit.take(a, t0 + Duration::from_millis(1100)).is_ok(),
            "refilled"
        );
    }

    #[test]
    fn keys_and_login_cookies_count_as_credentials() {
        let mut headers = HeaderMap::new();
        assert!(!has_credential(&headers));
        headers.insert(
            header::COOKIE,
            "a=b; __Host-sandscribe_login=xyz".parse().expect("header"),
        );
        assert!(has_credential(&headers));
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, "Bearer k".parse().expect("header"));
        assert!(has_credential(&headers));
    }
}
