//! Durable state of the browser workflow: each browser session's wizard state and each
//! user's settings (saved plugin defaults, auto-save), in `web_*` tables of the data
//! directory's `sandscribe.db`.
//!
//! The tables are the web layer's own (the result store's migrations never touch them),
//! created with `IF NOT EXISTS` on first use. Values are JSON text, so adding a field to
//! [`WizardState`] or [`UserSettings`] needs no migration (`serde(default)` fills it in).
//! The connection is opened lazily, so a database problem shows as an error page instead
//! of stopping the server.
//!
//! A session row names the login it belongs to (`owner`) and its tenant, and is only ever
//! found for both ([`super::session`]). Sessions from before they had owners lived in
//! `web_sessions`; that table is dropped, so they are simply gone (their staged files are
//! then held by no session, and the janitor removes them).

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::storage::{LazyDb, LazyDbError, millis, now_ms};

const SCHEMA: &str = "
    DROP TABLE IF EXISTS web_sessions;    -- unbound sessions of earlier versions
    CREATE TABLE IF NOT EXISTS web_browser_sessions (
        id            TEXT PRIMARY KEY,   -- the cookie's random id, made by the server
        owner         TEXT NOT NULL,      -- the login: 'login:<token sha256>', 'key:<sha256>', 'single-user'
        tenant        TEXT NOT NULL,
        state         TEXT NOT NULL,      -- JSON WizardState
        updated_at_ms INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX IF NOT EXISTS web_browser_sessions_owner ON web_browser_sessions (owner);
    CREATE TABLE IF NOT EXISTS web_user_settings (
        tenant   TEXT PRIMARY KEY,
        settings TEXT NOT NULL            -- JSON UserSettings
    ) STRICT;
";

/// Why the web state could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateStoreError {
    #[error("browser sessions: {0}")]
    Db(#[from] LazyDbError),
    #[error("browser sessions: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("stored browser-session state is corrupt: {0}")]
    Corrupt(#[from] serde_json::Error),
}

/// The steps of the workflow, in order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    #[default]
    Plugin,
    File,
    Confirm,
    Progress,
    Results,
}

/// Where the chosen file comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FileSource {
    /// Uploaded through the browser and kept in the staging folder until Start.
    Staged { path: PathBuf },
    /// A file in one of the configured media folders (index, path relative to it).
    Media { folder: usize, path: String },
}

/// The file the user chose, as the confirmation page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChosenFile {
    pub source: FileSource,
    pub name: String,
    pub bytes: u64,
    pub duration_ms: u64,
}

/// One browser session's place in the workflow.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WizardState {
    pub step: Step,
    pub plugin: Option<String>,
    /// The configuration chosen on the plugin step (validated; defaults not filled in).
    pub config: serde_json::Map<String, serde_json::Value>,
    pub file: Option<ChosenFile>,
    /// The job this session started last.
    pub job: Option<Uuid>,
}

/// What a user keeps across sessions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct UserSettings {
    /// Save the plugin configuration as the user's defaults whenever it is accepted.
    pub auto_save: bool,
    /// Saved configuration per plugin id.
    pub defaults: BTreeMap<String, serde_json::Map<String, serde_json::Value>>,
}

/// The web layer's tables in `sandscribe.db`.
#[derive(Clone)]
pub struct StateStore {
    db: LazyDb,
}

impl StateStore {
    /// A store on the database file at `path`; nothing is opened yet.
    pub fn new(path: PathBuf) -> Self {
        Self {
            db: LazyDb::new(path, SCHEMA),
        }
    }

    /// Runs `f` with the connection on a blocking thread.
    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StateStoreError> + Send + 'static,
    ) -> Result<T, StateStoreError> {
        self.db.run(f).await
    }

    /// The first of `ids` that is a session of `owner` and `tenant`, with its state.
    /// Ids the server never issued to this login find nothing.
    pub async fn find_session(
        &self,
        ids: Vec<Uuid>,
        owner: &str,
        tenant: &str,
    ) -> Result<Option<(Uuid, WizardState)>, StateStoreError> {
        if ids.is_empty() {
            return Ok(None);
        }
        let (owner, tenant) = (owner.to_owned(), tenant.to_owned());
        self.with(move |conn| {
            let mut query = conn.prepare_cached(
                "SELECT state FROM web_browser_sessions \
                 WHERE id = ?1 AND owner = ?2 AND tenant = ?3",
            )?;
            for id in ids {
                let text: Option<String> = query
                    .query_row(params![id.to_string(), owner, tenant], |row| row.get(0))
                    .optional()?;
                if let Some(text) = text {
                    return Ok(Some((id, serde_json::from_str(&text)?)));
                }
            }
            Ok(None)
        })
        .await
    }

    /// Makes a new session for `owner` and `tenant`, in its initial state; returns its id.
    pub async fn issue_session(&self, owner: &str, tenant: &str) -> Result<Uuid, StateStoreError> {
        let id = Uuid::new_v4();
        let text = serde_json::to_string(&WizardState::default())?;
        let (owner, tenant) = (owner.to_owned(), tenant.to_owned());
        let now = now_ms();
        self.with(move |conn| {
            conn.execute(
                "INSERT INTO web_browser_sessions (id, owner, tenant, state, updated_at_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id.to_string(), owner, tenant, text, now],
            )?;
            Ok(())
        })
        .await?;
        Ok(id)
    }

    /// Saves a session's state (only ever the owner's own: an id of someone else's
    /// session changes nothing).
    pub async fn save_session(
        &self,
        id: Uuid,
        owner: &str,
        state: &WizardState,
    ) -> Result<(), StateStoreError> {
        let text = serde_json::to_string(state)?;
        let owner = owner.to_owned();
        let now = now_ms();
        self.with(move |conn| {
            conn.execute(
                "UPDATE web_browser_sessions SET state = ?3, updated_at_ms = ?4 \
                 WHERE id = ?1 AND owner = ?2",
                params![id.to_string(), owner, text, now],
            )?;
            Ok(())
        })
        .await
    }

    /// Forgets every session of `owner` (its login ended); returns the staged uploads
    /// they held, for the caller to delete.
    pub async fn drop_sessions(&self, owner: &str) -> Result<Vec<ChosenFile>, StateStoreError> {
        let owner = owner.to_owned();
        self.with(move |conn| {
            let mut query =
                conn.prepare("SELECT state FROM web_browser_sessions WHERE owner = ?1")?;
            let files = query
                .query_map(params![owner], |row| row.get::<_, String>(0))?
                .filter_map(|text| {
                    let state: WizardState = serde_json::from_str(&text.ok()?).ok()?;
                    state.file
                })
                .collect();
            conn.execute(
                "DELETE FROM web_browser_sessions WHERE owner = ?1",
                params![owner],
            )?;
            Ok(files)
        })
        .await
    }

    /// Forgets sessions unused for `idle` and returns the staged uploads the remaining
    /// sessions still hold, so the janitor knows which staged files are abandoned.
    pub async fn sweep_sessions(
        &self,
        idle: Duration,
    ) -> Result<HashSet<PathBuf>, StateStoreError> {
        let cutoff = now_ms().saturating_sub(millis(idle));
        self.with(move |conn| {
            conn.execute(
                "DELETE FROM web_browser_sessions WHERE updated_at_ms < ?1",
                params![cutoff],
            )?;
            let mut query = conn.prepare("SELECT state FROM web_browser_sessions")?;
            let mut held = HashSet::new();
            for text in query.query_map([], |row| row.get::<_, String>(0))? {
                // A row that no longer parses holds nothing worth keeping a file for.
                if let Ok(WizardState {
                    file:
                        Some(ChosenFile {
                            source: FileSource::Staged { path },
                            ..
                        }),
                    ..
                }) = serde_json::from_str(&text?)
                {
                    held.insert(path);
                }
            }
            Ok(held)
        })
        .await
    }

    /// The user's settings (defaults when none were saved).
    pub async fn settings(&self, tenant: &str) -> Result<UserSettings, StateStoreError> {
        let tenant = tenant.to_owned();
        self.with(move |conn| {
            let text: Option<String> = conn
                .query_row(
                    "SELECT settings FROM web_user_settings WHERE tenant = ?1",
                    params![tenant],
                    |row| row.get(0),
                )
                .optional()?;
            Ok(match text {
                Some(text) => serde_json::from_str(&text)?,
                None => UserSettings::default(),
            })
        })
        .await
    }

    pub async fn save_settings(
        &self,
        tenant: &str,
        settings: &UserSettings,
    ) -> Result<(), StateStoreError> {
        let text = serde_json::to_string(settings)?;
        let tenant = tenant.to_owned();
        self.with(move |conn| {
            conn.execute(
                "INSERT INTO web_user_settings (tenant, settings) VALUES (?1, ?2) \
                 ON CONFLICT (tenant) DO UPDATE SET settings = excluded.settings",
                params![tenant, text],
            )?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: &str = "login:aaaa";

    fn staged(dir: &std::path::Path, name: &str) -> WizardState {
        WizardState {
            step: Step::Confirm,
            file: Some(ChosenFile {
                source: FileSource::Staged {
                    path: dir.join(name),
                },
                name: name.into(),
                bytes: 1,
                duration_ms: 1,
            }),
            ..WizardState::default()
        }
    }

    #[tokio::test]
    async fn sweeping_forgets_idle_sessions_and_reports_the_files_the_others_hold() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = StateStore::new(dir.path().join("sandscribe.db"));
        let old = store.issue_session(ALICE, "alice").await.expect("issue");
        let fresh = store.issue_session(ALICE, "alice").await.expect("issue");
        store
            .save_session(old, ALICE, &staged(dir.path(), "old.wav"))
            .await
            .expect("save");
        store
            .with(move |conn| {
                conn.execute(
                    "UPDATE web_browser_sessions SET updated_at_ms = 0 WHERE id = ?1",
                    params![old.to_string()],
                )?;
                Ok(())
            })
            .await
            .expect("age the session");
        store
            .save_session(fresh, ALICE, &staged(dir.path(), "fresh.wav"))
            .await
            .expect("save");
        let held = store
            .sweep_sessions(Duration::from_secs(3600))
            .await
            .expect("sweep");
        assert_eq!(held, HashSet::from([dir.path().join("fresh.wav")]));
        let find = |id| store.find_session(vec![id], ALICE, "alice");
        assert_eq!(find(old).await.expect("read"), None);
        assert_eq!(
            find(fresh).await.expect("read"),
            Some((fresh, staged(dir.path(), "fresh.wav")))
        );
    }

    #[tokio::test]
    async fn a_session_is_found_only_for_the_login_and_tenant_it_was_issued_to() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = StateStore::new(dir.path().join("sandscribe.db"));
        let id = store.issue_session(ALICE, "alice").await.expect("issue");
        store
            .save_session(id, ALICE, &staged(dir.path(), "a.wav"))
            .await
            .expect("save");
        let planted = Uuid::new_v4();
        assert_eq!(
            store
                .find_session(vec![planted, id], ALICE, "alice")
                .await
                .expect("read")
                .map(|(found, _)| found),
            Some(id),
            "a planted id beside the real one changes nothing"
        );
        for (owner, tenant) in [
            ("login:bbbb", "bob"),
            ("login:bbbb", "alice"),
            (ALICE, "bob"),
        ] {
            assert_eq!(
                store
                    .find_session(vec![id], owner, tenant)
                    .await
                    .expect("read"),
                None,
                "{owner} {tenant}"
            );
        }
        // Someone else saving under the id does not touch it.
        store
            .save_session(id, "login:bbbb", &WizardState::default())
            .await
            .expect("save");
        assert_eq!(
            store
                .find_session(vec![id], ALICE, "alice")
                .await
                .expect("read"),
            Some((id, staged(dir.path(), "a.wav")))
        );
        // The login ends: its sessions go, and say which files they held.
        let dropped = store.drop_sessions(ALICE).await.expect("drop");
        assert_eq!(dropped.len(), 1);
        assert_eq!(
            store
                .find_session(vec![id], ALICE, "alice")
                .await
                .expect("read"),
            None
        );
    }

    #[tokio::test]
    async fn sessions_of_the_unbound_table_are_discarded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sandscribe.db");
        {
            let old = Connection::open(&path).expect("open");
            old.execute_batch(
                "CREATE TABLE web_sessions (id TEXT PRIMARY KEY, state TEXT NOT NULL, \
                 updated_at_ms INTEGER NOT NULL) STRICT; \
                 INSERT INTO web_sessions VALUES ('x', '{}', 0);",
            )
            .expect("an old database");
        }
        let store = StateStore::new(path.clone());
        let id = store.issue_session(ALICE, "alice").await.expect("issue");
        assert!(
            store
                .find_session(vec![id], ALICE, "alice")
                .await
                .expect("read")
                .is_some()
        );
        let tables: i64 = Connection::open(&path)
            .expect("open")
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 'web_sessions'",
                [],
                |row| row.get(0),
            )
            .expect("count");
        assert_eq!(tables, 0);
    }

    #[tokio::test]
    async fn session_state_and_settings_survive_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sandscribe.db");
        let mut state = WizardState {
            step: Step::Confirm,
            plugin: Some("echo".into()),
            ..WizardState::default()
        };
        state.config.insert("prefix".into(), "<b>".into());
        let mut settings = UserSettings {
            auto_save: true,
            ..UserSettings::default()
        };
        settings
            .defaults
            .insert("echo".into(), state.config.clone());
        let id = {
            let store = StateStore::new(path.clone());
            let id = store.issue_session(ALICE, "t").await.expect("issue");
            store.save_session(id, ALICE, &state).await.expect("save");
            store.save_settings("t", &settings).await.expect("save");
            id
        };
        let store = StateStore::new(path);
        assert_eq!(
            store
                .find_session(vec![id], ALICE, "t")
                .await
                .expect("read"),
            Some((id, state))
        );
        assert_eq!(store.settings("t").await.expect("read"), settings);
        assert_eq!(
            store.settings("other").await.expect("read"),
            UserSettings::default()
        );
    }
}
