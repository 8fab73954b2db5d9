//! Jobs: the model and state machine, the tracker (event log + broadcast per job, the
//! scheduler's queue and slots), and the runner that executes one job.

mod events;
mod model;
mod runner;
mod scheduler;
mod tracker;

pub use events::{EventKind, JobEvent};
pub use model::{FailureKind, JobError, JobRequest, JobSnapshot, JobStatus, PluginRef};
pub use runner::kept_audio;
pub use tracker::{CancelError, JobEntry, SubmitError, Subscription, Tracker, TrackerOptions};
