//! The deliveries and their attempts, as rows: in the data directory's `sandscribe.db`
//! (tables created on first use, like the web's state) or in the PostgreSQL database the
//! nodes share (tables from the migrations). One copy of the SQL runs on either engine
//! through [`RowsDb`], so a pending delivery survives a restart, and with several nodes
//! any of them may send it — but only one at a time: a node *claims* a due delivery
//! with a conditional `UPDATE` that sets its lease, and only the node whose update
//! changed the row sends it.

use std::path::PathBuf;

use uuid::Uuid;

use crate::storage::{LazyDb, PgDatabase, RowsDb, RowsError};

/// The tables on SQLite (PostgreSQL's are the same, from the migrations).
const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS webhook_deliveries (
        id              TEXT PRIMARY KEY,   -- the webhook-id: msg_<uuid>
        job_id          TEXT NOT NULL,
        tenant          TEXT NOT NULL,
        url             TEXT NOT NULL,
        event_type      TEXT NOT NULL,      -- job.done, job.failed, ...
        payload         TEXT NOT NULL,      -- the body, as sent on every attempt
        state           TEXT NOT NULL,      -- pending | delivered | failed
        attempts        INTEGER NOT NULL,
        next_attempt_ms INTEGER,            -- while pending
        leased_until_ms INTEGER,            -- while a node sends it
        leased_by       TEXT,
        last_error      TEXT,
        created_at_ms   INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX IF NOT EXISTS webhook_deliveries_due ON webhook_deliveries (state, next_attempt_ms);
    CREATE INDEX IF NOT EXISTS webhook_deliveries_job ON webhook_deliveries (job_id);
    CREATE INDEX IF NOT EXISTS webhook_deliveries_tenant ON webhook_deliveries (tenant, state);
    CREATE TABLE IF NOT EXISTS webhook_attempts (
        delivery_id TEXT NOT NULL,
        attempt     INTEGER NOT NULL,       -- 1, 2, ...
        at_ms       INTEGER NOT NULL,
        status      INTEGER,                -- the HTTP status, if one came back
        latency_ms  INTEGER NOT NULL,
        error       TEXT,
        PRIMARY KEY (delivery_id, attempt)
    ) STRICT;
";

/// Where a delivery is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Waiting for its (next) try.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Given up: refused, out of tries, or over the tenant's cap.
    Failed,
}

impl DeliveryState {
    fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "pending" => Self::Pending,
            "delivered" => Self::Delivered,
            _ => Self::Failed,
        }
    }
}

/// A delivery to be made: what is enqueued when a job ends.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub job_id: Uuid,
    pub tenant: String,
    pub url: String,
    pub event_type: String,
    pub payload: String,
}

/// A delivery as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: String,
    pub job_id: String,
    pub tenant: String,
    pub url: String,
    pub event_type: String,
    pub payload: String,
    pub state: DeliveryState,
    pub attempts: u32,
    pub next_attempt_ms: Option<i64>,
    pub last_error: Option<String>,
    pub created_at_ms: i64,
}

/// One try of a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub attempt: u32,
    pub at_ms: i64,
    pub status: Option<u16>,
    pub latency_ms: i64,
    pub error: Option<String>,
}

/// What becomes of a delivery after a try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    Retry { at_ms: i64 },
    GiveUp,
}

/// A `SELECT` of a delivery's columns (as [`read_delivery`] reads them), then `$rest`.
macro_rules! select_deliveries {
    ($rest:literal) => {
        concat!(
            "SELECT id, job_id, tenant, url, event_type, payload, state, attempts, \
             next_attempt_ms, last_error, created_at_ms FROM webhook_deliveries ",
            $rest
        )
    };
}

/// The deliveries' tables.
#[derive(Clone)]
pub struct DeliveryStore {
    db: RowsDb,
}

impl DeliveryStore {
    /// The store in the SQLite file at `path` (opened on first use).
    pub fn sqlite(path: PathBuf) -> Self {
        Self {
            db: RowsDb::Sqlite(LazyDb::new(path, SCHEMA)),
        }
    }

    /// The store in the database the nodes share.
    pub fn postgres(db: PgDatabase) -> Self {
        Self {
            db: RowsDb::postgres(db),
        }
    }

    /// Records a new delivery, due now; or, when the tenant already has `cap` pending,
    /// records it failed with that reason. Returns the id and whether it is pending.
    pub async fn enqueue(
        &self,
        new: NewDelivery,
        cap: u64,
        now_ms: i64,
    ) -> Result<(String, bool), RowsError> {
        let pending = self
            .db
            .query(
                "SELECT count(*) FROM webhook_deliveries WHERE tenant = ?1 AND state = 'pending'",
                vec![new.tenant.as_str().into()],
            )
            .await?
            .first()
            .map(|row| row.int(0))
            .transpose()?
            .unwrap_or(0);
        let over = u64::try_from(pending).unwrap_or(0) >= cap;
        let (state, next, error) = if over {
            let reason = format!(
                "not sent: the tenant already has {pending} deliveries waiting \
                 ([webhooks] max_pending_per_tenant = {cap})"
            );
            (DeliveryState::Failed, None, Some(reason))
        } else {
            (DeliveryState::Pending, Some(now_ms), None)
        };
        let id = format!("msg_{}", Uuid::new_v4().simple());
        self.db
            .execute(
                "INSERT INTO webhook_deliveries (id, job_id, tenant, url, event_type, payload, \
                 state, attempts, next_attempt_ms, last_error, created_at_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0, ?8, ?9, ?10)",
                vec![
                    id.as_str().into(),
                    new.job_id.to_string().into(),
                    new.tenant.into(),
                    new.url.into(),
                    new.event_type.into(),
                    new.payload.into(),
                    state.as_str().into(),
                    next.into(),
                    error.into(),
                    now_ms.into(),
                ],
            )
            .await?;
        Ok((id, !over))
    }

    /// At start: the leases an earlier run of this node held end now (its tries died with
    /// it), so they are tried again at once instead of when the leases would run out.
    /// On SQLite every lease is this node's (one server per data directory).
    pub async fn release_leases(&self, node: &str) -> Result<u64, RowsError> {
        let (sql, params) = match &self.db {
            RowsDb::Sqlite(_) => (
                "UPDATE webhook_deliveries SET leased_until_ms = NULL, leased_by = NULL \
                 WHERE state = 'pending' AND leased_by IS NOT NULL",
                vec![],
            ),
            _ => (
                "UPDATE webhook_deliveries SET leased_until_ms = NULL, leased_by = NULL \
                 WHERE state = 'pending' AND leased_by = ?1",
                vec![node.into()],
            ),
        };
        self.db.execute(sql, params).await
    }

    /// Pending deliveries due by `now_ms` and not leased by a live sender, oldest first.
    pub async fn due(&self, now_ms: i64, limit: i64) -> Result<Vec<String>, RowsError> {
        let rows = self
            .db
            .query(
                "SELECT id FROM webhook_deliveries WHERE state = 'pending' \
                 AND next_attempt_ms <= ?1 \
                 AND (leased_until_ms IS NULL OR leased_until_ms < ?1) \
                 ORDER BY next_attempt_ms LIMIT ?2",
                vec![now_ms.into(), limit.into()],
            )
            .await?;
        rows.iter()
            .map(|row| row.text(0).map(str::to_owned))
            .collect()
    }

    /// When the next pending delivery is due (its lease's end, if one holds it longer).
    pub async fn next_due_ms(&self) -> Result<Option<i64>, RowsError> {
        let rows = self
            .db
            .query(
                "SELECT min(CASE WHEN leased_until_ms IS NOT NULL \
                 AND leased_until_ms > next_attempt_ms THEN leased_until_ms \
                 ELSE next_attempt_ms END) FROM webhook_deliveries WHERE state = 'pending'",
                vec![],
            )
            .await?;
        // An aggregate over no rows is NULL.
        rows.first().map_or(Ok(None), |row| row.opt_int(0))
    }

    /// Claims a due delivery for `node` until `until_ms`; true if this node got it (no
    /// other node holds an unexpired lease on it).
    pub async fn claim(
        &self,
        id: &str,
        node: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<bool, RowsError> {
        let changed = self
            .db
            .execute(
                "UPDATE webhook_deliveries SET leased_until_ms = ?1, leased_by = ?2 \
                 WHERE id = ?3 AND state = 'pending' \
                 AND (leased_until_ms IS NULL OR leased_until_ms < ?4)",
                vec![until_ms.into(), node.into(), id.into(), now_ms.into()],
            )
            .await?;
        Ok(changed == 1)
    }

    /// The delivery, if it exists.
    pub async fn get(&self, id: &str) -> Result<Option<Delivery>, RowsError> {
        let rows = self
            .db
            .query(select_deliveries!("WHERE id = ?1"), vec![id.into()])
            .await?;
        rows.first().map(read_delivery).transpose()
    }

    /// Records a try of a delivery `node` holds, and what becomes of the delivery; the
    /// lease is released.
    pub async fn record(
        &self,
        id: &str,
        node: &str,
        attempt: &Attempt,
        outcome: &Outcome,
    ) -> Result<(), RowsError> {
        self.db
            .execute(
                "INSERT INTO webhook_attempts (delivery_id, attempt, at_ms, status, latency_ms, \
                 error) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                 ON CONFLICT (delivery_id, attempt) DO UPDATE SET at_ms = excluded.at_ms, \
                 status = excluded.status, latency_ms = excluded.latency_ms, \
                 error = excluded.error",
                vec![
                    id.into(),
                    i64::from(attempt.attempt).into(),
                    attempt.at_ms.into(),
                    attempt.status.map(i64::from).into(),
                    attempt.latency_ms.into(),
                    attempt.error.clone().into(),
                ],
            )
            .await?;
        let (state, next) = match outcome {
            Outcome::Delivered => (DeliveryState::Delivered, None),
            Outcome::Retry { at_ms } => (DeliveryState::Pending, Some(*at_ms)),
            Outcome::GiveUp => (DeliveryState::Failed, None),
        };
        self.db
            .execute(
                "UPDATE webhook_deliveries SET state = ?3, attempts = ?4, next_attempt_ms = ?5, \
                 last_error = ?6, leased_until_ms = NULL, leased_by = NULL \
                 WHERE id = ?1 AND leased_by = ?2",
                vec![
                    id.into(),
                    node.into(),
                    state.as_str().into(),
                    i64::from(attempt.attempt).into(),
                    next.into(),
                    attempt.error.clone().into(),
                ],
            )
            .await?;
        Ok(())
    }

    /// A job's deliveries (of `tenant` only), oldest first, each with its attempts.
    pub async fn for_job(
        &self,
        tenant: &str,
        job_id: Uuid,
    ) -> Result<Vec<(Delivery, Vec<Attempt>)>, RowsError> {
        let rows = self
            .db
            .query(
                select_deliveries!("WHERE job_id = ?1 AND tenant = ?2 ORDER BY created_at_ms, id"),
                vec![job_id.to_string().into(), tenant.into()],
            )
            .await?;
        let mut found = Vec::with_capacity(rows.len());
        for row in &rows {
            let delivery = read_delivery(row)?;
            let attempts = self
                .db
                .query(
                    "SELECT attempt, at_ms, status, latency_ms, error FROM webhook_attempts \
                     WHERE delivery_id = ?1 ORDER BY attempt",
                    vec![delivery.id.as_str().into()],
                )
                .await?
                .iter()
                .map(read_attempt)
                .collect::<Result<_, _>>()?;
            found.push((delivery, attempts));
        }
        Ok(found)
    }
}

fn read_delivery(row: &crate::storage::Row) -> Result<Delivery, RowsError> {
    Ok(Delivery {
        id: row.text(0)?.to_owned(),
        job_id: row.text(1)?.to_owned(),
        tenant: row.text(2)?.to_owned(),
        url: row.text(3)?.to_owned(),
        event_type: row.text(4)?.to_owned(),
        payload: row.text(5)?.to_owned(),
        state: DeliveryState::parse(row.text(6)?),
        attempts: u32::try_from(row.int(7)?).unwrap_or(0),
        next_attempt_ms: row.opt_int(8)?,
        last_error: row.opt_text(9)?.map(str::to_owned),
        created_at_ms: row.int(10)?,
    })
}

fn read_attempt(row: &crate::storage::Row) -> Result<Attempt, RowsError> {
    Ok(Attempt {
        attempt: u32::try_from(row.int(0)?).unwrap_or(0),
        at_ms: row.int(1)?,
        status: row.opt_int(2)?.and_then(|s| u16::try_from(s).ok()),
        latency_ms: row.int(3)?,
        error: row.opt_text(4)?.map(str::to_owned),
    })
}

/// One delivery as `GET /api/jobs/{id}/deliveries` shows it.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct DeliveryView {
    pub id: String,
    /// The event type sent (`job.done`, `job.failed`, ...).
    #[serde(rename = "type")]
    pub event_type: String,
    pub url: String,
    pub state: DeliveryState,
    /// Every try so far, oldest first.
    pub attempts: Vec<AttemptView>,
    /// When the next try is due (RFC 3339), while the delivery is pending.
    pub next_attempt_at: Option<String>,
    pub last_error: Option<String>,
    /// RFC 3339.
    pub created_at: String,
}

/// One try of a delivery.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct AttemptView {
    pub attempt: u32,
    /// When the try began (RFC 3339).
    pub at: String,
    /// The receiver's HTTP status; none when it could not be reached.
    pub status: Option<u16>,
    pub latency_ms: i64,
    pub error: Option<String>,
}

impl DeliveryView {
    pub fn new(delivery: &Delivery, attempts: &[Attempt]) -> Self {
        Self {
            id: delivery.id.clone(),
            event_type: delivery.event_type.clone(),
            url: delivery.url.clone(),
            state: delivery.state,
            attempts: attempts
                .iter()
                .map(|a| AttemptView {
                    attempt: a.attempt,
                    at: rfc3339(a.at_ms),
                    status: a.status,
                    latency_ms: a.latency_ms,
                    error: a.error.clone(),
                })
                .collect(),
            next_attempt_at: delivery
                .next_attempt_ms
                .filter(|_| delivery.state == DeliveryState::Pending)
                .map(rfc3339),
            last_error: delivery.last_error.clone(),
            created_at: rfc3339(delivery.created_at_ms),
        }
    }
}

fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}
