//! The job ledger: the last known state of every job, written as it changes.
//!
//! Results are stored once, when a job completes; the ledger covers the rest of a job's
//! life, so that after a crash the jobs that were queued or running are found again
//! (and reported as interrupted) instead of being lost silently. The job's state is
//! kept as opaque JSON: storage does not depend on the jobs module.

use std::path::PathBuf;

use rusqlite::{OptionalExtension, params};
use uuid::Uuid;

use super::{SqliteStore, StorageError};

/// One job's last known state.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRecord {
    pub id: Uuid,
    pub tenant: String,
    /// `queued`, `running`, or a terminal status.
    pub status: String,
    /// The upload the job reads, while it may still need it.
    pub upload: Option<PathBuf>,
    /// The job's snapshot as JSON.
    pub data: serde_json::Value,
}

/// Where job states are written. Methods are blocking.
pub trait JobLedger: Send + Sync {
    /// Inserts or replaces the job's record.
    fn save_job(&self, record: &JobRecord) -> Result<(), StorageError>;
    /// The tenant's job, if the ledger has it.
    fn job(&self, tenant: &str, id: Uuid) -> Result<Option<JobRecord>, StorageError>;
    /// Every job still `queued` or `running` (after a restart: the ones interrupted).
    fn unfinished_jobs(&self) -> Result<Vec<JobRecord>, StorageError>;
}

impl JobLedger for SqliteStore {
    fn save_job(&self, record: &JobRecord) -> Result<(), StorageError> {
        let data = serde_json::to_string(&record.data)
            .map_err(|e| StorageError::Invalid(format!("job {}: {e}", record.id)))?;
        let now = super::now_ms();
        self.conn().execute(
            "INSERT INTO jobs (id, tenant, status, upload, data, updated_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (id) DO UPDATE SET status = ?3, upload = ?4, data = ?5, updated_ms = ?6",
            params![
                record.id.to_string(),
                record.tenant,
                record.status,
                record
                    .upload
                    .as_ref()
                    .map(|p| p.to_string_lossy().into_owned()),
                data,
                now,
            ],
        )?;
        Ok(())
    }

    fn job(&self, tenant: &str, id: Uuid) -> Result<Option<JobRecord>, StorageError> {
        let conn = self.conn();
        let row = conn
            .query_row(
                "SELECT id, tenant, status, upload, data FROM jobs WHERE id = ?1 AND tenant = ?2",
                params![id.to_string(), tenant],
                read_raw,
            )
            .optional()?;
        row.map(parse).transpose()
    }

    fn unfinished_jobs(&self) -> Result<Vec<JobRecord>, StorageError> {
        let conn = self.conn();
        let mut statement = conn.prepare(
            "SELECT id, tenant, status, upload, data FROM jobs
             WHERE status IN ('queued', 'running') ORDER BY updated_ms",
        )?;
        let rows = statement
            .query_map([], read_raw)?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter().map(parse).collect()
    }
}

type RawRow = (String, String, String, Option<String>, String);

fn read_raw(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawRow> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
    ))
}

fn parse((id, tenant, status, upload, data): RawRow) -> Result<JobRecord, StorageError> {
    let id =
        Uuid::parse_str(&id).map_err(|e| StorageError::Corrupt(format!("job id {id}: {e}")))?;
    let data = serde_json::from_str(&data)
        .map_err(|e| StorageError::Corrupt(format!("job {id}, column data: {e}")))?;
    Ok(JobRecord {
        id,
        tenant,
        status,
        upload: upload.map(PathBuf::from),
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(status: &str) -> JobRecord {
        JobRecord {
            id: Uuid::new_v4(),
            tenant: "t".into(),
            status: status.into(),
            upload: Some(PathBuf::from("/tmp/x.wav")),
            data: serde_json::json!({"status": status}),
        }
    }

    #[test]
    fn saves_updates_and_finds_unfinished_jobs() {
        let store = SqliteStore::open_in_memory().expect("store");
        let mut queued = record("queued");
        let done = record("completed");
        store.save_job(&queued).expect("save");
        store.save_job(&done).expect("save");
        assert_eq!(store.unfinished_jobs().expect("list"), vec![queued.clone()]);
        queued.status = "running".into();
        store.save_job(&queued).expect("update");
        assert_eq!(
            store.job("t", queued.id).expect("get"),
            Some(queued.clone())
        );
        assert_eq!(store.job("other", queued.id).expect("get"), None);
        queued.status = "failed".into();
        store.save_job(&queued).expect("update");
        assert!(store.unfinished_jobs().expect("list").is_empty());
    }
}
