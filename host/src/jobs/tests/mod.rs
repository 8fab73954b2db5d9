//! The tracker on its own: a fake [`JobRunner`] reports each job it is given and ends
//! it only when the test says how, so queueing, cancelling, storing and following can
//! be checked step by step, with no plugin compiled or run.

mod endings;
mod following;
mod scheduling;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use tokio::sync::{mpsc, oneshot};

use super::{
    Ending, JobEvent, JobRequest, JobRunner, JobSnapshot, RunningJob, SubmitError, Tracker,
    TrackerOptions,
};
use crate::runtime::{LoadedPlugin, ResourceUse};
use crate::storage::{ResultStore, SqliteStore};
use crate::transcript::Transcript;

/// How long a test waits for something the tracker should do at once.
const PATIENCE: Duration = Duration::from_secs(5);

/// A job the fake runner was given, waiting for the test to end it. Dropping it
/// makes the run panic, as a runner with a bug would.
pub(super) struct Started {
    pub job: RunningJob,
    end: oneshot::Sender<Ending>,
}

impl Started {
    /// Lets the run end the way `ending` says.
    pub fn end(self, ending: Ending) {
        self.end
            .send(ending)
            .expect("the tracker is still waiting for the run");
    }
}

/// Hands every job to the test and returns whatever ending the test sends back.
struct FakeRunner {
    started: mpsc::UnboundedSender<Started>,
}

impl JobRunner for FakeRunner {
    fn run(&self, job: RunningJob) -> BoxFuture<'static, Ending> {
        let (end, ending) = oneshot::channel();
        self.started
            .send(Started { job, end })
            .expect("the test is listening");
        Box::pin(async move { ending.await.expect("the run crashed") })
    }
}

/// A tracker with a fake runner, uploads in a temporary folder, and one plugin.
pub(super) struct Harness {
    pub tracker: Arc<Tracker>,
    pub store: Arc<dyn ResultStore>,
    started: mpsc::UnboundedReceiver<Started>,
    plugin: Arc<LoadedPlugin>,
    pub dir: tempfile::TempDir,
    uploads: usize,
}

impl Harness {
    /// One running slot, room for 100 waiting jobs, a real in-memory store.
    pub fn new() -> Self {
        Self::with(|_| {})
    }

    /// Like [`Harness::new`], with the options changed by `tweak`.
    pub fn with(tweak: impl FnOnce(&mut TrackerOptions)) -> Self {
        let store = SqliteStore::open_in_memory().expect("in-memory store");
        Self::with_store(Arc::new(store), tweak)
    }

    /// Like [`Harness::with`], with results going to `store`.
    pub fn with_store(
        store: Arc<dyn ResultStore>,
        tweak: impl FnOnce(&mut TrackerOptions),
    ) -> Self {
        let dir = tempfile::tempdir().expect("temporary folder");
        let mut options = TrackerOptions {
            max_running: 1,
            max_queued: 100,
            keep_finished: 100,
            audio_dir: dir.path().join("audio"),
            metrics: crate::metrics::Metrics::new(),
            tenants: Default::default(),
            node: "test-node".into(),
            cluster: None,
            on_ended: None,
        };
        tweak(&mut options);
        let (sender, started) = mpsc::unbounded_channel();
        let ledger = Arc::new(SqliteStore::open_in_memory().expect("in-memory ledger"));
        let runner = Arc::new(FakeRunner { started: sender });
        Self {
            tracker: Tracker::new(runner, store.clone(), ledger, options),
            store,
            started,
            plugin: Arc::new(LoadedPlugin::metadata_only("fake")),
            dir,
            uploads: 0,
        }
    }

    /// Submits a job of `tenant` with an upload of its own on disk.
    pub fn submit(&mut self, tenant: &str) -> Result<JobSnapshot, SubmitError> {
        self.uploads += 1;
        let upload = self.dir.path().join(format!("upload-{}.wav", self.uploads));
        std::fs::write(&upload, b"not really audio").expect("write the upload");
        self.tracker.submit_here(JobRequest {
            tenant: tenant.to_owned(),
            plugin: self.plugin.clone(),
            config: serde_json::json!({}),
            file_name: format!("file-{}.wav", self.uploads),
            upload,
            duration_ms: 60_000,
            callback_url: None,
            diarizer: None,
        })
    }

    /// The next job the runner is given.
    pub async fn next_start(&mut self) -> Started {
        tokio::time::timeout(PATIENCE, self.started.recv())
            .await
            .expect("a job starts")
            .expect("the runner is alive")
    }

    /// Two jobs of `tenant` on one slot: the first's run, and the id of the one waiting.
    pub async fn one_running_one_waiting(&mut self, tenant: &str) -> (Started, uuid::Uuid) {
        self.submit(tenant).unwrap();
        let waiting = self.submit(tenant).unwrap().id;
        (self.next_start().await, waiting)
    }

    /// Whether the runner has been given no job since the last [`Harness::next_start`].
    pub fn nothing_started(&mut self) -> bool {
        self.started.try_recv().is_err()
    }

    /// Every event of the job, waiting until its terminal one.
    pub async fn all_events(&self, tenant: &str, id: uuid::Uuid) -> Vec<JobEvent> {
        self.events_after(tenant, id, 0).await
    }

    /// The job's events after `seq`, waiting until its terminal one.
    pub async fn events_after(&self, tenant: &str, id: uuid::Uuid, seq: u64) -> Vec<JobEvent> {
        let stream = self
            .tracker
            .follow_here(tenant, id, seq)
            .expect("the tracker holds the job");
        tokio::time::timeout(PATIENCE, stream.collect())
            .await
            .expect("the job ends")
    }
}

/// A run that produced `text`.
pub(super) fn completed(text: &str) -> Ending {
    Ending::Completed {
        transcript: Transcript {
            text: text.to_owned(),
            ..Default::default()
        },
        usage: ResourceUse::default(),
        diarization: None,
    }
}
