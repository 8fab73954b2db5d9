//! How a result's fields are written to and read from a database column, the same for
//! every backend: JSON text for the configuration and segments (written as given, so key
//! order survives), RFC 3339 text for times (exact, offset kept) plus unix milliseconds
//! for sorting.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use super::{StorageError, StoredResult};

/// A result's columns, encoded for an insert.
pub(super) struct EncodedResult {
    pub config: String,
    pub segments: String,
    /// The diarization record as JSON, `None` when the job named no diarizer.
    pub diarization: Option<String>,
    pub duration_ms: i64,
    pub created_at: String,
    pub created_at_ms: i64,
    pub started_at: String,
    pub finished_at: String,
}

impl EncodedResult {
    pub fn of(result: &StoredResult) -> Result<Self, StorageError> {
        let config = serde_json::to_string(&result.config)
            .map_err(|e| StorageError::Invalid(format!("config: {e}")))?;
        let segments = serde_json::to_string(&result.transcript.segments)
            .map_err(|e| StorageError::Invalid(format!("segments: {e}")))?;
        let diarization = result
            .diarization
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| StorageError::Invalid(format!("diarization: {e}")))?;
        let duration_ms = i64::try_from(result.duration_ms).map_err(|_| {
            StorageError::Invalid(format!("duration {} ms is too long", result.duration_ms))
        })?;
        let created_at_ms = i64::try_from(
            result
                .created_at
                .unix_timestamp_nanos()
                .div_euclid(1_000_000),
        )
        .map_err(|_| StorageError::Invalid("created_at is out of range".into()))?;
        Ok(Self {
            config,
            segments,
            diarization,
            duration_ms,
            created_at: format_time("created_at", result.created_at)?,
            created_at_ms,
            started_at: format_time("started_at", result.started_at)?,
            finished_at: format_time("finished_at", result.finished_at)?,
        })
    }
}

/// A JSON column of result `id`; a column that no longer parses is corruption.
pub(super) fn parse_json<T: serde::de::DeserializeOwned>(
    id: Uuid,
    column: &str,
    json: &str,
) -> Result<T, StorageError> {
    serde_json::from_str(json)
        .map_err(|e| StorageError::Corrupt(format!("result {id}, column {column}: {e}")))
}

/// A time column of result `id`.
pub(super) fn parse_time(
    id: Uuid,
    column: &str,
    text: &str,
) -> Result<OffsetDateTime, StorageError> {
    OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|e| StorageError::Corrupt(format!("result {id}, column {column}: {e}")))
}

/// RFC 3339 keeps the offset and every nanosecond, so a stored time reads back exactly.
fn format_time(field: &str, time: OffsetDateTime) -> Result<String, StorageError> {
    time.format(&Rfc3339)
        .map_err(|e| StorageError::Invalid(format!("{field}: {e}")))
}
