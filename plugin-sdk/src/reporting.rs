//! Calls to the host while a job runs: progress, live segments, log lines, cancellation.

use crate::bindings::sandscribe::plugin::host;
use crate::{LogLevel, Segment};

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

/// Whether the job was cancelled; stop soon when it was (the host stops you anyway).
pub fn is_cancelled() -> bool {
    host::is_cancelled()
}

/// Writes a line to the job's log.
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
