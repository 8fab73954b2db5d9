//! `sandscribe:plugin/host`: progress, live segments, log lines and the cancellation hint.
//! The same for every WIT version; the bindings modules forward to these methods.

use super::LogLevel;
use super::store::JobContext;
use super::validate;
use crate::transcript::Segment;

impl JobContext {
    pub(crate) fn report_progress(&mut self, fraction: f32, stage: &str) {
        let fraction = if fraction.is_finite() {
            fraction.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let stage = validate::truncate_chars(stage, 200);
        self.reporter.progress(fraction, stage);
    }

    pub(crate) fn emit_live_segment(&mut self, segment: Segment) {
        let segment = match validate::live_segment(segment, self.audio_ms) {
            Ok(segment) => segment,
            Err(reason) => {
                self.log
                    .line(LogLevel::Warn, &format!("dropped a live segment: {reason}"));
                return;
            }
        };
        match self.output.take(segment.text.len() as u64) {
            Ok(()) => self.reporter.segment(segment),
            Err(true) => self
                .log
                .line(LogLevel::Warn, super::output::OUTPUT_LIMIT_REACHED),
            Err(false) => {}
        }
    }

    pub(crate) fn plugin_log(&mut self, level: LogLevel, message: &str) {
        for line in message.lines() {
            self.log.line(level, line);
        }
    }

    pub(crate) fn cancel_hint(&self) -> bool {
        self.cancel.is_cancelled() || std::time::Instant::now() >= self.deadline
    }
}
