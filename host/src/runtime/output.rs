//! Byte budgets for what a plugin writes: log lines, stdout/stderr and transcript text.
//!
//! A plugin that floods the host is not an error by itself: output past the budget is
//! dropped and the job's log says so once.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

use super::panic_report::PanicWatch;
use super::{JobReporter, LogLevel};

/// A running total against a cap.
#[derive(Debug)]
pub struct Budget {
    limit: u64,
    used: u64,
    exhausted: bool,
}

impl Budget {
    pub fn new(limit: u64) -> Self {
        Self {
            limit,
            used: 0,
            exhausted: false,
        }
    }

    /// Takes `bytes` from the budget. `Err(first)` when it does not fit; `first` is true
    /// the first time, so the caller can say so exactly once. Once exhausted, the budget
    /// refuses everything, so output is cut at one point rather than thinned out.
    pub fn take(&mut self, bytes: u64) -> Result<(), bool> {
        if self.exhausted || self.used.saturating_add(bytes) > self.limit {
            let first = !self.exhausted;
            self.exhausted = true;
            return Err(first);
        }
        self.used += bytes;
        Ok(())
    }

    pub fn used(&self) -> u64 {
        self.used
    }
}

/// The job's log budget, shared by `log` calls and captured stdout/stderr.
#[derive(Clone)]
pub struct LogSink {
    budget: Arc<Mutex<Budget>>,
    reporter: Arc<dyn JobReporter>,
    /// The last few lines, to explain a crash (a Rust panic message lands on stderr).
    recent: Arc<Mutex<std::collections::VecDeque<String>>>,
    /// The last panic the plugin reported, seen even past the budget.
    panic: Arc<Mutex<PanicWatch>>,
}

/// What the log says, once, when a job's log budget runs out.
pub const LOG_LIMIT_REACHED: &str =
    "log output exceeded the job's byte limit; further lines are dropped";

/// What the log says, once, when a job's live segments pass its output budget.
pub const OUTPUT_LIMIT_REACHED: &str =
    "live segments exceeded the job's output limit; further ones are not shown";

/// How many recent lines a crash report quotes.
const RECENT_LINES: usize = 2;

impl LogSink {
    pub fn new(limit: u64, reporter: Arc<dyn JobReporter>) -> Self {
        Self {
            budget: Arc::new(Mutex::new(Budget::new(limit))),
            reporter,
            recent: Arc::default(),
            panic: Arc::default(),
        }
    }

    /// Forwards one line if it fits the budget.
    pub fn line(&self, level: LogLevel, line: &str) {
        if !line.trim().is_empty()
            && let Ok(mut recent) = self.recent.lock()
        {
            if recent.len() == RECENT_LINES {
                recent.pop_front();
            }
            recent.push_back(crate::runtime::validate::truncate_chars(line, 300).to_owned());
        }
        if let Ok(mut panic) = self.panic.lock() {
            panic.observe(line);
        }
        let verdict = match self.budget.lock() {
            Ok(mut budget) => budget.take(line.len() as u64),
            Err(_) => Err(false),
        };
        match verdict {
            Ok(()) => self.reporter.log(level, line),
            Err(true) => self.reporter.log(LogLevel::Warn, LOG_LIMIT_REACHED),
            Err(false) => {}
        }
    }

    /// The last lines written, oldest first.
    pub fn last_lines(&self) -> Vec<String> {
        self.recent
            .lock()
            .map(|r| r.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The last panic the plugin reported (see [`PanicWatch`]).
    pub fn panic_report(&self) -> Option<String> {
        self.panic.lock().ok()?.report().map(str::to_owned)
    }

    pub fn used(&self) -> u64 {
        self.budget.lock().map_or(0, |b| b.used())
    }

    /// A stdout/stderr stream for WASI whose lines go to the log.
    pub fn stream(&self, level: LogLevel) -> CapturedOutput {
        CapturedOutput {
            sink: self.clone(),
            level,
            pending: Arc::new(Mutex::new(Vec::new())),
        }
    }
}

/// WASI stdout or stderr of a plugin: split into lines and sent to the job log.
#[derive(Clone)]
pub struct CapturedOutput {
    sink: LogSink,
    level: LogLevel,
    pending: Arc<Mutex<Vec<u8>>>,
}

/// The longest line kept whole; longer runs without a newline are cut into pieces.
const MAX_LINE: usize = 4096;

impl CapturedOutput {
    fn push(&self, bytes: &[u8]) {
        let Ok(mut pending) = self.pending.lock() else {
            return;
        };
        pending.extend_from_slice(bytes);
        while let Some(pos) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=pos).collect();
            self.sink
                .line(self.level, String::from_utf8_lossy(&line).trim_end());
        }
        while pending.len() > MAX_LINE {
            let line: Vec<u8> = pending.drain(..MAX_LINE).collect();
            self.sink.line(self.level, &String::from_utf8_lossy(&line));
        }
    }
}

impl IsTerminal for CapturedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CapturedOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CapturedOutput {
    async fn ready(&mut self) {}
}

impl OutputStream for CapturedOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

impl tokio::io::AsyncWrite for CapturedOutput {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.push(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_refuses_past_the_cap_and_reports_once() {
        let mut budget = Budget::new(10);
        assert_eq!(budget.take(6), Ok(()));
        assert_eq!(budget.take(6), Err(true));
        assert_eq!(budget.take(1), Err(false));
        assert_eq!(budget.used(), 6);
    }
}
