//! The running node's events, on their way to the shared log.
//!
//! A job's events are pushed here as they happen (never blocking the plugin) and a
//! writer task appends them in batches, in order, waking followers on every node with
//! one `NOTIFY` per job and batch. While the database is unreachable the writer keeps
//! its batch and retries; meanwhile live-only events (progress, log, segments) beyond
//! [`MAX_BUFFERED`] are dropped, as the in-memory log drops them past its cap. Status
//! changes and the terminal event never pass through here: they are written in the
//! transactions that make them true.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::jobs::events::EventKind;
use crate::storage::PgDatabase;
use crate::storage::postgres::queue::StoredEvent;

/// Events held in memory at most while the database is away.
const MAX_BUFFERED: usize = 100_000;

/// Events written in one transaction at most.
const BATCH: usize = 512;

enum Item {
    Event(StoredEvent),
    /// Answered once every event pushed before it is written.
    Flush(oneshot::Sender<()>),
}

/// Where a node's running jobs send their events.
#[derive(Clone)]
pub struct Outbox {
    sender: mpsc::UnboundedSender<Item>,
    buffered: Arc<AtomicUsize>,
}

impl Outbox {
    pub fn start(database: PgDatabase) -> Self {
        let (sender, receiver) = mpsc::unbounded_channel();
        let buffered = Arc::new(AtomicUsize::new(0));
        tokio::spawn(write(database, receiver, buffered.clone()));
        Self { sender, buffered }
    }

    /// Queues an event of `job` for the log. False when it was dropped (database away
    /// too long, and the event is live-only).
    pub fn push(&self, job: Uuid, seq: u64, kind: &EventKind) -> bool {
        let live_only = matches!(
            kind,
            EventKind::Progress { .. } | EventKind::Log { .. } | EventKind::Segment { .. }
        );
        if live_only && self.buffered.load(Ordering::Relaxed) >= MAX_BUFFERED {
            return false;
        }
        let Ok(data) = serde_json::to_string(kind) else {
            return false;
        };
        self.buffered.fetch_add(1, Ordering::Relaxed);
        self.sender
            .send(Item::Event(StoredEvent { job, seq, data }))
            .is_ok()
    }

    /// Waits until every event pushed so far is in the database.
    pub async fn flush(&self) {
        let (done, written) = oneshot::channel();
        if self.sender.send(Item::Flush(done)).is_ok() {
            let _ = written.await;
        }
    }
}

async fn write(
    database: PgDatabase,
    mut receiver: mpsc::UnboundedReceiver<Item>,
    buffered: Arc<AtomicUsize>,
) {
    while let Some(first) = receiver.recv().await {
        let mut events = Vec::new();
        let mut flushes = Vec::new();
        let mut next = Some(first);
        while let Some(item) = next.take() {
            match item {
                Item::Event(event) => events.push(event),
                Item::Flush(done) => flushes.push(done),
            }
            if events.len() < BATCH {
                next = receiver.try_recv().ok();
            }
        }
        let mut backoff = Duration::from_millis(50);
        while !events.is_empty() {
            match database.append_events(&events).await {
                Ok(()) => break,
                Err(e) if e.is_unavailable() => {
                    database.note_error(&e);
                    tracing::warn!(error = %e, events = events.len(), "events wait for the database");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
                Err(e) => {
                    tracing::error!(error = %e, events = events.len(), "could not write job events");
                    break;
                }
            }
        }
        buffered.fetch_sub(events.len(), Ordering::Relaxed);
        for done in flushes {
            let _ = done.send(());
        }
    }
}
