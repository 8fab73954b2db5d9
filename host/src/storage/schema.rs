//! The database schema, as an ordered list of migrations.
//!
//! `PRAGMA user_version` records how many migrations have run. Migrations are only ever
//! appended: a released one is never edited, so every database reaches the same schema.

use rusqlite::Connection;

use super::StorageError;

/// Migration `n` (zero-based) takes the schema from version `n` to `n + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: results plus their full-text index.
    r#"
    CREATE TABLE results (
        -- Explicit rowid alias: the FTS index refers to rows by it, and it breaks ties
        -- between results created in the same millisecond.
        seq            INTEGER PRIMARY KEY,
        id             TEXT    NOT NULL UNIQUE,
        tenant         TEXT    NOT NULL,
        file_name      TEXT    NOT NULL,
        plugin_id      TEXT    NOT NULL,
        plugin_name    TEXT    NOT NULL,
        plugin_version TEXT    NOT NULL,
        config         TEXT    NOT NULL,  -- JSON
        text           TEXT    NOT NULL,
        language       TEXT,
        segments       TEXT    NOT NULL,  -- JSON array of segments
        duration_ms    INTEGER NOT NULL,
        created_at     TEXT    NOT NULL,  -- RFC 3339, exact
        created_at_ms  INTEGER NOT NULL,  -- unix ms, for sorting
        started_at     TEXT    NOT NULL,
        finished_at    TEXT    NOT NULL
    ) STRICT;

    CREATE INDEX results_tenant_created ON results (tenant, created_at_ms);

    CREATE VIRTUAL TABLE results_fts USING fts5 (
        file_name,
        text,
        content = 'results',
        content_rowid = 'seq',
        tokenize = 'unicode61 remove_diacritics 2'
    );

    CREATE TRIGGER results_fts_insert AFTER INSERT ON results BEGIN
        INSERT INTO results_fts (rowid, file_name, text)
        VALUES (new.seq, new.file_name, new.text);
    END;

    CREATE TRIGGER results_fts_delete AFTER DELETE ON results BEGIN
        INSERT INTO results_fts (results_fts, rowid, file_name, text)
        VALUES ('delete', old.seq, old.file_name, old.text);
    END;

    CREATE TRIGGER results_fts_update AFTER UPDATE OF file_name, text ON results BEGIN
        INSERT INTO results_fts (results_fts, rowid, file_name, text)
        VALUES ('delete', old.seq, old.file_name, old.text);
        INSERT INTO results_fts (rowid, file_name, text)
        VALUES (new.seq, new.file_name, new.text);
    END;
    "#,
    // 2: the job ledger: every job's last known state, so that a restart (even after
    // SIGKILL) finds the jobs that were queued or running and reports them interrupted.
    r#"
    CREATE TABLE jobs (
        id          TEXT    PRIMARY KEY,
        tenant      TEXT    NOT NULL,
        status      TEXT    NOT NULL,
        upload      TEXT,              -- the upload on disk while the job may need it
        data        TEXT    NOT NULL,  -- JSON snapshot of the job, owned by the jobs module
        updated_ms  INTEGER NOT NULL
    ) STRICT;

    CREATE INDEX jobs_status ON jobs (status);
    "#,
    // 3: the diarization stage of a result (JSON: diarizer, state, speakers, names).
    r#"
    ALTER TABLE results ADD COLUMN diarization TEXT;
    "#,
];

/// Brings the database up to the latest schema, each migration in its own transaction.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), StorageError> {
    let supported = MIGRATIONS.len() as i64;
    let found: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if found > supported {
        return Err(StorageError::SchemaTooNew { found, supported });
    }
    let done = usize::try_from(found)
        .map_err(|_| StorageError::Corrupt(format!("negative schema version {found}")))?;
    for (version, sql) in (found..).zip(&MIGRATIONS[done..]) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version + 1)?;
        tx.commit()?;
    }
    Ok(())
}
