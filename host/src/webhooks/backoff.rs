//! When a failed delivery is tried again: exponential backoff with jitter. The n-th
//! failed try waits `base × 4^(n-1)`, each wait shifted by up to ±20 % so the
//! deliveries of many jobs that failed together do not come back together. With the
//! default base of 15 s the eight tries of a delivery spread over about a day (15 s,
//! 1 min, 4 min, 16 min, 64 min, 4 h 16 min, 17 h 4 min: 22 h 45 min in all), so a
//! receiver down for a deploy or a night still gets the event. A receiver's
//! `Retry-After` wins, within bounds.

use std::time::Duration;

/// How much longer each wait is than the one before.
pub const FACTOR: u32 = 4;

/// The longest single wait, whatever the base and the number of tries.
pub const MAX_WAIT: Duration = Duration::from_secs(24 * 60 * 60);

/// The shortest and longest wait a receiver's `Retry-After` may ask for.
pub const RETRY_AFTER_BOUNDS: (Duration, Duration) =
    (Duration::from_secs(1), Duration::from_secs(8 * 60 * 60));

/// How retries are spaced: `base × 4^(n-1)` after the n-th failed try
/// (`[webhooks] retry_base_seconds`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
}

impl Backoff {
    /// The default spacing: a 15 s base.
    pub const DEFAULT_BASE: Duration = Duration::from_secs(15);

    /// The wait after the `failed`-th failed try (from 1), before jitter; at most
    /// [`MAX_WAIT`].
    pub fn base_delay(self, failed: u32) -> Duration {
        let step = failed.saturating_sub(1).min(30);
        self.base
            .saturating_mul(FACTOR.saturating_pow(step))
            .min(MAX_WAIT)
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

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Self::DEFAULT_BASE,
        }
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
    fn the_default_spreads_eight_tries_over_about_a_day() {
        let waits: Vec<u64> = (1..=7)
            .map(|n| Backoff::default().base_delay(n).as_secs())
            .collect();
        assert_eq!(waits, [15, 60, 240, 960, 3840, 15_360, 61_440]);
        let total: u64 = waits.iter().sum();
        assert!((20 * 3600..26 * 3600).contains(&total), "{total}");
        assert_eq!(Backoff::default().base_delay(40), MAX_WAIT);
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        for unit in [0.0, 0.5, 0.999_999, 7.0, -1.0] {
            let wait = Backoff::default().delay(2, unit).as_secs_f64();
            assert!((48.0..=72.0).contains(&wait), "{unit}: {wait}");
        }
        for _ in 0..100 {
            let unit = jitter_unit();
            assert!((0.0..1.0).contains(&unit), "{unit}");
        }
    }

    #[test]
    fn a_short_base_scales_every_wait() {
        let backoff = Backoff {
            base: Duration::from_millis(100),
        };
        assert_eq!(backoff.base_delay(1), Duration::from_millis(100));
        assert_eq!(backoff.base_delay(3), Duration::from_millis(1600));
    }

    #[test]
    fn retry_after_is_held_within_bounds() {
        assert_eq!(Backoff::retry_after(0), Duration::from_secs(1));
        assert_eq!(Backoff::retry_after(120), Duration::from_secs(120));
        assert_eq!(Backoff::retry_after(u64::MAX), RETRY_AFTER_BOUNDS.1);
    }
}
