//! Calls to the host while a job runs: progress, live segments, log lines, cancellation.
//!
//! **Where output goes.** [`log`] lines, and whatever the plugin prints to stdout (as
//! `info` lines) or stderr (as `warn` lines), go to the job's log, shown live and kept
//! with the job. All three share the job's log budget (`[limits] log_bytes`, 1 MiB by
//! default); past it lines are dropped and the log says so once. Live segments count
//! toward the job's output budget (`output_bytes`, 8 MiB by default) the same way.
//!
//! **When the host stops a plugin.** Cancellation and the job's time limit are enforced
//! by the host, not by the plugin: within a few milliseconds of either, the instance is
//! stopped where it runs (no destructor, no cleanup code, no return value), its memory is
//! thrown away and the job ends `cancelled` or `timed_out`. [`is_cancelled`] (and
//! [`check_cancelled`]) only let a plugin stop sooner and cleaner, at a point of its
//! choosing; they turn true for a cancel and when the time limit has passed.

// In WebAssembly the calls go to the host; natively (a plugin's unit tests) to the mock
// host of the current thread, which records them.
#[cfg(target_family = "wasm")]
use crate::bindings::sandscribe::plugin::host;
#[cfg(not(target_family = "wasm"))]
use crate::mock::host;
use crate::{LogLevel, PluginError, Segment};

/// Reports progress (`fraction` is clamped to 0..=1) with a short stage text.
pub fn progress(fraction: f32, stage: &str) {
    let fraction = if fraction.is_nan() {
        0.0
    } else {
        fraction.clamp(0.0, 1.0)
    };
    host::progress(fraction, stage);
}

/// Emits a finished segment so people see it while the job still runs.
pub fn emit_segment(segment: &Segment) {
    host::emit_segment(segment);
}

/// Whether the job was cancelled (or ran past its time limit); stop soon when it was
/// (the host stops you anyway).
pub fn is_cancelled() -> bool {
    host::is_cancelled()
}

/// `Err(PluginError::Cancelled)` once the job was cancelled (or ran past its time limit),
/// for `?` between units of work:
///
/// ```ignore
/// for chunk in audio.chunks(16_000) {
///     check_cancelled()?;
///     // ... work on the chunk
/// }
/// ```
pub fn check_cancelled() -> Result<(), PluginError> {
    if is_cancelled() {
        Err(PluginError::Cancelled)
    } else {
        Ok(())
    }
}

/// Writes a line to the job's log (each line of `message` is one log line).
pub fn log(level: LogLevel, message: &str) {
    host::log(level, message);
}

pub fn debug(message: &str) {
    log(LogLevel::Debug, message);
}

pub fn info(message: &str) {
    log(LogLevel::Info, message);
}

pub fn warn(message: &str) {
    log(LogLevel::Warn, message);
}

pub fn error(message: &str) {
    log(LogLevel::Error, message);
}
