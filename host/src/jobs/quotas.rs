//! Per-tenant quotas: how many jobs a tenant may have waiting or running, how many
//! minutes of audio it may submit per UTC day, and the fuel each of its jobs may burn.
//! A tenant the configuration does not name has no limits beyond the server's.

use std::collections::HashMap;
use std::sync::Mutex;

use time::OffsetDateTime;

use super::errors::SubmitError;
use crate::config::TenantLimits;

/// The tenants' limits, and the audio each has submitted today.
pub(super) struct Quotas {
    tenants: HashMap<String, TenantLimits>,
    /// Milliseconds of audio accepted per (tenant, UTC day number).
    audio_used: Mutex<HashMap<(String, i64), u64>>,
}

impl Quotas {
    pub(super) fn new(tenants: HashMap<String, TenantLimits>) -> Self {
        Self {
            tenants,
            audio_used: Mutex::default(),
        }
    }

    /// A tenant's quotas (none configured: no limits beyond the server's).
    pub(super) fn limits(&self, tenant: &str) -> TenantLimits {
        self.tenants.get(tenant).cloned().unwrap_or_default()
    }

    /// Refuses a submission over one of the tenant's quotas, given the jobs it has
    /// `queued` now; otherwise counts the submission's audio against today's minutes.
    pub(super) fn admit(
        &self,
        tenant: &str,
        queued: usize,
        duration_ms: u64,
    ) -> Result<(), SubmitError> {
        let limits = self.limits(tenant);
        if let Some(max) = limits.max_queued
            && queued >= max
        {
            return Err(queued_refusal(max));
        }
        if let Some(minutes) = limits.audio_minutes_per_day {
            let now = OffsetDateTime::now_utc();
            let day = now.unix_timestamp().div_euclid(86_400);
            let mut used = self.audio_used.lock().unwrap_or_else(|e| e.into_inner());
            let today = used.entry((tenant.to_owned(), day)).or_default();
            if *today + duration_ms > minutes.saturating_mul(60_000) {
                return Err(audio_refusal(minutes, *today, day));
            }
            *today += duration_ms;
        }
        Ok(())
    }
}

/// The refusal of a tenant with `max` jobs waiting already.
pub(super) fn queued_refusal(max: usize) -> SubmitError {
    SubmitError::QuotaExceeded {
        quota: "queued jobs",
        limit: format!("{max} waiting"),
        resets: "as soon as one of your queued jobs starts".into(),
    }
}

/// The refusal of a tenant that has used `used_ms` of its `minutes` on UTC day `day`.
pub(super) fn audio_refusal(minutes: u64, used_ms: u64, day: i64) -> SubmitError {
    let midnight = OffsetDateTime::from_unix_timestamp((day + 1) * 86_400)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "midnight UTC".into());
    SubmitError::QuotaExceeded {
        quota: "audio minutes per day",
        limit: format!("{minutes} minutes, {} used", used_ms / 60_000),
        resets: format!("at {midnight}"),
    }
}

/// The refusal of a tenant whose stored results fill its `limit` bytes.
pub(super) fn stored_refusal(limit: u64, used: u64) -> SubmitError {
    SubmitError::QuotaExceeded {
        quota: "stored results",
        limit: format!("{limit} bytes, {used} used"),
        resets: "when you delete results".into(),
    }
}
