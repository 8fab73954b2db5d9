//! The stores on PostgreSQL: the one database every node of a deployment shares.
//!
//! The same traits as the embedded SQLite file ([`ResultStore`](super::ResultStore),
//! [`JobLedger`](super::JobLedger)), plus what only several nodes need: the queue, the
//! event log and the node leases ([`queue`]). One pool of connections serves every store;
//! it reconnects by itself after the database restarts, so an outage fails the requests
//! made during it (with [`StorageError::Unavailable`]) and nothing else.
//!
//! The store traits are blocking, as SQLite's are; their PostgreSQL implementations run
//! the async driver on the calling thread with [`PgDatabase::blocking`], which callers
//! already keep off the async workers (`spawn_blocking`).

mod ledger;
pub mod listener;
mod migrations;
pub mod queue;
mod results;

use std::future::Future;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use tokio_postgres::NoTls;

use super::StorageError;

/// Connections one node holds at most: its running jobs' writes, the API's reads.
const POOL_SIZE: usize = 16;

/// How long a request waits for a connection (or to make one) before it is told the
/// database is unavailable, instead of hanging while PostgreSQL is down.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The shared database: a pool of connections plus the settings to open more (the
/// listener that waits for notifications holds its own).
#[derive(Clone)]
pub struct PgDatabase {
    pool: Pool,
    config: tokio_postgres::Config,
    /// The URL with any password replaced, for messages.
    shown: String,
    /// Whether the last attempt to get a connection worked (for `/healthz`).
    reachable: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl std::fmt::Debug for PgDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgDatabase")
            .field("url", &self.shown)
            .finish()
    }
}

impl PgDatabase {
    /// Connects to `url` and brings the schema up to date (safely when several nodes
    /// start at once: the migrations run under an advisory lock).
    pub async fn connect(url: &str) -> Result<Self, StorageError> {
        let shown = redact_url(url);
        let mut config: tokio_postgres::Config = url.parse().map_err(|e| StorageError::BadUrl {
            url: shown.clone(),
            reason: format!("{e}"),
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        config.application_name("sandscribe");
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .wait_timeout(Some(CONNECT_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| StorageError::Unavailable(e.to_string()))?;
        let database = Self {
            pool,
            config,
            shown,
            reachable: std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true)),
        };
        let mut client = database.client().await?;
        migrations::migrate(&mut client).await?;
        Ok(database)
    }

    /// A connection from the pool.
    pub async fn client(&self) -> Result<Object, StorageError> {
        let got = self.pool.get().await;
        self.reachable
            .store(got.is_ok(), std::sync::atomic::Ordering::Relaxed);
        got.map_err(|e| {
            StorageError::Unavailable(format!("cannot reach the database {}: {e}", self.shown))
        })
    }

    /// Whether the database answered the last time a connection was needed.
    pub fn is_reachable(&self) -> bool {
        self.reachable.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Records that the database failed a request (a dropped connection is only noticed
    /// when it is used).
    pub fn note_error(&self, error: &StorageError) {
        if error.is_unavailable() {
            self.reachable
                .store(false, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// The connection settings, for a connection of its own (the notification listener).
    pub fn connect_config(&self) -> &tokio_postgres::Config {
        &self.config
    }

    /// Whether the database answers now (for `/healthz`).
    pub async fn ping(&self) -> bool {
        match self.client().await {
            Ok(client) => client.simple_query("SELECT 1").await.is_ok(),
            Err(_) => false,
        }
    }

    /// Runs async database work from blocking code (the store traits' callers run on
    /// blocking threads). Outside a multi-threaded tokio runtime it reports an error
    /// instead of panicking.
    pub fn blocking<T>(
        &self,
        work: impl Future<Output = Result<T, StorageError>>,
    ) -> Result<T, StorageError> {
        let handle = tokio::runtime::Handle::try_current().map_err(|_| {
            StorageError::Unavailable("the PostgreSQL stores need the server's runtime".into())
        })?;
        if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread {
            return Err(StorageError::Unavailable(
                "the PostgreSQL stores need a multi-threaded runtime".into(),
            ));
        }
        tokio::task::block_in_place(|| handle.block_on(work))
    }
}

/// `url` with its password (if any) replaced by `***`, safe to log and show.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let Some((credentials, host)) = authority.rsplit_once('@') else {
        return url.to_owned();
    };
    match credentials.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod redact_tests {
    use super::redact_url;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact_url("postgresql://ann:s3cr3t@db:5432/x"),
            "postgresql://ann:***@db:5432/x"
        );
        assert_eq!(redact_url("postgresql://ann@db/x"), "postgresql://ann@db/x");
        assert_eq!(redact_url("not a url"), "not a url");
    }
}
