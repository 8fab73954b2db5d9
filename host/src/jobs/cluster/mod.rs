//! Jobs across several nodes sharing one PostgreSQL database.
//!
//! With SQLite the tracker's in-memory queue is the queue. With PostgreSQL the database
//! is ([`crate::storage::postgres::queue`]): any node admits a job, every node claims
//! work for its own free slots, runs it as it would run a local job, and writes its
//! events to the shared log, which followers on every node read ([`follow`]). Cancels
//! reach the running node by `NOTIFY`; a node renews leases on the jobs it runs, and
//! jobs whose node died are re-queued or marked interrupted by the others ([`workers`]).
//! The tracker stays the source of truth for what runs on this node; the database is
//! the source of truth between nodes.

pub mod follow;
mod node;
pub mod outbox;
mod positions;
pub mod workers;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use time::OffsetDateTime;
use uuid::Uuid;

use super::events::EventKind;
use super::model::{FailureKind, JobError, JobSnapshot, JobStatus};
use crate::runtime::PluginRegistry;
use crate::storage::postgres::listener::Listener;
use crate::storage::postgres::queue::{AdmissionLimits, CancelOutcome, Expired, Reaped, Refusal};
use crate::storage::{JobRecord, PgDatabase, StorageError};
pub use outbox::Outbox;

/// How the cluster part of a node is set up.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    pub node: String,
    pub lease_renew: Duration,
    pub lease_expiry: Duration,
    pub retry_interrupted: u32,
}

/// This node's handle on the shared queue.
pub struct Cluster {
    pub database: PgDatabase,
    pub listener: Listener,
    pub outbox: Outbox,
    pub options: ClusterOptions,
    /// The plugins a claimed job is run with (every node has the same).
    pub plugins: Arc<PluginRegistry>,
    /// Set at shutdown: this node takes no more jobs.
    stopping: AtomicBool,
}

/// Why the shared queue refused or could not take a job.
#[derive(Debug)]
pub enum Admission {
    Refused(Refusal),
    Failed(StorageError),
}

fn event_json(kind: &EventKind) -> String {
    serde_json::to_string(kind).unwrap_or_default()
}

fn snapshot_of(record: &JobRecord) -> Option<JobSnapshot> {
    serde_json::from_value(record.data.clone()).ok()
}

fn value_of(snapshot: &JobSnapshot) -> serde_json::Value {
    let mut snapshot = snapshot.clone();
    // The result lives in the result store; the ledger keeps the job's story.
    snapshot.result = None;
    serde_json::to_value(&snapshot).unwrap_or_default()
}

impl Cluster {
    /// Connects this node's listener and outbox to the shared database.
    pub fn new(
        database: PgDatabase,
        plugins: Arc<PluginRegistry>,
        options: ClusterOptions,
    ) -> Self {
        Self {
            listener: Listener::start(&database),
            outbox: Outbox::start(database.clone()),
            database,
            options,
            plugins,
            stopping: AtomicBool::new(false),
        }
    }

    /// This node takes no more jobs from the queue (it is shutting down).
    pub fn stop_claiming(&self) {
        self.stopping.store(true, Ordering::Relaxed);
    }

    /// Whether this node still takes jobs.
    pub fn is_claiming(&self) -> bool {
        !self.stopping.load(Ordering::Relaxed)
    }

    /// Records a new job in the shared queue, or says why not.
    pub async fn admit(
        &self,
        snapshot: &JobSnapshot,
        tenant: &str,
        upload: PathBuf,
        limits: &AdmissionLimits,
    ) -> Result<(), Admission> {
        let record = JobRecord {
            id: snapshot.id,
            tenant: tenant.to_owned(),
            status: JobStatus::Queued.as_str().into(),
            upload: Some(upload),
            data: value_of(snapshot),
        };
        let first = event_json(&EventKind::Status {
            status: JobStatus::Queued,
            queue_position: None,
        });
        match self
            .database
            .admit(&record, &first, snapshot.duration_ms, limits)
            .await
        {
            Ok(Ok(())) => Ok(()),
            Ok(Err(refusal)) => Err(Admission::Refused(refusal)),
            Err(e) => {
                self.database.note_error(&e);
                Err(Admission::Failed(e))
            }
        }
    }

    /// The tenant's job as the cluster knows it, with its queue position if it waits.
    pub async fn snapshot(
        &self,
        tenant: &str,
        id: Uuid,
    ) -> Result<Option<(JobSnapshot, Option<PathBuf>)>, StorageError> {
        let Some(record) = self.database.job_record(tenant, id).await? else {
            return Ok(None);
        };
        let Some(mut snapshot) = snapshot_of(&record) else {
            return Ok(None);
        };
        if snapshot.status == JobStatus::Queued {
            snapshot.queue_position = self.position(id).await;
        }
        Ok(Some((snapshot, record.upload)))
    }

    /// Where `id` stands in the cluster's queue (1 = next to start).
    pub async fn position(&self, id: Uuid) -> Option<usize> {
        let view = self.database.queue_view().await.ok()?;
        positions::fair_order(&view)
            .iter()
            .position(|queued| *queued == id)
            .map(|index| index + 1)
    }

    /// The tenant's queued and running jobs, oldest first, with queue positions.
    pub async fn active(&self, tenant: &str) -> Result<Vec<JobSnapshot>, StorageError> {
        let records = self.database.active_jobs(tenant).await?;
        let order = match self.database.queue_view().await {
            Ok(view) => positions::fair_order(&view),
            Err(_) => Vec::new(),
        };
        Ok(records
            .iter()
            .filter_map(snapshot_of)
            .map(|mut snapshot| {
                if snapshot.status == JobStatus::Queued {
                    snapshot.queue_position = order
                        .iter()
                        .position(|id| *id == snapshot.id)
                        .map(|i| i + 1);
                }
                snapshot
            })
            .collect())
    }

    /// Cancels a queued job in the database, or asks the node running it to stop it.
    pub async fn cancel(&self, tenant: &str, id: Uuid) -> Result<CancelOutcome, StorageError> {
        let cancelled = |record: &JobRecord| {
            let mut snapshot = snapshot_of(record);
            if let Some(snapshot) = &mut snapshot {
                snapshot.status = JobStatus::Cancelled;
                snapshot.queue_position = None;
                snapshot.stage = JobStatus::Cancelled.as_str().into();
                snapshot.finished_at = Some(OffsetDateTime::now_utc());
            }
            let data = snapshot.as_ref().map_or(record.data.clone(), value_of);
            let event = event_json(&EventKind::Cancelled {
                message: "cancelled while queued".into(),
            });
            (data, event)
        };
        self.database.cancel(tenant, id, &cancelled).await
    }

    /// The snapshot and event of a job this node has just claimed.
    pub(crate) fn started(&self, record: &JobRecord) -> (serde_json::Value, String) {
        let mut data = record.data.clone();
        if let Some(mut snapshot) = snapshot_of(record) {
            snapshot.status = JobStatus::Running;
            snapshot.queue_position = None;
            snapshot.stage = "starting".into();
            snapshot.progress = 0.0;
            snapshot.started_at = Some(OffsetDateTime::now_utc());
            snapshot.node = Some(self.options.node.clone());
            data = value_of(&snapshot);
        }
        let event = event_json(&EventKind::Status {
            status: JobStatus::Running,
            queue_position: None,
        });
        (data, event)
    }

    /// What becomes of a job whose node died: queued again while it has retries left,
    /// otherwise interrupted (its upload kept, so it can be resubmitted).
    pub(crate) fn reaped(&self, expired: &Expired) -> Reaped {
        let requeue = expired.attempts <= self.options.retry_interrupted;
        let node = expired.node.clone().unwrap_or_else(|| "its node".into());
        let mut snapshot = snapshot_of(&expired.record);
        let (event, status) = if requeue {
            (
                EventKind::Status {
                    status: JobStatus::Queued,
                    queue_position: None,
                },
                JobStatus::Queued,
            )
        } else {
            (
                EventKind::Failed {
                    error: JobError {
                        kind: FailureKind::Interrupted,
                        message: format!(
                            "the node {node} stopped before this job finished; resubmit it to run it again"
                        ),
                    },
                    usage: Default::default(),
                },
                JobStatus::Interrupted,
            )
        };
        if let Some(snapshot) = &mut snapshot {
            snapshot.status = status;
            snapshot.stage = status.as_str().into();
            snapshot.progress = 0.0;
            if requeue {
                snapshot.started_at = None;
                snapshot.node = None;
            } else {
                snapshot.finished_at = Some(OffsetDateTime::now_utc());
                if let EventKind::Failed { error, .. } = &event {
                    snapshot.error = Some(error.clone());
                }
            }
        }
        Reaped {
            requeue,
            data: snapshot
                .as_ref()
                .map_or(expired.record.data.clone(), value_of),
            event: event_json(&event),
        }
    }

    /// The final record of a job this node ran, for [`PgDatabase::complete`].
    pub fn final_record(
        snapshot: &JobSnapshot,
        tenant: &str,
        upload: Option<PathBuf>,
    ) -> JobRecord {
        JobRecord {
            id: snapshot.id,
            tenant: tenant.to_owned(),
            status: snapshot.status.as_str().into(),
            upload,
            data: value_of(snapshot),
        }
    }

    /// The stored form of a terminal event.
    pub fn event_data(kind: &EventKind) -> String {
        event_json(kind)
    }
}
