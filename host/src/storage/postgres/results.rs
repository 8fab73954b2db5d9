//! [`ResultStore`] on PostgreSQL: the same rules as the SQLite store (stored once, every
//! query filtered by tenant, search input never reaches the query language), full-text
//! search on a generated `tsvector` column with a GIN index.

use tokio_postgres::Row;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use super::PgDatabase;
use crate::storage::codec::{EncodedResult, parse_json, parse_time};
use crate::storage::{
    ResultPage, ResultQuery, ResultStore, ResultSummary, StorageError, StoredResult, search,
};
use crate::transcript::{Segment, Transcript};

/// The largest page a client may ask for, as with SQLite.
const MAX_PER_PAGE: i64 = 200;

const INSERT: &str = "INSERT INTO results (id, tenant, file_name, plugin_id, plugin_name, \
     plugin_version, config, text, language, segments, duration_ms, created_at, created_at_ms, \
     started_at, finished_at, diarization) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
     ON CONFLICT (id) DO NOTHING";

const GET: &str = "SELECT id, tenant, file_name, plugin_id, plugin_name, plugin_version, \
     config, text, language, segments, duration_ms, created_at, started_at, finished_at, \
     diarization FROM results WHERE id = $1 AND tenant = $2";

/// Changes only the names inside the diarization record.
const SET_NAMES: &str = "UPDATE results SET diarization = \
     jsonb_set(diarization::jsonb, '{names}', $3::text::jsonb)::text \
     WHERE id = $1 AND tenant = $2 AND diarization IS NOT NULL";

// $1 tenant, $2 limit, $3 offset, $4 preview length, $5 tsquery.
const LIST_ALL: &str = "SELECT id, file_name, plugin_id, plugin_name, language, duration_ms, \
     substr(text, 1, $4), created_at, finished_at FROM results WHERE tenant = $1 \
     ORDER BY created_at_ms DESC, seq DESC LIMIT $2 OFFSET $3";
const LIST_MATCHING: &str = "SELECT id, file_name, plugin_id, plugin_name, language, \
     duration_ms, substr(text, 1, $4), created_at, finished_at FROM results \
     WHERE tenant = $1 AND search @@ to_tsquery('simple', $5) \
     ORDER BY created_at_ms DESC, seq DESC LIMIT $2 OFFSET $3";

impl PgDatabase {
    /// Inserts a result inside `tx` (the cluster's completion writes it in the same
    /// transaction that ends the job, so a result is stored exactly once).
    pub(crate) async fn insert_result(
        client: &impl deadpool_postgres::GenericClient,
        result: &StoredResult,
    ) -> Result<(), StorageError> {
        let encoded = EncodedResult::of(result)?;
        let inserted = client
            .execute(
                INSERT,
                &[
                    &result.id,
                    &result.tenant,
                    &result.file_name,
                    &result.plugin_id,
                    &result.plugin_name,
                    &result.plugin_version,
                    &encoded.config,
                    &result.transcript.text,
                    &result.transcript.language,
                    &encoded.segments,
                    &encoded.duration_ms,
                    &encoded.created_at,
                    &encoded.created_at_ms,
                    &encoded.started_at,
                    &encoded.finished_at,
                    &encoded.diarization,
                ],
            )
            .await?;
        if inserted == 0 {
            return Err(StorageError::Duplicate(result.id));
        }
        Ok(())
    }
}

impl ResultStore for PgDatabase {
    fn insert(&self, result: &StoredResult) -> Result<(), StorageError> {
        self.blocking(async {
            let client = self.client().await?;
            Self::insert_result(&client, result).await
        })
    }

    fn get(&self, tenant: &str, id: Uuid) -> Result<Option<StoredResult>, StorageError> {
        self.blocking(async {
            let client = self.client().await?;
            let row = client.query_opt(GET, &[&id, &tenant]).await?;
            row.map(|row| read_result(&row)).transpose()
        })
    }

    fn list(&self, query: &ResultQuery) -> Result<ResultPage, StorageError> {
        let per_page = i64::from(query.per_page).clamp(1, MAX_PER_PAGE);
        let offset = i64::from(query.page) * per_page;
        let preview_len = ResultSummary::PREVIEW_CHARS as i32 + 1;
        let tsquery = query.text.as_deref().and_then(search::pg_tsquery);
        self.blocking(async {
            let mut client = self.client().await?;
            // One snapshot for the page and the total.
            let tx = client
                .build_transaction()
                .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await?;
            let (total, rows) = match &tsquery {
                None => {
                    let params: [&(dyn ToSql + Sync); 4] =
                        [&query.tenant, &per_page, &offset, &preview_len];
                    let total: i64 = tx
                        .query_one(
                            "SELECT count(*) FROM results WHERE tenant = $1",
                            &[&query.tenant],
                        )
                        .await?
                        .get(0);
                    (total, tx.query(LIST_ALL, &params).await?)
                }
                Some(tsquery) => {
                    let params: [&(dyn ToSql + Sync); 5] =
                        [&query.tenant, &per_page, &offset, &preview_len, tsquery];
                    let total: i64 = tx
                        .query_one(
                            "SELECT count(*) FROM results \
                             WHERE tenant = $1 AND search @@ to_tsquery('simple', $2)",
                            &[&query.tenant, tsquery],
                        )
                        .await?
                        .get(0);
                    (total, tx.query(LIST_MATCHING, &params).await?)
                }
            };
            tx.commit().await?;
            let items = rows
                .iter()
                .map(read_summary)
                .collect::<Result<Vec<_>, _>>()?;
            Ok(ResultPage {
                items,
                page: query.page,
                per_page: u32::try_from(per_page).unwrap_or(1),
                total: u64::try_from(total).unwrap_or(0),
            })
        })
    }

    fn set_speaker_names(
        &self,
        tenant: &str,
        id: Uuid,
        names: &std::collections::BTreeMap<String, String>,
    ) -> Result<bool, StorageError> {
        let names = serde_json::to_string(names)
            .map_err(|e| StorageError::Invalid(format!("speaker names: {e}")))?;
        self.blocking(async {
            let client = self.client().await?;
            let updated = client.execute(SET_NAMES, &[&id, &tenant, &names]).await?;
            Ok(updated > 0)
        })
    }

    fn delete(&self, tenant: &str, id: Uuid) -> Result<bool, StorageError> {
        self.blocking(async {
            let client = self.client().await?;
            let deleted = client
                .execute(
                    "DELETE FROM results WHERE id = $1 AND tenant = $2",
                    &[&id, &tenant],
                )
                .await?;
            Ok(deleted > 0)
        })
    }

    fn stored_bytes(&self, tenant: &str) -> Result<u64, StorageError> {
        self.blocking(async {
            let client = self.client().await?;
            let bytes: i64 = client
                .query_one(
                    "SELECT COALESCE(SUM(octet_length(text) + octet_length(segments)), 0)::BIGINT \
                     FROM results WHERE tenant = $1",
                    &[&tenant],
                )
                .await?
                .get(0);
            Ok(u64::try_from(bytes).unwrap_or(0))
        })
    }
}

fn read_result(row: &Row) -> Result<StoredResult, StorageError> {
    let id: Uuid = row.try_get(0)?;
    let config: String = row.try_get(6)?;
    let segments: String = row.try_get(9)?;
    let duration_ms: i64 = row.try_get(10)?;
    let diarization: Option<String> = row.try_get(14)?;
    Ok(StoredResult {
        id,
        tenant: row.try_get(1)?,
        file_name: row.try_get(2)?,
        plugin_id: row.try_get(3)?,
        plugin_name: row.try_get(4)?,
        plugin_version: row.try_get(5)?,
        config: parse_json(id, "config", &config)?,
        transcript: Transcript {
            text: row.try_get(7)?,
            language: row.try_get(8)?,
            segments: parse_json::<Vec<Segment>>(id, "segments", &segments)?,
        },
        duration_ms: u64::try_from(duration_ms).unwrap_or(0),
        created_at: parse_time(id, "created_at", row.try_get(11)?)?,
        started_at: parse_time(id, "started_at", row.try_get(12)?)?,
        finished_at: parse_time(id, "finished_at", row.try_get(13)?)?,
        diarization: diarization
            .map(|json| parse_json(id, "diarization", &json))
            .transpose()?,
    })
}

fn read_summary(row: &Row) -> Result<ResultSummary, StorageError> {
    let id: Uuid = row.try_get(0)?;
    let text_start: String = row.try_get(6)?;
    let duration_ms: i64 = row.try_get(5)?;
    Ok(ResultSummary {
        id,
        file_name: row.try_get(1)?,
        plugin_id: row.try_get(2)?,
        plugin_name: row.try_get(3)?,
        language: row.try_get(4)?,
        duration_ms: u64::try_from(duration_ms).unwrap_or(0),
        preview: ResultSummary::preview_of(&text_start),
        created_at: parse_time(id, "created_at", row.try_get(7)?)?,
        finished_at: parse_time(id, "finished_at", row.try_get(8)?)?,
    })
}
