//! The job tracker: the single source of truth for live jobs.
//!
//! It queues submissions (a fair queue per tenant, see [`super::scheduler`]), starts at
//! most N at once on its [`JobRunner`], applies each run's [`Ending`] (see
//! [`super::settle`]), then frees the slot and starts the next job. Each job's event log
//! lives in its [`JobEntry`]; quotas, the ledger and following a job have files of
//! their own.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tracing::Instrument;
use uuid::Uuid;

use super::cluster::Cluster;
use super::ended::JobEnded;
use super::entry::JobEntry;
use super::errors::{CancelError, SubmitError};
use super::events::EventKind;
use super::model::{FailureKind, JobError, JobRequest, JobSnapshot, JobStatus};
use super::quotas::Quotas;
use super::recovery::Recovery;
use super::run::{Ending, JobRunner};
use super::scheduler::FairQueue;
use super::settle::Settler;
use super::uploads::discard_upload;
use crate::config::TenantLimits;
use crate::metrics::Metrics;
use crate::storage::{JobLedger, ResultStore};

/// How long `cancel` waits for a running job to stop, should a plugin not stop.
const CANCEL_WAIT: Duration = Duration::from_secs(5);

/// Tracks every job, runs the queue, and hands finished results to storage.
pub struct Tracker {
    pub(super) jobs: Mutex<HashMap<Uuid, Arc<JobEntry>>>,
    finished: Mutex<VecDeque<Uuid>>,
    schedule: Mutex<FairQueue>,
    pub(super) runner: Arc<dyn JobRunner>,
    pub(super) settler: Settler,
    recovery: Recovery,
    pub(super) quotas: Quotas,
    pub(super) metrics: Arc<Metrics>,
    pub(super) max_running: usize,
    pub(super) max_queued: usize,
    keep_finished: usize,
    /// This node's id, recorded in the jobs it runs.
    pub(super) node: String,
    /// With several nodes: the shared queue (the in-memory one then stays empty).
    pub(super) cluster: Option<Arc<Cluster>>,
    /// With several nodes: the jobs running on this node.
    pub(super) here: Mutex<HashSet<Uuid>>,
    /// Signalled when a slot frees on this node, so the claimer looks for work.
    pub(super) slot_freed: tokio::sync::Notify,
    /// Told of every job that ends (the webhooks).
    on_ended: Option<Arc<dyn JobEnded>>,
}

/// How the tracker is sized.
#[derive(Clone)]
pub struct TrackerOptions {
    /// Jobs running at once (at least 1).
    pub max_running: usize,
    /// Jobs waiting at most; a submission beyond is refused as `QueueFull`.
    pub max_queued: usize,
    /// Finished jobs kept in memory; older ones live on in storage and the ledger.
    pub keep_finished: usize,
    /// Where the audio of completed jobs is kept (for playback), as `<job id>.<ext>`.
    pub audio_dir: PathBuf,
    pub metrics: Arc<Metrics>,
    /// Per-tenant quotas.
    pub tenants: HashMap<String, TenantLimits>,
    /// This node's id (`Config::node_id`).
    pub node: String,
    /// The shared queue, when several nodes share a PostgreSQL database.
    pub cluster: Option<Arc<Cluster>>,
    /// Told of every job that reaches its terminal state (the webhooks); none: no one.
    pub on_ended: Option<Arc<dyn JobEnded>>,
}

impl Tracker {
    pub fn new(
        runner: Arc<dyn JobRunner>,
        store: Arc<dyn ResultStore>,
        ledger: Arc<dyn JobLedger>,
        options: TrackerOptions,
    ) -> Arc<Self> {
        Arc::new(Self {
            jobs: Mutex::default(),
            finished: Mutex::default(),
            schedule: Mutex::default(),
            runner,
            settler: Settler::new(store, options.audio_dir),
            recovery: Recovery::new(ledger),
            quotas: Quotas::new(options.tenants),
            metrics: options.metrics,
            max_running: options.max_running.max(1),
            max_queued: options.max_queued,
            keep_finished: options.keep_finished,
            node: options.node,
            cluster: options.cluster,
            here: Mutex::default(),
            slot_freed: tokio::sync::Notify::new(),
            on_ended: options.on_ended,
        })
    }

    /// Whether jobs are queued in a database several nodes share.
    pub fn is_clustered(&self) -> bool {
        self.cluster.is_some()
    }

    /// This node's id.
    pub fn node(&self) -> &str {
        &self.node
    }

    fn schedule(&self) -> MutexGuard<'_, FairQueue> {
        self.schedule.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn jobs(&self) -> MutexGuard<'_, HashMap<Uuid, Arc<JobEntry>>> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a job. It starts at once if a slot is free (with several nodes: on
    /// whichever node has one).
    pub async fn submit(self: &Arc<Self>, request: JobRequest) -> Result<JobSnapshot, SubmitError> {
        match &self.cluster {
            Some(cluster) => self.submit_shared(cluster, request).await,
            None => self.submit_here(request),
        }
    }

    /// Queues a job in this node's own queue (the single-node case).
    pub(super) fn submit_here(
        self: &Arc<Self>,
        request: JobRequest,
    ) -> Result<JobSnapshot, SubmitError> {
        let mut schedule = self.schedule();
        if schedule.len() >= self.max_queued {
            return Err(SubmitError::QueueFull(schedule.len()));
        }
        let queued = schedule.queued(&request.tenant);
        self.quotas
            .admit(&request.tenant, queued, request.duration_ms)?;
        let snapshot = JobSnapshot::queued(&request);
        let diarizer = request.diarizer.map(|d| d.plugin);
        let entry = Arc::new(
            JobEntry::new(snapshot, request.tenant, request.plugin, request.upload)
                .with_diarizer(diarizer),
        );
        self.recovery.persist(&entry);
        self.jobs().insert(entry.id, entry.clone());
        schedule.push(entry.clone());
        self.dispatch(&mut schedule);
        Self::renumber(&schedule);
        drop(schedule);
        tracing::info!(job = %entry.id, tenant = %entry.tenant, plugin = %entry.plugin.meta.id, "job queued");
        Ok(entry.snapshot())
    }

    /// Starts queued jobs while slots are free, and tells the rest their new position.
    fn dispatch(self: &Arc<Self>, schedule: &mut FairQueue) {
        let mut started = false;
        while schedule.total_running < self.max_running {
            let Some(entry) = schedule.pop_next(|tenant, running| {
                running < self.quotas.limits(tenant).max_running.unwrap_or(usize::MAX)
            }) else {
                break;
            };
            started = true;
            entry.mark_running(&self.node);
            self.recovery.persist(&entry);
            self.start(entry);
        }
        if started {
            Self::renumber(schedule);
        }
        self.metrics
            .set_queue(schedule.len(), schedule.total_running);
    }

    /// Hands a started job to the runner; its ending is applied, then the slot freed.
    fn start(self: &Arc<Self>, entry: Arc<JobEntry>) {
        let (run, span) = self.launch(&entry);
        let tracker = self.clone();
        let end = async move {
            let ending = run.await;
            let (status, kind) = tracker.settler.settle(&entry, ending).await;
            tracker.finish(&entry, status, kind, true);
        };
        tokio::spawn(end.instrument(span));
    }

    /// Starts the runner on a job; the future gives its ending. Every log line of the
    /// job, the runner's and the ending's (under the span), carries its id, tenant and
    /// node. The run is a task of its own, so a runner that panics still ends its job.
    pub(super) fn launch(
        &self,
        entry: &Arc<JobEntry>,
    ) -> (
        impl std::future::Future<Output = Ending> + use<>,
        tracing::Span,
    ) {
        let job = entry.running_job(self.quotas.limits(&entry.tenant).fuel_per_job);
        let span =
            tracing::info_span!("job", job = %entry.id, tenant = %entry.tenant, node = %self.node);
        let run = tokio::spawn(self.runner.run(job).instrument(span.clone()));
        let ending = async move {
            run.await.unwrap_or_else(|e| Ending::Failed {
                error: JobError::new(FailureKind::Server, format!("the job's runner failed: {e}")),
                usage: Default::default(),
            })
        };
        (ending, span)
    }

    /// Sends every queued job its (new) position.
    fn renumber(schedule: &FairQueue) {
        for (index, entry) in schedule.order().iter().enumerate() {
            entry.set_queue_position(index + 1);
        }
    }

    /// Records a terminal event, frees the slot, and starts the next job.
    fn finish(
        self: &Arc<Self>,
        entry: &Arc<JobEntry>,
        status: JobStatus,
        kind: EventKind,
        was_running: bool,
    ) {
        let already_finished = !entry.record_ending(status, kind);
        if already_finished {
            // Interrupted by shutdown meanwhile: only the slot is left to free.
            if was_running {
                self.schedule().finished(&entry.tenant);
            }
            entry.mark_settled();
            return;
        }
        self.recovery.persist(entry);
        {
            let snapshot = entry.snapshot();
            self.announce_ended(&entry.tenant, &snapshot);
            self.metrics.job_finished(
                &entry.plugin.meta.id,
                &entry.tenant,
                status.as_str(),
                snapshot.usage.as_ref(),
                snapshot.duration_ms,
            );
        }
        tracing::info!(job = %entry.id, tenant = %entry.tenant, status = status.as_str(), "job finished");
        self.remember_finished(entry.id);
        if was_running {
            let mut schedule = self.schedule();
            schedule.finished(&entry.tenant);
            self.dispatch(&mut schedule);
        }
        entry.mark_settled();
    }

    /// Keeps at most `keep_finished` finished jobs in memory; older ones live on in storage.
    pub(super) fn remember_finished(&self, id: Uuid) {
        let mut finished = self.finished.lock().unwrap_or_else(|e| e.into_inner());
        finished.push_back(id);
        while finished.len() > self.keep_finished {
            if let Some(old) = finished.pop_front() {
                self.jobs().remove(&old);
            }
        }
    }

    /// The job, if it exists and belongs to `tenant`.
    pub fn entry(&self, tenant: &str, id: Uuid) -> Option<Arc<JobEntry>> {
        self.jobs().get(&id).filter(|e| e.tenant == tenant).cloned()
    }

    /// The job as this node's memory holds it (see [`Tracker::lookup`] for any node's).
    pub fn get(&self, tenant: &str, id: Uuid) -> Option<JobSnapshot> {
        self.entry(tenant, id).map(|e| e.snapshot())
    }

    /// The job wherever it runs: this node's memory, or the shared database.
    pub async fn lookup(
        &self,
        tenant: &str,
        id: Uuid,
    ) -> Result<Option<JobSnapshot>, crate::storage::StorageError> {
        match &self.cluster {
            Some(cluster) => Ok(cluster.snapshot(tenant, id).await?.map(|(s, _)| s)),
            None => Ok(self.get(tenant, id)),
        }
    }

    /// The tenant's jobs that are queued or running, oldest first, on every node.
    pub async fn active(&self, tenant: &str) -> Vec<JobSnapshot> {
        if let Some(cluster) = &self.cluster {
            return cluster.active(tenant).await.unwrap_or_else(|e| {
                tracing::warn!(error = %e, "cannot list the active jobs");
                Vec::new()
            });
        }
        self.active_here(tenant)
    }

    fn active_here(&self, tenant: &str) -> Vec<JobSnapshot> {
        let mut jobs: Vec<JobSnapshot> = self
            .jobs()
            .values()
            .filter(|e| e.tenant == tenant)
            .map(|e| e.snapshot())
            .filter(|s| !s.status.is_finished())
            .collect();
        jobs.sort_by_key(|s| s.created_at);
        jobs
    }

    /// Cancels a queued or running job and waits (briefly) until it has stopped.
    pub async fn cancel(
        self: &Arc<Self>,
        tenant: &str,
        id: Uuid,
    ) -> Result<JobSnapshot, CancelError> {
        if let Some(cluster) = &self.cluster {
            return self.cancel_shared(cluster, tenant, id).await;
        }
        let entry = self.entry(tenant, id).ok_or(CancelError::NotFound)?;
        {
            let status = entry.lock().snapshot.status;
            if status.is_finished() {
                return Err(CancelError::AlreadyFinished(status.as_str()));
            }
        }
        entry.cancel.cancel();
        let was_queued = {
            let mut schedule = self.schedule();
            let removed = schedule.remove(tenant, id);
            if removed {
                Self::renumber(&schedule);
                self.metrics
                    .set_queue(schedule.len(), schedule.total_running);
            }
            removed
        };
        if was_queued {
            discard_upload(&entry.upload);
            let kind = EventKind::Cancelled {
                message: "cancelled while queued".into(),
            };
            self.finish(&entry, JobStatus::Cancelled, kind, false);
        } else {
            // The runner stops within a tick of the flag; wait for its ending to be
            // recorded and the slot freed.
            entry.wait_settled(CANCEL_WAIT).await;
        }
        Ok(entry.snapshot())
    }

    /// Graceful stop: queued jobs are interrupted at once (they keep their uploads and can
    /// be resubmitted after the restart), running jobs get `grace` to finish, then they
    /// are cancelled and recorded as interrupted too.
    pub async fn shutdown(self: &Arc<Self>, grace: Duration) {
        if let Some(cluster) = &self.cluster {
            // Queued jobs stay in the shared queue for the other nodes.
            return self.shutdown_shared(cluster, grace).await;
        }
        let queued: Vec<Arc<JobEntry>> = self.schedule().drain();
        for entry in &queued {
            self.interrupt(entry);
        }
        let deadline = tokio::time::Instant::now() + grace;
        while self.schedule().total_running > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let running: Vec<Arc<JobEntry>> = self
            .jobs()
            .values()
            .filter(|e| e.lock().snapshot.status == JobStatus::Running)
            .cloned()
            .collect();
        for entry in &running {
            tracing::warn!(job = %entry.id, "shutdown grace period over; stopping the job");
            self.interrupt(entry);
        }
    }

    /// Ends a job as interrupted by shutdown (the upload is kept for a resubmit). A
    /// running job's slot is freed when its runner's ending arrives.
    fn interrupt(&self, entry: &Arc<JobEntry>) {
        entry.cancel.cancel();
        let error = JobError::new(
            FailureKind::Interrupted,
            "the server shut down before this job finished; resubmit it to run it again",
        );
        if !entry.record_interrupted(error) {
            return;
        }
        // Recorded with its upload, like a job found unfinished after a crash.
        self.recovery.persist(entry);
        self.announce_ended(&entry.tenant, &entry.snapshot());
    }

    /// Tells whoever listens (the webhooks) that a job reached its terminal state.
    pub(super) fn announce_ended(&self, tenant: &str, job: &JobSnapshot) {
        if let Some(listener) = &self.on_ended {
            listener.job_ended(tenant, job);
        }
    }

    /// After a restart: every job the ledger still has as queued or running was cut
    /// short. Marks them `interrupted` (keeping their uploads, so they can be
    /// resubmitted) and returns the uploads to keep. Each is announced as ended (its
    /// webhook), as a job interrupted by a graceful shutdown was.
    /// With several nodes nothing is done here: a node's jobs are taken over when its
    /// leases expire.
    pub fn recover_interrupted(&self) -> Vec<PathBuf> {
        if self.cluster.is_some() {
            return Vec::new();
        }
        let (keep, ended) = self.recovery.recover_interrupted();
        for (tenant, snapshot) in &ended {
            self.announce_ended(tenant, snapshot);
        }
        keep
    }

    /// A job only the ledger knows (finished before a restart, or interrupted by one).
    pub fn recorded(&self, tenant: &str, id: Uuid) -> Option<(JobSnapshot, Option<PathBuf>)> {
        self.recovery.recorded(tenant, id)
    }

    /// Marks an interrupted job as handed over to a new one (its upload moves along).
    pub fn mark_resubmitted(&self, tenant: &str, id: Uuid, new_id: Uuid) {
        self.recovery.mark_resubmitted(tenant, id, new_id);
    }

    /// The server's metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Jobs running on this node.
    pub fn running_count(&self) -> usize {
        match &self.cluster {
            Some(_) => self.here.lock().map_or(0, |h| h.len()),
            None => self.schedule().total_running,
        }
    }

    /// Number of queued jobs (for metrics and the UI).
    pub fn queue_len(&self) -> usize {
        self.schedule().len()
    }
}
