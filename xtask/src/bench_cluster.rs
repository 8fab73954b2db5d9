//! `cargo xtask bench cluster`: what sharing one PostgreSQL database costs, against the
//! embedded SQLite single node, measured in one run and printed as one table.
//!
//! Every configuration is real `sandscribe serve` processes started by the end-to-end
//! harness (`sandscribe-e2e`) with the fixture plugins, `[jobs] max_running = 2` per
//! node: the SQLite single node (the reference), then 1, 2 and 3 nodes on a fresh
//! private PostgreSQL each (the harness's test server: `fsync = off`), sharing one upload
//! folder. All of it runs on this machine, so more nodes share the same cores: the
//! figures show coordination overhead, not scale-out.
//!
//! - **throughput**: 300 `echo` jobs on a 1 s 16 kHz WAV, submitted by 8 client threads,
//!   job `i` to node `i mod n`. Each client submits its share without waiting (the queue
//!   stays full, so every free slot on every node has work), then follows each of its
//!   jobs on the node it submitted to (`GET /api/jobs/{id}/events`) to the terminal event.
//!   Jobs/s = completed jobs / time from the first submission to the last terminal event
//!   seen. A few untimed jobs per node warm each configuration up first.
//! - **event latency** (PostgreSQL only): 10 `slow` jobs (`{"steps": 20, "step_ms": 50}`),
//!   one at a time, submitted on the first node and followed at once on every node.
//!   Events carry no timestamp of their own, and with a database every subscriber (one on
//!   the running node included) reads the shared log, so "arrival on the running node"
//!   would not stand for the moment an event was produced. Instead the bench stamps each
//!   event where it enters the shared log: before the timed jobs it adds, to its own
//!   private database, an `AFTER INSERT` trigger on `job_events` that records
//!   `clock_timestamp()` per row. Latency = the wall-clock time a subscriber on a node
//!   other than the running one reads the event minus that stamp (PostgreSQL and the
//!   bench read the same system clock). It covers the commit, the `NOTIFY`, the other
//!   node's listener and read of the log, and its SSE; it leaves out only the hop from
//!   the plugin to the running node's event writer, an in-process channel with nothing
//!   else to write between two steps. Only events stamped after the subscriber's stream opened count,
//!   so none of them came from the backlog it read first. With one node the subscriber is
//!   necessarily on the running node. The skew columns compare the same events on a
//!   subscriber on another node and on the running node (difference of arrival times on
//!   the bench's monotonic clock): what being on another node adds. Under the table,
//!   the events later than 20 ms are counted by type, to show where a tail comes from.
//! - **cancel**: 20 `spin` jobs (they never return), submitted round-robin; once one runs,
//!   `GET /api/jobs/{id}` names its node and `POST /api/jobs/{id}/cancel` goes to the next
//!   node (with one node, to that node). The request returns once the job is cancelled,
//!   so latency = the request's time.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sandscribe_e2e::{Postgres, Server, ServerOptions, sine, wav};
use serde_json::{Value, json};

use crate::setup;

/// Jobs in the throughput run of each configuration.
const THROUGHPUT_JOBS: usize = 300;
/// Client threads submitting them.
const CLIENTS: usize = 8;
/// Untimed jobs per node before the throughput run.
const WARM_UP_JOBS_PER_NODE: usize = 2;
/// `[jobs] max_running` of every node.
const MAX_RUNNING: u64 = 2;
/// `[jobs] max_queued`: above the whole throughput run, so no submission is refused.
const MAX_QUEUED: u64 = 1_000;
/// PostgreSQL configurations: nodes sharing one database.
const NODE_COUNTS: [usize; 3] = [1, 2, 3];
/// `slow` jobs followed for the event latency.
const LATENCY_JOBS: usize = 10;
/// `spin` jobs cancelled.
const CANCEL_SAMPLES: usize = 20;
/// How long one job's event stream may take in all (the last of 300 queued jobs waits
/// for the 299 before it).
const FOLLOW_LIMIT: Duration = Duration::from_secs(600);
/// Event latencies above this are counted by event type under the table.
const LATE_EVENT_MS: f64 = 20.0;
/// How long a `spin` job may take to start running.
const START_LIMIT: Duration = Duration::from_secs(30);

/// Stamps every event as it enters the shared log (see the module doc).
const STAMP_EVENTS_SQL: &str = "
    CREATE UNLOGGED TABLE bench_event_stamps (
        job_id UUID   NOT NULL,
        seq    BIGINT NOT NULL,
        at_us  BIGINT NOT NULL
    );
    CREATE FUNCTION bench_stamp_event() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO bench_event_stamps
        VALUES (NEW.job_id, NEW.seq, (extract(epoch FROM clock_timestamp()) * 1000000)::bigint);
        RETURN NULL;
    END $$;
    CREATE TRIGGER bench_stamp_event AFTER INSERT ON job_events
        FOR EACH ROW EXECUTE FUNCTION bench_stamp_event();
";

pub fn cluster(args: &[String]) -> Result<(), String> {
    let mut options = setup::Options::parse(args);
    // The PostgreSQL rows start private servers from the installed programs.
    options.postgres = true;
    let paths = setup::setup(&options)?;
    let work = paths.root.join("target/bench/cluster");
    // The harness panics, with the server's log, when a server misbehaves; that ends
    // this bench with an error rather than a half-printed table.
    let rows = std::panic::catch_unwind(AssertUnwindSafe(|| measure(&paths.fixtures, &work)))
        .map_err(|panic| format!("bench cluster stopped: {}", panic_message(&*panic)))?;
    print_table(&rows);
    Ok(())
}

/// One configuration's figures.
struct Row {
    database: &'static str,
    nodes: usize,
    throughput: Throughput,
    /// Log entry → subscriber on another node (None: SQLite, no shared log).
    events: Option<Vec<EventSample>>,
    /// Subscriber on another node − subscriber on the running node, ms (n ≥ 2).
    skew_ms: Option<Vec<f64>>,
    cancel_ms: Vec<f64>,
}

struct Throughput {
    completed: usize,
    seconds: f64,
}

impl Throughput {
    fn jobs_per_second(&self) -> f64 {
        self.completed as f64 / self.seconds
    }
}

fn measure(fixtures: &Path, work: &Path) -> Vec<Row> {
    let audio = wav(&sine(1_000, 16_000, 0.3), 16_000);
    let base = || {
        ServerOptions::new()
            .plugins_dir(fixtures)
            .max_running(MAX_RUNNING)
            .max_queued(MAX_QUEUED)
    };
    let mut rows = Vec::new();

    progress("sqlite, 1 node");
    let nodes = vec![Server::start(base())];
    rows.push(Row {
        database: "sqlite",
        nodes: 1,
        throughput: throughput(&nodes, &audio),
        events: None,
        skew_ms: None,
        cancel_ms: cancel_latencies(&nodes, &[], &audio),
    });
    drop(nodes);

    for count in NODE_COUNTS {
        progress(&format!("postgresql, {count} node(s)"));
        let db = Postgres::start();
        let shared = work.join(format!("shared-{count}"));
        let _ = std::fs::remove_dir_all(&shared);
        std::fs::create_dir_all(&shared)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", shared.display()));
        let names: Vec<String> = (0..count)
            .map(|i| format!("node-{}", char::from(b'a' + i as u8)))
            .collect();
        let nodes: Vec<Server> = names
            .iter()
            .map(|name| Server::start(base().cluster_node(&db.url(), &shared, name)))
            .collect();
        let throughput = throughput(&nodes, &audio);
        // Only now: the trigger would otherwise weigh on the throughput run.
        db.psql(STAMP_EVENTS_SQL);
        let (events, skew_ms) = event_latencies(&db, &nodes, &names, &audio);
        let cancel_ms = cancel_latencies(&nodes, &names, &audio);
        rows.push(Row {
            database: "postgresql",
            nodes: count,
            throughput,
            events: Some(events),
            skew_ms: (count > 1).then_some(skew_ms),
            cancel_ms,
        });
        drop(nodes);
        drop(db);
        let _ = std::fs::remove_dir_all(&shared);
    }
    rows
}

fn progress(what: &str) {
    eprintln!("xtask: bench cluster: {what}");
}

/// Warms the nodes up, then runs the timed job mix (see the module doc).
fn throughput(nodes: &[Server], audio: &[u8]) -> Throughput {
    let warm_up: Vec<(usize, String)> = (0..WARM_UP_JOBS_PER_NODE * nodes.len())
        .map(|i| {
            let node = i % nodes.len();
            (
                node,
                nodes[node].submit_ok("echo", audio, "warm.wav", &json!({})),
            )
        })
        .collect();
    for (node, id) in &warm_up {
        nodes[*node].wait_terminal(id, FOLLOW_LIMIT);
    }

    let started = Instant::now();
    let clients: Vec<(usize, Instant)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|client| scope.spawn(move || run_client(client, nodes, audio)))
            .collect();
        handles.into_iter().map(join).collect()
    });
    let completed = clients.iter().map(|(done, _)| done).sum();
    let last = clients.iter().map(|(_, at)| *at).max().unwrap_or(started);
    Throughput {
        completed,
        seconds: last.duration_since(started).as_secs_f64(),
    }
}

/// One client: submits jobs `client`, `client + CLIENTS`, … each to node `job mod n`,
/// then follows each to its end. Returns how many completed and when the last ended.
fn run_client(client: usize, nodes: &[Server], audio: &[u8]) -> (usize, Instant) {
    let submitted: Vec<(usize, String)> = (client..THROUGHPUT_JOBS)
        .step_by(CLIENTS)
        .map(|job| {
            let node = job % nodes.len();
            (
                node,
                nodes[node].submit_ok("echo", audio, "echo.wav", &json!({})),
            )
        })
        .collect();
    let mut completed = 0;
    let mut last = Instant::now();
    for (node, id) in &submitted {
        let events = nodes[*node].events_within(id, None, FOLLOW_LIMIT).to_end();
        last = Instant::now();
        if events.last().is_some_and(|e| e.event == "done") {
            completed += 1;
        }
    }
    (completed, last)
}

/// What one subscriber saw of a job.
struct Followed {
    /// Wall clock (µs since the epoch) when the stream opened: its backlog was read.
    opened_us: i64,
    arrivals: Vec<Arrival>,
}

/// One event as a subscriber read it.
struct Arrival {
    /// The event id: its sequence number in the job's log.
    seq: u64,
    /// The SSE event name (`segment`, `progress`, `status`, ...).
    kind: String,
    /// Wall clock, µs since the epoch (compared with PostgreSQL's stamps).
    wall_us: i64,
    /// Monotonic (compared between subscribers).
    at: Instant,
}

/// One event's latency from the shared log to a subscriber on another node.
struct EventSample {
    kind: String,
    ms: f64,
}

/// Runs the `slow` jobs followed on every node; returns the latencies (log entry →
/// subscriber on another node) and the skews (another node − the running node, ms).
fn event_latencies(
    db: &Postgres,
    nodes: &[Server],
    names: &[String],
    audio: &[u8],
) -> (Vec<EventSample>, Vec<f64>) {
    let config = json!({"steps": 20, "step_ms": 50});
    let mut jobs = Vec::new();
    for _ in 0..LATENCY_JOBS {
        let id = nodes[0].submit_ok("slow", audio, "slow.wav", &config);
        let followed: Vec<Followed> = std::thread::scope(|scope| {
            let handles: Vec<_> = nodes
                .iter()
                .map(|node| scope.spawn(|| follow_timed(node, &id)))
                .collect();
            handles.into_iter().map(join).collect()
        });
        let job = nodes[0].job(&id);
        assert_eq!(job["status"], "completed", "a slow job failed: {job:#}");
        let runner = runner_of(&job, names);
        jobs.push((id, runner, followed));
    }

    let stamps: HashMap<(String, u64), i64> = db
        .psql("SELECT job_id, seq, at_us FROM bench_event_stamps")
        .lines()
        .filter_map(|line| {
            let mut fields = line.split('|');
            let job = fields.next()?.to_owned();
            let seq = fields.next()?.parse().ok()?;
            let at = fields.next()?.parse().ok()?;
            Some(((job, seq), at))
        })
        .collect();

    let mut latencies = Vec::new();
    let mut skews = Vec::new();
    for (id, runner, followed) in &jobs {
        let stamp = |seq: u64| stamps.get(&(id.clone(), seq)).copied();
        let on_runner: HashMap<u64, Instant> = live(&followed[*runner], &stamp)
            .into_iter()
            .map(|(_, a)| (a.seq, a.at))
            .collect();
        for (node, subscriber) in followed.iter().enumerate() {
            if node == *runner && nodes.len() > 1 {
                continue;
            }
            for (stamped_us, arrival) in live(subscriber, &stamp) {
                latencies.push(EventSample {
                    kind: arrival.kind.clone(),
                    ms: (arrival.wall_us - stamped_us) as f64 / 1000.0,
                });
                if node != *runner
                    && let Some(there) = on_runner.get(&arrival.seq)
                {
                    skews.push(signed_ms(arrival.at, *there));
                }
            }
        }
    }
    assert!(
        !latencies.is_empty(),
        "no event of the slow jobs was stamped in the shared log"
    );
    (latencies, skews)
}

/// The events `subscriber` read that entered the log after its stream opened (so live,
/// not from the backlog it read first), each with its stamp.
fn live<'a>(
    subscriber: &'a Followed,
    stamp: &impl Fn(u64) -> Option<i64>,
) -> Vec<(i64, &'a Arrival)> {
    subscriber
        .arrivals
        .iter()
        .filter_map(|a| stamp(a.seq).map(|at| (at, a)))
        .filter(|(at, _)| *at > subscriber.opened_us)
        .collect()
}

/// Follows a job's events on `node`, noting when each arrives.
fn follow_timed(node: &Server, id: &str) -> Followed {
    let events = node.events_within(id, None, FOLLOW_LIMIT);
    let opened_us = wall_clock_us();
    let mut arrivals = Vec::new();
    for event in events {
        let (wall_us, at) = (wall_clock_us(), Instant::now());
        arrivals.push(Arrival {
            seq: event.id,
            kind: event.event,
            wall_us,
            at,
        });
    }
    Followed {
        opened_us,
        arrivals,
    }
}

/// Cancels running `spin` jobs from a node other than the running one; ms per request.
fn cancel_latencies(nodes: &[Server], names: &[String], audio: &[u8]) -> Vec<f64> {
    let mut samples = Vec::new();
    for i in 0..CANCEL_SAMPLES {
        let submitted_on = &nodes[i % nodes.len()];
        let id = submitted_on.submit_ok("spin", audio, "spin.wav", &json!({}));
        let job = wait_running(submitted_on, &id);
        let runner = runner_of(&job, names);
        let canceller = &nodes[(runner + 1) % nodes.len()];
        let started = Instant::now();
        let reply = canceller.cancel(&id).expect(200);
        let took = started.elapsed();
        let status = reply.json()["status"].clone();
        assert_eq!(status, "cancelled", "cancel answered {}", reply.text());
        samples.push(took.as_secs_f64() * 1000.0);
    }
    samples
}

fn wait_running(node: &Server, id: &str) -> Value {
    let deadline = Instant::now() + START_LIMIT;
    loop {
        let job = node.job(id);
        if job["status"] == "running" {
            return job;
        }
        assert!(
            Instant::now() < deadline,
            "job {id} did not start within {START_LIMIT:?}: {job:#}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The index of the node a job reports as its runner (0 for the SQLite single node,
/// which names none).
fn runner_of(job: &Value, names: &[String]) -> usize {
    if names.is_empty() {
        return 0;
    }
    let name = job["node"].as_str().unwrap_or_default();
    names
        .iter()
        .position(|n| n == name)
        .unwrap_or_else(|| panic!("job names no known node ({names:?}): {job:#}"))
}

fn join<T>(handle: std::thread::ScopedJoinHandle<'_, T>) -> T {
    handle
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

fn wall_clock_us() -> i64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_micros()).unwrap_or(i64::MAX)
}

/// `a − b` in ms, negative when `a` came first.
fn signed_ms(a: Instant, b: Instant) -> f64 {
    match a.checked_duration_since(b) {
        Some(after) => after.as_secs_f64() * 1000.0,
        None => -(b.duration_since(a).as_secs_f64() * 1000.0),
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "a panic without a message".into())
}

/// The nearest-rank `q` quantile (0 < q ≤ 1) of `samples`.
fn quantile(samples: &[f64], q: f64) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn print_table(rows: &[Row]) {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let reference = rows.iter().find(|r| r.database == "sqlite");
    // A ratio to the SQLite row, for the other rows.
    let against = |row: &Row, value: f64, of: fn(&Row) -> f64| match reference {
        Some(r) if r.database != row.database && of(r) > 0.0 => {
            format!("{:.2}x", value / of(r))
        }
        _ => "-".into(),
    };
    let quantiles = |samples: &[f64]| match samples {
        [] => format!("{:>7} {:>7}", "-", "-"),
        s => format!("{:>7.2} {:>7.2}", quantile(s, 0.50), quantile(s, 0.99)),
    };
    let cancel_p99 = |row: &Row| quantile(&row.cancel_ms, 0.99);
    let jobs_per_second = |row: &Row| row.throughput.jobs_per_second();
    println!(
        "\nsandscribe cluster: max_running {MAX_RUNNING} per node; every node and PostgreSQL \
         run on this {cores}-core machine, so more nodes share the same cores: the figures \
         show coordination overhead, not scale-out."
    );
    println!(
        "{:<10} {:>5} | {:^25} | {:^15} | {:^15} | {:^15} | {:>10}",
        "", "", "echo throughput", "event ms", "skew ms", "cancel ms", "cancel p99"
    );
    println!(
        "{:<10} {:>5} | {:>7} {:>8} {:>8} | {:>7} {:>7} | {:>7} {:>7} | {:>7} {:>7} | {:>10}",
        "database",
        "nodes",
        "jobs/s",
        "x sqlite",
        "done",
        "p50",
        "p99",
        "p50",
        "p99",
        "p50",
        "p99",
        "x sqlite"
    );
    for row in rows {
        let events: Vec<f64> = row.events.iter().flatten().map(|e| e.ms).collect();
        println!(
            "{:<10} {:>5} | {:>7.1} {:>8} {:>8} | {} | {} | {} | {:>10}",
            row.database,
            row.nodes,
            jobs_per_second(row),
            against(row, jobs_per_second(row), jobs_per_second),
            format!("{}/{THROUGHPUT_JOBS}", row.throughput.completed),
            quantiles(&events),
            quantiles(row.skew_ms.as_deref().unwrap_or_default()),
            quantiles(&row.cancel_ms),
            against(row, cancel_p99(row), cancel_p99),
        );
    }
    println!(
        "\necho throughput: {THROUGHPUT_JOBS} echo jobs (1 s, 16 kHz) from {CLIENTS} client \
         threads, round-robin over the nodes; completed jobs / (first submission -> last \
         terminal event).\n\
         event ms: {LATENCY_JOBS} slow jobs (20 steps of 50 ms); every event, from its entry in \
         the shared log (clock_timestamp() of a bench-only trigger) to a subscriber on a node \
         other than the running one (1 node: on the running node). No shared log with sqlite.\n\
         skew ms: the same events on a subscriber on another node minus on the running node.\n\
         cancel ms: {CANCEL_SAMPLES} POST /api/jobs/{{id}}/cancel of a running spin job, sent to \
         the node after the running one (1 node: to that node); it returns once the job is \
         cancelled. p99 of {CANCEL_SAMPLES} samples is their largest."
    );
    for row in rows {
        let Some(events) = &row.events else { continue };
        let late: Vec<&EventSample> = events.iter().filter(|e| e.ms > LATE_EVENT_MS).collect();
        let mut kinds: Vec<(&str, usize)> = Vec::new();
        for event in &late {
            match kinds.iter_mut().find(|(k, _)| *k == event.kind) {
                Some((_, n)) => *n += 1,
                None => kinds.push((&event.kind, 1)),
            }
        }
        let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
        println!(
            "events later than {LATE_EVENT_MS} ms, {} {} node(s): {} of {}{}",
            row.database,
            row.nodes,
            late.len(),
            events.len(),
            if kinds.is_empty() {
                String::new()
            } else {
                format!(" ({})", kinds.join(", "))
            }
        );
    }
}
