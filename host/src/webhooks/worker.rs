//! The sender: takes due deliveries, claims each (so with several nodes only one sends
//! it), makes the try, and records what came of it. It sleeps until the earliest next
//! try, or until a delivery is enqueued on this node, rather than polling; a minute at
//! most, so deliveries another node enqueued (or leases a dead node left) are not
//! forgotten.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use super::Webhooks;
use super::backoff::{Backoff, jitter_unit};
use super::delivery::{self, Verdict};
use super::store::{Attempt, Outcome};
use crate::storage::now_ms;

/// Tries in flight at once on one node.
const PARALLEL_SENDS: usize = 8;
/// Deliveries looked at per pass.
const BATCH: i64 = 32;
/// The longest sleep between passes.
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// Runs for as long as the runtime does.
pub(super) async fn run(hooks: Arc<Webhooks>) {
    match hooks.store.release_leases(&hooks.node).await {
        Ok(0) => {}
        Ok(released) => {
            tracing::info!(released, "webhook tries cut short by a stop are made again")
        }
        Err(e) => tracing::warn!(error = %e, "cannot release this node's webhook leases"),
    }
    let slots = Arc::new(Semaphore::new(PARALLEL_SENDS));
    loop {
        let now = now_ms();
        let lease_ms = hooks.lease().as_millis() as i64;
        match hooks.store.due(now, BATCH).await {
            Ok(ids) => {
                for id in ids {
                    match hooks
                        .store
                        .claim(&id, &hooks.node, now, now + lease_ms)
                        .await
                    {
                        Ok(true) => {}
                        Ok(false) => continue,
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot claim a webhook delivery");
                            continue;
                        }
                    }
                    let Ok(permit) = slots.clone().acquire_owned().await else {
                        return;
                    };
                    let hooks = hooks.clone();
                    tokio::spawn(async move {
                        send(&hooks, &id).await;
                        drop(permit);
                        hooks.wake.notify_one();
                    });
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the webhook deliveries"),
        }
        let next = match hooks.store.next_due_ms().await {
            Ok(next) => next,
            Err(_) => Some(now_ms() + 5_000),
        };
        let wait = next.map_or(MAX_SLEEP, |at| {
            Duration::from_millis(u64::try_from(at - now_ms()).unwrap_or(0))
        });
        // Never spin: a delivery due "now" that another node holds waits for its lease.
        let wait = wait.clamp(Duration::from_millis(20), MAX_SLEEP);
        tokio::select! {
            () = hooks.wake.notified() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// One try of a delivery this node holds, recorded with its outcome.
async fn send(hooks: &Webhooks, id: &str) {
    let delivery = match hooks.store.get(id).await {
        Ok(Some(delivery)) => delivery,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(delivery = id, error = %e, "cannot read a webhook delivery");
            return;
        }
    };
    let number = delivery.attempts + 1;
    let at_ms = now_ms();
    let tried = match hooks.key_for(&delivery.tenant) {
        Some(key) => {
            delivery::attempt(delivery::Request {
                id,
                url: &delivery.url,
                body: &delivery.payload,
                key,
                timeout: hooks.timeout(),
                allow_private: hooks.config.allow_private,
            })
            .await
        }
        None => delivery::Tried {
            status: None,
            latency_ms: 0,
            error: Some("no webhook secret is configured for this tenant".into()),
            verdict: Verdict::GiveUp,
        },
    };
    let max = hooks.config.max_attempts.max(1);
    let mut error = tried.error;
    let outcome = match tried.verdict {
        Verdict::Delivered => Outcome::Delivered,
        Verdict::GiveUp => Outcome::GiveUp,
        Verdict::Retry { .. } if number >= max => {
            if let Some(e) = &mut error {
                e.push_str(&format!("; gave up after {number} tries"));
            }
            Outcome::GiveUp
        }
        Verdict::Retry { after_seconds } => {
            let wait = after_seconds.map_or_else(
                || hooks.backoff().delay(number, jitter_unit()),
                Backoff::retry_after,
            );
            Outcome::Retry {
                at_ms: now_ms() + wait.as_millis() as i64,
            }
        }
    };
    tracing::info!(
        delivery = id,
        job = %delivery.job_id,
        attempt = number,
        status = tried.status,
        outcome = ?outcome,
        error = error.as_deref().unwrap_or(""),
        "webhook attempt"
    );
    let attempt = Attempt {
        attempt: number,
        at_ms,
        status: tried.status,
        latency_ms: tried.latency_ms,
        error,
    };
    if let Err(e) = hooks
        .store
        .record(id, &hooks.node, &attempt, &outcome)
        .await
    {
        // The lease runs out and the try is made again: at least once, never lost.
        tracing::warn!(delivery = id, error = %e, "cannot record a webhook attempt");
    }
}
