//! Durable state of the browser workflow: each browser session's wizard state and each
//! user's settings (saved plugin defaults, auto-save), in `web_*` tables: of the data
//! directory's `sandscribe.db`, or of the PostgreSQL database a cluster's nodes share
//! (so a browser may be answered by any node). One copy of the logic runs on either
//! engine through [`RowsDb`].
//!
//! On SQLite the tables are the web layer's own (the result store's migrations never
//! touch them), created with `IF NOT EXISTS` on first use, and the connection is opened
//! lazily, so a database problem shows as an error page instead of stopping the server.
//! On PostgreSQL they come with the migrations. Values are JSON text, so adding a field to
//! [`WizardState`] or [`UserSettings`] needs no migration (`serde(default)` fills it in).
//!
//! A session row names the login it belongs to (`owner`) and its tenant, and is only ever
//! found for both ([`super::session`]). Sessions from before they had owners lived in
//! `web_sessions` (SQLite only); that table is dropped, so they are simply gone (their
//! staged files are then held by no session, and the janitor removes them).

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::storage::{LazyDb, PgDatabase, RowsDb, RowsError, millis, now_ms};

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
    Db(#[from] RowsError),
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

/// The web layer's tables, in `sandscribe.db` or in the shared PostgreSQL database.
#[derive(Clone)]
pub struct StateStore {
    db: RowsDb,
}

impl StateStore {
    /// A store on the database file at `path`; nothing is opened yet.
    pub fn new(path: PathBuf) -> Self {
        Self {
            db: RowsDb::Sqlite(LazyDb::new(path, SCHEMA)),
        }
    }

    /// A store in the database every node shares, so a browser's session and its user's
    /// settings follow it to whichever node answers. The tables are the migrations'.
    pub fn postgres(db: PgDatabase) -> Self {
        Self {
            db: RowsDb::postgres(db),
        }
    }

    /// The first of `ids` that is a session of `owner` and `tenant`, with its state.
    /// Ids the server never issued to this login find nothing.
    pub async fn find_session(
        &self,
        ids: Vec<Uuid>,
        owner: &str,
        tenant: &str,
    ) -> Result<Option<(Uuid, WizardState)>, StateStoreError> {
        for id in ids {
            let rows = self
                .db
                .query(
                    "SELECT state FROM web_browser_sessions \
                     WHERE id = ?1 AND owner = ?2 AND tenant = ?3",
                    vec![id.to_string().into(), owner.into(), tenant.into()],
                )
                .await?;
            if let Some(row) = rows.first() {
                return Ok(Some((id, serde_json::from_str(row.text(0)?)?)));
            }
        }
        Ok(None)
    }

    /// Makes a new session for `owner` and `tenant`, in its initial state; returns its id.
    pub async fn issue_session(&self, owner: &str, tenant: &str) -> Result<Uuid, StateStoreError> {
        let id = Uuid::new_v4();
        let text = serde_json::to_string(&WizardState::default())?;
        self.db
            .execute(
                "INSERT INTO web_browser_sessions (id, owner, tenant, state, updated_at_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                vec![
                    id.to_string().into(),
                    owner.into(),
                    tenant.into(),
                    text.into(),
                    now_ms().into(),
                ],
            )
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
        self.db
            .execute(
                "UPDATE web_browser_sessions SET state = ?3, updated_at_ms = ?4 \
                 WHERE id = ?1 AND owner = ?2",
                vec![
                    id.to_string().into(),
                    owner.into(),
                    text.into(),
                    now_ms().into(),
                ],
            )
            .await?;
        Ok(())
    }

    /// Forgets every session of `owner` (its login ended); returns the staged uploads
    /// they held, for the caller to delete.
    pub async fn drop_sessions(&self, owner: &str) -> Result<Vec<ChosenFile>, StateStoreError> {
        let rows = self
            .db
            .query(
                "SELECT state FROM web_browser_sessions WHERE owner = ?1",
                vec![owner.into()],
            )
            .await?;
        let files = rows
            .iter()
            .filter_map(|row| {
                let state: WizardState = serde_json::from_str(row.text(0).ok()?).ok()?;
                state.file
            })
            .collect();
        self.db
            .execute(
                "DELETE FROM web_browser_sessions WHERE owner = ?1",
                vec![owner.into()],
            )
            .await?;
        Ok(files)
    }

    /// Forgets sessions unused for `idle` and returns the staged uploads the remaining
    /// sessions still hold, so the janitor knows which staged files are abandoned.
    pub async fn sweep_sessions(
        &self,
        idle: Duration,
    ) -> Result<HashSet<PathBuf>, StateStoreError> {
        let cutoff = now_ms().saturating_sub(millis(idle));
        self.db
            .execute(
                "DELETE FROM web_browser_sessions WHERE updated_at_ms < ?1",
                vec![cutoff.into()],
            )
            .await?;
        let rows = self
            .db
            .query("SELECT state FROM web_browser_sessions", vec![])
            .await?;
        let mut held = HashSet::new();
        for row in &rows {
            // A row that no longer parses holds nothing worth keeping a file for.
            if let Ok(WizardState {
                file:
                    Some(ChosenFile {
                        source: FileSource::Staged { path },
                        ..
                    }),
                ..
            }) = serde_json::from_str(row.text(0)?)
            {
                held.insert(path);
            }
        }
        Ok(held)
    }

    /// The user's settings (defaults when none were saved).
    pub async fn settings(&self, tenant: &str) -> Result<UserSettings, StateStoreError> {
        let rows = self
            .db
            .query(
                "SELECT settings FROM web_user_settings WHERE tenant = ?1",
                vec![tenant.into()],
            )
            .await?;
        Ok(match rows.first() {
            Some(row) => serde_json::from_str(row.text(0)?)?,
            None => UserSettings::default(),
        })
    }

    pub async fn save_settings(
        &self,
        tenant: &str,
        settings: &UserSettings,
    ) -> Result<(), StateStoreError> {
        let text = serde_json::to_string(settings)?;
        self.db
            .execute(
                "INSERT INTO web_user_settings (tenant, settings) VALUES (?1, ?2) \
                 ON CONFLICT (tenant) DO UPDATE SET settings = excluded.settings",
                vec![tenant.into(), text.into()],
            )
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::*;
    use crate::storage::rows::testing::{Engine, TestDatabase, on_each_engine};

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

    async fn open_store(db: &TestDatabase) -> StateStore {
        db.open(StateStore::new, StateStore::postgres).await
    }

    async fn sweeping_forgets_idle_sessions_and_reports_the_files_the_others_hold(engine: Engine) {
        let db = TestDatabase::start(engine);
        let dir = db.dir();
        let store = open_store(&db).await;
        let old = store.issue_session(ALICE, "alice").await.expect("issue");
        let fresh = store.issue_session(ALICE, "alice").await.expect("issue");
        store
            .save_session(old, ALICE, &staged(dir, "old.wav"))
            .await
            .expect("save");
        store
            .db
            .execute(
                "UPDATE web_browser_sessions SET updated_at_ms = 0 WHERE id = ?1",
                vec![old.to_string().into()],
            )
            .await
            .expect("age the session");
        store
            .save_session(fresh, ALICE, &staged(dir, "fresh.wav"))
            .await
            .expect("save");
        let held = store
            .sweep_sessions(Duration::from_secs(3600))
            .await
            .expect("sweep");
        assert_eq!(held, HashSet::from([dir.join("fresh.wav")]));
        let find = |id| store.find_session(vec![id], ALICE, "alice");
        assert_eq!(find(old).await.expect("read"), None);
        assert_eq!(
            find(fresh).await.expect("read"),
            Some((fresh, staged(dir, "fresh.wav")))
        );
    }

    async fn a_session_is_found_only_for_the_login_and_tenant_it_was_issued_to(engine: Engine) {
        let db = TestDatabase::start(engine);
        let dir = db.dir();
        let store = open_store(&db).await;
        let id = store.issue_session(ALICE, "alice").await.expect("issue");
        store
            .save_session(id, ALICE, &staged(dir, "a.wav"))
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
            Some((id, staged(dir, "a.wav")))
        );
        // The login ends: its sessions go, and say which files they held.
        let dropped = store.drop_sessions(ALICE).await.expect("drop");
        assert_eq!(dropped, Vec::from_iter(staged(dir, "a.wav").file));
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

    async fn session_state_and_settings_survive_reopening(engine: Engine) {
        let db = TestDatabase::start(engine);
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
            let store = open_store(&db).await;
            let id = store.issue_session(ALICE, "t").await.expect("issue");
            store.save_session(id, ALICE, &state).await.expect("save");
            store.save_settings("t", &settings).await.expect("save");
            id
        };
        let store = open_store(&db).await;
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

    async fn saving_settings_again_replaces_them_for_that_tenant_only(engine: Engine) {
        let db = TestDatabase::start(engine);
        let store = open_store(&db).await;
        let first = UserSettings {
            auto_save: true,
            ..UserSettings::default()
        };
        let mut second = UserSettings::default();
        second
            .defaults
            .insert("echo".into(), serde_json::Map::new());
        store.save_settings("t", &first).await.expect("save");
        store.save_settings("u", &first).await.expect("save");
        store.save_settings("t", &second).await.expect("save again");
        assert_eq!(store.settings("t").await.expect("read"), second);
        assert_eq!(store.settings("u").await.expect("read"), first);
    }

    on_each_engine!(
        saving_settings_again_replaces_them_for_that_tenant_only,
        sweeping_forgets_idle_sessions_and_reports_the_files_the_others_hold,
        a_session_is_found_only_for_the_login_and_tenant_it_was_issued_to,
        session_state_and_settings_survive_reopening,
    );
}
