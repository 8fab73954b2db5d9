//! The tracker's side of the shared queue: admitting into it, running what this node
//! claims from it, ending those jobs in it, cancelling through it, and leaving it at
//! shutdown. The rules a single node keeps (a result stored before `done`, the upload
//! kept or removed, metrics, the job's log span) are the same here.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;
use tracing::Instrument;
use uuid::Uuid;

use super::{Admission, Cluster};
use crate::jobs::entry::JobEntry;
use crate::jobs::errors::{CancelError, SubmitError};
use crate::jobs::events::EventKind;
use crate::jobs::model::{FailureKind, JobError, JobRequest, JobSnapshot, JobStatus};
use crate::jobs::quotas::{audio_refusal, queued_refusal, stored_refusal};
use crate::jobs::run::Ending;
use crate::jobs::settle::{Concluded, not_stored};
use crate::jobs::tracker::Tracker;
use crate::storage::postgres::listener::Notice;
use crate::storage::postgres::queue::{
    AdmissionLimits, CancelOutcome, Claimed, NodeRow, Refusal, StoredEvent,
};
use crate::storage::{StorageError, StoredResult};

/// How long a finished job's ending is retried while the database is away before the
/// node gives up on it: its lease has long expired by then, so another node has marked
/// it interrupted (or re-queued it), and the result is dropped rather than stored twice.
const ENDING_PATIENCE: Duration = Duration::from_secs(600);

/// How long a cancel waits for the running node to report the end.
const CANCEL_WAIT: Duration = Duration::from_secs(5);

impl Tracker {
    /// Queues a job in the shared database, every quota checked there at once.
    pub(in crate::jobs) async fn submit_shared(
        &self,
        cluster: &Cluster,
        request: JobRequest,
    ) -> Result<JobSnapshot, SubmitError> {
        let limits = self.quotas.limits(&request.tenant);
        let quotas = AdmissionLimits {
            max_queued: self.max_queued,
            tenant_max_queued: limits.max_queued,
            audio_minutes_per_day: limits.audio_minutes_per_day,
            stored_bytes: limits.stored_bytes,
        };
        let mut snapshot = JobSnapshot::queued(&request);
        snapshot.queue_position = None;
        match cluster
            .admit(&snapshot, &request.tenant, request.upload, &quotas)
            .await
        {
            Ok(()) => {}
            Err(Admission::Refused(refusal)) => {
                return Err(match refusal {
                    Refusal::QueueFull { waiting } => SubmitError::QueueFull(waiting),
                    Refusal::TenantQueued { limit } => queued_refusal(limit),
                    Refusal::AudioMinutes {
                        limit,
                        used_ms,
                        day,
                    } => audio_refusal(limit, used_ms, day),
                    Refusal::StoredBytes { limit, used } => stored_refusal(limit, used),
                });
            }
            Err(Admission::Failed(e)) if e.is_unavailable() => {
                return Err(SubmitError::DatabaseUnavailable(e.to_string()));
            }
            Err(Admission::Failed(e)) => return Err(SubmitError::Database(e.to_string())),
        }
        snapshot.queue_position = cluster.position(snapshot.id).await;
        tracing::info!(job = %snapshot.id, tenant = %request.tenant, plugin = %snapshot.plugin.id, "job queued");
        Ok(snapshot)
    }

    /// With several nodes, whether the shared database answers now (`None` with SQLite).
    pub async fn database_reachable(&self) -> Option<bool> {
        let cluster = self.cluster.as_ref()?;
        let ping = tokio::time::timeout(Duration::from_secs(2), cluster.database.ping());
        Some(ping.await.unwrap_or(false))
    }

    /// The nodes sharing the queue, as the database last heard from them (with SQLite:
    /// this node alone).
    pub async fn cluster_nodes(&self) -> Result<Vec<NodeRow>, StorageError> {
        match &self.cluster {
            Some(cluster) => cluster.database.nodes().await,
            None => {
                let now = time::OffsetDateTime::now_utc();
                Ok(vec![NodeRow {
                    id: self.node.clone(),
                    started_at: now,
                    heartbeat_at: now,
                    heartbeat_age_seconds: 0.0,
                    slots: u32::try_from(self.max_running).unwrap_or(u32::MAX),
                    running: u32::try_from(self.running_count()).unwrap_or(u32::MAX),
                }])
            }
        }
    }

    /// Slots this node could fill now.
    pub fn free_slots(&self) -> usize {
        self.max_running.saturating_sub(self.here().len())
    }

    /// Jobs this node runs at once.
    pub fn slots(&self) -> usize {
        self.max_running
    }

    /// The jobs running on this node.
    pub fn running_here(&self) -> Vec<Uuid> {
        self.here().iter().copied().collect()
    }

    fn here(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<Uuid>> {
        self.here.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A tenant's limit on running jobs, cluster-wide.
    pub fn tenant_max_running(&self, tenant: &str) -> Option<usize> {
        self.quotas.limits(tenant).max_running
    }

    /// Signalled when a slot frees on this node.
    pub fn slot_freed(&self) -> &tokio::sync::Notify {
        &self.slot_freed
    }

    /// Raises the cancel flag of a job running here (another node asked).
    pub fn cancel_here(&self, id: Uuid) {
        if self.here().contains(&id)
            && let Some(entry) = self.jobs().get(&id)
        {
            entry.cancel.cancel();
        }
    }

    /// Runs a job this node claimed from the shared queue.
    pub fn start_claimed(self: &Arc<Self>, claimed: Claimed) {
        let Some(cluster) = self.cluster.clone() else {
            return;
        };
        let record = claimed.record;
        let Ok(snapshot) = serde_json::from_value::<JobSnapshot>(record.data.clone()) else {
            tracing::error!(job = %record.id, "a claimed job's record does not parse");
            return;
        };
        let upload = record.upload.clone().unwrap_or_default();
        let Some(plugin) = cluster.plugins.get(&snapshot.plugin.id) else {
            // Nodes share one config, so this is a node whose plugins folder differs.
            let error = JobError::new(
                FailureKind::Server,
                format!(
                    "the plugin \"{}\" is not installed on node {}",
                    snapshot.plugin.id, self.node
                ),
            );
            let tracker = self.clone();
            tokio::spawn(async move {
                tracker
                    .write_ending(
                        &cluster,
                        &record.tenant,
                        snapshot,
                        claimed.last_event,
                        EventKind::Failed {
                            error,
                            usage: Default::default(),
                        },
                        JobStatus::Failed,
                        None,
                        None,
                    )
                    .await;
            });
            return;
        };
        // A diarizer missing here fails only the job's second stage (see `SecondStage`).
        let diarizer = snapshot
            .diarizer
            .as_ref()
            .and_then(|d| cluster.plugins.get(&d.plugin.id));
        let entry = Arc::new(
            JobEntry::claimed(
                snapshot,
                record.tenant,
                plugin,
                upload,
                claimed.last_event,
                cluster.outbox.clone(),
            )
            .with_diarizer(diarizer),
        );
        let running = {
            let mut here = self.here();
            here.insert(entry.id);
            here.len()
        };
        // The queue itself lives in the database (`/api/admin/cluster`).
        self.metrics.set_queue(0, running);
        self.jobs().insert(entry.id, entry.clone());
        let (run, span) = self.launch(&entry);
        tracing::info!(parent: &span, attempt = claimed.attempt, "job claimed");
        let tracker = self.clone();
        let end = async move {
            let ending = run.await;
            tracker.end_claimed(&cluster, &entry, ending).await;
        };
        tokio::spawn(end.instrument(span));
    }

    /// Applies a claimed job's ending: its last events, its result and its terminal
    /// state go to the database in one transaction; then the slot frees.
    async fn end_claimed(
        self: &Arc<Self>,
        cluster: &Arc<Cluster>,
        entry: &Arc<JobEntry>,
        ending: Ending,
    ) {
        let (status, kind, result) = match self.settler.conclude(entry, ending) {
            Concluded::Ended(status, kind) => (status, kind, None),
            Concluded::Store(result, usage) => {
                let done = EventKind::Done {
                    result: Arc::new((*result).clone()),
                    usage,
                };
                (JobStatus::Completed, done, Some(*result))
            }
        };
        // Shutdown may have ended it already (and written that).
        if entry.record_ending(status, kind.clone()) {
            let snapshot = entry.snapshot();
            let seq = entry.last_seq();
            let upload = Some(entry.upload.clone());
            self.write_ending(
                cluster,
                &entry.tenant,
                snapshot,
                seq - 1,
                kind,
                status,
                result,
                upload,
            )
            .await;
        }
        let running = {
            let mut here = self.here();
            here.remove(&entry.id);
            here.len()
        };
        self.metrics.set_queue(0, running);
        self.remember_finished(entry.id);
        self.slot_freed.notify_one();
        entry.mark_settled();
    }

    /// Writes a job's terminal event (numbered `after + 1`) and state, retrying while the
    /// database is away. A result that cannot be stored fails the job instead.
    #[allow(clippy::too_many_arguments)]
    async fn write_ending(
        &self,
        cluster: &Cluster,
        tenant: &str,
        mut snapshot: JobSnapshot,
        after: u64,
        mut kind: EventKind,
        mut status: JobStatus,
        mut result: Option<StoredResult>,
        upload: Option<std::path::PathBuf>,
    ) {
        // Every event before the terminal one is in the log first.
        cluster.outbox.flush().await;
        let started = tokio::time::Instant::now();
        let mut backoff = Duration::from_millis(100);
        loop {
            snapshot.status = status;
            // An interrupted job keeps its upload, so it can be resubmitted.
            let kept = upload.clone().filter(|_| status == JobStatus::Interrupted);
            let record = Cluster::final_record(&snapshot, tenant, kept);
            let event = StoredEvent {
                job: snapshot.id,
                seq: after + 1,
                data: Cluster::event_data(&kind),
            };
            match cluster
                .database
                .complete(&cluster.options.node, &record, &[event], result.as_ref())
                .await
            {
                Ok(true) => break,
                Ok(false) => {
                    tracing::warn!(job = %snapshot.id, "this node no longer holds the job (its lease expired); its ending is dropped");
                    return;
                }
                Err(e) if e.is_unavailable() && started.elapsed() < ENDING_PATIENCE => {
                    cluster.database.note_error(&e);
                    tracing::warn!(job = %snapshot.id, error = %e, "the job's ending waits for the database");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
                Err(e) if result.is_some() && !e.is_unavailable() => {
                    tracing::error!(job = %snapshot.id, error = %e, "could not store a result");
                    let usage = match &kind {
                        EventKind::Done { usage, .. } => usage.clone(),
                        _ => Default::default(),
                    };
                    let (failed, failure) = not_stored(e.to_string(), usage);
                    if let EventKind::Failed { error, .. } = &failure {
                        snapshot.error = Some(error.clone());
                    }
                    snapshot.stage = failed.as_str().into();
                    (status, kind, result) = (failed, failure, None);
                }
                Err(e) => {
                    tracing::error!(job = %snapshot.id, error = %e, "could not record the job's ending");
                    return;
                }
            }
        }
        self.metrics.job_finished(
            &snapshot.plugin.id,
            tenant,
            status.as_str(),
            snapshot.usage.as_ref(),
            snapshot.duration_ms,
        );
        tracing::info!(job = %snapshot.id, tenant, status = status.as_str(), "job finished");
        self.announce_ended(tenant, &snapshot);
    }

    /// Cancels through the shared queue: a queued job at once, a running one by asking
    /// its node, then waiting (briefly) until it has stopped.
    pub(in crate::jobs) async fn cancel_shared(
        &self,
        cluster: &Cluster,
        tenant: &str,
        id: Uuid,
    ) -> Result<JobSnapshot, CancelError> {
        let unavailable = |e: StorageError| CancelError::DatabaseUnavailable(e.to_string());
        // Listen before asking, so the end cannot slip past.
        let mut notices = cluster.listener.subscribe();
        match cluster.cancel(tenant, id).await.map_err(unavailable)? {
            CancelOutcome::NotFound => return Err(CancelError::NotFound),
            CancelOutcome::Finished(status) => {
                let status: JobStatus = serde_json::from_value(serde_json::json!(status))
                    .unwrap_or(JobStatus::Completed);
                return Err(CancelError::AlreadyFinished(status.as_str()));
            }
            CancelOutcome::Cancelled { upload } => {
                if let Some(upload) = upload {
                    crate::jobs::uploads::discard_upload(&upload);
                }
                // Cancelled here while queued: no node ran it, so this one announces it.
                let snapshot = cluster.snapshot(tenant, id).await.map_err(unavailable)?;
                let (snapshot, _) = snapshot.ok_or(CancelError::NotFound)?;
                self.announce_ended(tenant, &snapshot);
                return Ok(snapshot);
            }
            CancelOutcome::Running { .. } => {
                let deadline = tokio::time::Instant::now() + CANCEL_WAIT;
                loop {
                    if let Ok(Some((snapshot, _))) = cluster.snapshot(tenant, id).await
                        && snapshot.status.is_finished()
                    {
                        return Ok(snapshot);
                    }
                    let notice = tokio::time::timeout_at(deadline, async {
                        loop {
                            match notices.recv().await {
                                Ok(Notice::Events(job)) if job == id => return true,
                                Ok(Notice::Resync) | Err(RecvError::Lagged(_)) => return true,
                                Ok(_) => continue,
                                Err(RecvError::Closed) => return false,
                            }
                        }
                    })
                    .await;
                    if !matches!(notice, Ok(true)) {
                        break;
                    }
                }
            }
        }
        cluster
            .snapshot(tenant, id)
            .await
            .map_err(unavailable)?
            .map(|(snapshot, _)| snapshot)
            .ok_or(CancelError::NotFound)
    }

    /// Leaves the cluster: no more claims; running jobs get `grace` to finish, then are
    /// stopped and recorded as interrupted (their uploads kept for a resubmit). Queued
    /// jobs stay queued for the other nodes.
    pub(in crate::jobs) async fn shutdown_shared(&self, cluster: &Cluster, grace: Duration) {
        cluster.stop_claiming();
        let deadline = tokio::time::Instant::now() + grace;
        while !self.here().is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let running: Vec<Arc<JobEntry>> = self
            .running_here()
            .iter()
            .filter_map(|id| self.jobs().get(id).cloned())
            .collect();
        for entry in running {
            tracing::warn!(job = %entry.id, "shutdown grace period over; stopping the job");
            entry.cancel.cancel();
            let error = JobError::new(
                FailureKind::Interrupted,
                format!(
                    "the node {} shut down before this job finished; resubmit it to run it again",
                    self.node
                ),
            );
            if entry.record_interrupted(error.clone()) {
                let after = entry.last_seq() - 1;
                let kind = EventKind::Failed {
                    error,
                    usage: Default::default(),
                };
                let upload = Some(entry.upload.clone());
                self.write_ending(
                    cluster,
                    &entry.tenant,
                    entry.snapshot(),
                    after,
                    kind,
                    JobStatus::Interrupted,
                    None,
                    upload,
                )
                .await;
            }
        }
    }
}
