//! One SQL runner for the small stores that work on either database engine: the browser
//! sessions and settings ([`crate::web`]) and the browser logins ([`crate::auth`]).
//!
//! Those stores need little: a few statements on a few rows, text and integers only. So
//! rather than each store keeping one copy of its logic per engine, it writes its SQL
//! once, in the subset SQLite and PostgreSQL share (`SELECT`, `INSERT`, `UPDATE`,
//! `DELETE`, `ON CONFLICT (...) DO UPDATE SET x = excluded.x`), with SQLite's numbered
//! placeholders `?1`, `?2`, and runs it on a [`RowsDb`]:
//!
//! - on SQLite through the store's own [`LazyDb`], so nothing changes there: the file
//!   opens on first use and the store's `SCHEMA` (all `IF NOT EXISTS`) runs then;
//! - on PostgreSQL through the shared [`PgDatabase`] pool, with each `?N` rewritten to
//!   `$N`. The tables come from the PostgreSQL migrations; stores never create them.
//!
//! Values cross as [`SqlValue`] (text, a 64-bit integer or NULL) and come back as [`Row`]s
//! of the same, so both engines' `INTEGER`/`BIGINT` columns read as `i64`. Each call is
//! one statement on its own (autocommit); a store that needs several keeps them in order.
//!
//! ```no_run
//! # async fn example(db: sandscribe::storage::RowsDb) -> Result<(), sandscribe::storage::RowsError> {
//! use sandscribe::storage::SqlValue;
//!
//! db.execute(
//!     "INSERT INTO web_user_settings (tenant, settings) VALUES (?1, ?2) \
//!      ON CONFLICT (tenant) DO UPDATE SET settings = excluded.settings",
//!     vec!["alice".into(), "{}".into()],
//! )
//! .await?;
//! let rows = db
//!     .query("SELECT settings FROM web_user_settings WHERE tenant = ?1", vec!["alice".into()])
//!     .await?;
//! assert_eq!(rows[0].text(0)?, "{}");
//! # Ok(())
//! # }
//! ```

#[cfg(test)]
pub(crate) mod testing;

use std::error::Error;
use std::sync::Arc;

use bytes::BytesMut;
use rusqlite::types::{ToSqlOutput, ValueRef};
use tokio_postgres::types::{IsNull, ToSql, Type, WrongType, to_sql_checked};

use super::{LazyDb, LazyDbError, PgDatabase, StorageError};

/// Where a store's rows live: its SQLite file, or the deployment's PostgreSQL database.
///
/// Clones share the connection (SQLite) or the pool (PostgreSQL).
#[derive(Clone)]
pub enum RowsDb {
    /// The data directory's `sandscribe.db`, opened on first use with the store's schema.
    Sqlite(LazyDb),
    /// The database every node shares; its schema comes from the migrations. Behind an
    /// `Arc` as the pool's settings are large and a store is cloned into each request.
    Postgres(Arc<PgDatabase>),
}

/// A value passed to a statement or read from a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlValue {
    Text(String),
    /// Any integer column (SQLite `INTEGER`, PostgreSQL `BIGINT`, `INTEGER`, `SMALLINT`).
    Int(i64),
    Null,
}

impl From<String> for SqlValue {
    fn from(value: String) -> Self {
        Self::Text(value)
    }
}

impl From<&str> for SqlValue {
    fn from(value: &str) -> Self {
        Self::Text(value.to_owned())
    }
}

impl From<i64> for SqlValue {
    fn from(value: i64) -> Self {
        Self::Int(value)
    }
}

impl<T: Into<SqlValue>> From<Option<T>> for SqlValue {
    fn from(value: Option<T>) -> Self {
        value.map_or(Self::Null, Into::into)
    }
}

/// Why a statement could not be run, or a row not read as the store expected.
#[derive(Debug, thiserror::Error)]
pub enum RowsError {
    /// The SQLite file could not be opened, or refused the statement (the error names it).
    #[error(transparent)]
    Sqlite(#[from] LazyDbError),
    /// PostgreSQL could not be reached, or refused the statement.
    #[error("{}", postgres_message(.0))]
    Postgres(#[from] StorageError),
    /// A column held something other than what the store reads there: the table was
    /// changed from outside, or the store reads the wrong column.
    #[error("column {index} of a stored row is {found}, not {expected}")]
    Column {
        index: usize,
        expected: &'static str,
        found: String,
    },
}

impl RowsError {
    /// Whether the database could not be reached (worth a retry later), as opposed to
    /// refusing the statement. A SQLite file is never "unavailable": it fails to open.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Postgres(e) => e.is_unavailable(),
            Self::Sqlite(_) | Self::Column { .. } => false,
        }
    }
}

/// `error` with the cause PostgreSQL gave: the driver's own message names only the kind
/// of error ("db error"), which tells no one what to fix.
fn postgres_message(error: &StorageError) -> String {
    let StorageError::Postgres(driver) = error else {
        return error.to_string();
    };
    if let Some(refused) = driver.as_db_error() {
        return format!("database error: {}", refused.message());
    }
    let mut message = error.to_string();
    let mut cause = driver.source();
    while let Some(error) = cause {
        message.push_str(": ");
        message.push_str(&error.to_string());
        cause = error.source();
    }
    message
}

/// One row of a query's result, read by column index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    cells: Vec<Cell>,
}

/// A column as read: a value the stores use, or the name of what else was there (only an
/// error if the store reads that column, as with a direct typed read).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Cell {
    Value(SqlValue),
    Unsupported(String),
}

impl Row {
    /// Column `index` as text; NULL or any other type is a [`RowsError::Column`].
    pub fn text(&self, index: usize) -> Result<&str, RowsError> {
        match self.value(index, "text")? {
            SqlValue::Text(text) => Ok(text),
            other => Err(wrong(index, "text", other)),
        }
    }

    /// Column `index` as text, or `None` for NULL.
    pub fn opt_text(&self, index: usize) -> Result<Option<&str>, RowsError> {
        match self.value(index, "text or NULL")? {
            SqlValue::Text(text) => Ok(Some(text)),
            SqlValue::Null => Ok(None),
            other => Err(wrong(index, "text or NULL", other)),
        }
    }

    /// Column `index` as an integer; NULL or any other type is a [`RowsError::Column`].
    pub fn int(&self, index: usize) -> Result<i64, RowsError> {
        match self.value(index, "an integer")? {
            SqlValue::Int(value) => Ok(*value),
            other => Err(wrong(index, "an integer", other)),
        }
    }

    /// Column `index` as an integer, or `None` for NULL.
    pub fn opt_int(&self, index: usize) -> Result<Option<i64>, RowsError> {
        match self.value(index, "an integer or NULL")? {
            SqlValue::Int(value) => Ok(Some(*value)),
            SqlValue::Null => Ok(None),
            other => Err(wrong(index, "an integer or NULL", other)),
        }
    }

    fn value(&self, index: usize, expected: &'static str) -> Result<&SqlValue, RowsError> {
        let found = match self.cells.get(index) {
            Some(Cell::Value(value)) => return Ok(value),
            Some(Cell::Unsupported(found)) => found.clone(),
            None => format!("missing (the row has {} columns)", self.cells.len()),
        };
        Err(RowsError::Column {
            index,
            expected,
            found,
        })
    }
}

fn wrong(index: usize, expected: &'static str, found: &SqlValue) -> RowsError {
    let found = match found {
        SqlValue::Text(_) => "text",
        SqlValue::Int(_) => "an integer",
        SqlValue::Null => "NULL",
    };
    RowsError::Column {
        index,
        expected,
        found: found.to_owned(),
    }
}

impl RowsDb {
    /// The shared PostgreSQL database (the pool is shared with `db`'s clones).
    pub fn postgres(db: PgDatabase) -> Self {
        Self::Postgres(Arc::new(db))
    }

    /// Runs a statement that returns no rows; returns how many rows it changed.
    ///
    /// `sql` is one of the store's constants: each connection prepares it once and keeps
    /// it (both engines cache prepared statements by their text).
    pub async fn execute(
        &self,
        sql: &'static str,
        params: Vec<SqlValue>,
    ) -> Result<u64, RowsError> {
        match self {
            Self::Sqlite(db) => {
                let failed = db.sql_error();
                db.run(move |conn| {
                    let changed = conn
                        .prepare_cached(sql)
                        .and_then(|mut statement| {
                            statement.execute(rusqlite::params_from_iter(&params))
                        })
                        .map_err(failed)?;
                    Ok(u64::try_from(changed).unwrap_or(u64::MAX))
                })
                .await
            }
            Self::Postgres(db) => {
                let sql = postgres_placeholders(sql);
                noted(db, async {
                    let client = db.client().await?;
                    let statement = client.prepare_cached(&sql).await?;
                    Ok(client.execute(&statement, &pg_params(&params)).await?)
                })
                .await
            }
        }
    }

    /// Runs a query; returns all its rows.
    pub async fn query(
        &self,
        sql: &'static str,
        params: Vec<SqlValue>,
    ) -> Result<Vec<Row>, RowsError> {
        match self {
            Self::Sqlite(db) => {
                let failed = db.sql_error();
                db.run(move |conn| sqlite_rows(conn, sql, &params).map_err(|e| failed(e).into()))
                    .await
            }
            Self::Postgres(db) => {
                let sql = postgres_placeholders(sql);
                let rows = noted(db, async {
                    let client = db.client().await?;
                    let statement = client.prepare_cached(&sql).await?;
                    Ok(client.query(&statement, &pg_params(&params)).await?)
                })
                .await?;
                rows.iter()
                    .map(pg_row)
                    .collect::<Result<_, _>>()
                    .map_err(|e| StorageError::from(e).into())
            }
        }
    }
}

fn sqlite_rows(
    conn: &rusqlite::Connection,
    sql: &str,
    params: &[SqlValue],
) -> rusqlite::Result<Vec<Row>> {
    let mut statement = conn.prepare_cached(sql)?;
    let columns = statement.column_count();
    let mut rows = statement.query(rusqlite::params_from_iter(params))?;
    let mut read = Vec::new();
    while let Some(row) = rows.next()? {
        let cells = (0..columns)
            .map(|index| {
                Ok(match row.get_ref(index)? {
                    ValueRef::Null => Cell::Value(SqlValue::Null),
                    ValueRef::Integer(value) => Cell::Value(SqlValue::Int(value)),
                    ValueRef::Text(bytes) => match std::str::from_utf8(bytes) {
                        Ok(text) => Cell::Value(SqlValue::Text(text.to_owned())),
                        Err(_) => Cell::Unsupported("text that is not UTF-8".into()),
                    },
                    ValueRef::Real(_) => Cell::Unsupported("a real number".into()),
                    ValueRef::Blob(_) => Cell::Unsupported("a blob".into()),
                })
            })
            .collect::<rusqlite::Result<_>>()?;
        read.push(Row { cells });
    }
    Ok(read)
}

fn pg_row(row: &tokio_postgres::Row) -> Result<Row, tokio_postgres::Error> {
    let cells = row
        .columns()
        .iter()
        .enumerate()
        .map(|(index, column)| {
            let ty = column.type_();
            let value = if <String as ToSql>::accepts(ty) {
                row.try_get::<_, Option<String>>(index)?.into()
            } else if *ty == Type::INT8 {
                row.try_get::<_, Option<i64>>(index)?.into()
            } else if *ty == Type::INT4 {
                row.try_get::<_, Option<i32>>(index)?.map(i64::from).into()
            } else if *ty == Type::INT2 {
                row.try_get::<_, Option<i16>>(index)?.map(i64::from).into()
            } else {
                return Ok(Cell::Unsupported(format!("of type {ty}")));
            };
            Ok(Cell::Value(value))
        })
        .collect::<Result<_, _>>()?;
    Ok(Row { cells })
}

/// Runs PostgreSQL work, recording an outage it meets (for `/healthz`).
async fn noted<T>(
    db: &PgDatabase,
    work: impl Future<Output = Result<T, StorageError>>,
) -> Result<T, RowsError> {
    work.await.map_err(|e| {
        db.note_error(&e);
        RowsError::Postgres(e)
    })
}

fn pg_params(params: &[SqlValue]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}

/// `sql` with SQLite's numbered placeholders `?N` as PostgreSQL's `$N`. Quoted text
/// (`'...'` literals, `"..."` names) is left alone, and so is a `?` without a number,
/// which in PostgreSQL is an operator (`jsonb ? key`).
fn postgres_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quote = None;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            // A doubled quote inside quotes ends and reopens them: the same either way.
            Some(open) if c == open => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) => {
                out.push('$');
                continue;
            }
            None => {}
        }
        out.push(c);
    }
    out
}

impl rusqlite::ToSql for SqlValue {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Self::Text(text) => ValueRef::Text(text.as_bytes()),
            Self::Int(value) => ValueRef::Integer(*value),
            Self::Null => ValueRef::Null,
        }))
    }
}

/// PostgreSQL infers each parameter's type from the statement, so an integer is sent as
/// the column's width (refused if it does not fit) and NULL fits any column.
impl ToSql for SqlValue {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        match self {
            Self::Text(text) if <String as ToSql>::accepts(ty) => text.to_sql(ty, out),
            Self::Text(_) => Err(Box::new(WrongType::new::<String>(ty.clone()))),
            Self::Int(value) if *ty == Type::INT8 => value.to_sql(ty, out),
            Self::Int(value) if *ty == Type::INT4 => i32::try_from(*value)?.to_sql(ty, out),
            Self::Int(value) if *ty == Type::INT2 => i16::try_from(*value)?.to_sql(ty, out),
            Self::Int(_) => Err(Box::new(WrongType::new::<i64>(ty.clone()))),
            Self::Null => Ok(IsNull::Yes),
        }
    }

    /// Every type: whether this value fits is only known from the value, in `to_sql`.
    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

#[cfg(test)]
mod tests {
    use super::testing::{Engine, TestDatabase, on_each_engine};
    use super::*;

    /// A scratch table for the runner's own tests (the stores' tables come from their
    /// schemas and the migrations).
    const SCRATCH: &str = "CREATE TABLE IF NOT EXISTS scratch (
        name  TEXT PRIMARY KEY,
        count BIGINT NOT NULL,
        note  TEXT,
        small INTEGER
    )";

    async fn scratch(db: &TestDatabase) -> RowsDb {
        let rows = db.rows(SCRATCH).await;
        if let RowsDb::Postgres(_) = rows {
            rows.execute(SCRATCH, vec![]).await.expect("scratch table");
        }
        rows
    }

    #[test]
    fn numbered_placeholders_become_dollars_outside_quotes() {
        assert_eq!(
            postgres_placeholders(
                "UPDATE t SET a = ?2, b = '?1', \"c?3\" = ?10 WHERE d = ?1 AND e ? 'k' AND f = 'it''s ?4'"
            ),
            "UPDATE t SET a = $2, b = '?1', \"c?3\" = $10 WHERE d = $1 AND e ? 'k' AND f = 'it''s ?4'"
        );
    }

    async fn values_round_trip_as_text_integers_and_null(engine: Engine) {
        let db = TestDatabase::start(engine);
        let rows = scratch(&db).await;
        let insert = "INSERT INTO scratch (name, count, note, small) VALUES (?1, ?2, ?3, ?4) \
                      ON CONFLICT (name) DO UPDATE SET count = excluded.count";
        let changed = rows
            .execute(
                insert,
                vec!["a".into(), i64::MAX.into(), None::<String>.into(), 7.into()],
            )
            .await
            .expect("insert");
        assert_eq!(changed, 1);
        rows.execute(
            insert,
            vec!["b".into(), (-1).into(), "note".into(), SqlValue::Null],
        )
        .await
        .expect("insert");
        rows.execute(insert, vec!["a".into(), 5.into(), SqlValue::Null, 7.into()])
            .await
            .expect("upsert");

        let found = rows
            .query(
                "SELECT name, count, note, small FROM scratch WHERE count < ?1 ORDER BY name",
                vec![10.into()],
            )
            .await
            .expect("select");
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].text(0).expect("name"), "a");
        assert_eq!(found[0].int(1).expect("count"), 5);
        assert_eq!(found[0].opt_text(2).expect("note"), None);
        assert_eq!(found[0].int(3).expect("small"), 7);
        assert_eq!(found[1].opt_text(2).expect("note"), Some("note"));
        assert_eq!(
            rows.query("SELECT count(*) FROM scratch", vec![])
                .await
                .expect("count")[0]
                .int(0)
                .expect("a count is an integer"),
            2
        );

        let deleted = rows
            .execute("DELETE FROM scratch WHERE name = ?1", vec!["a".into()])
            .await
            .expect("delete");
        assert_eq!(deleted, 1);
    }

    async fn reading_a_column_as_the_wrong_type_is_an_error_not_a_panic(engine: Engine) {
        let db = TestDatabase::start(engine);
        let rows = scratch(&db).await;
        rows.execute(
            "INSERT INTO scratch (name, count) VALUES (?1, ?2)",
            vec!["a".into(), 1.into()],
        )
        .await
        .expect("insert");
        let row = rows
            .query("SELECT name, count, note FROM scratch", vec![])
            .await
            .expect("select")
            .remove(0);
        for error in [
            row.int(0).expect_err("text as an integer"),
            row.text(1).expect_err("an integer as text"),
            row.text(2).expect_err("NULL as text"),
            row.text(3).expect_err("no such column"),
        ] {
            assert!(matches!(error, RowsError::Column { .. }), "{error}");
        }
        assert_eq!(
            row.text(2).expect_err("NULL").to_string(),
            "column 2 of a stored row is NULL, not text"
        );
    }

    async fn a_refused_statement_names_the_engines_error(engine: Engine) {
        let db = TestDatabase::start(engine);
        let rows = scratch(&db).await;
        let error = rows
            .query("SELECT nope FROM scratch", vec![])
            .await
            .expect_err("no such column");
        assert!(!error.is_unavailable(), "{error}");
        match (engine, &error) {
            (Engine::Sqlite, RowsError::Sqlite(_)) => {
                assert!(error.to_string().contains("sandscribe.db"), "{error}");
            }
            (Engine::Postgres, RowsError::Postgres(StorageError::Postgres(_))) => {
                assert_eq!(
                    error.to_string(),
                    "database error: column \"nope\" does not exist"
                );
            }
            _ => panic!("{engine:?}: {error:?}"),
        }
        assert!(error.to_string().contains("nope"), "{error}");
    }

    on_each_engine!(
        values_round_trip_as_text_integers_and_null,
        reading_a_column_as_the_wrong_type_is_an_error_not_a_panic,
        a_refused_statement_names_the_engines_error,
    );

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stopped_postgres_is_reported_as_unavailable() {
        let mut db = TestDatabase::start(Engine::Postgres);
        let rows = scratch(&db).await;
        db.stop_postgres();
        let error = rows
            .query("SELECT count(*) FROM scratch", vec![])
            .await
            .expect_err("the server is stopped");
        assert!(error.is_unavailable(), "{error:?}");
        let RowsDb::Postgres(pg) = &rows else {
            panic!("a PostgreSQL store");
        };
        assert!(!pg.is_reachable());
    }
}
