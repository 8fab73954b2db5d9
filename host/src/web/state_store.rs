//! Durable state of the browser workflow: each browser session's wizard state and each
//! user's settings (saved plugin defaults, auto-save), in `web_*` tables of the data
//! directory's `sandscribe.db`.
//!
//! The tables are the web layer's own (the result store's migrations never touch them),
//! created with `IF NOT EXISTS` on first use. Values are JSON text, so adding a field to
//! [`WizardState`] or [`UserSettings`] needs no migration (`serde(default)` fills it in).
//! The connection is opened lazily, so a database problem shows as an error page instead
//! of stopping the server.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::storage::{LazyDb, LazyDbError, millis, now_ms};

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS web_sessions (
        id            TEXT PRIMARY KEY,
        state         TEXT NOT NULL,      -- JSON WizardState
        updated_at_ms INTEGER NOT NULL
    ) STRICT;
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

    /// The session's state, or the initial state for a new session.
    pub async fn session(&self, id: Uuid) -> Result<WizardState, StateStoreError> {
        self.with(move |conn| {
            let text: Option<String> = conn
                .query_row(
                    "SELECT state FROM web_sessions WHERE id = ?1",
                    params![id.to_string()],
                    |row| row.get(0),
                )
                .optional()?;
            Ok(match text {
                Some(text) => serde_json::from_str(&text)?,
                None => WizardState::default(),
            })
        })
        .await
    }

    pub async fn save_session(&self, id: Uuid, state: &WizardState) -> Result<(), StateStoreError> {
        let text = serde_json::to_string(state)?;
        let now = now_ms();
        self.with(move |conn| {
            conn.execute(
                "INSERT INTO web_sessions (id, state, updated_at_ms) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (id) DO UPDATE SET state = excluded.state, \
                 updated_at_ms = excluded.updated_at_ms",
                params![id.to_string(), text, now],
            )?;
            Ok(())
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
                "DELETE FROM web_sessions WHERE updated_at_ms < ?1",
                params![cutoff],
            )?;
            let mut query = conn.prepare("SELECT state FROM web_sessions")?;
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

    #[tokio::test]
    async fn sweeping_forgets_idle_sessions_and_reports_the_files_the_others_hold() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = StateStore::new(dir.path().join("sandscribe.db"));
        let staged = |name: &str| WizardState {
            step: Step::Confirm,
            file: Some(ChosenFile {
                source: FileSource::Staged {
                    path: dir.path().join(name),
                },
                name: name.into(),
                bytes: 1,
                duration_ms: 1,
            }),
            ..WizardState::default()
        };
        let (old, fresh) = (Uuid::new_v4(), Uuid::new_v4());
        store
            .save_session(old, &staged("old.wav"))
            .await
            .expect("save");
        store
            .with(move |conn| {
                conn.execute(
                    "UPDATE web_sessions SET updated_at_ms = 0 WHERE id = ?1",
                    params![old.to_string()],
                )?;
                Ok(())
            })
            .await
            .expect("age the session");
        store
            .save_session(fresh, &staged("fresh.wav"))
            .await
            .expect("save");
        let held = store
            .sweep_sessions(Duration::from_secs(3600))
            .await
            .expect("sweep");
        assert_eq!(held, HashSet::from([dir.path().join("fresh.wav")]));
        assert_eq!(
            store.session(old).await.expect("read"),
            WizardState::default()
        );
        assert_eq!(
            store.session(fresh).await.expect("read"),
            staged("fresh.wav")
        );
    }

    #[tokio::test]
    async fn session_state_and_settings_survive_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sandscribe.db");
        let id = Uuid::new_v4();
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
        {
            let store = StateStore::new(path.clone());
            assert_eq!(
                store.session(id).await.expect("read"),
                WizardState::default()
            );
            store.save_session(id, &state).await.expect("save");
            store.save_settings("t", &settings).await.expect("save");
        }
        let store = StateStore::new(path);
        assert_eq!(store.session(id).await.expect("read"), state);
        assert_eq!(store.settings("t").await.expect("read"), settings);
        assert_eq!(
            store.settings("other").await.expect("read"),
            UserSettings::default()
        );
    }
}
