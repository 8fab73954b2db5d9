//! Several nodes on one PostgreSQL database: any node takes a submission, any node follows,
//! cancels and reads any job, a job runs exactly once, quotas hold across nodes, a dead
//! node's jobs are taken over, and a database restart loses nothing.
//!
//! Every test starts its own PostgreSQL (the harness's [`Postgres`]) and real
//! `sandscribe serve` nodes sharing it and one upload folder.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sandscribe_e2e::{Postgres, Server, ServerOptions, poll_until, sine, wav};
use serde_json::{Value, json};

fn audio(ms: u64) -> Vec<u8> {
    wav(&sine(ms, 16_000, 0.3), 16_000)
}

/// A node's options: the shared database and folder, short leases so that a dead
/// node is noticed within a few seconds.
fn node(db: &Postgres, shared: &Path, id: &str) -> ServerOptions {
    ServerOptions::new()
        .cluster_node(&db.url(), shared, id)
        .jobs_setting("lease_renew_seconds", 1)
        .jobs_setting("lease_expiry_seconds", 3)
}

struct Cluster {
    db: Postgres,
    _shared: tempfile::TempDir,
    nodes: Vec<Server>,
}

impl Cluster {
    fn start(count: usize, configure: impl Fn(ServerOptions) -> ServerOptions) -> Self {
        let db = Postgres::start();
        let shared = tempfile::tempdir().expect("shared folder");
        let nodes = (0..count)
            .map(|i| {
                let id = format!("node-{}", (b'a' + i as u8) as char);
                Server::start(configure(node(&db, shared.path(), &id)))
            })
            .collect();
        Self {
            db,
            _shared: shared,
            nodes,
        }
    }

    /// The node whose id the job reports as running it.
    fn runner_of(&self, job: &Value) -> usize {
        let name = job["node"].as_str().expect("a running job names its node");
        usize::from(name.as_bytes()[name.len() - 1] - b'a')
    }

    fn count(&self, sql: &str) -> u64 {
        self.db.psql(sql).parse().expect("a count")
    }
}

fn wait_running(server: &Server, id: &str) -> Value {
    let mut job = Value::Null;
    poll_until(Duration::from_secs(20), "the job to start", || {
        job = server.job(id);
        job["status"] == "running"
    });
    job
}

#[test]
fn a_job_submitted_on_one_node_is_followed_on_another_and_read_on_a_third() {
    let cluster = Cluster::start(3, |o| o);
    let [a, b, c] = &cluster.nodes[..] else {
        unreachable!()
    };
    for (server, name) in [(a, "node-a"), (b, "node-b"), (c, "node-c")] {
        let health = server.get("/healthz").expect(200).json();
        assert_eq!(health["node"], name, "{health:#}");
        assert_eq!(health["database"], "postgresql", "{health:#}");
    }
    let id = a.submit_ok(
        "slow",
        &audio(1_000),
        "shared.wav",
        &json!({"steps": 4, "step_ms": 100}),
    );
    let events = b.events(&id, None).to_end();
    let names: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(names.first(), Some(&"status"), "{names:?}");
    assert_eq!(names.last(), Some(&"done"), "{names:?}");
    assert!(
        names.iter().filter(|n| **n == "segment").count() >= 4,
        "{names:?}"
    );
    let seqs: Vec<u64> = events.iter().map(|e| e.id).collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "no gaps, no repeats: {seqs:?}"
    );

    let job = c.job(&id);
    assert_eq!(job["status"], "completed", "{job:#}");
    assert!(
        job["node"].as_str().is_some_and(|n| n.starts_with("node-")),
        "{job:#}"
    );
    let text = job["result"]["transcript"]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(!text.is_empty(), "{job:#}");
    let txt = c
        .get(&format!("/api/results/{id}/export?format=txt"))
        .expect(200)
        .text();
    assert!(
        txt.contains(text.split_whitespace().next().unwrap_or("?")),
        "{txt}"
    );
    let listed = c.get("/api/results").expect(200).json();
    assert_eq!(listed["total"], 1, "{listed:#}");

    // Each node's metrics name it, so one Prometheus can scrape them all.
    let metrics = b.get("/metrics").expect(200).text();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("sandscribe_queue_depth") && l.contains(r#"node="node-b""#)),
        "{metrics}"
    );

    // Every node shows the others: the admin view, and the CLI reading the database.
    let view = b.get("/api/admin/cluster").expect(200).json();
    let mut names: Vec<&str> = view["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| n["id"].as_str().unwrap_or_default())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["node-a", "node-b", "node-c"], "{view:#}");
    assert!(
        view["nodes"].as_array().expect("nodes").iter().all(|n| {
            n["heartbeat_age_seconds"]
                .as_f64()
                .is_some_and(|age| age < 5.0)
                && n["slots"].as_u64() >= Some(1)
        }),
        "{view:#}"
    );
    let status = std::process::Command::new(sandscribe_e2e::server_binary())
        .args(["cluster", "status", "--database", &cluster.db.url()])
        .output()
        .expect("run sandscribe cluster status");
    let printed = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&status.stderr)
    );
    for name in ["node-a", "node-b", "node-c"] {
        assert!(printed.contains(name), "{printed}");
    }

    // Resuming on yet another node gives exactly the events after the one named.
    let cut = seqs[seqs.len() / 2];
    let rest: Vec<u64> = a
        .events(&id, Some(cut))
        .to_end()
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(
        rest,
        seqs.iter()
            .copied()
            .filter(|s| *s > cut)
            .collect::<Vec<_>>()
    );
}

#[test]
fn cancel_on_one_node_stops_a_job_running_on_another_within_100_ms() {
    let cluster = Cluster::start(3, |o| o);
    let a = &cluster.nodes[0];
    let id = a.submit_ok("spin", &audio(500), "spin.wav", &json!({}));
    let job = wait_running(a, &id);
    let runner = cluster.runner_of(&job);
    let other = &cluster.nodes[(runner + 1) % 3];
    let started = Instant::now();
    let reply = other.cancel(&id).expect(200).json();
    let took = started.elapsed();
    assert_eq!(reply["status"], "cancelled", "{reply:#}");
    assert!(took < Duration::from_millis(100), "cancel took {took:?}");
    assert_eq!(cluster.nodes[runner].job(&id)["status"], "cancelled");
    // Every node agrees, and the running node is free for the next job.
    let next = other.submit_ok("echo", &audio(300), "next.wav", &json!({}));
    assert_eq!(
        other.wait_terminal(&next, Duration::from_secs(30))["status"],
        "completed"
    );
}

#[test]
fn a_killed_nodes_running_job_is_interrupted_within_the_lease_and_the_others_serve_on() {
    let mut cluster = Cluster::start(2, |o| o.max_running(1));
    let id = cluster.nodes[0].submit_ok(
        "slow",
        &audio(500),
        "long.wav",
        &json!({"steps": 200, "step_ms": 100}),
    );
    let job = wait_running(&cluster.nodes[0], &id);
    let runner = cluster.runner_of(&job);
    let survivor = 1 - runner;
    let killed_at = Instant::now();
    cluster.nodes[runner].kill();
    let mut seen = Value::Null;
    poll_until(Duration::from_secs(15), "the job to be interrupted", || {
        seen = cluster.nodes[survivor].job(&id);
        seen["status"] == "interrupted"
    });
    // Expiry 3 s, renewals every 1 s: noticed within about 5 s of the kill.
    assert!(
        killed_at.elapsed() < Duration::from_secs(8),
        "{:?}",
        killed_at.elapsed()
    );
    assert_eq!(seen["error"]["kind"], "interrupted", "{seen:#}");
    let resubmitted = cluster.nodes[survivor]
        .post_empty(&format!("/api/jobs/{id}/resubmit"))
        .expect(202)
        .json();
    let again = resubmitted["id"].as_str().expect("id");
    assert_eq!(
        cluster.nodes[survivor].wait_terminal(again, Duration::from_secs(60))["status"],
        "completed"
    );
}

#[test]
fn with_retry_interrupted_a_killed_nodes_job_runs_again_elsewhere_and_completes_once() {
    let mut cluster = Cluster::start(2, |o| o.max_running(1).jobs_setting("retry_interrupted", 1));
    let id = cluster.nodes[0].submit_ok(
        "slow",
        &audio(500),
        "retry.wav",
        &json!({"steps": 30, "step_ms": 100}),
    );
    let job = wait_running(&cluster.nodes[0], &id);
    let runner = cluster.runner_of(&job);
    let survivor = 1 - runner;
    // Let it get going, then pull the plug.
    std::thread::sleep(Duration::from_millis(700));
    cluster.nodes[runner].kill();
    let done = cluster.nodes[survivor].wait_terminal(&id, Duration::from_secs(60));
    assert_eq!(done["status"], "completed", "{done:#}");
    assert_eq!(
        done["node"],
        format!("node-{}", (b'a' + survivor as u8) as char)
    );
    assert_eq!(
        cluster.count(&format!("SELECT count(*) FROM results WHERE id = '{id}'")),
        1
    );
    assert_eq!(
        cluster.count(&format!(
            "SELECT count(*) FROM job_events WHERE job_id = '{id}' AND data LIKE '{{\"type\":\"done\"%'"
        )),
        1
    );
}

#[test]
fn a_thousand_concurrent_submissions_over_three_nodes_complete_once_or_get_a_clear_429() {
    let keys = [("capped-key", "capped"), ("free-key", "free")];
    let cluster = Cluster::start(3, |o| {
        keys.iter()
            .fold(o, |o, (key, tenant)| o.api_key(key, tenant, "user"))
            .max_queued(1000)
            // One minute of audio a day: exactly 60 one-second clips fit.
            .extra_toml("[tenants.capped]\naudio_minutes_per_day = 1\n")
    });
    let nodes = Arc::new(cluster.nodes);
    let clip = Arc::new(audio(1_000));
    const SUBMISSIONS: usize = 1000;
    const THREADS: usize = 16;
    let workers: Vec<_> = (0..THREADS)
        .map(|worker| {
            let nodes = nodes.clone();
            let clip = clip.clone();
            std::thread::spawn(move || {
                let mut outcomes = Vec::new();
                for n in (worker..SUBMISSIONS).step_by(THREADS) {
                    let node = &nodes[n % 3];
                    let (key, tenant) = keys[n % 2];
                    let reply = node.submit_as(key, "echo", &clip, "c.wav", &json!({}));
                    outcomes.push((tenant, reply.status, reply.json()));
                }
                outcomes
            })
        })
        .collect();
    let mut accepted: Vec<(&str, String)> = Vec::new();
    let mut refused = 0;
    for worker in workers {
        for (tenant, status, body) in worker.join().expect("worker") {
            match status {
                202 => accepted.push((tenant, body["id"].as_str().expect("id").to_owned())),
                429 => {
                    let code = body["error"]["code"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned();
                    assert!(code == "queue_full" || code == "quota_exceeded", "{body:#}");
                    assert!(
                        !body["error"]["message"]
                            .as_str()
                            .unwrap_or_default()
                            .is_empty()
                    );
                    refused += 1;
                }
                other => panic!("unexpected {other}: {body:#}"),
            }
        }
    }
    assert_eq!(accepted.len() + refused, SUBMISSIONS);
    let capped = accepted.iter().filter(|(t, _)| *t == "capped").count();
    assert_eq!(
        capped, 60,
        "the daily audio quota holds exactly across nodes"
    );
    assert_eq!(
        accepted.len() - capped,
        SUBMISSIONS / 2,
        "the other tenant is unaffected"
    );
    let ids: HashSet<&str> = accepted.iter().map(|(_, id)| id.as_str()).collect();
    assert_eq!(ids.len(), accepted.len(), "every job has its own id");
    let db = &cluster.db;
    poll_until(
        Duration::from_secs(300),
        "every accepted job to finish",
        || db.psql("SELECT count(*) FROM jobs WHERE status IN ('queued', 'running')") == "0",
    );
    assert_eq!(
        db.psql("SELECT count(*) FROM results"),
        accepted.len().to_string(),
        "none lost"
    );
    assert_eq!(
        db.psql("SELECT count(*) FROM job_events WHERE data LIKE '{\"type\":\"done\"%'"),
        accepted.len().to_string(),
        "none run twice"
    );
    assert_eq!(
        db.psql("SELECT count(*) FROM jobs WHERE status <> 'completed'"),
        "0"
    );
}

#[test]
fn tenants_stay_apart_on_every_node() {
    let cluster = Cluster::start(2, |o| {
        o.api_key("ann-key", "ann", "user")
            .api_key("bob-key", "bob", "user")
    });
    let [a, b] = &cluster.nodes[..] else {
        unreachable!()
    };
    let reply = a.submit_as("ann-key", "echo", &audio(500), "ann.wav", &json!({}));
    let id = reply.json()["id"].as_str().expect("id").to_owned();
    b.use_key(Some("ann-key"));
    assert_eq!(
        b.wait_terminal(&id, Duration::from_secs(30))["status"],
        "completed"
    );
    b.use_key(Some("bob-key"));
    assert_eq!(b.get(&format!("/api/jobs/{id}")).status, 404);
    assert_eq!(b.get(&format!("/api/results/{id}")).status, 404);
    assert_eq!(b.cancel(&id).status, 404);
    assert_eq!(b.get("/api/results").expect(200).json()["total"], 0);
}

#[test]
fn a_database_restart_during_a_run_degrades_then_recovers_and_loses_nothing() {
    let mut cluster = Cluster::start(2, |o| o.max_running(1));
    let id = cluster.nodes[0].submit_ok(
        "slow",
        &audio(500),
        "through.wav",
        &json!({"steps": 30, "step_ms": 100}),
    );
    wait_running(&cluster.nodes[0], &id);
    cluster.db.stop();
    poll_until(
        Duration::from_secs(10),
        "the nodes to report the outage",
        || {
            cluster
                .nodes
                .iter()
                .all(|n| n.get("/healthz").json()["status"] == "degraded")
        },
    );
    let refused = cluster.nodes[1].submit("echo", &audio(300), "during.wav", &json!({}));
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert_eq!(refused.error_code(), "database_unavailable");
    assert!(refused.header("retry-after").is_some());
    // The running job finishes meanwhile (3 s) and waits to be stored.
    std::thread::sleep(Duration::from_millis(3_500));
    cluster.db.start_again();
    let done = cluster.nodes[1].wait_terminal(&id, Duration::from_secs(30));
    assert_eq!(done["status"], "completed", "{done:#}");
    poll_until(Duration::from_secs(10), "the nodes to recover", || {
        cluster
            .nodes
            .iter()
            .all(|n| n.get("/healthz").json()["status"] == "ok")
    });
    assert_eq!(cluster.db.psql("SELECT count(*) FROM results"), "1");
    let after = cluster.nodes[1].submit_ok("echo", &audio(300), "after.wav", &json!({}));
    assert_eq!(
        cluster.nodes[0].wait_terminal(&after, Duration::from_secs(30))["status"],
        "completed"
    );
}

#[test]
fn a_browser_login_made_on_one_node_works_on_every_node_until_logged_out_on_any() {
    let cluster = Cluster::start(2, |o| o.api_key("ann-key", "ann", "user"));
    let [a, b] = &cluster.nodes[..] else {
        unreachable!()
    };
    let mut browser = sandscribe_e2e::Browser::new();
    browser.log_in(a, "ann-key");
    // Behind a load balancer the next request may reach the other node.
    let page = browser.get(b, "/plugins");
    assert_eq!(page.status, 200, "{}", page.text());
    assert!(
        page.text()
            .contains(r#"Logged in as <strong id="logged-in-as">ann</strong>"#),
        "{}",
        page.text()
    );
    assert_eq!(browser.get(b, "/api/results").status, 200);
    let mut copy = browser.clone();
    let out = browser.post_form(b, "/logout", &[]);
    assert_eq!(out.status, 303, "{}", out.text());
    // The login ended for every node, not only the one that was asked.
    assert_eq!(copy.get(a, "/api/results").status, 401);
    assert_eq!(
        cluster.count("SELECT count(*) FROM web_logins"),
        0,
        "no login is left in the shared database"
    );
}
