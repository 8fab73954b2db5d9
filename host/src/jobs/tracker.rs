//! The job tracker: the single source of truth for live jobs.
//!
//! Each job has a state machine and an append-only event log. New events are appended
//! and broadcast under the job's lock, and subscribers take the backlog and their
//! broadcast receiver under the same lock, so a subscriber sees every event exactly
//! once, in order, whenever it joins. The scheduler part keeps a FIFO queue and runs at
//! most N jobs at once.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::{broadcast, watch};
use uuid::Uuid;

use super::events::{EventKind, JobEvent};
use super::model::{JobError, JobRequest, JobSnapshot, JobStatus, PluginRef};
use crate::runtime::{CancelFlag, LoadedPlugin, Runtime};
use crate::storage::{JobLedger, JobRecord, ResultStore};

/// Events kept per job beyond which live-only events (progress, log, segment) are
/// dropped; the state and the final result are never dropped.
const MAX_EVENTS_PER_JOB: usize = 20_000;

/// Capacity of each job's broadcast channel; a subscriber that lags re-reads the log.
const BROADCAST_CAPACITY: usize = 1024;

/// Why a submission was refused.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("the queue is full ({0} jobs waiting); try again later")]
    QueueFull(usize),
    #[error("your {quota} quota ({limit}) is used up; it frees {resets}")]
    QuotaExceeded {
        quota: &'static str,
        limit: String,
        resets: String,
    },
}

/// Why a cancel did not happen.
#[derive(Debug, thiserror::Error)]
pub enum CancelError {
    #[error("no such job")]
    NotFound,
    #[error("the job already finished ({0})")]
    AlreadyFinished(&'static str),
}

/// A live subscription: the events so far, then the receiver for new ones.
pub struct Subscription {
    pub backlog: Vec<JobEvent>,
    pub live: broadcast::Receiver<JobEvent>,
    /// The job had already finished: the backlog ends with its terminal event.
    pub finished: bool,
}

/// Mutable state of one job.
pub(super) struct JobState {
    pub snapshot: JobSnapshot,
    pub events: Vec<JobEvent>,
    pub live_segments: usize,
}

/// One tracked job.
pub struct JobEntry {
    pub id: Uuid,
    pub tenant: String,
    pub(super) plugin: Arc<LoadedPlugin>,
    pub(super) upload: std::path::PathBuf,
    pub(super) cancel: CancelFlag,
    state: Mutex<JobState>,
    sender: broadcast::Sender<JobEvent>,
    /// Becomes true once the job is finished *and* its running slot is free, so whoever
    /// waits for a cancellation can count on the queue having moved on.
    settled: watch::Sender<bool>,
}

impl JobEntry {
    pub(super) fn lock(&self) -> MutexGuard<'_, JobState> {
        // A panic while holding the lock cannot leave the log half-written (pushes are
        // single operations), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends an event to the log and broadcasts it. Live-only events past the cap
    /// are dropped.
    pub(super) fn push(&self, state: &mut JobState, kind: EventKind) {
        let live_only = matches!(
            kind,
            EventKind::Progress { .. } | EventKind::Log { .. } | EventKind::Segment { .. }
        );
        if live_only && state.events.len() >= MAX_EVENTS_PER_JOB {
            return;
        }
        let event = JobEvent {
            seq: state.events.len() as u64 + 1,
            kind,
        };
        state.events.push(event.clone());
        // No receivers is fine: nobody is watching right now.
        let _ = self.sender.send(event);
    }

    pub fn snapshot(&self) -> JobSnapshot {
        self.lock().snapshot.clone()
    }
}

type Schedule = super::scheduler::FairQueue;

/// Tracks every job, runs the queue, and hands finished results to storage.
pub struct Tracker {
    jobs: Mutex<HashMap<Uuid, Arc<JobEntry>>>,
    finished: Mutex<VecDeque<Uuid>>,
    schedule: Mutex<Schedule>,
    pub(super) runtime: Arc<Runtime>,
    pub(super) store: Arc<dyn ResultStore>,
    ledger: Arc<dyn JobLedger>,
    pub(super) audio_limits: crate::audio::DecodeLimits,
    pub(super) audio_dir: std::path::PathBuf,
    metrics: Arc<crate::metrics::Metrics>,
    max_running: usize,
    max_queued: usize,
    keep_finished: usize,
    tenants: std::collections::HashMap<String, crate::config::TenantLimits>,
    /// Milliseconds of audio accepted per (tenant, UTC day number).
    audio_used: Mutex<HashMap<(String, i64), u64>>,
}

/// How the tracker is sized.
#[derive(Debug, Clone)]
pub struct TrackerOptions {
    pub max_running: usize,
    pub max_queued: usize,
    pub keep_finished: usize,
    pub audio_limits: crate::audio::DecodeLimits,
    /// Where the audio of completed jobs is kept (for playback), as `<job id>.<ext>`.
    pub audio_dir: std::path::PathBuf,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Per-tenant quotas.
    pub tenants: std::collections::HashMap<String, crate::config::TenantLimits>,
}

impl Tracker {
    pub fn new(
        runtime: Arc<Runtime>,
        store: Arc<dyn ResultStore>,
        ledger: Arc<dyn JobLedger>,
        options: TrackerOptions,
    ) -> Arc<Self> {
        Arc::new(Self {
            jobs: Mutex::default(),
            finished: Mutex::default(),
            schedule: Mutex::default(),
            runtime,
            store,
            ledger,
            audio_limits: options.audio_limits,
            audio_dir: options.audio_dir,
            metrics: options.metrics,
            tenants: options.tenants,
            audio_used: Mutex::default(),
            max_running: options.max_running.max(1),
            max_queued: options.max_queued,
            keep_finished: options.keep_finished,
        })
    }

    fn schedule(&self) -> MutexGuard<'_, Schedule> {
        self.schedule.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn jobs(&self) -> MutexGuard<'_, HashMap<Uuid, Arc<JobEntry>>> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a job. It starts at once if a slot is free.
    pub fn submit(self: &Arc<Self>, request: JobRequest) -> Result<JobSnapshot, SubmitError> {
        let mut schedule = self.schedule();
        if schedule.len() >= self.max_queued {
            return Err(SubmitError::QueueFull(schedule.len()));
        }
        self.check_quotas(&schedule, &request.tenant, request.duration_ms)?;
        let id = Uuid::new_v4();
        let meta = &request.plugin.meta;
        let snapshot = JobSnapshot {
            id,
            status: JobStatus::Queued,
            plugin: PluginRef {
                id: meta.id.clone(),
                name: meta.name.clone(),
                version: meta.version.clone(),
            },
            file_name: request.file_name,
            config: request.config,
            duration_ms: request.duration_ms,
            progress: 0.0,
            stage: "queued".into(),
            queue_position: None,
            created_at: OffsetDateTime::now_utc(),
            started_at: None,
            finished_at: None,
            error: None,
            usage: None,
            result: None,
            resubmitted_as: None,
        };
        let (sender, _) = broadcast::channel(BROADCAST_CAPACITY);
        let entry = Arc::new(JobEntry {
            id,
            tenant: request.tenant,
            plugin: request.plugin,
            upload: request.upload,
            cancel: CancelFlag::new(),
            state: Mutex::new(JobState {
                snapshot,
                events: Vec::new(),
                live_segments: 0,
            }),
            sender,
            settled: watch::Sender::new(false),
        });
        {
            let mut state = entry.lock();
            let position = state.snapshot.queue_position;
            entry.push(
                &mut state,
                EventKind::Status {
                    status: JobStatus::Queued,
                    queue_position: position,
                },
            );
        }
        self.persist(&entry);
        self.jobs().insert(id, entry.clone());
        schedule.push(entry.clone());
        self.dispatch(&mut schedule);
        Self::renumber(&schedule);
        drop(schedule);
        tracing::info!(job = %id, tenant = %entry.tenant, plugin = %entry.plugin.meta.id, "job queued");
        Ok(entry.snapshot())
    }

    /// A tenant's quotas (none configured: no limits beyond the server's).
    pub(super) fn tenant_limits(&self, tenant: &str) -> crate::config::TenantLimits {
        self.tenants.get(tenant).cloned().unwrap_or_default()
    }

    /// Refuses a submission over one of the tenant's quotas; otherwise counts its audio.
    fn check_quotas(
        &self,
        schedule: &Schedule,
        tenant: &str,
        duration_ms: u64,
    ) -> Result<(), SubmitError> {
        let limits = self.tenant_limits(tenant);
        if let Some(max) = limits.max_queued
            && schedule.queued(tenant) >= max
        {
            return Err(SubmitError::QuotaExceeded {
                quota: "queued jobs",
                limit: format!("{max} waiting"),
                resets: "as soon as one of your queued jobs starts".into(),
            });
        }
        if let Some(minutes) = limits.audio_minutes_per_day {
            let now = OffsetDateTime::now_utc();
            let day = now.unix_timestamp().div_euclid(86_400);
            let mut used = self.audio_used.lock().unwrap_or_else(|e| e.into_inner());
            let today = used.entry((tenant.to_owned(), day)).or_default();
            if *today + duration_ms > minutes.saturating_mul(60_000) {
                let midnight = OffsetDateTime::from_unix_timestamp((day + 1) * 86_400)
                    .ok()
                    .and_then(|t| {
                        t.format(&time::format_description::well_known::Rfc3339)
                            .ok()
                    })
                    .unwrap_or_else(|| "at midnight UTC".into());
                return Err(SubmitError::QuotaExceeded {
                    quota: "audio minutes per day",
                    limit: format!("{minutes} minutes, {} used", *today / 60_000),
                    resets: format!("at {midnight}"),
                });
            }
            *today += duration_ms;
        }
        Ok(())
    }

    /// Starts queued jobs while slots are free, and tells the rest their new position.
    fn dispatch(self: &Arc<Self>, schedule: &mut Schedule) {
        let mut started = false;
        while schedule.total_running < self.max_running {
            let Some(entry) = schedule.pop_next(|tenant, running| {
                running < self.tenant_limits(tenant).max_running.unwrap_or(usize::MAX)
            }) else {
                break;
            };
            started = true;
            {
                let mut state = entry.lock();
                state.snapshot.status = JobStatus::Running;
                state.snapshot.queue_position = None;
                state.snapshot.stage = "starting".into();
                state.snapshot.started_at = Some(OffsetDateTime::now_utc());
                entry.push(
                    &mut state,
                    EventKind::Status {
                        status: JobStatus::Running,
                        queue_position: None,
                    },
                );
            }
            self.persist(&entry);
            tokio::spawn(super::runner::run(self.clone(), entry));
        }
        if started {
            Self::renumber(schedule);
        }
        self.metrics
            .set_queue(schedule.len(), schedule.total_running);
    }

    /// Sends every queued job its (new) position.
    fn renumber(schedule: &Schedule) {
        for (index, entry) in schedule.order().iter().enumerate() {
            let mut state = entry.lock();
            let position = Some(index + 1);
            if state.snapshot.queue_position != position {
                state.snapshot.queue_position = position;
                entry.push(
                    &mut state,
                    EventKind::Status {
                        status: JobStatus::Queued,
                        queue_position: position,
                    },
                );
            }
        }
    }

    /// Records a terminal event, frees the slot, and starts the next job.
    pub(super) fn finish(
        self: &Arc<Self>,
        entry: &Arc<JobEntry>,
        status: JobStatus,
        kind: EventKind,
        was_running: bool,
    ) {
        let already_finished = {
            let mut state = entry.lock();
            if state.snapshot.status.is_finished() {
                true
            } else {
                state.snapshot.status = status;
                state.snapshot.queue_position = None;
                state.snapshot.finished_at = Some(OffsetDateTime::now_utc());
                match &kind {
                    EventKind::Done { result, usage } => {
                        state.snapshot.result = Some(result.clone());
                        state.snapshot.usage = Some(usage.clone());
                        state.snapshot.progress = 1.0;
                        state.snapshot.stage = "done".into();
                    }
                    EventKind::Failed { error, usage } | EventKind::TimedOut { error, usage } => {
                        state.snapshot.error = Some(error.clone());
                        state.snapshot.usage = Some(usage.clone());
                        state.snapshot.stage = status.as_str().into();
                    }
                    _ => state.snapshot.stage = status.as_str().into(),
                }
                entry.push(&mut state, kind);
                false
            }
        };
        if already_finished {
            // Interrupted by shutdown meanwhile: only the slot is left to free.
            if was_running {
                let mut schedule = self.schedule();
                schedule.finished(&entry.tenant);
            }
            entry.settled.send_replace(true);
            return;
        }
        self.persist(entry);
        {
            let snapshot = entry.snapshot();
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
        entry.settled.send_replace(true);
    }

    /// Writes the job's state to the ledger, so a restart knows about it. A failed write
    /// is logged, not fatal: the job itself is unaffected.
    fn persist(&self, entry: &JobEntry) {
        let mut snapshot = entry.snapshot();
        // The result lives in the result store; the ledger keeps the job's story.
        snapshot.result = None;
        let status = snapshot.status;
        let record = JobRecord {
            id: entry.id,
            tenant: entry.tenant.clone(),
            status: status.as_str().to_owned(),
            // Kept while the job may still run, and for a resubmit of an interrupted one.
            upload: (!status.is_finished() || status == JobStatus::Interrupted)
                .then(|| entry.upload.clone()),
            data: serde_json::to_value(&snapshot).unwrap_or_default(),
        };
        if let Err(e) = self.ledger.save_job(&record) {
            tracing::warn!(job = %entry.id, error = %e, "could not record the job's state");
        }
    }

    /// After a restart: every job the ledger still has as queued or running was cut
    /// short. Marks them `interrupted` (keeping their uploads, so they can be
    /// resubmitted) and returns the uploads to keep.
    pub fn recover_interrupted(&self) -> Vec<std::path::PathBuf> {
        let records = match self.ledger.unfinished_jobs() {
            Ok(records) => records,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the job ledger");
                return Vec::new();
            }
        };
        let mut keep = Vec::new();
        for mut record in records {
            if let Ok(mut snapshot) = serde_json::from_value::<JobSnapshot>(record.data.clone()) {
                snapshot.status = JobStatus::Interrupted;
                snapshot.queue_position = None;
                snapshot.stage = "interrupted".into();
                snapshot.finished_at = Some(OffsetDateTime::now_utc());
                snapshot.error = Some(job_error(
                    super::model::FailureKind::Interrupted,
                    "the server stopped before this job finished; resubmit it to run it again",
                ));
                record.data = serde_json::to_value(&snapshot).unwrap_or_default();
            }
            record.status = JobStatus::Interrupted.as_str().to_owned();
            tracing::warn!(job = %record.id, tenant = %record.tenant, "job was interrupted by a restart");
            if let Err(e) = self.ledger.save_job(&record) {
                tracing::error!(job = %record.id, error = %e, "cannot mark a job interrupted");
            }
            keep.extend(record.upload);
        }
        keep
    }

    /// A job only the ledger knows (finished before a restart, or interrupted by one).
    pub fn recorded(
        &self,
        tenant: &str,
        id: Uuid,
    ) -> Option<(JobSnapshot, Option<std::path::PathBuf>)> {
        let record = self.ledger.job(tenant, id).ok().flatten()?;
        let snapshot = serde_json::from_value(record.data).ok()?;
        Some((snapshot, record.upload))
    }

    /// Marks an interrupted job as handed over to a new one (its upload moves along).
    pub fn mark_resubmitted(&self, tenant: &str, id: Uuid, new_id: Uuid) {
        if let Ok(Some(mut record)) = self.ledger.job(tenant, id) {
            record.upload = None;
            if let Some(object) = record.data.as_object_mut() {
                object.insert("resubmitted_as".into(), serde_json::json!(new_id));
            }
            if let Err(e) = self.ledger.save_job(&record) {
                tracing::warn!(job = %id, error = %e, "could not record a resubmission");
            }
        }
    }

    /// Keeps at most `keep_finished` finished jobs in memory; older ones live on in storage.
    fn remember_finished(&self, id: Uuid) {
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

    pub fn get(&self, tenant: &str, id: Uuid) -> Option<JobSnapshot> {
        self.entry(tenant, id).map(|e| e.snapshot())
    }

    /// The tenant's jobs that are queued or running, oldest first.
    pub fn active(&self, tenant: &str) -> Vec<JobSnapshot> {
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

    /// Events after `after_seq`, then live ones.
    pub fn subscribe(&self, tenant: &str, id: Uuid, after_seq: u64) -> Option<Subscription> {
        let entry = self.entry(tenant, id)?;
        let state = entry.lock();
        let backlog = events_after(&state.events, after_seq);
        let live = entry.sender.subscribe();
        Some(Subscription {
            backlog,
            live,
            finished: state.snapshot.status.is_finished(),
        })
    }

    /// The job's events after `after_seq`, then live ones as they happen, ending with
    /// the terminal event: the one way every front end (SSE, the OpenAI API, the
    /// browser) follows a job. A subscriber that lags behind the broadcast re-reads the
    /// log, so nothing is lost or repeated. `None` when the tracker does not hold the job.
    pub fn follow(
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
            .map(|e| events_after(&e.lock().events, after_seq))
            .unwrap_or_default()
    }

    /// Cancels a queued or running job and waits (briefly) until it has stopped.
    pub async fn cancel(
        self: &Arc<Self>,
        tenant: &str,
        id: Uuid,
    ) -> Result<JobSnapshot, CancelError> {
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
            super::runner::discard_upload(&entry.upload);
            self.finish(
                &entry,
                JobStatus::Cancelled,
                EventKind::Cancelled {
                    message: "cancelled while queued".into(),
                },
                false,
            );
        } else {
            // The epoch callback stops the plugin within a tick; wait for the runner to
            // record the end and free the slot (bounded, should a plugin not stop).
            let mut settled = entry.settled.subscribe();
            let _ = tokio::time::timeout(Duration::from_secs(5), settled.wait_for(|s| *s)).await;
        }
        Ok(entry.snapshot())
    }

    /// Graceful stop: queued jobs are interrupted at once (they keep their uploads and can
    /// be resubmitted after the restart), running jobs get `grace` to finish, then they
    /// are cancelled and recorded as interrupted too.
    pub async fn shutdown(self: &Arc<Self>, grace: Duration) {
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

    /// Ends a job as interrupted by shutdown (the upload is kept for a resubmit).
    fn interrupt(self: &Arc<Self>, entry: &Arc<JobEntry>) {
        entry.cancel.cancel();
        let error = job_error(
            super::model::FailureKind::Interrupted,
            "the server shut down before this job finished; resubmit it to run it again",
        );
        {
            let mut state = entry.lock();
            if state.snapshot.status.is_finished() {
                return;
            }
            state.snapshot.status = JobStatus::Interrupted;
            state.snapshot.queue_position = None;
            state.snapshot.stage = "interrupted".into();
            state.snapshot.finished_at = Some(OffsetDateTime::now_utc());
            state.snapshot.error = Some(error.clone());
            entry.push(
                &mut state,
                EventKind::Failed {
                    error,
                    usage: Default::default(),
                },
            );
        }
        // Recorded with its upload, like a job found unfinished after a crash.
        self.persist(entry);
    }

    /// The plugin runtime (for reloading plugins).
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    /// The server's metrics.
    pub fn metrics(&self) -> &Arc<crate::metrics::Metrics> {
        &self.metrics
    }

    /// Number of queued jobs (for metrics and the UI).
    pub fn queue_len(&self) -> usize {
        self.schedule().len()
    }
}

fn events_after(events: &[JobEvent], after_seq: u64) -> Vec<JobEvent> {
    let start = usize::try_from(after_seq)
        .unwrap_or(usize::MAX)
        .min(events.len());
    events[start..].to_vec()
}

/// Helper for the runner: a job error for a terminal event.
pub(super) fn job_error(kind: super::model::FailureKind, message: impl Into<String>) -> JobError {
    JobError {
        kind,
        message: message.into(),
    }
}
