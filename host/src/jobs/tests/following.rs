//! Following a job: every event once, in order, from wherever the follower joins, and a
//! log that stays bounded without losing the job's ending.

use futures::StreamExt;

use super::{Harness, PATIENCE, completed};
use crate::jobs::entry::MAX_EVENTS_PER_JOB;
use crate::jobs::{EventKind, JobEvent};
use crate::runtime::LogLevel;
use crate::transcript::Segment;

/// The seq numbers of `events`.
fn seqs(events: &[JobEvent]) -> Vec<u64> {
    events.iter().map(|e| e.seq).collect()
}

#[tokio::test]
async fn following_from_the_start_or_the_middle_yields_exactly_the_missing_events() {
    let mut h = Harness::new();
    let id = h.submit("a").unwrap().id;
    let run = h.next_start().await;
    // Followers that join while the job runs: one from the start, one from seq 2.
    let from_start = h.tracker.follow_here("a", id, 0).unwrap();
    let from_two = h.tracker.follow_here("a", id, 2).unwrap();
    let live = tokio::spawn(async move {
        let start: Vec<JobEvent> = from_start.collect().await;
        let two: Vec<JobEvent> = from_two.collect().await;
        (start, two)
    });

    let reporter = run.job.reporter.clone();
    reporter.progress(0.5, "halfway");
    reporter.log(LogLevel::Info, "hello");
    reporter.segment(Segment {
        start_ms: 0,
        end_ms: 1_000,
        text: "hi".into(),
        ..Default::default()
    });
    run.end(completed("hi"));

    let (start, two) = tokio::time::timeout(PATIENCE, live).await.unwrap().unwrap();
    let names: Vec<_> = start.iter().map(|e| e.kind.name()).collect();
    assert_eq!(
        names,
        ["status", "status", "progress", "log", "segment", "done"]
    );
    assert_eq!(seqs(&start), [1, 2, 3, 4, 5, 6]);
    assert_eq!(seqs(&two), [3, 4, 5, 6]);

    // And after the end: from the middle, then from the last event (nothing missing).
    assert_eq!(seqs(&h.events_after("a", id, 4).await), [5, 6]);
    assert!(h.events_after("a", id, 6).await.is_empty());
    assert_eq!(seqs(&h.all_events("a", id).await), seqs(&start));
}

#[tokio::test]
async fn past_the_event_cap_only_live_only_events_are_dropped() {
    let mut h = Harness::new();
    let id = h.submit("a").unwrap().id;
    let run = h.next_start().await;
    for line in 0..MAX_EVENTS_PER_JOB + 100 {
        run.job
            .reporter
            .log(LogLevel::Info, &format!("line {line}"));
    }
    run.job.reporter.progress(0.9, "still going");
    run.end(completed("done"));

    let events = h.all_events("a", id).await;
    assert_eq!(
        events.len(),
        MAX_EVENTS_PER_JOB + 1,
        "the cap, then the end"
    );
    let expected: Vec<u64> = (1..=events.len() as u64).collect();
    assert_eq!(seqs(&events), expected, "no gaps");
    let logs = events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::Log { .. }))
        .count();
    assert_eq!(logs, MAX_EVENTS_PER_JOB - 2, "after the two status events");
    assert!(matches!(
        events.last().unwrap().kind,
        EventKind::Done { .. }
    ));
    let snapshot = h.tracker.get("a", id).unwrap();
    assert!(snapshot.result.is_some(), "the result is never dropped");
}
