//! One tracked job: its state machine, its append-only event log and the broadcast
//! that carries new events to subscribers.
//!
//! Events are appended and broadcast under the job's lock, and subscribers take the
//! backlog and their broadcast receiver under the same lock, so a subscriber sees every
//! event exactly once, in order, whenever it joins.

use std::num::NonZeroU64;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::{broadcast, watch};
use uuid::Uuid;

use super::cluster::Outbox;
use super::events::{EventKind, JobEvent};
use super::follow::Subscription;
use super::model::{JobError, JobSnapshot, JobStatus};
use super::reporter::EntryReporter;
use super::run::{RunningJob, SecondStage};
use crate::runtime::{CancelFlag, LoadedPlugin};

/// Events kept per job beyond which live-only events (progress, log, segment) are
/// dropped; the state and the final result are never dropped, so a chatty plugin can
/// neither exhaust memory nor lose its job's ending.
pub(super) const MAX_EVENTS_PER_JOB: usize = 20_000;

/// Capacity of each job's broadcast channel; a subscriber that lags re-reads the log.
const BROADCAST_CAPACITY: usize = 1024;

/// Mutable state of one job.
pub(super) struct JobState {
    pub snapshot: JobSnapshot,
    pub events: Vec<JobEvent>,
    /// Live segments reported so far (the next segment event's index).
    pub live_segments: usize,
}

/// One tracked job.
pub struct JobEntry {
    pub id: Uuid,
    pub tenant: String,
    pub(super) plugin: Arc<LoadedPlugin>,
    /// The diarizer of the job's second stage, when it names one and it is loaded here.
    pub(super) diarizer: Option<Arc<LoadedPlugin>>,
    pub(super) upload: PathBuf,
    pub(super) cancel: CancelFlag,
    state: Mutex<JobState>,
    sender: broadcast::Sender<JobEvent>,
    /// Becomes true once the job is finished *and* its running slot is free, so whoever
    /// waits for a cancellation can count on the queue having moved on.
    settled: watch::Sender<bool>,
    /// With several nodes: events already in the shared log before this node took the
    /// job (its first event here is numbered after them) ...
    seq_base: u64,
    /// ... and where this node's events go on to the shared log (all but the terminal
    /// one, which the job's completion writes in its own transaction).
    outbox: Option<Outbox>,
}

impl JobEntry {
    /// A job just queued: its log opens with the `queued` status.
    pub(super) fn new(
        snapshot: JobSnapshot,
        tenant: String,
        plugin: Arc<LoadedPlugin>,
        upload: PathBuf,
    ) -> Self {
        let entry = Self::with_log(snapshot, tenant, plugin, upload, 0, None);
        {
            let mut state = entry.lock();
            let queue_position = state.snapshot.queue_position;
            let status = JobStatus::Queued;
            entry.push(
                &mut state,
                EventKind::Status {
                    status,
                    queue_position,
                },
            );
        }
        entry
    }

    /// A job this node claimed from the shared queue: already running, its log so far
    /// (`seq_base` events) in the database, its further events sent on through `outbox`.
    pub(super) fn claimed(
        snapshot: JobSnapshot,
        tenant: String,
        plugin: Arc<LoadedPlugin>,
        upload: PathBuf,
        seq_base: u64,
        outbox: Outbox,
    ) -> Self {
        Self::with_log(snapshot, tenant, plugin, upload, seq_base, Some(outbox))
    }

    fn with_log(
        snapshot: JobSnapshot,
        tenant: String,
        plugin: Arc<LoadedPlugin>,
        upload: PathBuf,
        seq_base: u64,
        outbox: Option<Outbox>,
    ) -> Self {
        let (sender, _) = broadcast::channel(BROADCAST_CAPACITY);
        Self {
            id: snapshot.id,
            tenant,
            plugin,
            diarizer: None,
            upload,
            cancel: CancelFlag::new(),
            state: Mutex::new(JobState {
                snapshot,
                events: Vec::new(),
                live_segments: 0,
            }),
            sender,
            settled: watch::Sender::new(false),
            seq_base,
            outbox,
        }
    }

    /// The same job with the diarizer its snapshot names (loaded on this node).
    pub(super) fn with_diarizer(mut self, diarizer: Option<Arc<LoadedPlugin>>) -> Self {
        self.diarizer = diarizer;
        self
    }

    /// The number of the job's latest event.
    pub(super) fn last_seq(&self) -> u64 {
        let state = self.lock();
        state.events.last().map_or(self.seq_base, |e| e.seq)
    }

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
            seq: self.seq_base + state.events.len() as u64 + 1,
            kind,
        };
        if let Some(outbox) = &self.outbox
            && !event.kind.is_terminal()
        {
            outbox.push(self.id, event.seq, &event.kind);
        }
        state.events.push(event.clone());
        // No receivers is fine: nobody is watching right now.
        let _ = self.sender.send(event);
    }

    /// Tells a queued job its (new) place in the queue, if it changed.
    pub(super) fn set_queue_position(&self, position: usize) {
        let mut state = self.lock();
        let queue_position = Some(position);
        if state.snapshot.queue_position != queue_position {
            state.snapshot.queue_position = queue_position;
            let status = JobStatus::Queued;
            self.push(
                &mut state,
                EventKind::Status {
                    status,
                    queue_position,
                },
            );
        }
    }

    /// The scheduler started the job on `node`.
    pub(super) fn mark_running(&self, node: &str) {
        let mut state = self.lock();
        state.snapshot.node = Some(node.to_owned());
        state.snapshot.status = JobStatus::Running;
        state.snapshot.queue_position = None;
        state.snapshot.stage = "starting".into();
        state.snapshot.started_at = Some(OffsetDateTime::now_utc());
        let status = JobStatus::Running;
        let queue_position = None;
        self.push(
            &mut state,
            EventKind::Status {
                status,
                queue_position,
            },
        );
    }

    /// Ends the job in `status` with the terminal event `kind`; false (and nothing
    /// changed) if it had already ended, as a job interrupted by shutdown has.
    pub(super) fn record_ending(&self, status: JobStatus, kind: EventKind) -> bool {
        let mut state = self.lock();
        if state.snapshot.status.is_finished() {
            return false;
        }
        let snapshot = &mut state.snapshot;
        snapshot.status = status;
        snapshot.queue_position = None;
        snapshot.finished_at = Some(OffsetDateTime::now_utc());
        match &kind {
            EventKind::Done { result, usage } => {
                snapshot.result = Some(result.clone());
                snapshot.usage = Some(usage.clone());
                snapshot.progress = 1.0;
                snapshot.stage = "done".into();
            }
            EventKind::Failed { error, usage } | EventKind::TimedOut { error, usage } => {
                snapshot.error = Some(error.clone());
                snapshot.usage = Some(usage.clone());
                snapshot.stage = status.as_str().into();
            }
            _ => snapshot.stage = status.as_str().into(),
        }
        self.push(&mut state, kind);
        true
    }

    /// Ends the job as interrupted by shutdown, with a `failed` event carrying `error`,
    /// while its runner (if any) may still be stopping; false if it had already ended.
    pub(super) fn record_interrupted(&self, error: JobError) -> bool {
        let mut state = self.lock();
        if state.snapshot.status.is_finished() {
            return false;
        }
        state.snapshot.status = JobStatus::Interrupted;
        state.snapshot.queue_position = None;
        state.snapshot.stage = "interrupted".into();
        state.snapshot.finished_at = Some(OffsetDateTime::now_utc());
        state.snapshot.error = Some(error.clone());
        let usage = Default::default();
        self.push(&mut state, EventKind::Failed { error, usage });
        true
    }

    /// What the runner is given when the job starts: its inputs, its cancel flag, and a
    /// reporter into this entry's log. `fuel` is the tenant's budget per job.
    pub(super) fn running_job(self: &Arc<Self>, fuel: Option<NonZeroU64>) -> RunningJob {
        let (config_json, second) = {
            let state = self.lock();
            let second = state.snapshot.diarizer.as_ref().map(|d| SecondStage {
                id: d.plugin.id.clone(),
                plugin: self.diarizer.clone(),
                speakers: d.speakers,
                config_json: d.config.to_string(),
            });
            (state.snapshot.config.to_string(), second)
        };
        RunningJob {
            id: self.id,
            tenant: self.tenant.clone(),
            plugin: self.plugin.clone(),
            upload: self.upload.clone(),
            config_json,
            diarizer: second,
            cancel: self.cancel.clone(),
            reporter: Arc::new(EntryReporter::new(self.clone())),
            fuel,
        }
    }

    pub fn snapshot(&self) -> JobSnapshot {
        self.lock().snapshot.clone()
    }

    /// The events after `after_seq`, and a receiver for the ones still to come, taken
    /// under one lock so that none falls between the two.
    pub(super) fn subscribe(&self, after_seq: u64) -> Subscription {
        let state = self.lock();
        Subscription {
            backlog: events_after(&state.events, after_seq),
            live: self.sender.subscribe(),
            finished: state.snapshot.status.is_finished(),
        }
    }

    /// The events after `after_seq` (for a subscriber that lagged behind the broadcast).
    pub(super) fn events_since(&self, after_seq: u64) -> Vec<JobEvent> {
        events_after(&self.lock().events, after_seq)
    }

    /// Marks the job finished with its slot free (see `settled`).
    pub(super) fn mark_settled(&self) {
        self.settled.send_replace(true);
    }

    /// Waits until the job is settled, or `timeout` passes (should a plugin not stop);
    /// false if it did not settle in time.
    pub(super) async fn wait_settled(&self, timeout: Duration) -> bool {
        let mut settled = self.settled.subscribe();
        matches!(
            tokio::time::timeout(timeout, settled.wait_for(|s| *s)).await,
            Ok(Ok(_))
        )
    }
}

fn events_after(events: &[JobEvent], after_seq: u64) -> Vec<JobEvent> {
    let start = usize::try_from(after_seq)
        .unwrap_or(usize::MAX)
        .min(events.len());
    events[start..].to_vec()
}
