//! Browser logins, kept in the `web_logins` table of the data directory's `sandscribe.db`
//! so that a browser stays logged in when the server restarts.
//!
//! The browser's cookie holds a random token; the table holds only the token's sha256,
//! so a copy of the database opens no one's session. Each row also names the API key
//! that made the login (by the sha256 the config lists) and the tenant and role it
//! granted: [`super::Access`] honours a login only while that key is still configured
//! to grant the same. A login unused for [`IDLE_EXPIRY`] lapses.
//!
//! Like the web layer's other tables, this one is created with `IF NOT EXISTS` on first
//! use (the result store's migrations never touch it), on a [`LazyDb`] of its own: a
//! database problem fails the requests that need a login check, not startup.

use std::path::PathBuf;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use super::{Caller, Role};
use crate::digest::sha256_hex;
use crate::storage::{LazyDb, LazyDbError, millis, now_ms};

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
    Db(#[from] LazyDbError),
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

/// The `web_logins` table of one database file.
#[derive(Clone)]
pub struct LoginStore {
    db: LazyDb,
}

impl LoginStore {
    /// A store on the database file at `path`; nothing is opened until first use.
    pub fn new(path: PathBuf) -> Self {
        Self {
            db: LazyDb::new(path, SCHEMA),
        }
    }

    /// Runs `f` with the connection on a blocking thread.
    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, LoginStoreError> {
        let sql = self.db.sql_error();
        self.db
            .run(move |conn| f(conn).map_err(|e| LoginStoreError::from(sql(e))))
            .await
    }

    /// Records a new login granted by the key with configured hash `key_sha256`; returns
    /// the token for the browser's cookie. Lapsed logins are swept out on the way.
    pub async fn create(
        &self,
        key_sha256: &str,
        caller: &Caller,
    ) -> Result<String, LoginStoreError> {
        let token = new_token();
        let token_sha256 = sha256_hex(&token);
        let key_sha256 = key_sha256.to_owned();
        let caller = caller.clone();
        self.with(move |conn| insert(conn, &token_sha256, &key_sha256, &caller, now_ms()))
            .await?;
        Ok(token)
    }

    /// The live login a cookie token names, refreshing when it was last used; `None`
    /// when the token is unknown or its login has lapsed.
    pub async fn find(&self, token: &str) -> Result<Option<StoredLogin>, LoginStoreError> {
        // Anything else in the cookie was never ours: no need to ask the database.
        if !is_well_formed(token) {
            return Ok(None);
        }
        let token_sha256 = sha256_hex(token);
        let row = self
            .with(move |conn| find(conn, &token_sha256, now_ms()))
            .await?;
        row.map(StoredRow::into_login).transpose()
    }

    /// Ends the login a cookie token names (nothing happens for an unknown token).
    pub async fn delete(&self, token: &str) -> Result<(), LoginStoreError> {
        let token_sha256 = sha256_hex(token);
        self.with(move |conn| {
            conn.execute(
                "DELETE FROM web_logins WHERE token_sha256 = ?1",
                params![token_sha256],
            )
            .map(drop)
        })
        .await
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

fn insert(
    conn: &Connection,
    token_sha256: &str,
    key_sha256: &str,
    caller: &Caller,
    now: i64,
) -> rusqlite::Result<()> {
    conn.execute(
        "DELETE FROM web_logins WHERE last_seen_ms < ?1",
        params![now.saturating_sub(millis(IDLE_EXPIRY))],
    )?;
    conn.execute(
        "INSERT INTO web_logins (token_sha256, key_sha256, tenant, role, created_at_ms, \
         last_seen_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        params![
            token_sha256,
            key_sha256,
            caller.tenant,
            caller.role.as_str(),
            now
        ],
    )?;
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

fn find(conn: &Connection, token_sha256: &str, now: i64) -> rusqlite::Result<Option<StoredRow>> {
    let row = conn
        .query_row(
            "SELECT key_sha256, tenant, role, created_at_ms, last_seen_ms \
             FROM web_logins WHERE token_sha256 = ?1",
            params![token_sha256],
            |row| {
                Ok(StoredRow {
                    key_sha256: row.get(0)?,
                    tenant: row.get(1)?,
                    role: row.get(2)?,
                    created_at_ms: row.get(3)?,
                    last_seen_ms: row.get(4)?,
                })
            },
        )
        .optional()?;
    let Some(mut row) = row else {
        return Ok(None);
    };
    let idle = now.saturating_sub(row.last_seen_ms);
    if idle > millis(IDLE_EXPIRY) {
        conn.execute(
            "DELETE FROM web_logins WHERE token_sha256 = ?1",
            params![token_sha256],
        )?;
        return Ok(None);
    }
    if idle > millis(LAST_SEEN_REFRESH) {
        conn.execute(
            "UPDATE web_logins SET last_seen_ms = ?2 WHERE token_sha256 = ?1",
            params![token_sha256, now],
        )?;
        row.last_seen_ms = now;
    }
    Ok(Some(row))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR_MS: i64 = 60 * 60 * 1000;
    const DAY_MS: i64 = 24 * HOUR_MS;

    fn alice() -> Caller {
        Caller {
            tenant: "alice".into(),
            role: Role::User,
        }
    }

    #[tokio::test]
    async fn only_the_tokens_hash_is_stored_and_the_login_survives_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sandscribe.db");
        let token = LoginStore::new(path.clone())
            .create("k".repeat(64).as_str(), &alice())
            .await
            .expect("create");
        assert!(is_well_formed(&token), "{token}");

        let raw = Connection::open(&path).expect("open");
        let (stored_hash, everything): (String, String) = raw
            .query_row(
                "SELECT token_sha256, token_sha256 || key_sha256 || tenant || role FROM web_logins",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .expect("one row");
        assert_eq!(stored_hash, sha256_hex(&token));
        assert!(!everything.contains(&token), "the token itself is stored");

        let reopened = LoginStore::new(path);
        let login = reopened.find(&token).await.expect("find").expect("live");
        assert_eq!(login.caller, alice());
        assert_eq!(login.key_sha256, "k".repeat(64));
        assert_eq!(reopened.find("not-a-token").await.expect("find"), None);
        reopened.delete(&token).await.expect("delete");
        assert_eq!(reopened.find(&token).await.expect("find"), None);
    }

    #[test]
    fn a_login_lapses_after_the_idle_expiry_and_use_keeps_it_alive() {
        let conn = Connection::open_in_memory().expect("open");
        conn.execute_batch(SCHEMA).expect("schema");
        let start = 1_000 * DAY_MS;
        let expiry = millis(IDLE_EXPIRY);
        insert(&conn, "used", "key", &alice(), start).expect("insert");
        insert(&conn, "idle", "key", &alice(), start).expect("insert");

        // Used within the hour: no write; later: last_seen moves on.
        let row = find(&conn, "used", start + HOUR_MS / 2).expect("find");
        assert_eq!(row.map(|r| r.last_seen_ms), Some(start));
        let used_at = start + expiry - DAY_MS;
        let row = find(&conn, "used", used_at).expect("find");
        assert_eq!(row.map(|r| r.last_seen_ms), Some(used_at));

        let later = start + expiry + DAY_MS;
        assert!(find(&conn, "idle", later).expect("find").is_none());
        assert!(find(&conn, "used", later).expect("find").is_some());
        let count = |conn: &Connection| -> i64 {
            conn.query_row("SELECT count(*) FROM web_logins", [], |row| row.get(0))
                .expect("count")
        };
        assert_eq!(count(&conn), 1, "the lapsed login's row is gone");

        // A new login sweeps out every lapsed one.
        let much_later = later + 2 * expiry;
        insert(&conn, "new", "key", &alice(), much_later).expect("insert");
        assert_eq!(count(&conn), 1);
    }
}
