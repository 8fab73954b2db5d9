//! The queue shared by every node: admission, claiming, the event log, cancellation,
//! completion and leases, each one transaction on the `jobs` table and its neighbours.
//!
//! The rules are the single node's, held cluster-wide:
//! - **Admission** takes one advisory lock for the whole cluster, so the queue bound and a
//!   tenant's quotas (queued jobs, audio minutes per day, stored bytes) are counted exactly:
//!   two nodes can never both admit the job that is one too many.
//! - **Claiming** picks the waiting tenant that has started the fewest jobs (ties: served
//!   longest ago), locks that tenant's turn row and its oldest queued job with
//!   `FOR UPDATE SKIP LOCKED`, so nodes claiming at once take different jobs, each exactly
//!   once, FIFO within a tenant, within the tenant's running limit.
//! - **Events** are rows keyed by (job, seq); only the node that holds a job's lease
//!   writes its events, and `NOTIFY sandscribe_events` wakes every follower.
//! - **Completion** stores the result, the last events and the terminal state in one
//!   transaction, and only if this node still holds the job: a job whose lease expired
//!   (and was re-queued or marked interrupted) is never completed twice.
//!
//! The job's snapshot and its events are opaque JSON here; the jobs module owns them.

use std::path::PathBuf;
use std::time::Duration;

use deadpool_postgres::Transaction;
use uuid::Uuid;

use super::PgDatabase;
use super::ledger::read_record;
use crate::storage::{JobRecord, StorageError, StoredResult};

/// The advisory lock admissions take ("sandadmt").
const ADMISSION_LOCK: i64 = 0x73616e6461646d74;

/// Notification channels.
pub const QUEUE_CHANNEL: &str = "sandscribe_queue";
pub const EVENTS_CHANNEL: &str = "sandscribe_events";
pub const CANCEL_CHANNEL: &str = "sandscribe_cancel";

/// One event of a job, as the log stores it: its number and its JSON (without `seq`).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub job: Uuid,
    pub seq: u64,
    pub data: String,
}

/// The quotas an admission checks, all under one lock.
#[derive(Debug, Clone, Default)]
pub struct AdmissionLimits {
    /// Jobs waiting in the whole cluster.
    pub max_queued: usize,
    pub tenant_max_queued: Option<usize>,
    pub audio_minutes_per_day: Option<u64>,
    pub stored_bytes: Option<u64>,
}

/// Why an admission was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    QueueFull { waiting: usize },
    TenantQueued { limit: usize },
    AudioMinutes { limit: u64, used_ms: u64, day: i64 },
    StoredBytes { limit: u64, used: u64 },
}

/// A job this node has just claimed.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub record: JobRecord,
    /// The last event number written so far (this node continues after it).
    pub last_event: u64,
    /// How many times the job has been started, this time included.
    pub attempt: u32,
}

/// What a cancel request found.
#[derive(Debug, Clone, PartialEq)]
pub enum CancelOutcome {
    NotFound,
    /// Already finished, with this status.
    Finished(String),
    /// It was queued: now cancelled, and its upload (if any) is no longer needed.
    Cancelled {
        upload: Option<PathBuf>,
    },
    /// It runs on `node`, which has been told to stop it.
    Running {
        node: String,
    },
}

/// A job whose node stopped renewing its lease.
#[derive(Debug, Clone)]
pub struct Expired {
    pub record: JobRecord,
    pub node: Option<String>,
    pub attempts: u32,
    pub last_event: u64,
}

/// What becomes of an expired job: its new status, snapshot and event.
pub struct Reaped {
    pub requeue: bool,
    pub data: serde_json::Value,
    pub event: String,
}

/// One node as the cluster sees it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct NodeRow {
    pub id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub heartbeat_at: time::OffsetDateTime,
    /// Seconds since its last heartbeat (by the database's clock).
    pub heartbeat_age_seconds: f64,
    pub slots: u32,
    pub running: u32,
}

/// A queued job, for cluster-wide queue positions.
#[derive(Debug, Clone)]
pub struct QueuedRow {
    pub id: Uuid,
    pub tenant: String,
}

/// The fair-share turns of every tenant with waiting jobs.
#[derive(Debug, Clone, Default)]
pub struct QueueView {
    /// Waiting jobs, in submission order.
    pub queued: Vec<QueuedRow>,
    /// (tenant, jobs started, last served), for the tenants in `queued`.
    pub turns: Vec<(String, u64, u64)>,
}

fn to_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn json_text(id: Uuid, data: &serde_json::Value) -> Result<String, StorageError> {
    serde_json::to_string(data).map_err(|e| StorageError::Invalid(format!("job {id}: {e}")))
}

fn upload_text(upload: &Option<PathBuf>) -> Option<String> {
    upload.as_ref().map(|p| p.to_string_lossy().into_owned())
}

/// Appends `events` and advances each job's `last_event`, then wakes followers.
async fn append(tx: &Transaction<'_>, events: &[StoredEvent]) -> Result<(), StorageError> {
    if events.is_empty() {
        return Ok(());
    }
    let jobs: Vec<Uuid> = events.iter().map(|e| e.job).collect();
    let seqs: Vec<i64> = events.iter().map(|e| to_i64(e.seq)).collect();
    let data: Vec<&str> = events.iter().map(|e| e.data.as_str()).collect();
    tx.execute(
        "INSERT INTO job_events (job_id, seq, data)
         SELECT * FROM UNNEST($1::uuid[], $2::bigint[], $3::text[])
         ON CONFLICT DO NOTHING",
        &[&jobs, &seqs, &data],
    )
    .await?;
    tx.execute(
        "UPDATE jobs SET last_event = GREATEST(last_event, e.seq)
         FROM (SELECT job_id, max(seq) AS seq
               FROM UNNEST($1::uuid[], $2::bigint[]) AS t(job_id, seq) GROUP BY job_id) e
         WHERE jobs.id = e.job_id",
        &[&jobs, &seqs],
    )
    .await?;
    let mut woken: Vec<Uuid> = jobs;
    woken.sort();
    woken.dedup();
    for job in woken {
        tx.execute(
            "SELECT pg_notify($1, $2)",
            &[&EVENTS_CHANNEL, &job.to_string()],
        )
        .await?;
    }
    Ok(())
}

impl PgDatabase {
    /// Queues a job if the cluster's queue and the tenant's quotas allow it: the record,
    /// its first event and the quota counters in one transaction.
    pub async fn admit(
        &self,
        record: &JobRecord,
        first_event: &str,
        duration_ms: u64,
        limits: &AdmissionLimits,
    ) -> Result<Result<(), Refusal>, StorageError> {
        let data = json_text(record.id, &record.data)?;
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&ADMISSION_LOCK])
            .await?;
        let waiting: i64 = tx
            .query_one("SELECT count(*) FROM jobs WHERE status = 'queued'", &[])
            .await?
            .get(0);
        let waiting = usize::try_from(waiting).unwrap_or(usize::MAX);
        if waiting >= limits.max_queued {
            return Ok(Err(Refusal::QueueFull { waiting }));
        }
        let tenant_waiting: i64 = tx
            .query_one(
                "SELECT count(*) FROM jobs WHERE status = 'queued' AND tenant = $1",
                &[&record.tenant],
            )
            .await?
            .get(0);
        if let Some(limit) = limits.tenant_max_queued
            && usize::try_from(tenant_waiting).unwrap_or(usize::MAX) >= limit
        {
            return Ok(Err(Refusal::TenantQueued { limit }));
        }
        if let Some(limit) = limits.stored_bytes {
            let used: i64 = tx
                .query_one(
                    "SELECT COALESCE(SUM(octet_length(text) + octet_length(segments)), 0)::BIGINT \
                     FROM results WHERE tenant = $1",
                    &[&record.tenant],
                )
                .await?
                .get(0);
            let used = to_u64(used);
            if used >= limit {
                return Ok(Err(Refusal::StoredBytes { limit, used }));
            }
        }
        if let Some(minutes) = limits.audio_minutes_per_day {
            let day = time::OffsetDateTime::now_utc()
                .unix_timestamp()
                .div_euclid(86_400);
            let used: Option<i64> = tx
                .query_opt(
                    "SELECT used_ms FROM audio_usage WHERE tenant = $1 AND day = $2",
                    &[&record.tenant, &day],
                )
                .await?
                .map(|row| row.get(0));
            let used_ms = to_u64(used.unwrap_or(0));
            if used_ms + duration_ms > minutes.saturating_mul(60_000) {
                return Ok(Err(Refusal::AudioMinutes {
                    limit: minutes,
                    used_ms,
                    day,
                }));
            }
            tx.execute(
                "INSERT INTO audio_usage (tenant, day, used_ms) VALUES ($1, $2, $3)
                 ON CONFLICT (tenant, day) DO UPDATE SET used_ms = audio_usage.used_ms + $3",
                &[&record.tenant, &day, &to_i64(duration_ms)],
            )
            .await?;
        }
        if tenant_waiting == 0 {
            // Becoming active: level with the tenants already waiting, so idle time is
            // no credit.
            tx.execute(
                "INSERT INTO tenant_turns (tenant, served)
                 VALUES ($1, COALESCE((SELECT min(t.served) FROM tenant_turns t
                         WHERE t.tenant IN (SELECT tenant FROM jobs WHERE status = 'queued')), 0))
                 ON CONFLICT (tenant) DO UPDATE SET served = GREATEST(tenant_turns.served,
                     COALESCE((SELECT min(t.served) FROM tenant_turns t
                         WHERE t.tenant IN (SELECT tenant FROM jobs WHERE status = 'queued')),
                         tenant_turns.served))",
                &[&record.tenant],
            )
            .await?;
        }
        tx.execute(
            "INSERT INTO jobs (id, tenant, status, upload, data, last_event, updated_ms)
             VALUES ($1, $2, 'queued', $3, $4, 0, $5)",
            &[
                &record.id,
                &record.tenant,
                &upload_text(&record.upload),
                &data,
                &crate::storage::now_ms(),
            ],
        )
        .await?;
        append(
            &tx,
            &[StoredEvent {
                job: record.id,
                seq: 1,
                data: first_event.to_owned(),
            }],
        )
        .await?;
        tx.execute("SELECT pg_notify($1, '')", &[&QUEUE_CHANNEL])
            .await?;
        tx.commit().await?;
        Ok(Ok(()))
    }

    /// Claims the next job for `node`, fairly, if one may start: `tenant_max_running`
    /// gives a tenant's running limit. `start` turns the claimed record into its running
    /// snapshot and `running` event, written in the same transaction.
    pub async fn claim(
        &self,
        node: &str,
        lease: Duration,
        tenant_max_running: &(dyn Fn(&str) -> Option<usize> + Sync),
        start: &(dyn Fn(&JobRecord) -> (serde_json::Value, String) + Sync),
    ) -> Result<Option<Claimed>, StorageError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let candidates = tx
            .query(
                "SELECT q.tenant, COALESCE(t.served, 0), COALESCE(t.last_served, 0),
                        (SELECT count(*) FROM jobs r WHERE r.tenant = q.tenant
                           AND r.status = 'running')
                 FROM (SELECT DISTINCT tenant FROM jobs WHERE status = 'queued') q
                 LEFT JOIN tenant_turns t ON t.tenant = q.tenant
                 ORDER BY 2, 3, 1",
                &[],
            )
            .await?;
        for row in candidates {
            let tenant: String = row.get(0);
            let running: i64 = row.get(3);
            let limit = tenant_max_running(&tenant).unwrap_or(usize::MAX);
            if usize::try_from(running).unwrap_or(usize::MAX) >= limit {
                continue;
            }
            tx.execute(
                "INSERT INTO tenant_turns (tenant) VALUES ($1) ON CONFLICT DO NOTHING",
                &[&tenant],
            )
            .await?;
            // Another node claiming for this tenant right now holds the row: try the
            // next tenant rather than wait.
            let locked = tx
                .query_opt(
                    "SELECT 1 FROM tenant_turns WHERE tenant = $1 FOR UPDATE SKIP LOCKED",
                    &[&tenant],
                )
                .await?;
            if locked.is_none() {
                continue;
            }
            // Counted again under the tenant's lock: exact.
            let running: i64 = tx
                .query_one(
                    "SELECT count(*) FROM jobs WHERE tenant = $1 AND status = 'running'",
                    &[&tenant],
                )
                .await?
                .get(0);
            if usize::try_from(running).unwrap_or(usize::MAX) >= limit {
                continue;
            }
            let Some(job) = tx
                .query_opt(
                    "SELECT id, tenant, status, upload, data, last_event, attempts FROM jobs
                     WHERE tenant = $1 AND status = 'queued'
                     ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED",
                    &[&tenant],
                )
                .await?
            else {
                continue;
            };
            let mut record = read_record(&job)?;
            let last_event = to_u64(job.get(5));
            let attempt = u32::try_from(job.get::<_, i32>(6)).unwrap_or(0) + 1;
            let (data, event) = start(&record);
            record.data = data;
            record.status = "running".into();
            tx.execute(
                "UPDATE jobs SET status = 'running', node = $2, data = $3,
                        lease_until = now() + make_interval(secs => $4),
                        attempts = attempts + 1, updated_ms = $5
                 WHERE id = $1",
                &[
                    &record.id,
                    &node,
                    &json_text(record.id, &record.data)?,
                    &lease.as_secs_f64(),
                    &crate::storage::now_ms(),
                ],
            )
            .await?;
            tx.execute(
                "UPDATE tenant_turns SET served = served + 1, last_served = nextval('turn_clock')
                 WHERE tenant = $1",
                &[&tenant],
            )
            .await?;
            append(
                &tx,
                &[StoredEvent {
                    job: record.id,
                    seq: last_event + 1,
                    data: event,
                }],
            )
            .await?;
            tx.commit().await?;
            return Ok(Some(Claimed {
                record,
                last_event: last_event + 1,
                attempt,
            }));
        }
        tx.commit().await?;
        Ok(None)
    }

    /// Appends events of jobs this node runs (a batch from its outbox).
    pub async fn append_events(&self, events: &[StoredEvent]) -> Result<(), StorageError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        append(&tx, events).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The tenant's job events after `after`, in order, and the job's status; `None`
    /// when the tenant has no such job.
    pub async fn events_after(
        &self,
        tenant: &str,
        id: Uuid,
        after: u64,
    ) -> Result<Option<(Vec<StoredEvent>, String)>, StorageError> {
        let client = self.client().await?;
        let Some(job) = client
            .query_opt(
                "SELECT status FROM jobs WHERE id = $1 AND tenant = $2",
                &[&id, &tenant],
            )
            .await?
        else {
            return Ok(None);
        };
        let rows = client
            .query(
                "SELECT seq, data FROM job_events WHERE job_id = $1 AND seq > $2 ORDER BY seq",
                &[&id, &to_i64(after)],
            )
            .await?;
        let events = rows
            .iter()
            .map(|row| StoredEvent {
                job: id,
                seq: to_u64(row.get(0)),
                data: row.get(1),
            })
            .collect();
        Ok(Some((events, job.get(0))))
    }

    /// Ends a job this node runs: the result (if any), its last events and its final
    /// record, in one transaction, only if `node` still holds the job. False when it
    /// does not (its lease expired and another node took over): nothing is written.
    pub async fn complete(
        &self,
        node: &str,
        record: &JobRecord,
        events: &[StoredEvent],
        result: Option<&StoredResult>,
    ) -> Result<bool, StorageError> {
        let data = json_text(record.id, &record.data)?;
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let holder = tx
            .query_opt(
                "SELECT status, node FROM jobs WHERE id = $1 FOR UPDATE",
                &[&record.id],
            )
            .await?;
        let holds = holder.is_some_and(|row| {
            row.get::<_, String>(0) == "running"
                && row.get::<_, Option<String>>(1).as_deref() == Some(node)
        });
        if !holds {
            return Ok(false);
        }
        if let Some(result) = result {
            Self::insert_result(&tx, result).await?;
        }
        append(&tx, events).await?;
        tx.execute(
            "UPDATE jobs SET status = $2, upload = $3, data = $4, lease_until = NULL,
                    updated_ms = $5
             WHERE id = $1",
            &[
                &record.id,
                &record.status,
                &upload_text(&record.upload),
                &data,
                &crate::storage::now_ms(),
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Cancels a queued job at once, or tells the node running it to stop it.
    /// `cancelled` gives the cancelled snapshot and event for a queued job's record.
    pub async fn cancel(
        &self,
        tenant: &str,
        id: Uuid,
        cancelled: &(dyn Fn(&JobRecord) -> (serde_json::Value, String) + Sync),
    ) -> Result<CancelOutcome, StorageError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let Some(row) = tx
            .query_opt(
                "SELECT id, tenant, status, upload, data, last_event, node FROM jobs
                 WHERE id = $1 AND tenant = $2 FOR UPDATE",
                &[&id, &tenant],
            )
            .await?
        else {
            return Ok(CancelOutcome::NotFound);
        };
        let record = read_record(&row)?;
        let last_event = to_u64(row.get(5));
        match record.status.as_str() {
            "queued" => {
                let (data, event) = cancelled(&record);
                tx.execute(
                    "UPDATE jobs SET status = 'cancelled', upload = NULL, data = $2,
                            updated_ms = $3 WHERE id = $1",
                    &[&id, &json_text(id, &data)?, &crate::storage::now_ms()],
                )
                .await?;
                append(
                    &tx,
                    &[StoredEvent {
                        job: id,
                        seq: last_event + 1,
                        data: event,
                    }],
                )
                .await?;
                tx.commit().await?;
                Ok(CancelOutcome::Cancelled {
                    upload: record.upload,
                })
            }
            "running" => {
                let node: Option<String> = row.get(6);
                tx.execute(
                    "SELECT pg_notify($1, $2)",
                    &[&CANCEL_CHANNEL, &id.to_string()],
                )
                .await?;
                tx.commit().await?;
                Ok(CancelOutcome::Running {
                    node: node.unwrap_or_default(),
                })
            }
            status => Ok(CancelOutcome::Finished(status.to_owned())),
        }
    }

    /// This node is alive: its row in `nodes`, and the leases of the jobs it runs.
    pub async fn heartbeat(
        &self,
        node: &str,
        slots: usize,
        running: &[Uuid],
        lease: Duration,
    ) -> Result<(), StorageError> {
        let client = self.client().await?;
        let slots = i32::try_from(slots).unwrap_or(i32::MAX);
        let count = i32::try_from(running.len()).unwrap_or(i32::MAX);
        client
            .execute(
                "INSERT INTO nodes (id, started_at, heartbeat_at, slots, running)
                 VALUES ($1, now(), now(), $2, $3)
                 ON CONFLICT (id) DO UPDATE SET heartbeat_at = now(), slots = $2, running = $3",
                &[&node, &slots, &count],
            )
            .await?;
        client
            .execute(
                "UPDATE jobs SET lease_until = now() + make_interval(secs => $3)
                 WHERE node = $1 AND status = 'running' AND id = ANY($2)",
                &[&node, &running, &lease.as_secs_f64()],
            )
            .await?;
        Ok(())
    }

    /// Takes over the jobs whose lease has expired (their node died): `decide` says for
    /// each whether it is queued again or ends interrupted, with its snapshot and event.
    /// Returns how many were re-queued, and the records of those interrupted (with their
    /// new status and snapshot), whose endings are then announced (the webhooks).
    pub async fn reap_expired(
        &self,
        expiry: Duration,
        decide: &(dyn Fn(&Expired) -> Reaped + Sync),
    ) -> Result<(usize, Vec<JobRecord>), StorageError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let rows = tx
            .query(
                "SELECT id, tenant, status, upload, data, last_event, node, attempts FROM jobs
                 WHERE status = 'running' AND lease_until < now()
                   AND NOT EXISTS (SELECT 1 FROM nodes n WHERE n.id = jobs.node
                         AND n.heartbeat_at > now() - make_interval(secs => $1))
                 ORDER BY seq FOR UPDATE SKIP LOCKED",
                &[&expiry.as_secs_f64()],
            )
            .await?;
        let (mut requeued, mut interrupted) = (0, Vec::new());
        for row in rows {
            let expired = Expired {
                record: read_record(&row)?,
                last_event: to_u64(row.get(5)),
                node: row.get(6),
                attempts: u32::try_from(row.get::<_, i32>(7)).unwrap_or(0),
            };
            let reaped = decide(&expired);
            let id = expired.record.id;
            let status = if reaped.requeue {
                "queued"
            } else {
                "interrupted"
            };
            tx.execute(
                "UPDATE jobs SET status = $2, data = $3, lease_until = NULL,
                        node = CASE WHEN $2 = 'queued' THEN NULL ELSE node END, updated_ms = $4
                 WHERE id = $1",
                &[
                    &id,
                    &status,
                    &json_text(id, &reaped.data)?,
                    &crate::storage::now_ms(),
                ],
            )
            .await?;
            append(
                &tx,
                &[StoredEvent {
                    job: id,
                    seq: expired.last_event + 1,
                    data: reaped.event,
                }],
            )
            .await?;
            if reaped.requeue {
                requeued += 1;
            } else {
                interrupted.push(JobRecord {
                    status: status.into(),
                    data: reaped.data,
                    ..expired.record
                });
            }
        }
        if requeued > 0 {
            tx.execute("SELECT pg_notify($1, '')", &[&QUEUE_CHANNEL])
                .await?;
        }
        tx.commit().await?;
        Ok((requeued, interrupted))
    }

    /// Every node that has ever sent a heartbeat, newest first.
    pub async fn nodes(&self) -> Result<Vec<NodeRow>, StorageError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT id, started_at, heartbeat_at,
                        EXTRACT(EPOCH FROM (now() - heartbeat_at))::FLOAT8, slots,
                        (SELECT count(*) FROM jobs j WHERE j.node = n.id
                           AND j.status = 'running')::INTEGER
                 FROM nodes n ORDER BY heartbeat_at DESC",
                &[],
            )
            .await?;
        rows.iter()
            .map(|row| {
                let started: std::time::SystemTime = row.try_get(1)?;
                let heartbeat: std::time::SystemTime = row.try_get(2)?;
                Ok(NodeRow {
                    id: row.try_get(0)?,
                    started_at: started.into(),
                    heartbeat_at: heartbeat.into(),
                    heartbeat_age_seconds: row.try_get(3)?,
                    slots: u32::try_from(row.try_get::<_, i32>(4)?).unwrap_or(0),
                    running: u32::try_from(row.try_get::<_, i32>(5)?).unwrap_or(0),
                })
            })
            .collect()
    }

    /// The waiting jobs and their tenants' turns, for queue positions.
    pub async fn queue_view(&self) -> Result<QueueView, StorageError> {
        let client = self.client().await?;
        let queued = client
            .query(
                "SELECT id, tenant FROM jobs WHERE status = 'queued' ORDER BY seq",
                &[],
            )
            .await?
            .iter()
            .map(|row| QueuedRow {
                id: row.get(0),
                tenant: row.get(1),
            })
            .collect();
        let turns = client
            .query(
                "SELECT tenant, served, last_served FROM tenant_turns
                 WHERE tenant IN (SELECT tenant FROM jobs WHERE status = 'queued')",
                &[],
            )
            .await?
            .iter()
            .map(|row| (row.get(0), to_u64(row.get(1)), to_u64(row.get(2))))
            .collect();
        Ok(QueueView { queued, turns })
    }

    /// The tenant's job record with the queue's columns: its node.
    pub async fn job_node(&self, tenant: &str, id: Uuid) -> Result<Option<String>, StorageError> {
        let client = self.client().await?;
        Ok(client
            .query_opt(
                "SELECT node FROM jobs WHERE id = $1 AND tenant = $2",
                &[&id, &tenant],
            )
            .await?
            .and_then(|row| row.get(0)))
    }

    /// The tenant's job record, if it has one.
    pub async fn job_record(
        &self,
        tenant: &str,
        id: Uuid,
    ) -> Result<Option<JobRecord>, StorageError> {
        let client = self.client().await?;
        client
            .query_opt(
                "SELECT id, tenant, status, upload, data FROM jobs WHERE id = $1 AND tenant = $2",
                &[&id, &tenant],
            )
            .await?
            .map(|row| read_record(&row))
            .transpose()
    }

    /// The tenant's jobs still queued or running, oldest first.
    pub async fn active_jobs(&self, tenant: &str) -> Result<Vec<JobRecord>, StorageError> {
        let client = self.client().await?;
        client
            .query(
                "SELECT id, tenant, status, upload, data FROM jobs
                 WHERE tenant = $1 AND status IN ('queued', 'running') ORDER BY seq",
                &[&tenant],
            )
            .await?
            .iter()
            .map(read_record)
            .collect()
    }
}
