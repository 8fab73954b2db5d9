//! Durable storage of finished transcription results.
//!
//! Every finished job's result is written exactly once, before the job is reported done, so
//! a result the user was told about survives a restart. The rest of the host sees only the
//! [`ResultStore`] trait; [`SqliteStore`] is the embedded implementation, kept behind the
//! trait so that another backend (a server database, say) can follow without touching the
//! APIs.
//!
//! Design of the SQLite backend:
//! - one `results` table holds every field; the configuration and segments are JSON text,
//!   times are RFC 3339 text (exact, offset kept) plus `created_at_ms` for sorting;
//! - an external-content FTS5 table indexes the transcript text and the file name, kept in
//!   step with `results` by triggers, so a delete can never leave a stale search hit;
//! - user search input is turned into quoted FTS5 terms, so no input can cause
//!   an FTS syntax error or reach the query language;
//! - every query filters by tenant: another tenant's result is simply not found.
//!
//! The web layer's small stores (browser sessions, settings, logins) write their SQL once
//! and run it on either engine through [`RowsDb`].

mod codec;
mod lazy;
mod ledger;
mod model;
pub mod postgres;
pub(crate) mod rows;
mod schema;
mod search;
mod sqlite;
#[cfg(test)]
mod tests;

use std::path::PathBuf;

use uuid::Uuid;

pub use lazy::{LazyDb, LazyDbError};
pub use ledger::{JobLedger, JobRecord};
pub use model::*;
pub use postgres::{PgDatabase, redact_url};
pub use rows::{Row, RowsDb, RowsError, SqlValue};
pub use sqlite::{DB_FILE_NAME, SqliteStore};

/// Now, in Unix milliseconds: how every `*_ms` column stores a time.
pub fn now_ms() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000)
        .unwrap_or(i64::MAX)
}

/// A duration in milliseconds, for arithmetic with `*_ms` columns (saturating).
pub fn millis(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

impl StorageError {
    /// Whether the database could not be reached (rather than refusing the request):
    /// worth a retry, shown as 503 `database_unavailable`.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Unavailable(_) => true,
            Self::Postgres(e) => e.is_closed() || e.code().is_none(),
            _ => false,
        }
    }
}

/// Where finished results are kept.
///
/// Methods are blocking; call them from `tokio::task::spawn_blocking` in async code.
pub trait ResultStore: Send + Sync {
    /// Store a finished result durably (committed, fsynced per SQLite's rules) before returning.
    /// Inserting the same id twice is an error ([`StorageError::Duplicate`]): results are
    /// stored exactly once.
    fn insert(&self, result: &StoredResult) -> Result<(), StorageError>;

    /// Only returns the result if it belongs to `tenant`.
    fn get(&self, tenant: &str, id: Uuid) -> Result<Option<StoredResult>, StorageError>;

    /// One page of the tenant's results, newest first, optionally narrowed by full-text search.
    fn list(&self, query: &ResultQuery) -> Result<ResultPage, StorageError>;

    /// Replaces the names people gave the speakers of the tenant's result `id`; false
    /// when there is no such result or it has no diarization.
    fn set_speaker_names(
        &self,
        tenant: &str,
        id: Uuid,
        names: &std::collections::BTreeMap<String, String>,
    ) -> Result<bool, StorageError>;

    /// True if something was deleted; another tenant's result is left alone.
    fn delete(&self, tenant: &str, id: Uuid) -> Result<bool, StorageError>;

    /// Bytes of transcript text and segments the tenant has stored (for its quota).
    fn stored_bytes(&self, tenant: &str) -> Result<u64, StorageError>;
}

/// Why the result store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),

    #[error("database error: {0}")]
    Postgres(#[from] tokio_postgres::Error),

    /// The database cannot be reached now (it is down or restarting): try again later.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),

    #[error("the database URL {url} is not valid: {reason}")]
    BadUrl { url: String, reason: String },

    #[error(
        "could not open the result database at {path}: {source} \
         (check that the file is readable and writable and not used by another server)"
    )]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },

    #[error(
        "could not create the data directory {path}: {source} \
         (check the path and its permissions, or choose another data directory)"
    )]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A stored column no longer parses; the database was edited or damaged from outside.
    #[error("stored result is corrupt: {0}")]
    Corrupt(String),

    /// The result cannot be represented in storage (e.g. a time outside RFC 3339's years).
    #[error("result cannot be stored: {0}")]
    Invalid(String),

    #[error("a result with id {0} is already stored")]
    Duplicate(Uuid),

    #[error(
        "the result database has schema version {found}, but this build knows only up to \
         {supported}; run a newer sandscribe or use another data directory"
    )]
    SchemaTooNew { found: i64, supported: i64 },
}
