//! One connection per node that `LISTEN`s for the cluster's notifications and hands
//! them to whoever waits on this node: followers of a job (new events), the claimer
//! (new work), the runner of a job (cancel).
//!
//! When the connection drops (the database restarted), it reconnects with backoff and
//! then announces [`Notice::Resync`]: anything might have happened meanwhile, so every
//! waiter re-reads the table once. Nothing polls: waiters re-read only when told.

use std::time::Duration;

use futures::StreamExt;
use tokio::sync::broadcast;
use tokio_postgres::{AsyncMessage, NoTls};
use uuid::Uuid;

use super::PgDatabase;
use super::queue::{CANCEL_CHANNEL, EVENTS_CHANNEL, QUEUE_CHANNEL};

/// Notices buffered per waiter; one that lags re-reads the table.
const CAPACITY: usize = 4096;

/// What the database told this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// New events of this job are in the log.
    Events(Uuid),
    /// A job was queued (or re-queued): there may be work to claim.
    Queued,
    /// Someone asked to cancel this job.
    Cancel(Uuid),
    /// The connection was lost and is back: re-read whatever you wait on.
    Resync,
}

/// Hands out receivers of the node's notices.
#[derive(Clone)]
pub struct Listener {
    sender: broadcast::Sender<Notice>,
}

impl Listener {
    /// Starts listening (in a task that lives as long as the runtime).
    pub fn start(database: &PgDatabase) -> Self {
        let (sender, _) = broadcast::channel(CAPACITY);
        let config = database.connect_config().clone();
        tokio::spawn(listen(config, sender.clone()));
        Self { sender }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Notice> {
        self.sender.subscribe()
    }
}

async fn listen(config: tokio_postgres::Config, sender: broadcast::Sender<Notice>) {
    let mut backoff = Duration::from_millis(100);
    let mut first = true;
    loop {
        match config.connect(NoTls).await {
            Ok((client, mut connection)) => {
                // Notifications only arrive while the connection is polled: a task drives
                // it and forwards what it yields; it ends when the connection does.
                let (forward, mut messages) = tokio::sync::mpsc::unbounded_channel();
                let driver = tokio::spawn(async move {
                    let mut stream =
                        futures::stream::poll_fn(move |cx| connection.poll_message(cx));
                    while let Some(message) = stream.next().await {
                        if forward.send(message).is_err() {
                            break;
                        }
                    }
                });
                let sql = format!(
                    "LISTEN {EVENTS_CHANNEL}; LISTEN {QUEUE_CHANNEL}; LISTEN {CANCEL_CHANNEL};"
                );
                match client.batch_execute(&sql).await {
                    Ok(()) => {
                        backoff = Duration::from_millis(100);
                        if !first {
                            tracing::info!("database notifications are back");
                            // Anything may have happened while we were away.
                            let _ = sender.send(Notice::Resync);
                        }
                        while let Some(message) = messages.recv().await {
                            match message {
                                Ok(AsyncMessage::Notification(n)) => {
                                    if let Some(notice) = notice_of(n.channel(), n.payload()) {
                                        let _ = sender.send(notice);
                                    }
                                }
                                Ok(_) => {}
                                Err(e) => {
                                    tracing::warn!(error = %e, "the database notification connection failed");
                                    break;
                                }
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "could not LISTEN on the database"),
                }
                driver.abort();
                drop(client);
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "cannot reach the database for notifications");
            }
        }
        first = false;
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

fn notice_of(channel: &str, payload: &str) -> Option<Notice> {
    match channel {
        EVENTS_CHANNEL => Uuid::parse_str(payload).ok().map(Notice::Events),
        CANCEL_CHANNEL => Uuid::parse_str(payload).ok().map(Notice::Cancel),
        QUEUE_CHANNEL => Some(Notice::Queued),
        _ => None,
    }
}
