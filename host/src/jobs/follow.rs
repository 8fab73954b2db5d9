//! Following a job: its events so far, then the live ones, ending with the terminal
//! event. Every front end (SSE, the OpenAI API, the browser) follows a job this way.

use std::sync::Arc;

use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::sync::broadcast;
use uuid::Uuid;

use super::events::JobEvent;
use super::tracker::Tracker;

/// A live subscription: the events so far, then the receiver for new ones.
pub struct Subscription {
    pub backlog: Vec<JobEvent>,
    pub live: broadcast::Receiver<JobEvent>,
    /// The job had already finished: the backlog ends with its terminal event.
    pub finished: bool,
}

impl Tracker {
    /// Events after `after_seq`, then live ones.
    pub fn subscribe(&self, tenant: &str, id: Uuid, after_seq: u64) -> Option<Subscription> {
        Some(self.entry(tenant, id)?.subscribe(after_seq))
    }

    /// The job's events after `after_seq`, then live ones as they happen, ending with
    /// the terminal event, wherever the job runs: from this node's memory, or with
    /// several nodes from the shared log. `None` when the tenant has no such job.
    pub async fn follow(
        self: &Arc<Self>,
        tenant: &str,
        id: Uuid,
        after_seq: u64,
    ) -> Option<BoxStream<'static, JobEvent>> {
        match &self.cluster {
            Some(cluster) => {
                let database = cluster.database.clone();
                let listener = cluster.listener.clone();
                let stream = super::cluster::follow::follow(
                    database,
                    listener,
                    tenant.into(),
                    id,
                    after_seq,
                )
                .await?;
                Some(stream.boxed())
            }
            None => Some(self.follow_here(tenant, id, after_seq)?.boxed()),
        }
    }

    /// Following a job this node holds. A subscriber that lags behind the broadcast
    /// re-reads the log, so nothing is lost or repeated. `None` when the tracker does
    /// not hold the job.
    pub fn follow_here(
        self: &Arc<Self>,
        tenant: &str,
        id: Uuid,
        after_seq: u64,
    ) -> Option<impl futures::Stream<Item = JobEvent> + Send + use<>> {
        let subscription = self.subscribe(tenant, id, after_seq)?;
        let tracker = self.clone();
        let tenant = tenant.to_owned();
        Some(async_stream::stream! {
            let mut last = after_seq;
            for event in subscription.backlog {
                last = event.seq;
                let terminal = event.kind.is_terminal();
                yield event;
                if terminal {
                    return;
                }
            }
            if subscription.finished {
                return;
            }
            let mut live = subscription.live;
            loop {
                let batch = match live.recv().await {
                    Ok(event) if event.seq == last + 1 => vec![event],
                    Ok(event) if event.seq <= last => continue,
                    // A gap (or a lag): re-read the log from where we are.
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {
                        tracker.events_since(&tenant, id, last)
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                for event in batch {
                    last = event.seq;
                    let terminal = event.kind.is_terminal();
                    yield event;
                    if terminal {
                        return;
                    }
                }
            }
        })
    }

    /// Events after `after_seq` (used by a subscriber that lagged behind the broadcast).
    pub fn events_since(&self, tenant: &str, id: Uuid, after_seq: u64) -> Vec<JobEvent> {
        self.entry(tenant, id)
            .map(|e| e.events_since(after_seq))
            .unwrap_or_default()
    }
}
