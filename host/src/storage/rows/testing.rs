//! Runs one test body on each engine a [`RowsDb`](super::RowsDb) store supports, so the
//! SQLite and PostgreSQL behaviour of a store is specified once.
//!
//! A test is an `async fn name(engine: Engine)` that builds its database with
//! [`TestDatabase::start`]; [`on_each_engine!`] then declares `sqlite::name` and
//! `postgres::name`, which run it on each engine.

use std::path::{Path, PathBuf};

use super::RowsDb;
use crate::storage::{LazyDb, PgDatabase};

/// Which database a test's store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// A `sandscribe.db` file in the test's temporary folder.
    Sqlite,
    /// A private PostgreSQL server for the test, with the migrations applied.
    Postgres,
}

/// One test's database: a temporary folder (the SQLite file lives there, and tests stage
/// files in it) and, for [`Engine::Postgres`], a private server stopped when dropped.
pub struct TestDatabase {
    dir: tempfile::TempDir,
    server: Option<sandscribe_e2e::Postgres>,
}

impl TestDatabase {
    /// A fresh, empty database on `engine`.
    pub fn start(engine: Engine) -> Self {
        Self {
            dir: tempfile::tempdir().expect("tempdir"),
            server: (engine == Engine::Postgres).then(sandscribe_e2e::Postgres::start),
        }
    }

    /// The test's temporary folder.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The SQLite file's path (on either engine: nothing is created there on PostgreSQL).
    pub fn sqlite_path(&self) -> PathBuf {
        self.dir.path().join(crate::storage::DB_FILE_NAME)
    }

    /// A store opened afresh: `sqlite` on the file's path, or `postgres` on a new pool
    /// (which applies the migrations). Opening twice is how a test reopens the database.
    pub async fn open<S>(
        &self,
        sqlite: impl FnOnce(PathBuf) -> S,
        postgres: impl FnOnce(PgDatabase) -> S,
    ) -> S {
        match &self.server {
            None => sqlite(self.sqlite_path()),
            Some(server) => postgres(
                PgDatabase::connect(&server.url())
                    .await
                    .expect("connect to the test's PostgreSQL"),
            ),
        }
    }

    /// A bare runner; `sqlite_schema` runs when the SQLite file opens (PostgreSQL's schema
    /// is the migrations').
    pub async fn rows(&self, sqlite_schema: &'static str) -> RowsDb {
        self.open(
            |path| RowsDb::Sqlite(LazyDb::new(path, sqlite_schema)),
            RowsDb::postgres,
        )
        .await
    }

    /// Stops the PostgreSQL server, to see how an outage is reported.
    pub fn stop_postgres(&mut self) {
        if let Some(server) = &mut self.server {
            server.stop();
        }
    }
}

/// Declares `sqlite::$test` and `postgres::$test` for each `async fn $test(Engine)`
/// named. Both run on a multi-threaded runtime, as the PostgreSQL pool needs.
macro_rules! on_each_engine {
    ($($test:ident),+ $(,)?) => {
        $crate::storage::rows::testing::on_each_engine!(@engine sqlite Sqlite $($test),+);
        $crate::storage::rows::testing::on_each_engine!(@engine postgres Postgres $($test),+);
    };
    (@engine $module:ident $engine:ident $($test:ident),+) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test($crate::storage::rows::testing::Engine::$engine).await;
                }
            )+
        }
    };
}

pub(crate) use on_each_engine;
