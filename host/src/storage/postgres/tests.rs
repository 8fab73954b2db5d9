//! The PostgreSQL stores, against a real private PostgreSQL server per test (started by
//! the e2e harness: its own folder, a free loopback port, stopped at the end).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use uuid::Uuid;

use super::PgDatabase;
use super::queue::{AdmissionLimits, CancelOutcome, Reaped, Refusal};
use crate::storage::{JobLedger, JobRecord, ResultQuery, ResultStore, StorageError, StoredResult};
use crate::transcript::{Segment, Transcript};

fn result(tenant: &str, file_name: &str, text: &str, at_s: i64) -> StoredResult {
    let created_at = OffsetDateTime::from_unix_timestamp(1_750_000_000 + at_s).expect("time");
    StoredResult {
        id: Uuid::new_v4(),
        tenant: tenant.into(),
        file_name: file_name.into(),
        plugin_id: "whisper".into(),
        plugin_name: "Whisper".into(),
        plugin_version: "1.0.0".into(),
        config: serde_json::json!({ "z_last": 1, "a_first": [true, null] }),
        transcript: Transcript {
            text: text.into(),
            language: Some("en".into()),
            segments: vec![Segment::new(0, 1500, text)],
        },
        duration_ms: 1500,
        created_at,
        started_at: created_at + time::Duration::milliseconds(7),
        finished_at: created_at + time::Duration::seconds(2),
        diarization: None,
    }
}

fn record(tenant: &str) -> JobRecord {
    JobRecord {
        id: Uuid::new_v4(),
        tenant: tenant.into(),
        status: "queued".into(),
        upload: Some("/shared/uploads/x.wav".into()),
        data: serde_json::json!({ "tenant": tenant }),
    }
}

fn limits(max_queued: usize) -> AdmissionLimits {
    AdmissionLimits {
        max_queued,
        ..AdmissionLimits::default()
    }
}

async fn database(server: &sandscribe_e2e::Postgres) -> PgDatabase {
    PgDatabase::connect(&server.url()).await.expect("connect")
}

/// Runs blocking store calls off the async workers, as the server does.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("blocking task")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_round_trip_exactly_once_per_tenant_with_search() {
    let server = sandscribe_e2e::Postgres::start();
    let db = Arc::new(database(&server).await);
    let store: Arc<dyn ResultStore> = db.clone();
    let a = result("t", "meeting.wav", "the quarterly budget looks fine", 0);
    let b = result("t", "interview.mp3", "we talked about the weather", 10);
    let other = result("u", "secret.wav", "the budget of another tenant", 20);
    let (sa, sb, so) = (a.clone(), b.clone(), other.clone());
    let s = store.clone();
    blocking(move || {
        s.insert(&sa).expect("insert a");
        s.insert(&sb).expect("insert b");
        s.insert(&so).expect("insert other");
        assert!(matches!(s.insert(&sa), Err(StorageError::Duplicate(id)) if id == sa.id));
    })
    .await;
    let s = store.clone();
    let (ida, idother) = (a.id, other.id);
    let (got, hidden) = blocking(move || (s.get("t", ida), s.get("t", idother))).await;
    assert_eq!(
        got.expect("get"),
        Some(a.clone()),
        "identical, key order kept"
    );
    assert_eq!(
        hidden.expect("get"),
        None,
        "another tenant's result is not found"
    );

    let s = store.clone();
    let pages = blocking(move || {
        let query = |text: Option<&str>, per_page| ResultQuery {
            tenant: "t".into(),
            text: text.map(Into::into),
            page: 0,
            per_page,
        };
        let names = |text: Option<&str>| -> Vec<String> {
            s.list(&query(text, 50))
                .expect("list")
                .items
                .into_iter()
                .map(|i| i.file_name)
                .collect()
        };
        (
            names(None),
            names(Some("budget")),
            names(Some("INTERVIEW")),
            names(Some("weat")),
            names(Some("budget weather")),
            names(Some("a&b | !(:* '\"")),
            s.list(&query(None, 1)).expect("page"),
        )
    })
    .await;
    assert_eq!(pages.0, ["interview.mp3", "meeting.wav"], "newest first");
    assert_eq!(pages.1, ["meeting.wav"], "a word, this tenant only");
    assert_eq!(pages.2, ["interview.mp3"], "by file name, any case");
    assert_eq!(pages.3, ["interview.mp3"], "the last word as a prefix");
    assert!(pages.4.is_empty(), "every word must match");
    assert!(pages.5.is_empty(), "query syntax stays plain text");
    assert_eq!((pages.6.total, pages.6.items.len()), (2, 1));

    let s = store.clone();
    let (bytes, deleted, again, after) = blocking(move || {
        let bytes = s.stored_bytes("t").expect("bytes");
        let deleted = s.delete("t", ida).expect("delete");
        let again = s.delete("t", ida).expect("delete again");
        (bytes, deleted, again, s.get("t", ida).expect("get"))
    })
    .await;
    let expected = a.transcript.text.len()
        + serde_json::to_string(&a.transcript.segments)
            .expect("json")
            .len()
        + b.transcript.text.len()
        + serde_json::to_string(&b.transcript.segments)
            .expect("json")
            .len();
    assert_eq!(bytes, expected as u64);
    assert!(deleted && !again && after.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_starting_at_once_migrate_once_and_the_ledger_finds_unfinished_jobs() {
    let server = sandscribe_e2e::Postgres::start();
    let url = server.url();
    let starts = (0..4).map(|_| {
        let url = url.clone();
        tokio::spawn(async move { PgDatabase::connect(&url).await })
    });
    for start in futures::future::join_all(starts).await {
        start.expect("task").expect("every node starts");
    }
    assert_eq!(
        server.psql("SELECT count(*) FROM sandscribe_migrations"),
        super::migrations::MIGRATIONS.len().to_string()
    );
    let db = Arc::new(database(&server).await);
    let mut job = record("t");
    let ledger = db.clone();
    let unfinished = blocking(move || {
        ledger.save_job(&job).expect("save");
        let found = ledger.unfinished_jobs().expect("unfinished");
        job.status = "completed".into();
        ledger.save_job(&job).expect("update");
        (
            found,
            ledger.unfinished_jobs().expect("unfinished"),
            ledger.job("t", job.id).expect("job"),
            ledger.job("u", job.id).expect("job"),
        )
    })
    .await;
    assert_eq!(unfinished.0.len(), 1);
    assert!(unfinished.1.is_empty());
    assert_eq!(unfinished.2.map(|r| r.status), Some("completed".into()));
    assert!(unfinished.3.is_none(), "another tenant's job is not found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_admissions_never_exceed_a_tenants_queue_quota() {
    let server = sandscribe_e2e::Postgres::start();
    let db = database(&server).await;
    let quotas = AdmissionLimits {
        max_queued: 1000,
        tenant_max_queued: Some(20),
        audio_minutes_per_day: Some(30),
        stored_bytes: None,
    };
    // 60 submissions at once from three "nodes" (separate pools): exactly 20 fit.
    let mut tasks = Vec::new();
    for node in 0..3 {
        let db = database(&server).await;
        let quotas = quotas.clone();
        tasks.push(tokio::spawn(async move {
            let mut outcomes = Vec::new();
            for _ in 0..20 {
                outcomes.push(db.admit(&record("t"), "{}", 1_000, &quotas).await);
            }
            let _ = node;
            outcomes
        }));
    }
    let mut admitted = 0;
    for task in tasks {
        for outcome in task.await.expect("task") {
            match outcome.expect("no database error") {
                Ok(()) => admitted += 1,
                Err(refusal) => assert_eq!(refusal, Refusal::TenantQueued { limit: 20 }),
            }
        }
    }
    assert_eq!(admitted, 20);
    assert_eq!(
        server.psql("SELECT count(*) FROM jobs WHERE tenant = 't'"),
        "20"
    );
    // Audio: 30 minutes a day per tenant; 29 min 42 s fits, one more minute does not.
    let long = db
        .admit(&record("v"), "{}", 29 * 60_000 + 42_000, &quotas)
        .await
        .expect("db");
    assert_eq!(long, Ok(()));
    let over = db
        .admit(&record("v"), "{}", 60_000, &quotas)
        .await
        .expect("db");
    assert!(
        matches!(over, Err(Refusal::AudioMinutes { limit: 30, .. })),
        "{over:?}"
    );
    let full = db
        .admit(&record("w"), "{}", 1, &limits(21))
        .await
        .expect("db");
    assert_eq!(full, Err(Refusal::QueueFull { waiting: 21 }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_from_many_nodes_take_each_job_once_fairly_and_within_limits() {
    let server = sandscribe_e2e::Postgres::start();
    let db = database(&server).await;
    let mut submitted = Vec::new();
    for tenant in ["a", "a", "a", "a", "b", "c"] {
        let job = record(tenant);
        submitted.push(job.id);
        db.admit(&job, "{}", 1, &limits(100))
            .await
            .expect("db")
            .expect("admit");
    }
    let start = |r: &JobRecord| (r.data.clone(), "{\"type\":\"status\"}".to_owned());
    let no_limit = |_: &str| None;
    // Fair: a's first, then b and c (fewer started) before a's second.
    let mut order = Vec::new();
    for _ in 0..3 {
        let claimed = db
            .claim("n1", Duration::from_secs(10), &no_limit, &start)
            .await
            .expect("claim")
            .expect("a job");
        order.push(claimed.record.tenant.clone());
        assert_eq!(
            claimed.last_event, 2,
            "the running event follows the queued one"
        );
    }
    assert_eq!(order, ["a", "b", "c"]);
    // The rest from three nodes at once, a limited to 2 running: one more a starts.
    let limit_a = |tenant: &str| (tenant == "a").then_some(2);
    let mut tasks = Vec::new();
    for node in ["n1", "n2", "n3"] {
        let db = database(&server).await;
        tasks.push(tokio::spawn(async move {
            let start = |r: &JobRecord| (r.data.clone(), "{}".to_owned());
            let limit_a = |tenant: &str| (tenant == "a").then_some(2);
            let mut got = Vec::new();
            while let Some(c) = db
                .claim(node, Duration::from_secs(10), &limit_a, &start)
                .await
                .expect("claim")
            {
                got.push(c.record.id);
            }
            got
        }));
    }
    let mut claimed = HashSet::new();
    for task in tasks {
        for id in task.await.expect("task") {
            assert!(claimed.insert(id), "a job was claimed twice");
        }
    }
    assert_eq!(claimed.len(), 1, "only one more of a's jobs fits its limit");
    assert!(
        db.claim("n1", Duration::from_secs(10), &limit_a, &start)
            .await
            .expect("claim")
            .is_none()
    );
    assert_eq!(
        server.psql("SELECT count(*) FROM jobs WHERE status = 'running'"),
        "4"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_completion_and_expired_leases() {
    let server = sandscribe_e2e::Postgres::start();
    let db = database(&server).await;
    let queued = record("t");
    let running = record("t");
    for job in [&running, &queued] {
        db.admit(job, "{}", 1, &limits(10))
            .await
            .expect("db")
            .expect("admit");
    }
    let start = |r: &JobRecord| (r.data.clone(), "{}".to_owned());
    let claimed = db
        .claim("n1", Duration::from_secs(10), &|_| None, &start)
        .await
        .expect("claim")
        .expect("job");
    assert_eq!(claimed.record.id, running.id, "FIFO");

    let cancelled = |r: &JobRecord| (r.data.clone(), "{\"type\":\"cancelled\"}".to_owned());
    assert_eq!(
        db.cancel("t", queued.id, &cancelled).await.expect("cancel"),
        CancelOutcome::Cancelled {
            upload: queued.upload.clone()
        }
    );
    assert_eq!(
        db.cancel("t", running.id, &cancelled)
            .await
            .expect("cancel"),
        CancelOutcome::Running { node: "n1".into() }
    );
    assert_eq!(
        db.cancel("u", running.id, &cancelled)
            .await
            .expect("cancel"),
        CancelOutcome::NotFound
    );
    let (events, status) = db
        .events_after("t", queued.id, 0)
        .await
        .expect("events")
        .expect("job");
    assert_eq!((events.len(), status.as_str()), (2, "cancelled"));

    // A node that lost its lease cannot complete: the reaper took the job over.
    db.heartbeat("n1", 1, &[running.id], Duration::from_millis(1))
        .await
        .expect("heartbeat");
    server.psql("UPDATE nodes SET heartbeat_at = now() - interval '1 hour'");
    tokio::time::sleep(Duration::from_millis(20)).await;
    let decide = |_: &super::queue::Expired| Reaped {
        requeue: false,
        data: serde_json::json!({}),
        event: "{\"type\":\"failed\"}".into(),
    };
    let (requeued, interrupted) = db
        .reap_expired(Duration::from_secs(10), &decide)
        .await
        .expect("reap");
    assert_eq!((requeued, interrupted.len()), (0, 1));
    assert_eq!(interrupted[0].status, "interrupted");
    let mut done = claimed.record.clone();
    done.status = "completed".into();
    let r = result("t", "x.wav", "text", 0);
    let r = StoredResult {
        id: running.id,
        ..r
    };
    assert!(
        !db.complete("n1", &done, &[], Some(&r))
            .await
            .expect("complete")
    );
    assert_eq!(
        server.psql("SELECT count(*) FROM results"),
        "0",
        "nothing stored"
    );
    assert_eq!(
        server.psql(&format!(
            "SELECT status FROM jobs WHERE id = '{}'",
            running.id
        )),
        "interrupted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_diarized_result_round_trips_and_keeps_renamed_speakers() {
    let server = sandscribe_e2e::Postgres::start();
    let db = Arc::new(database(&server).await);
    let store: Arc<dyn ResultStore> = db.clone();
    let stored = crate::storage::tests::diarized(result("t", "talk.wav", "hello world", 0));
    let expected = stored.clone();
    let got = blocking(move || {
        store.insert(&stored).expect("insert");
        let names = std::collections::BTreeMap::from([("SPEAKER_1".into(), "Ann".into())]);
        assert!(
            !store
                .set_speaker_names("u", stored.id, &names)
                .expect("other tenant")
        );
        assert!(
            store
                .set_speaker_names("t", stored.id, &names)
                .expect("rename")
        );
        store.get("t", stored.id).expect("get").expect("found")
    })
    .await;
    let diarization = got.diarization.clone().expect("diarized");
    assert_eq!(diarization.display_name("SPEAKER_1"), "Ann");
    assert_eq!(
        diarization.speakers,
        expected.diarization.as_ref().unwrap().speakers
    );
    assert_eq!(got.transcript, expected.transcript);
}
