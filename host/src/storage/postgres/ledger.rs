//! [`JobLedger`] on PostgreSQL: the `jobs` table, which with several nodes is also the
//! queue ([`super::queue`]). A record written here keeps the queue's own columns (node,
//! lease, attempts) as they are.

use std::path::PathBuf;

use tokio_postgres::Row;
use uuid::Uuid;

use super::PgDatabase;
use crate::storage::{JobLedger, JobRecord, StorageError};

const COLUMNS: &str = "id, tenant, status, upload, data";

impl JobLedger for PgDatabase {
    fn save_job(&self, record: &JobRecord) -> Result<(), StorageError> {
        let data = serde_json::to_string(&record.data)
            .map_err(|e| StorageError::Invalid(format!("job {}: {e}", record.id)))?;
        let upload = record
            .upload
            .as_ref()
            .map(|p| p.to_string_lossy().into_owned());
        self.blocking(async {
            let client = self.client().await?;
            client
                .execute(
                    "INSERT INTO jobs (id, tenant, status, upload, data, updated_ms)
                     VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (id) DO UPDATE
                     SET status = $3, upload = $4, data = $5, updated_ms = $6",
                    &[
                        &record.id,
                        &record.tenant,
                        &record.status,
                        &upload,
                        &data,
                        &crate::storage::now_ms(),
                    ],
                )
                .await?;
            Ok(())
        })
    }

    fn job(&self, tenant: &str, id: Uuid) -> Result<Option<JobRecord>, StorageError> {
        self.blocking(async {
            let client = self.client().await?;
            let row = client
                .query_opt(
                    &format!("SELECT {COLUMNS} FROM jobs WHERE id = $1 AND tenant = $2"),
                    &[&id, &tenant],
                )
                .await?;
            row.map(|row| read_record(&row)).transpose()
        })
    }

    fn unfinished_jobs(&self) -> Result<Vec<JobRecord>, StorageError> {
        self.blocking(async {
            let client = self.client().await?;
            let rows = client
                .query(
                    &format!(
                        "SELECT {COLUMNS} FROM jobs WHERE status IN ('queued', 'running') \
                         ORDER BY seq"
                    ),
                    &[],
                )
                .await?;
            rows.iter().map(read_record).collect()
        })
    }
}

/// Decodes a `jobs` row selected with [`COLUMNS`].
pub(super) fn read_record(row: &Row) -> Result<JobRecord, StorageError> {
    let id: Uuid = row.try_get(0)?;
    let data: String = row.try_get(4)?;
    let upload: Option<String> = row.try_get(3)?;
    Ok(JobRecord {
        id,
        tenant: row.try_get(1)?,
        status: row.try_get(2)?,
        upload: upload.map(PathBuf::from),
        data: serde_json::from_str(&data)
            .map_err(|e| StorageError::Corrupt(format!("job {id}, column data: {e}")))?,
    })
}
