//! Plugin health: a plugin that keeps crashing is quarantined, with a backoff that
//! doubles each time, so one broken engine does not burn every slot of a shared server.
//! Reloading the plugin starts a fresh record.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::RunError;

/// Crashes in a row that put a plugin in quarantine.
pub const CRASHES_TO_QUARANTINE: u32 = 3;
/// The first quarantine; each further one doubles, up to `MAX_QUARANTINE`.
pub const FIRST_QUARANTINE: Duration = Duration::from_secs(30);
pub const MAX_QUARANTINE: Duration = Duration::from_secs(30 * 60);

#[derive(Debug, Default)]
struct State {
    crashes_in_a_row: u32,
    quarantines: u32,
    until: Option<Instant>,
    last_crash: Option<String>,
}

/// The crash record of one loaded plugin version.
#[derive(Debug, Default)]
pub struct PluginHealth {
    state: Mutex<State>,
}

/// Why and how long a plugin is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Quarantine {
    /// Seconds until new jobs are accepted again.
    pub retry_after_seconds: u64,
    pub crashes_in_a_row: u32,
    /// The last crash's reason.
    pub reason: String,
}

impl PluginHealth {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records how a job on this plugin ended. Only crashes count (a trap, running out
    /// of memory or stack, invalid output); a refused config, a cancel, a time-out or
    /// spent fuel say nothing about the plugin's health, and a success resets the count.
    pub fn record(&self, outcome: Result<(), &RunError>) {
        let mut state = self.lock();
        match outcome {
            Ok(()) => state.crashes_in_a_row = 0,
            Err(
                error @ (RunError::Trap(_)
                | RunError::OutOfMemory { .. }
                | RunError::StackOverflow
                | RunError::InvalidOutput(_)),
            ) => {
                state.crashes_in_a_row += 1;
                state.last_crash = Some(error.to_string());
                if state.crashes_in_a_row >= CRASHES_TO_QUARANTINE {
                    let factor = 1u32 << state.quarantines.min(10);
                    let length = FIRST_QUARANTINE.saturating_mul(factor).min(MAX_QUARANTINE);
                    state.until = Some(Instant::now() + length);
                    state.quarantines += 1;
                    state.crashes_in_a_row = 0;
                    tracing::warn!(quarantine_s = length.as_secs(), reason = %error, "plugin quarantined");
                }
            }
            Err(_) => {}
        }
    }

    /// The quarantine in force, if any.
    pub fn quarantine(&self) -> Option<Quarantine> {
        let state = self.lock();
        let until = state.until?;
        let left = until.checked_duration_since(Instant::now())?;
        Some(Quarantine {
            retry_after_seconds: left.as_secs().max(1),
            crashes_in_a_row: CRASHES_TO_QUARANTINE,
            reason: state.last_crash.clone().unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_crashes_in_a_row_quarantine_and_successes_reset() {
        let health = PluginHealth::default();
        let crash = RunError::Trap("boom".into());
        health.record(Err(&crash));
        health.record(Err(&crash));
        health.record(Ok(()));
        health.record(Err(&crash));
        health.record(Err(&crash));
        assert!(health.quarantine().is_none());
        health.record(Err(&crash));
        let q = health.quarantine().expect("quarantined");
        assert!(q.reason.contains("boom"));
        assert!((29..=30).contains(&q.retry_after_seconds));
    }

    #[test]
    fn refused_configs_timeouts_and_spent_fuel_do_not_count() {
        let health = PluginHealth::default();
        for _ in 0..5 {
            health.record(Err(&RunError::TimedOut { seconds: 1 }));
            health.record(Err(&RunError::Cancelled));
            // A budget one tenant chose is no sign the plugin is broken for everyone.
            health.record(Err(&RunError::FuelExhausted { fuel: 1 }));
        }
        assert!(health.quarantine().is_none());
    }
}
