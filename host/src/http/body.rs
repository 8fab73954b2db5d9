//! A request body that must keep moving: cut off when no data arrives for the stall
//! timeout, or when, after a grace period, its average rate falls below the minimum.
//! A fixed total time would cut off an honest 500 MB upload on a slow line; a rate
//! does not, while a client that trickles a byte a minute still cannot hold a slot.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use http_body::{Frame, SizeHint};
use tokio::time::{Instant, Sleep};

/// How long a body may run before its average rate is checked.
const GRACE: Duration = Duration::from_secs(10);

/// The limits one request body lives under.
#[derive(Debug, Clone, Copy)]
pub struct BodyPace {
    pub stall: Duration,
    pub min_bytes_per_second: u64,
}

/// Why a body was cut off; its text reaches the client through the form reader.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TooSlow(pub String);

/// Marks every message of [`TooSlow`], so an upload error can be recognised as one.
pub const TOO_SLOW: &str = "the request body arrived too slowly";

/// Wraps the request's body in the pace check.
pub fn paced(request: Request, pace: BodyPace) -> Request {
    let (parts, body) = request.into_parts();
    Request::from_parts(parts, Body::new(PacedBody::new(body, pace)))
}

struct PacedBody {
    inner: Body,
    pace: BodyPace,
    started: Instant,
    received: u64,
    stall: Pin<Box<Sleep>>,
}

impl PacedBody {
    fn new(inner: Body, pace: BodyPace) -> Self {
        Self {
            inner,
            pace,
            started: Instant::now(),
            received: 0,
            stall: Box::pin(tokio::time::sleep(pace.stall)),
        }
    }
}

impl http_body::Body for PacedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received += data.len() as u64;
                    let elapsed = this.started.elapsed();
                    if elapsed > GRACE
                        && this.received < this.pace.min_bytes_per_second * elapsed.as_secs()
                    {
                        return Poll::Ready(Some(Err(axum::Error::new(TooSlow(format!(
                            "{TOO_SLOW}: {} bytes in {} s, below the minimum of {} bytes/s",
                            this.received,
                            elapsed.as_secs(),
                            this.pace.min_bytes_per_second
                        ))))));
                    }
                    let deadline = Instant::now() + this.pace.stall;
                    this.stall.as_mut().reset(deadline);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => match this.stall.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(axum::Error::new(TooSlow(format!(
                    "{TOO_SLOW}: nothing for {} s",
                    this.pace.stall.as_secs()
                )))))),
                Poll::Pending => Poll::Pending,
            },
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
