//! Applying endings: results stored before `done`, failures typed, uploads kept or
//! removed, and a runner that crashes still ending its job.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc as sync_mpsc};
use std::time::Duration;

use tokio::sync::mpsc;
use uuid::Uuid;

use super::{Harness, PATIENCE, completed};
use crate::jobs::{Ending, EventKind, FailureKind, JobError, JobStatus, kept_audio};
use crate::runtime::ResourceUse;
use crate::storage::{
    ResultPage, ResultQuery, ResultStore, SqliteStore, StorageError, StoredResult,
};

/// A real store that counts inserts and can hold each one until the test lets it go,
/// or refuse every one.
struct WatchedStore {
    inner: SqliteStore,
    inserts: AtomicUsize,
    /// Told when an insert begins; the insert then waits for `release`.
    entered: Option<(mpsc::UnboundedSender<()>, Mutex<sync_mpsc::Receiver<()>>)>,
    refuse: bool,
}

impl WatchedStore {
    fn new(refuse: bool) -> Self {
        Self {
            inner: SqliteStore::open_in_memory().expect("in-memory store"),
            inserts: AtomicUsize::new(0),
            entered: None,
            refuse,
        }
    }
}

impl ResultStore for WatchedStore {
    fn insert(&self, result: &StoredResult) -> Result<(), StorageError> {
        self.inserts.fetch_add(1, Ordering::SeqCst);
        if let Some((entered, release)) = &self.entered {
            entered.send(()).expect("the test is listening");
            let _ = release.lock().unwrap().recv();
        }
        if self.refuse {
            return Err(StorageError::Invalid("the disk is full".into()));
        }
        self.inner.insert(result)
    }

    fn get(&self, tenant: &str, id: Uuid) -> Result<Option<StoredResult>, StorageError> {
        self.inner.get(tenant, id)
    }

    fn list(&self, query: &ResultQuery) -> Result<ResultPage, StorageError> {
        self.inner.list(query)
    }

    fn set_speaker_names(
        &self,
        tenant: &str,
        id: Uuid,
        names: &std::collections::BTreeMap<String, String>,
    ) -> Result<bool, StorageError> {
        self.inner.set_speaker_names(tenant, id, names)
    }

    fn delete(&self, tenant: &str, id: Uuid) -> Result<bool, StorageError> {
        self.inner.delete(tenant, id)
    }

    fn stored_bytes(&self, tenant: &str) -> Result<u64, StorageError> {
        self.inner.stored_bytes(tenant)
    }
}

#[tokio::test]
async fn a_completed_job_is_stored_once_before_done_is_visible() {
    let (entered_tx, mut entered) = mpsc::unbounded_channel();
    let (release, release_rx) = sync_mpsc::channel();
    let store = Arc::new(WatchedStore {
        entered: Some((entered_tx, Mutex::new(release_rx))),
        ..WatchedStore::new(false)
    });
    let mut h = Harness::with_store(store.clone(), |_| {});
    let id = h.submit("a").unwrap().id;
    h.next_start().await.end(completed("hello"));

    tokio::time::timeout(PATIENCE, entered.recv())
        .await
        .expect("the result is being stored");
    let snapshot = h.tracker.get("a", id).unwrap();
    assert_eq!(
        snapshot.status,
        JobStatus::Running,
        "not done while storing"
    );
    let events = h.tracker.events_since("a", id, 0);
    assert!(events.iter().all(|e| !e.kind.is_terminal()));

    release.send(()).unwrap();
    let events = h.all_events("a", id).await;
    let EventKind::Done { result, .. } = &events.last().unwrap().kind else {
        panic!("the job ends done: {events:?}");
    };
    assert_eq!(result.transcript.text, "hello");
    assert_eq!(store.inserts.load(Ordering::SeqCst), 1);
    let stored = h.store.get("a", id).unwrap().expect("stored");
    assert_eq!(stored.transcript.text, "hello");
    assert_eq!(h.tracker.get("a", id).unwrap().status, JobStatus::Completed);
    assert!(
        kept_audio(&h.dir.path().join("audio"), id).is_some(),
        "the audio is kept for playback"
    );
}

#[tokio::test]
async fn a_result_that_cannot_be_stored_fails_the_job_as_a_server_fault() {
    let mut h = Harness::with_store(Arc::new(WatchedStore::new(true)), |_| {});
    let id = h.submit("a").unwrap().id;
    h.next_start().await.end(completed("lost"));

    let events = h.all_events("a", id).await;
    let EventKind::Failed { error, .. } = &events.last().unwrap().kind else {
        panic!("the job fails: {events:?}");
    };
    assert_eq!(error.kind, FailureKind::Server);
    assert!(
        error.message.contains("the disk is full"),
        "{}",
        error.message
    );
    let snapshot = h.tracker.get("a", id).unwrap();
    assert_eq!(snapshot.status, JobStatus::Failed);
    assert!(snapshot.result.is_none());
}

#[tokio::test]
async fn runs_that_fail_end_typed_and_lose_their_uploads() {
    let error = |kind| JobError::new(kind, "it went wrong");
    let usage = ResourceUse::default;
    let endings = [
        (
            Ending::Failed {
                error: error(FailureKind::PluginTrap),
                usage: usage(),
            },
            JobStatus::Failed,
            Some(FailureKind::PluginTrap),
        ),
        (
            Ending::TimedOut {
                error: error(FailureKind::TimedOut),
                usage: usage(),
            },
            JobStatus::TimedOut,
            Some(FailureKind::TimedOut),
        ),
        (
            Ending::AudioFailed {
                message: "not audio".into(),
            },
            JobStatus::Failed,
            Some(FailureKind::Audio),
        ),
        (
            Ending::Cancelled {
                message: "cancelled while running".into(),
            },
            JobStatus::Cancelled,
            None,
        ),
    ];
    let mut h = Harness::new();
    for (ending, status, kind) in endings {
        let id = h.submit("a").unwrap().id;
        let run = h.next_start().await;
        let upload = run.job.upload.clone();
        run.end(ending);
        let events = h.all_events("a", id).await;
        assert!(events.last().unwrap().kind.is_terminal());
        let snapshot = h.tracker.get("a", id).unwrap();
        assert_eq!(snapshot.status, status);
        assert_eq!(snapshot.error.map(|e| e.kind), kind);
        assert!(!upload.exists(), "{status:?}: the upload is removed");
    }
}

#[tokio::test]
async fn a_job_interrupted_by_shutdown_keeps_its_upload_when_its_run_ends() {
    let mut h = Harness::new();
    let (run, queued) = h.one_running_one_waiting("a").await;
    let (running, upload) = (run.job.id, run.job.upload.clone());
    let queued_upload = h.tracker.entry("a", queued).unwrap().upload.clone();

    h.tracker.shutdown(Duration::ZERO).await;
    assert!(
        run.job.cancel.is_cancelled(),
        "shutdown stops the running job"
    );
    run.end(Ending::Cancelled {
        message: "cancelled while running".into(),
    });
    for id in [running, queued] {
        let events = h.all_events("a", id).await;
        let EventKind::Failed { error, .. } = &events.last().unwrap().kind else {
            panic!("an interrupted job ends failed: {events:?}");
        };
        assert_eq!(error.kind, FailureKind::Interrupted);
        assert_eq!(
            h.tracker.get("a", id).unwrap().status,
            JobStatus::Interrupted
        );
    }
    let entry = h.tracker.entry("a", running).unwrap();
    assert!(
        entry.wait_settled(PATIENCE).await,
        "the run's ending frees the slot"
    );
    assert!(upload.exists(), "kept for a resubmit");
    assert!(queued_upload.exists(), "kept for a resubmit");
    assert!(h.nothing_started(), "the interrupted queued job never runs");
    let after = h.submit("a").unwrap().id;
    assert_eq!(h.next_start().await.job.id, after, "the slot was freed");
}

#[tokio::test]
async fn a_runner_that_crashes_still_ends_its_job_and_frees_its_slot() {
    let mut h = Harness::new();
    let crashed = h.submit("a").unwrap().id;
    let next = h.submit("a").unwrap().id;
    drop(h.next_start().await);

    let events = h.all_events("a", crashed).await;
    let EventKind::Failed { error, .. } = &events.last().unwrap().kind else {
        panic!("the job fails: {events:?}");
    };
    assert_eq!(error.kind, FailureKind::Server);
    assert_eq!(h.next_start().await.job.id, next);
}
