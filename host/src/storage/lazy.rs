//! A connection to the data directory's database, opened on first use and used from
//! async code by running closures on a blocking thread.
//!
//! The web layer's tables (browser sessions, settings, logins) live beside the results
//! in `sandscribe.db` but are created by their owners with `IF NOT EXISTS`. Opening
//! lazily means a database problem fails the requests that need those tables, with an
//! error page, instead of stopping the server at start.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::Connection;

/// How long to wait for another connection's lock (the result store, the job ledger).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a closure could not be run on the connection.
#[derive(Debug, thiserror::Error)]
pub enum LazyDbError {
    #[error("the database {path} failed: {source}")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("the database task failed: {0}")]
    Task(String),
}

/// One lazily opened connection, shared by clones; `schema` runs when it opens.
#[derive(Clone)]
pub struct LazyDb {
    path: PathBuf,
    schema: &'static str,
    conn: Arc<Mutex<Option<Connection>>>,
}

impl LazyDb {
    /// A connection to the database file at `path`; nothing is opened yet.
    pub fn new(path: PathBuf, schema: &'static str) -> Self {
        Self {
            path,
            schema,
            conn: Arc::default(),
        }
    }

    /// Runs `f` with the connection (opened first if need be) on a blocking thread.
    ///
    /// `f` fails with its caller's own error type; only opening, SQL errors it converts
    /// and the blocking task itself are reported as [`LazyDbError`].
    pub async fn run<T, E>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<LazyDbError> + Send + 'static,
    {
        let path = self.path.clone();
        let schema = self.schema;
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            // SQLite rolls back whatever a panicking holder left unfinished.
            let mut guard = conn.lock().unwrap_or_else(PoisonError::into_inner);
            let conn = match guard.take() {
                Some(conn) => conn,
                None => {
                    open(&path, schema).map_err(|source| LazyDbError::Sqlite { path, source })?
                }
            };
            let result = f(&conn);
            *guard = Some(conn);
            result
        })
        .await
        .map_err(|e| E::from(LazyDbError::Task(e.to_string())))?
    }

    /// Turns an SQL error from a closure into this database's error, naming the file.
    pub fn sql_error(&self) -> impl Fn(rusqlite::Error) -> LazyDbError + Send + 'static {
        let path = self.path.clone();
        move |source| LazyDbError::Sqlite {
            path: path.clone(),
            source,
        }
    }
}

fn open(path: &Path, schema: &str) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.execute_batch(schema)?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn opens_once_runs_the_schema_and_reports_errors_with_the_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = LazyDb::new(
            dir.path().join("x.db"),
            "CREATE TABLE IF NOT EXISTS t (v INTEGER);",
        );
        let sql = db.sql_error();
        db.run(move |conn| conn.execute("INSERT INTO t VALUES (7)", []).map_err(&sql))
            .await
            .expect("insert");
        let sql = db.sql_error();
        let v: i64 = db
            .clone()
            .run(move |conn| {
                conn.query_row("SELECT v FROM t", [], |r| r.get(0))
                    .map_err(&sql)
            })
            .await
            .expect("select");
        assert_eq!(v, 7);
        let sql = db.sql_error();
        let err = db
            .run(move |conn| conn.execute("SELECT nope FROM t", []).map_err(&sql))
            .await
            .expect_err("bad SQL");
        assert!(err.to_string().contains("x.db"), "{err}");
    }
}
