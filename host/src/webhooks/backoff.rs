//! When a failed delivery is tried again: a fixed schedule that spreads the tries over
//! about half a day (a receiver down for a deploy or a night still gets the event), each
//! wait shifted by up to ±20 % so the deliveries of many jobs that failed together do
//! not come back together. A receiver's `Retry-After` wins, within bounds.

use std::time::Duration;

/// Waits after the 1st, 2nd, ... failed try.
const SCHEDULE: [Duration; 7] = [
    Duration::from_secs(5),
    Duration::from_secs(30),
    Duration::from_secs(2 * 60),
    Duration::from_secs(10 * 60),
    Duration::from_secs(60 * 60),
    Duration::from_secs(3 * 60 * 60),
    Duration::from_secs(8 * 60 * 60),
];

/// The shortest and longest wait a receiver's `Retry-After` may ask for.
pub const RETRY_AFTER_BOUNDS: (Duration, Duration) =
    (Duration::from_secs(1), Duration::from_secs(8 * 60 * 60));

/// How retries are spaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backoff {
    /// The schedule above (the default).
    Schedule,
    /// `base × 2^(n-1)` after the n-th failed try (`[webhooks] retry_base_ms`, for tests).
    Exponential { base: Duration },
}

impl Backoff {
    /// The wait after the `failed`-th failed try (from 1), before jitter. Beyond the
    /// schedule's end the last wait repeats.
    pub fn base_delay(self, failed: u32) -> Duration {
        let step = failed.saturating_sub(1);
        match self {
            Self::Schedule => SCHEDULE[(step as usize).min(SCHEDULE.len() - 1)],
            Self::Exponential { base } => base.saturating_mul(1 << step.min(20)),
        }
    }

    /// The wait with jitter: `unit` in `[0, 1)` picks where in ±20 % it falls.
    pub fn delay(self, failed: u32, unit: f64) -> Duration {
        let base = self.base_delay(failed);
        base.mul_f64(0.8 + 0.4 * unit.clamp(0.0, 1.0))
    }

    /// The wait a `Retry-After` of `seconds` asks for, held within the bounds.
    pub fn retry_after(seconds: u64) -> Duration {
        Duration::from_secs(seconds).clamp(RETRY_AFTER_BOUNDS.0, RETRY_AFTER_BOUNDS.1)
    }
}

/// A number in `[0, 1)` for jitter (a v4 UUID's random bits: no other randomness needed).
pub fn jitter_unit() -> f64 {
    (uuid::Uuid::new_v4().as_u128() as u64 >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_spreads_eight_tries_over_about_half_a_day() {
        let waits: Vec<u64> = (1..=7)
            .map(|n| Backoff::Schedule.base_delay(n).as_secs())
            .collect();
        assert_eq!(waits, [5, 30, 120, 600, 3600, 10_800, 28_800]);
        assert_eq!(Backoff::Schedule.base_delay(20).as_secs(), 28_800);
        let total: u64 = waits.iter().sum();
        assert!((12 * 3600..24 * 3600).contains(&total), "{total}");
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        for unit in [0.0, 0.5, 0.999_999, 7.0, -1.0] {
            let wait = Backoff::Schedule.delay(2, unit).as_secs_f64();
            assert!((24.0..=36.0).contains(&wait), "{unit}: {wait}");
        }
        for _ in 0..100 {
            let unit = jitter_unit();
            assert!((0.0..1.0).contains(&unit), "{unit}");
        }
    }

    #[test]
    fn the_testing_base_doubles_per_try() {
        let backoff = Backoff::Exponential {
            base: Duration::from_millis(100),
        };
        assert_eq!(backoff.base_delay(1), Duration::from_millis(100));
        assert_eq!(backoff.base_delay(3), Duration::from_millis(400));
    }

    #[test]
    fn retry_after_is_held_within_bounds() {
        assert_eq!(Backoff::retry_after(0), Duration::from_secs(1));
        assert_eq!(Backoff::retry_after(120), Duration::from_secs(120));
        assert_eq!(Backoff::retry_after(u64::MAX), RETRY_AFTER_BOUNDS.1);
    }
}
