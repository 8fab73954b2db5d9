//! Serving HTTP so that it holds under abuse: the accept loop and the limits a
//! connection and a request live under (`[http]` in the config).
//!
//! - **Headers:** a client must send a request's headers within `header_timeout_seconds`
//!   (hyper's header read timeout, which also closes an idle keep-alive connection that
//!   sends nothing for that long), so half-open connections do not pile up.
//! - **Bodies** ([`body`]): a request body that stalls for `body_stall_seconds`, or whose
//!   average rate after a grace period falls below `body_min_bytes_per_second`, is cut off
//!   (`408`): a slow but steady 500 MB upload still completes.
//! - **Connections:** beyond `max_connections` at once, a new connection gets a short
//!   `503` with `Retry-After` and is closed, so the server keeps room for the ones it has.
//! - **Rate** ([`rate`]): requests without a credential (the login form, mostly) are
//!   limited per client address when API keys are configured; `/healthz` is exempt.
//!
//! Every accepted connection sets `TCP_NODELAY`, so an SSE event leaves when it happens.

pub mod body;
pub mod rate;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::config::HttpConfig;

/// The answer to a connection beyond the cap: sent as bytes, before any parsing.
fn busy_response() -> Vec<u8> {
    let body = r#"{"error":{"message":"the server has too many open connections; try again in a moment","code":"busy"}}"#;
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Serves `app` on `listener` until `stop` resolves, then lets open connections finish
/// their requests (as `axum::serve`'s graceful shutdown does).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    config: &HttpConfig,
    stop: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let open = Arc::new(AtomicUsize::new(0));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(config.header_timeout_seconds.max(1)));
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    tokio::pin!(stop);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment, go on.
                    tracing::warn!(error = %e, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        if open.load(Ordering::Relaxed) >= config.max_connections {
            tokio::spawn(async move {
                let mut tcp = tcp;
                let busy = busy_response();
                let _ = tokio::time::timeout(Duration::from_secs(1), tcp.write_all(&busy)).await;
            });
            continue;
        }
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
        let Ok(service) = app.clone().oneshot(peer).await;
        let hyper_service = hyper_util::service::TowerToHyperService::new(service);
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(tcp), hyper_service)
            .into_owned();
        let watched = graceful.watch(connection);
        let guard = ConnectionCount::enter(&open);
        tokio::spawn(async move {
            let _guard = guard;
            if let Err(e) = watched.await {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// One open connection, counted while it lives.
struct ConnectionCount(Arc<AtomicUsize>);

impl ConnectionCount {
    fn enter(open: &Arc<AtomicUsize>) -> Self {
        open.fetch_add(1, Ordering::Relaxed);
        Self(open.clone())
    }
}

impl Drop for ConnectionCount {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
