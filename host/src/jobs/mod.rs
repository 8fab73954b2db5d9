//! Jobs: the model and state machine, the tracker (event log + broadcast per job, the
//! scheduler's queue and slots), and the runner that executes one job.
//!
//! The tracker and the runner meet only at [`JobRunner`]: the tracker hands over a
//! [`RunningJob`] and applies the [`Ending`] that comes back, so each can be tested
//! without the other.

pub mod cluster;
mod ended;
mod entry;
mod errors;
mod events;
mod follow;
mod model;
mod quotas;
mod recovery;
mod reporter;
mod run;
mod runner;
mod scheduler;
mod second_stage;
mod settle;
mod tracker;
mod uploads;

#[cfg(test)]
mod tests;

pub use ended::JobEnded;
pub use entry::JobEntry;
pub use errors::{CancelError, SubmitError};
pub use events::{EventKind, JobEvent};
pub use follow::Subscription;
pub use model::{
    DiarizerChoice, DiarizerRequest, FailureKind, JobError, JobRequest, JobSnapshot, JobStatus,
    PluginRef,
};
pub use run::{Ending, JobRunner, RunningJob, SecondStage};
pub use runner::PluginRunner;
pub use tracker::{Tracker, TrackerOptions};
pub use uploads::kept_audio;
