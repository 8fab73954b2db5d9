//! The one error type of every call: the host glue maps `Invalid` to an
//! `invalid_compute_call` trap, `OverBudget` to the job's memory cap, `Stopped` to
//! the job's cancellation or deadline.

/// Why a compute call did not produce its result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ComputeError {
    /// A wrong call (shapes, sizes, ids, axes, precisions): the message says what and
    /// gives the shapes, so a plugin author can fix it from the job's failure alone.
    #[error("invalid compute call: {0}")]
    Invalid(String),
    /// The call would allocate more than `Ctx::allowance_bytes` (outputs plus scratch).
    #[error("compute call needs {needed} bytes, only {allowed} allowed")]
    OverBudget { needed: u64, allowed: u64 },
    /// `Ctx::stop` returned true between two blocks of work.
    #[error("compute call stopped")]
    Stopped,
}

/// `Err(ComputeError::Invalid(format!(...)))`.
macro_rules! invalid {
    ($($arg:tt)*) => {
        Err($crate::error::ComputeError::Invalid(format!($($arg)*)))
    };
}
pub(crate) use invalid;
