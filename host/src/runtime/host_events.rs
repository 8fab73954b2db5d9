//! `sandscribe:plugin/host`: progress, live segments, log lines and the cancellation hint.

use super::bindings::sandscribe::plugin::host::{Host, LogLevel};
use super::bindings::sandscribe::plugin::types::{Host as TypesHost, Segment};
use super::store::JobContext;
use super::validate;

impl TypesHost for JobContext {}

impl Host for JobContext {
    fn progress(&mut self, fraction: f32, stage: String) {
        let fraction = if fraction.is_finite() {
            fraction.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let stage = validate::truncate_chars(&stage, 200);
        self.reporter.progress(fraction, stage);
    }

    fn emit_segment(&mut self, segment: Segment) {
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
            Err(true) => self.log.line(
                LogLevel::Warn,
                "live segments exceeded the job's output limit; further ones are not shown",
            ),
            Err(false) => {}
        }
    }

    fn log(&mut self, level: LogLevel, message: String) {
        for line in message.lines() {
            self.log.line(level, line);
        }
    }

    fn is_cancelled(&mut self) -> bool {
        self.cancel.is_cancelled() || std::time::Instant::now() >= self.deadline
    }
}
