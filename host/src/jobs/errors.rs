//! Why the tracker refused a request, in words the caller can act on.

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
    /// The shared database cannot be reached: nothing was queued.
    #[error("the database is unavailable: {0}")]
    DatabaseUnavailable(String),
    #[error("the job could not be recorded: {0}")]
    Database(String),
}

/// Why a cancel did not happen.
#[derive(Debug, thiserror::Error)]
pub enum CancelError {
    #[error("no such job")]
    NotFound,
    #[error("the job already finished ({0})")]
    AlreadyFinished(&'static str),
    /// The shared database cannot be reached, so the cancel could not be passed on.
    #[error("the database is unavailable: {0}")]
    DatabaseUnavailable(String),
}
