//! [`ResultStore`] on an embedded SQLite database, one connection behind a mutex.
//!
//! One connection is enough: writes are one per finished job, reads are single indexed
//! queries, and callers run them off the async runtime. WAL mode still lets a second
//! process (a backup, the `sqlite3` shell) read while the server writes.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, Row, ToSql, params};
use time::OffsetDateTime;
use uuid::Uuid;

use super::codec::{EncodedResult, parse_json, parse_time};
use super::{
    ResultPage, ResultQuery, ResultStore, ResultSummary, StorageError, StoredResult, schema, search,
};
use crate::transcript::{Segment, Transcript};

/// Name of the database file inside the data directory.
pub const DB_FILE_NAME: &str = "sandscribe.db";

/// How long to wait for another process's lock before giving up with "database is locked".
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The largest page a client may ask for, so one request cannot load the whole history.
const MAX_PER_PAGE: u32 = 200;

const GET: &str = "SELECT id, tenant, file_name, plugin_id, plugin_name, plugin_version, \
     config, text, language, segments, duration_ms, created_at, started_at, finished_at, \
     diarization FROM results WHERE id = ?1 AND tenant = ?2";

const INSERT: &str = "INSERT INTO results (id, tenant, file_name, plugin_id, plugin_name, \
     plugin_version, config, text, language, segments, duration_ms, created_at, created_at_ms, \
     started_at, finished_at, diarization) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16) \
     ON CONFLICT (id) DO NOTHING";

/// `json_set` changes only the names inside the diarization record.
const SET_NAMES: &str = "UPDATE results SET diarization = json_set(diarization, '$.names', \
     json(?3)) WHERE id = ?1 AND tenant = ?2 AND diarization IS NOT NULL";

const DELETE: &str = "DELETE FROM results WHERE id = ?1 AND tenant = ?2";

// The summary queries take: ?1 tenant, ?2 limit, ?3 offset, ?4 preview length, ?5 FTS query.
// Only a preview's worth of text is read, never the whole transcript.
const LIST_ALL: &str = "SELECT id, file_name, plugin_id, plugin_name, language, duration_ms, \
     substr(text, 1, ?4), created_at, finished_at \
     FROM results WHERE tenant = ?1 \
     ORDER BY created_at_ms DESC, seq DESC LIMIT ?2 OFFSET ?3";

const COUNT_ALL: &str = "SELECT count(*) FROM results WHERE tenant = ?1";

const LIST_MATCHING: &str = "SELECT r.id, r.file_name, r.plugin_id, r.plugin_name, \
     r.language, r.duration_ms, substr(r.text, 1, ?4), r.created_at, r.finished_at \
     FROM results_fts JOIN results r ON r.seq = results_fts.rowid \
     WHERE results_fts MATCH ?5 AND r.tenant = ?1 \
     ORDER BY r.created_at_ms DESC, r.seq DESC LIMIT ?2 OFFSET ?3";

const COUNT_MATCHING: &str = "SELECT count(*) \
     FROM results_fts JOIN results r ON r.seq = results_fts.rowid \
     WHERE results_fts MATCH ?2 AND r.tenant = ?1";

/// Finished results in a SQLite database file (or in memory, for tests).
#[derive(Debug)]
pub struct SqliteStore {
    conn: Mutex<Connection>,
}

impl SqliteStore {
    /// Opens (creating if needed) `<data_dir>/sandscribe.db` and brings its schema up to date.
    ///
    /// The data directory is created if it does not exist.
    pub fn open(data_dir: &Path) -> Result<Self, StorageError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StorageError::Io {
            path: data_dir.to_owned(),
            source,
        })?;
        let path = data_dir.join(DB_FILE_NAME);
        // Point errors while opening at the file, so the user knows what to check.
        let at_path = |err: StorageError| match err {
            StorageError::Sqlite(source) => StorageError::Open {
                path: path.clone(),
                source,
            },
            other => other,
        };
        let conn = Connection::open(&path).map_err(|e| at_path(e.into()))?;
        Self::prepare(conn).map_err(at_path)
    }

    /// A private database that lives as long as the store; for tests and trial runs.
    pub fn open_in_memory() -> Result<Self, StorageError> {
        Self::prepare(Connection::open_in_memory()?)
    }

    fn prepare(mut conn: Connection) -> Result<Self, StorageError> {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // WAL: readers do not block the writer. (An in-memory database stays in "memory"
        // mode, which is fine.) synchronous=FULL: a commit is on disk before it returns,
        // so a result the user was told about survives a power cut.
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        schema::migrate(&mut conn)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    pub(super) fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while the lock was held cannot have left a half-done write behind:
        // SQLite rolls back an unfinished transaction, so the connection is still good.
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl ResultStore for SqliteStore {
    fn insert(&self, result: &StoredResult) -> Result<(), StorageError> {
        let encoded = EncodedResult::of(result)?;
        let conn = self.conn();
        let inserted = conn.prepare_cached(INSERT)?.execute(params![
            result.id.to_string(),
            result.tenant,
            result.file_name,
            result.plugin_id,
            result.plugin_name,
            result.plugin_version,
            encoded.config,
            result.transcript.text,
            result.transcript.language,
            encoded.segments,
            encoded.duration_ms,
            encoded.created_at,
            encoded.created_at_ms,
            encoded.started_at,
            encoded.finished_at,
            encoded.diarization,
        ])?;
        if inserted == 0 {
            return Err(StorageError::Duplicate(result.id));
        }
        Ok(())
    }

    fn get(&self, tenant: &str, id: Uuid) -> Result<Option<StoredResult>, StorageError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(GET)?;
        let mut rows = stmt.query(params![id.to_string(), tenant])?;
        match rows.next()? {
            Some(row) => read_result(row).map(Some),
            None => Ok(None),
        }
    }

    fn list(&self, query: &ResultQuery) -> Result<ResultPage, StorageError> {
        let per_page = query.per_page.clamp(1, MAX_PER_PAGE);
        let offset = i64::from(query.page) * i64::from(per_page);
        // One more character than shown, so the preview knows whether the text goes on.
        let preview_len = ResultSummary::PREVIEW_CHARS as i64 + 1;
        let fts = query.text.as_deref().and_then(search::fts_query);

        let mut conn = self.conn();
        // One read transaction, so the page and the total come from the same snapshot.
        let tx = conn.transaction()?;
        let (total, items) = match &fts {
            None => (
                count(&tx, COUNT_ALL, params![query.tenant])?,
                summaries(
                    &tx,
                    LIST_ALL,
                    params![query.tenant, per_page, offset, preview_len],
                )?,
            ),
            Some(fts) => (
                count(&tx, COUNT_MATCHING, params![query.tenant, fts])?,
                summaries(
                    &tx,
                    LIST_MATCHING,
                    params![query.tenant, per_page, offset, preview_len, fts],
                )?,
            ),
        };
        tx.finish()?;

        Ok(ResultPage {
            items,
            page: query.page,
            per_page,
            total,
        })
    }

    fn set_speaker_names(
        &self,
        tenant: &str,
        id: Uuid,
        names: &BTreeMap<String, String>,
    ) -> Result<bool, StorageError> {
        let names = serde_json::to_string(names)
            .map_err(|e| StorageError::Invalid(format!("speaker names: {e}")))?;
        let updated = self.conn().prepare_cached(SET_NAMES)?.execute(params![
            id.to_string(),
            tenant,
            names
        ])?;
        Ok(updated > 0)
    }

    fn delete(&self, tenant: &str, id: Uuid) -> Result<bool, StorageError> {
        let conn = self.conn();
        let deleted = conn
            .prepare_cached(DELETE)?
            .execute(params![id.to_string(), tenant])?;
        Ok(deleted > 0)
    }

    fn stored_bytes(&self, tenant: &str) -> Result<u64, StorageError> {
        let bytes: i64 = self.conn().query_row(
            "SELECT COALESCE(SUM(length(CAST(text AS BLOB)) + length(CAST(segments AS BLOB))), 0)
             FROM results WHERE tenant = ?1",
            [tenant],
            |row| row.get(0),
        )?;
        Ok(u64::try_from(bytes).unwrap_or(0))
    }
}

/// Decodes a row of [`GET`].
fn read_result(row: &Row<'_>) -> Result<StoredResult, StorageError> {
    let id = read_id(row, 0)?;
    let config: String = row.get(6)?;
    let segments: String = row.get(9)?;
    let diarization: Option<String> = row.get(14)?;
    Ok(StoredResult {
        id,
        tenant: row.get(1)?,
        file_name: row.get(2)?,
        plugin_id: row.get(3)?,
        plugin_name: row.get(4)?,
        plugin_version: row.get(5)?,
        config: parse_json(id, "config", &config)?,
        transcript: Transcript {
            text: row.get(7)?,
            language: row.get(8)?,
            segments: parse_json::<Vec<Segment>>(id, "segments", &segments)?,
        },
        duration_ms: row.get(10)?,
        created_at: read_time(row, id, 11, "created_at")?,
        started_at: read_time(row, id, 12, "started_at")?,
        finished_at: read_time(row, id, 13, "finished_at")?,
        diarization: diarization
            .map(|json| parse_json(id, "diarization", &json))
            .transpose()?,
    })
}

fn count(conn: &Connection, sql: &str, params: &[&dyn ToSql]) -> Result<u64, StorageError> {
    Ok(conn
        .prepare_cached(sql)?
        .query_row(params, |row| row.get(0))?)
}

fn summaries(
    conn: &Connection,
    sql: &str,
    params: &[&dyn ToSql],
) -> Result<Vec<ResultSummary>, StorageError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(params)?;
    let mut items = Vec::new();
    while let Some(row) = rows.next()? {
        items.push(read_summary(row)?);
    }
    Ok(items)
}

/// Decodes a row of [`LIST_ALL`] or [`LIST_MATCHING`].
fn read_summary(row: &Row<'_>) -> Result<ResultSummary, StorageError> {
    let id = read_id(row, 0)?;
    let text_start: String = row.get(6)?;
    Ok(ResultSummary {
        id,
        file_name: row.get(1)?,
        plugin_id: row.get(2)?,
        plugin_name: row.get(3)?,
        language: row.get(4)?,
        duration_ms: row.get(5)?,
        preview: ResultSummary::preview_of(&text_start),
        created_at: read_time(row, id, 7, "created_at")?,
        finished_at: read_time(row, id, 8, "finished_at")?,
    })
}

fn read_id(row: &Row<'_>, index: usize) -> Result<Uuid, StorageError> {
    let text: String = row.get(index)?;
    Uuid::parse_str(&text).map_err(|e| StorageError::Corrupt(format!("id {text:?}: {e}")))
}

fn read_time(
    row: &Row<'_>,
    id: Uuid,
    index: usize,
    column: &str,
) -> Result<OffsetDateTime, StorageError> {
    let text: String = row.get(index)?;
    parse_time(id, column, &text)
}
