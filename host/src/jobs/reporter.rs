//! The reporter a running job is given: it turns the plugin's progress, live segments
//! and log lines into events of the job's log, so a runner needs no access to the
//! tracker to be watched.

use std::sync::Arc;

use super::entry::JobEntry;
use super::events::EventKind;
use crate::runtime::{JobReporter, LogLevel};
use crate::transcript::Segment;

/// Progress events are recorded when the stage changes or the fraction moves by this
/// much; finer updates only change the snapshot. Keeps a chatty plugin's log small.
const PROGRESS_STEP: f32 = 0.01;

/// Reports a running plugin's output into its job's event log.
pub(super) struct EntryReporter {
    entry: Arc<JobEntry>,
}

impl EntryReporter {
    pub(super) fn new(entry: Arc<JobEntry>) -> Self {
        Self { entry }
    }
}

impl JobReporter for EntryReporter {
    fn progress(&self, fraction: f32, stage: &str) {
        let mut state = self.entry.lock();
        let moved = (fraction - state.snapshot.progress).abs() >= PROGRESS_STEP
            || fraction >= 1.0
            || state.snapshot.stage != stage;
        state.snapshot.progress = fraction;
        if moved {
            state.snapshot.stage = stage.to_owned();
            self.entry.push(
                &mut state,
                EventKind::Progress {
                    fraction,
                    stage: stage.to_owned(),
                },
            );
        }
    }

    fn segment(&self, segment: Segment) {
        let mut state = self.entry.lock();
        let index = state.live_segments;
        state.live_segments += 1;
        self.entry
            .push(&mut state, EventKind::Segment { index, segment });
    }

    fn log(&self, level: LogLevel, line: &str) {
        let level = level.as_str();
        let mut state = self.entry.lock();
        self.entry.push(
            &mut state,
            EventKind::Log {
                level: level.into(),
                message: line.to_owned(),
            },
        );
    }
}
