//! One HTTP try of a delivery: resolve and check the target ([`super::target`]), connect
//! only to the checked addresses, POST the signed body, read at most
//! [`MAX_RESPONSE_BYTES`] of the answer, and say what the answer means for the delivery.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER, USER_AGENT};

use super::signing::SigningKey;
use super::target;

/// How much of a receiver's answer is read (the rest is dropped with the connection).
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// What the try is sent with.
pub struct Request<'a> {
    pub id: &'a str,
    pub url: &'a str,
    pub body: &'a str,
    pub key: &'a SigningKey,
    pub timeout: Duration,
    pub allow_private: bool,
}

/// How a try went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tried {
    pub status: Option<u16>,
    pub latency_ms: i64,
    /// What went wrong, for the attempt's record; `None` for a 2xx.
    pub error: Option<String>,
    pub verdict: Verdict,
}

/// What the answer means for the delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// 2xx: delivered.
    Delivered,
    /// Worth another try (5xx, 408, 429, a timeout, no connection), maybe when the
    /// receiver said (`Retry-After`, in seconds).
    Retry { after_seconds: Option<u64> },
    /// Never worth another try (any other 4xx, a 3xx, a refused target).
    GiveUp,
}

/// What a status code means, with the `Retry-After` it came with.
pub fn verdict_for(status: StatusCode, headers: &HeaderMap) -> Verdict {
    if status.is_success() {
        return Verdict::Delivered;
    }
    let retriable = status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS;
    if !retriable {
        return Verdict::GiveUp;
    }
    let after_seconds = headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    Verdict::Retry { after_seconds }
}

/// Makes one try; never fails: every problem is a [`Tried`] with its error.
pub async fn attempt(request: Request<'_>) -> Tried {
    let started = Instant::now();
    let tried = |status, error: String, verdict| Tried {
        status,
        latency_ms: elapsed_ms(started),
        error: Some(error),
        verdict,
    };
    let url = match target::check_url(request.url, request.allow_private) {
        Ok(url) => url,
        Err(e) => return tried(None, e.to_string(), Verdict::GiveUp),
    };
    let addresses = match target::resolve(&url, request.allow_private).await {
        Ok(addresses) => addresses,
        Err(e @ target::TargetError::Unresolved { .. }) => {
            return tried(
                None,
                e.to_string(),
                Verdict::Retry {
                    after_seconds: None,
                },
            );
        }
        Err(e) => return tried(None, e.to_string(), Verdict::GiveUp),
    };
    let host = url.host_str().unwrap_or_default().to_owned();
    // Pinned: the client connects to the addresses just checked, never resolves again.
    let client = reqwest::Client::builder()
        .resolve_to_addrs(&host, &addresses)
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(request.timeout)
        .timeout(request.timeout)
        .no_proxy()
        .build();
    let client = match client {
        Ok(client) => client,
        Err(e) => {
            return tried(
                None,
                format!("cannot set up the client: {e}"),
                Verdict::GiveUp,
            );
        }
    };
    let timestamp = time::OffsetDateTime::now_utc().unix_timestamp();
    let sent = client
        .post(url)
        .header(CONTENT_TYPE, "application/json")
        .header(
            USER_AGENT,
            concat!("sandscribe/", env!("CARGO_PKG_VERSION")),
        )
        .header("webhook-id", request.id)
        .header("webhook-timestamp", timestamp.to_string())
        .header(
            "webhook-signature",
            request.key.sign(request.id, timestamp, request.body),
        )
        .body(request.body.to_owned())
        .send()
        .await;
    let mut response = match sent {
        Ok(response) => response,
        Err(e) => {
            let what = if e.is_timeout() {
                format!("no answer within {} s", request.timeout.as_secs())
            } else if e.is_connect() {
                format!("cannot connect: {}", error_chain(&e))
            } else {
                error_chain(&e)
            };
            return tried(
                None,
                what,
                Verdict::Retry {
                    after_seconds: None,
                },
            );
        }
    };
    let status = response.status();
    let verdict = verdict_for(status, response.headers());
    // Read (a bounded part of) the answer, so the receiver's reply is complete before
    // the connection closes; its content is not used.
    let mut read = 0usize;
    while read < MAX_RESPONSE_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => read += chunk.len(),
            Ok(None) | Err(_) => break,
        }
    }
    let code = Some(status.as_u16());
    match verdict {
        Verdict::Delivered => Tried {
            status: code,
            latency_ms: elapsed_ms(started),
            error: None,
            verdict,
        },
        _ => tried(code, format!("the receiver answered {status}"), verdict),
    }
}

fn elapsed_ms(started: Instant) -> i64 {
    i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX)
}

/// The error with its causes (reqwest's own message is only "error sending request").
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        message.push_str(": ");
        message.push_str(&e.to_string());
        cause = e.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(code: u16, retry_after: Option<&str>) -> Verdict {
        let mut headers = HeaderMap::new();
        if let Some(value) = retry_after {
            headers.insert(RETRY_AFTER, value.parse().expect("header"));
        }
        verdict_for(StatusCode::from_u16(code).expect("status"), &headers)
    }

    #[test]
    fn server_errors_timeouts_and_rate_limits_are_retried_other_refusals_are_not() {
        assert_eq!(verdict(200, None), Verdict::Delivered);
        assert_eq!(verdict(204, None), Verdict::Delivered);
        let retry = Verdict::Retry {
            after_seconds: None,
        };
        assert_eq!(verdict(500, None), retry);
        assert_eq!(verdict(503, None), retry);
        assert_eq!(verdict(408, None), retry);
        assert_eq!(
            verdict(429, Some("30")),
            Verdict::Retry {
                after_seconds: Some(30)
            }
        );
        assert_eq!(verdict(400, None), Verdict::GiveUp);
        assert_eq!(verdict(404, None), Verdict::GiveUp);
        assert_eq!(verdict(301, None), Verdict::GiveUp);
    }
}
