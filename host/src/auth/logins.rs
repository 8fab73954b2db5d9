//! Browser logins, kept in the `web_logins` table of the data directory's `sandscribe.db`
//! (or of the PostgreSQL database a cluster's nodes share, so a login made on one node
//! holds on every node) so that a browser stays logged in when the server restarts.
//!
//! The browser's cookie holds a random token; the table holds only the token's sha256,
//! so a copy of the database opens no one's session. Each row also names the API key
//! that made the login (by the sha256 the config lists) and the tenant and role it
//! granted: [`super::Access`] honours a login only while that key is still configured
//! to grant the same. A login unused for [`IDLE_EXPIRY`] lapses.
//!
//! One copy of the logic runs on either engine through [`RowsDb`]. On SQLite, like the
//! web layer's other tables, this one is created with `IF NOT EXISTS` on first use (the
//! result store's migrations never touch it), on a [`LazyDb`] of its own: a database
//! problem fails the requests that need a login check, not startup. On PostgreSQL the
//! table comes with the migrations.

use std::path::PathBuf;
use std::time::Duration;

use super::{Caller, Role};
use crate::digest::sha256_hex;
use crate::storage::{LazyDb, PgDatabase, Row, RowsDb, RowsError, millis, now_ms};

/// How long a login lasts without being used. Long enough that a regular user is not
/// asked for the key every week; short enough that a forgotten browser (a shared
/// machine, a lost laptop) does not stay logged in for good.
pub const IDLE_EXPIRY: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// How stale a login's `last_seen` may get before a request refreshes it: at most one
/// write an hour per browser instead of one per request, at the cost of the expiry
/// being up to an hour early.
const LAST_SEEN_REFRESH: Duration = Duration::from_secs(60 * 60);

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS web_logins (
        token_sha256  TEXT PRIMARY KEY,   -- hex sha256 of the cookie's token, never the token
        key_sha256    TEXT NOT NULL,      -- the configured sha256 of the key that logged in
        tenant        TEXT NOT NULL,
        role          TEXT NOT NULL,      -- 'admin' or 'user'
        created_at_ms INTEGER NOT NULL,
        last_seen_ms  INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX IF NOT EXISTS web_logins_last_seen ON web_logins (last_seen_ms);
";

/// Why a browser login could not be stored or checked.
#[derive(Debug, thiserror::Error)]
pub enum LoginStoreError {
    #[error("browser logins: {0}")]
    Db(#[from] RowsError),
    #[error("a stored browser login has an unknown role {0:?}")]
    UnknownRole(String),
}

/// A live login, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLogin {
    /// The configured sha256 of the API key that made the login.
    pub key_sha256: String,
    /// The tenant and role the key granted at login.
    pub caller: Caller,
    pub created_at_ms: i64,
    pub last_seen_ms: i64,
}

/// The `web_logins` table of one database file, or of the shared PostgreSQL database.
#[derive(Clone)]
pub struct LoginStore {
    db: RowsDb,
}

impl LoginStore {
    /// A store on the database file at `path`; nothing is opened until first use.
    pub fn new(path: PathBuf) -> Self {
        Self {
            db: RowsDb::Sqlite(LazyDb::new(path, SCHEMA)),
        }
    }

    /// A store in the database every node shares; the table is the migrations'.
    pub fn postgres(db: PgDatabase) -> Self {
        Self {
            db: RowsDb::postgres(db),
        }
    }

    /// Records a new login granted by the key with configured hash `key_sha256`; returns
    /// the token for the browser's cookie. Lapsed logins are swept out on the way.
    pub async fn create(
        &self,
        key_sha256: &str,
        caller: &Caller,
    ) -> Result<String, LoginStoreError> {
        let token = new_token();
        insert(&self.db, &sha256_hex(&token), key_sha256, caller, now_ms()).await?;
        Ok(token)
    }

    /// The live login a cookie token names, refreshing when it was last used; `None`
    /// when the token is unknown or its login has lapsed.
    pub async fn find(&self, token: &str) -> Result<Option<StoredLogin>, LoginStoreError> {
        // Anything else in the cookie was never ours: no need to ask the database.
        if !is_well_formed(token) {
            return Ok(None);
        }
        let row = find(&self.db, &sha256_hex(token), now_ms()).await?;
        row.map(StoredRow::into_login).transpose()
    }

    /// Ends the login a cookie token names (nothing happens for an unknown token).
    pub async fn delete(&self, token: &str) -> Result<(), LoginStoreError> {
        self.db
            .execute(
                "DELETE FROM web_logins WHERE token_sha256 = ?1",
                vec![sha256_hex(token).into()],
            )
            .await?;
        Ok(())
    }
}

/// A cookie token: two v4 UUIDs' worth (244 bits) from the operating system's CSPRNG,
/// as hex.
fn new_token() -> String {
    let mut token = uuid::Uuid::new_v4().simple().to_string();
    token.push_str(&uuid::Uuid::new_v4().simple().to_string());
    token
}

/// Whether `token` looks like one [`new_token`] makes.
fn is_well_formed(token: &str) -> bool {
    token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit())
}

async fn insert(
    db: &RowsDb,
    token_sha256: &str,
    key_sha256: &str,
    caller: &Caller,
    now: i64,
) -> Result<(), RowsError> {
    db.execute(
        "DELETE FROM web_logins WHERE last_seen_ms < ?1",
        vec![now.saturating_sub(millis(IDLE_EXPIRY)).into()],
    )
    .await?;
    db.execute(
        "INSERT INTO web_logins (token_sha256, key_sha256, tenant, role, created_at_ms, \
         last_seen_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        vec![
            token_sha256.into(),
            key_sha256.into(),
            caller.tenant.as_str().into(),
            caller.role.as_str().into(),
            now.into(),
        ],
    )
    .await?;
    Ok(())
}

/// A row as read, before its role is checked.
struct StoredRow {
    key_sha256: String,
    tenant: String,
    role: String,
    created_at_ms: i64,
    last_seen_ms: i64,
}

impl StoredRow {
    /// The columns `key_sha256, tenant, role, created_at_ms, last_seen_ms`, in that order.
    fn read(row: &Row) -> Result<Self, RowsError> {
        Ok(Self {
            key_sha256: row.text(0)?.to_owned(),
            tenant: row.text(1)?.to_owned(),
            role: row.text(2)?.to_owned(),
            created_at_ms: row.int(3)?,
            last_seen_ms: row.int(4)?,
        })
    }

    fn into_login(self) -> Result<StoredLogin, LoginStoreError> {
        let role = Role::parse(&self.role).ok_or(LoginStoreError::UnknownRole(self.role))?;
        Ok(StoredLogin {
            key_sha256: self.key_sha256,
            caller: Caller {
                tenant: self.tenant,
                role,
            },
            created_at_ms: self.created_at_ms,
            last_seen_ms: self.last_seen_ms,
        })
    }
}

async fn find(db: &RowsDb, token_sha256: &str, now: i64) -> Result<Option<StoredRow>, RowsError> {
    let rows = db
        .query(
            "SELECT key_sha256, tenant, role, created_at_ms, last_seen_ms \
             FROM web_logins WHERE token_sha256 = ?1",
            vec![token_sha256.into()],
        )
        .await?;
    let Some(mut row) = rows.first().map(StoredRow::read).transpose()? else {
        return Ok(None);
    };
    let idle = now.saturating_sub(row.last_seen_ms);
    if idle > millis(IDLE_EXPIRY) {
        db.execute(
            "DELETE FROM web_logins WHERE token_sha256 = ?1",
            vec![token_sha256.into()],
        )
        .await?;
        return Ok(None);
    }
    if idle > millis(LAST_SEEN_REFRESH) {
        db.execute(
            "UPDATE web_logins SET last_seen_ms = ?2 WHERE token_sha256 = ?1",
            vec![token_sha256.into(), now.into()],
        )
        .await?;
        row.last_seen_ms = now;
    }
    Ok(Some(row))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::rows::testing::{Engine, TestDatabase, on_each_engine};

    const HOUR_MS: i64 = 60 * 60 * 1000;
    const DAY_MS: i64 = 24 * HOUR_MS;

    fn alice() -> Caller {
        Caller {
            tenant: "alice".into(),
            role: Role::User,
        }
    }

    async fn open_store(db: &TestDatabase) -> LoginStore {
        db.open(LoginStore::new, LoginStore::postgres).await
    }

    async fn only_the_tokens_hash_is_stored_and_the_login_survives_reopening(engine: Engine) {
        let db = TestDatabase::start(engine);
        let store = open_store(&db).await;
        let token = store
            .create("k".repeat(64).as_str(), &alice())
            .await
            .expect("create");
        assert!(is_well_formed(&token), "{token}");

        let rows = store
            .db
            .query(
                "SELECT token_sha256, token_sha256 || key_sha256 || tenant || role \
                 FROM web_logins",
                vec![],
            )
            .await
            .expect("read the table");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].text(0).expect("hash"), sha256_hex(&token));
        let everything = rows[0].text(1).expect("every text column");
        assert!(!everything.contains(&token), "the token itself is stored");

        let reopened = open_store(&db).await;
        let login = reopened.find(&token).await.expect("find").expect("live");
        assert_eq!(login.caller, alice());
        assert_eq!(login.key_sha256, "k".repeat(64));
        assert_eq!(reopened.find("not-a-token").await.expect("find"), None);
        reopened.delete(&token).await.expect("delete");
        assert_eq!(reopened.find(&token).await.expect("find"), None);
    }

    async fn a_login_lapses_after_the_idle_expiry_and_use_keeps_it_alive(engine: Engine) {
        let test_db = TestDatabase::start(engine);
        let db = &open_store(&test_db).await.db;
        let start = 1_000 * DAY_MS;
        let expiry = millis(IDLE_EXPIRY);
        insert(db, "used", "key", &alice(), start)
            .await
            .expect("insert");
        insert(db, "idle", "key", &alice(), start)
            .await
            .expect("insert");

        // Used within the hour: no write; later: last_seen moves on.
        let row = find(db, "used", start + HOUR_MS / 2).await.expect("find");
        assert_eq!(row.map(|r| r.last_seen_ms), Some(start));
        let used_at = start + expiry - DAY_MS;
        let row = find(db, "used", used_at).await.expect("find");
        assert_eq!(row.map(|r| r.last_seen_ms), Some(used_at));

        let later = start + expiry + DAY_MS;
        assert!(find(db, "idle", later).await.expect("find").is_none());
        assert!(find(db, "used", later).await.expect("find").is_some());
        let count = async || -> i64 {
            db.query("SELECT count(*) FROM web_logins", vec![])
                .await
                .expect("count")[0]
                .int(0)
                .expect("a count")
        };
        assert_eq!(count().await, 1, "the lapsed login's row is gone");

        // A new login sweeps out every lapsed one.
        let much_later = later + 2 * expiry;
        insert(db, "new", "key", &alice(), much_later)
            .await
            .expect("insert");
        assert_eq!(count().await, 1);
    }

    async fn a_stored_login_with_an_unknown_role_is_an_error(engine: Engine) {
        let db = TestDatabase::start(engine);
        let store = open_store(&db).await;
        let token = store.create("key", &alice()).await.expect("create");
        store
            .db
            .execute("UPDATE web_logins SET role = 'root'", vec![])
            .await
            .expect("edit from outside");
        let error = store.find(&token).await.expect_err("unknown role");
        assert_eq!(
            error.to_string(),
            "a stored browser login has an unknown role \"root\""
        );
    }

    on_each_engine!(
        only_the_tokens_hash_is_stored_and_the_login_survives_reopening,
        a_login_lapses_after_the_idle_expiry_and_use_keeps_it_alive,
        a_stored_login_with_an_unknown_role_is_an_error,
    );
}
