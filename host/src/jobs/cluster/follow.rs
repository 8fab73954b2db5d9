//! Following a job from the shared log, on any node: the events after a sequence number,
//! then each new batch when the database says there is one, ending with the terminal
//! event. Nothing polls: the table is re-read when a notification for the job arrives,
//! when the listener reconnected (it may have missed some), or when the stream lagged.

use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;
use uuid::Uuid;

use crate::jobs::events::{EventKind, JobEvent};
use crate::storage::PgDatabase;
use crate::storage::postgres::listener::{Listener, Notice};
use crate::storage::postgres::queue::StoredEvent;

/// How long a follower waits before trying again after a failed read (the database
/// being away; the listener's reconnect usually wakes it sooner).
const RETRY_AFTER_ERROR: Duration = Duration::from_secs(2);

/// Decodes a logged event; one that no longer parses is skipped (and said so).
pub fn decode(event: &StoredEvent) -> Option<JobEvent> {
    match serde_json::from_str::<EventKind>(&event.data) {
        Ok(kind) => Some(JobEvent {
            seq: event.seq,
            kind,
        }),
        Err(e) => {
            tracing::warn!(job = %event.job, seq = event.seq, error = %e, "skipping an unreadable job event");
            None
        }
    }
}

/// The job's events after `after_seq`, then live ones; `None` when the tenant has no such
/// job (or the database cannot say right now).
pub async fn follow(
    database: PgDatabase,
    listener: Listener,
    tenant: String,
    id: Uuid,
    after_seq: u64,
) -> Option<impl futures::Stream<Item = JobEvent> + Send + use<>> {
    // Subscribe before the first read, so no notification falls between the two.
    let mut notices = listener.subscribe();
    let (first, _) = database.events_after(&tenant, id, after_seq).await.ok()??;
    Some(async_stream::stream! {
        let mut last = after_seq;
        let mut batch = first;
        loop {
            for event in &batch {
                if event.seq <= last {
                    continue;
                }
                last = event.seq;
                let Some(event) = decode(event) else { continue };
                let terminal = event.kind.is_terminal();
                yield event;
                if terminal {
                    return;
                }
            }
            // Wait for word of new events of this job.
            loop {
                match notices.recv().await {
                    Ok(Notice::Events(job)) if job == id => break,
                    Ok(Notice::Resync) | Err(RecvError::Lagged(_)) => break,
                    Ok(_) => continue,
                    Err(RecvError::Closed) => return,
                }
            }
            batch = loop {
                match database.events_after(&tenant, id, last).await {
                    Ok(Some((events, _))) => break events,
                    Ok(None) => return,
                    Err(e) => {
                        database.note_error(&e);
                        tokio::time::sleep(RETRY_AFTER_ERROR).await;
                    }
                }
            };
        }
    })
}
