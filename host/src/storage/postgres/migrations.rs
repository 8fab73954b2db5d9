//! The PostgreSQL schema, as an ordered list of migrations applied at start.
//!
//! `sandscribe_migrations` records which have run. Every node runs [`migrate`] when it
//! starts; a transaction-scoped advisory lock makes nodes that start at once take turns,
//! so each migration runs exactly once. Migrations are only ever appended.

use deadpool_postgres::Object;

use super::StorageError;

/// The advisory lock key the migrations hold ("sandscrb" in ASCII).
const MIGRATION_LOCK: i64 = 0x73616e6473637262;

/// Migration `n` (zero-based) takes the schema from version `n` to `n + 1`.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: results with full-text search, the job ledger that is also the queue, the
    // event log, fair-share turns, audio quota counters, nodes, and the web's tables.
    r#"
    CREATE TABLE results (
        seq            BIGSERIAL UNIQUE,  -- breaks ties between results of one millisecond
        id             UUID   PRIMARY KEY,
        tenant         TEXT   NOT NULL,
        file_name      TEXT   NOT NULL,
        plugin_id      TEXT   NOT NULL,
        plugin_name    TEXT   NOT NULL,
        plugin_version TEXT   NOT NULL,
        config         TEXT   NOT NULL,   -- JSON, as written (key order kept)
        text           TEXT   NOT NULL,
        language       TEXT,
        segments       TEXT   NOT NULL,   -- JSON array of segments
        duration_ms    BIGINT NOT NULL,
        created_at     TEXT   NOT NULL,   -- RFC 3339, exact
        created_at_ms  BIGINT NOT NULL,   -- unix ms, for sorting
        started_at     TEXT   NOT NULL,
        finished_at    TEXT   NOT NULL,
        search         tsvector GENERATED ALWAYS AS
                         (to_tsvector('simple', file_name || ' ' || text)) STORED
    );
    CREATE INDEX results_tenant_created ON results (tenant, created_at_ms DESC, seq DESC);
    CREATE INDEX results_search ON results USING GIN (search);

    CREATE TABLE jobs (
        id          UUID    PRIMARY KEY,
        seq         BIGSERIAL UNIQUE,     -- submission order: FIFO within a tenant
        tenant      TEXT    NOT NULL,
        status      TEXT    NOT NULL,     -- queued, running, or a terminal status
        upload      TEXT,                 -- the upload while the job may need it
        data        TEXT    NOT NULL,     -- JSON snapshot, owned by the jobs module
        node        TEXT,                 -- the node running it (or that ran it)
        lease_until TIMESTAMPTZ,          -- running: the node must renew before this
        attempts    INTEGER NOT NULL DEFAULT 0,
        last_event  BIGINT  NOT NULL DEFAULT 0,
        updated_ms  BIGINT  NOT NULL
    );
    CREATE INDEX jobs_queued ON jobs (tenant, seq) WHERE status = 'queued';
    CREATE INDEX jobs_running ON jobs (node) WHERE status = 'running';
    CREATE INDEX jobs_unfinished ON jobs (status) WHERE status IN ('queued', 'running');

    CREATE TABLE job_events (
        job_id UUID   NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
        seq    BIGINT NOT NULL,
        data   TEXT   NOT NULL,           -- the event as its subscribers receive it
        PRIMARY KEY (job_id, seq)
    );

    CREATE TABLE tenant_turns (
        tenant      TEXT   PRIMARY KEY,
        served      BIGINT NOT NULL DEFAULT 0,  -- jobs started (levelled on activity)
        last_served BIGINT NOT NULL DEFAULT 0   -- a tick of the cluster's clock
    );
    CREATE SEQUENCE turn_clock;

    CREATE TABLE audio_usage (
        tenant  TEXT   NOT NULL,
        day     BIGINT NOT NULL,          -- UTC day number
        used_ms BIGINT NOT NULL,
        PRIMARY KEY (tenant, day)
    );

    CREATE TABLE nodes (
        id           TEXT        PRIMARY KEY,
        started_at   TIMESTAMPTZ NOT NULL,
        heartbeat_at TIMESTAMPTZ NOT NULL,
        slots        INTEGER     NOT NULL,
        running      INTEGER     NOT NULL
    );

    CREATE TABLE web_browser_sessions (
        id            TEXT   PRIMARY KEY,
        owner         TEXT   NOT NULL,
        tenant        TEXT   NOT NULL,
        state         TEXT   NOT NULL,
        updated_at_ms BIGINT NOT NULL
    );
    CREATE INDEX web_browser_sessions_owner ON web_browser_sessions (owner);
    CREATE TABLE web_user_settings (
        tenant   TEXT PRIMARY KEY,
        settings TEXT NOT NULL
    );
    CREATE TABLE web_logins (
        token_sha256  TEXT   PRIMARY KEY,
        key_sha256    TEXT   NOT NULL,
        tenant        TEXT   NOT NULL,
        role          TEXT   NOT NULL,
        created_at_ms BIGINT NOT NULL,
        last_seen_ms  BIGINT NOT NULL
    );
    CREATE INDEX web_logins_last_seen ON web_logins (last_seen_ms);
    "#,
    // 2: webhook deliveries and their attempts (`crate::webhooks::store`; the SQLite
    // tables there are the same).
    r#"
    CREATE TABLE webhook_deliveries (
        id              TEXT   PRIMARY KEY,
        job_id          TEXT   NOT NULL,
        tenant          TEXT   NOT NULL,
        url             TEXT   NOT NULL,
        event_type      TEXT   NOT NULL,
        payload         TEXT   NOT NULL,
        state           TEXT   NOT NULL,
        attempts        BIGINT NOT NULL,
        next_attempt_ms BIGINT,
        leased_until_ms BIGINT,
        leased_by       TEXT,
        last_error      TEXT,
        created_at_ms   BIGINT NOT NULL
    );
    CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_attempt_ms);
    CREATE INDEX webhook_deliveries_job ON webhook_deliveries (job_id);
    CREATE INDEX webhook_deliveries_tenant ON webhook_deliveries (tenant, state);
    CREATE TABLE webhook_attempts (
        delivery_id TEXT   NOT NULL,
        attempt     BIGINT NOT NULL,
        at_ms       BIGINT NOT NULL,
        status      BIGINT,
        latency_ms  BIGINT NOT NULL,
        error       TEXT,
        PRIMARY KEY (delivery_id, attempt)
    );
    "#,
    // 3: the diarization stage of a result, as in SQLite's migration 3.
    r#"
    ALTER TABLE results ADD COLUMN diarization TEXT;
    "#,
];

/// Brings the database up to the latest schema, all pending migrations in one
/// transaction under the advisory lock.
pub(super) async fn migrate(client: &mut Object) -> Result<(), StorageError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS sandscribe_migrations (
             version    INTEGER PRIMARY KEY,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         )",
    )
    .await?;
    let found: i64 = tx
        .query_one(
            "SELECT COALESCE(max(version), 0)::BIGINT FROM sandscribe_migrations",
            &[],
        )
        .await?
        .get(0);
    let supported = MIGRATIONS.len() as i64;
    if found > supported {
        return Err(StorageError::SchemaTooNew { found, supported });
    }
    let done = usize::try_from(found)
        .map_err(|_| StorageError::Corrupt(format!("negative schema version {found}")))?;
    for (version, sql) in (found..).zip(&MIGRATIONS[done..]) {
        tx.batch_execute(sql).await?;
        let version = i32::try_from(version + 1).unwrap_or(i32::MAX);
        tx.execute(
            "INSERT INTO sandscribe_migrations (version) VALUES ($1)",
            &[&version],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}
