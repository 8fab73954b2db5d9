//! Recognising a plugin's panic in its log, so the failure of the trap that follows says
//! where it happened (`panicked at src/lib.rs:110:22: index out of bounds`).
//!
//! Two shapes are recognised: the SDK's panic hook logs one line, `panicked at
//! FILE:LINE:COL: message`, as an error; Rust's default hook (a plugin built without the
//! SDK, or with an older one) writes `thread '…' panicked at FILE:LINE:COL:` to stderr
//! (newer Rust puts the thread's number after its name: `thread '<unnamed>' (1) panicked
//! at …`) and the message on the lines after it.

use super::validate::truncate_chars;

/// The longest panic report kept, in characters.
const MAX_REPORT_CHARS: usize = 500;

/// Watches a job's log lines for a panic report; the last one wins.
#[derive(Debug, Default)]
pub struct PanicWatch {
    report: Option<String>,
    /// The location of a default-hook panic whose message is on the next line.
    awaiting_message: Option<String>,
}

impl PanicWatch {
    /// Looks at one log line (stdout, stderr or a `log` call).
    pub fn observe(&mut self, line: &str) {
        let line = line.trim();
        if line.is_empty() {
            return;
        }
        if let Some(location) = self.awaiting_message.take() {
            self.keep(format!("panicked at {location}: {line}"));
            return;
        }
        if line.starts_with("panicked at ") {
            self.keep(line.to_owned());
        } else if line.starts_with("thread '")
            && let Some((_, location)) = line.split_once(" panicked at ")
        {
            let location = location.trim_end_matches(':').to_owned();
            self.keep(format!("panicked at {location}"));
            self.awaiting_message = Some(location);
        }
    }

    /// The last panic seen, as one line.
    pub fn report(&self) -> Option<&str> {
        self.report.as_deref()
    }

    fn keep(&mut self, report: String) {
        self.report = Some(truncate_chars(&report, MAX_REPORT_CHARS).to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watch(lines: &[&str]) -> Option<String> {
        let mut watch = PanicWatch::default();
        for line in lines {
            watch.observe(line);
        }
        watch.report().map(str::to_owned)
    }

    #[test]
    fn the_sdk_hooks_line_is_the_report() {
        assert_eq!(
            watch(&[
                "decoding",
                "panicked at src/lib.rs:110:22: index out of bounds"
            ])
            .as_deref(),
            Some("panicked at src/lib.rs:110:22: index out of bounds")
        );
    }

    #[test]
    fn the_default_hooks_location_and_next_line_make_the_report() {
        assert_eq!(
            watch(&[
                "",
                "thread '<unnamed>' panicked at src/lib.rs:52:9:",
                "the fixture panics on purpose",
                "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace",
            ])
            .as_deref(),
            Some("panicked at src/lib.rs:52:9: the fixture panics on purpose")
        );
    }

    #[test]
    fn the_default_hooks_thread_number_is_skipped() {
        assert_eq!(
            watch(&[
                "thread '<unnamed>' (1) panicked at tests/fixtures/trap/src/lib.rs:50:9:",
                "the trap fixture panics on purpose",
            ])
            .as_deref(),
            Some(
                "panicked at tests/fixtures/trap/src/lib.rs:50:9: the trap fixture panics on purpose"
            )
        );
    }

    #[test]
    fn a_default_hook_location_without_a_message_is_still_reported() {
        assert_eq!(
            watch(&["thread 'main' panicked at src/main.rs:1:1:"]).as_deref(),
            Some("panicked at src/main.rs:1:1")
        );
    }

    #[test]
    fn ordinary_lines_are_no_panic() {
        assert_eq!(watch(&["loaded model", "the thread panicked? no"]), None);
    }
}
