//! Queueing: slots, order within and between tenants, bounds, quotas, cancelling.

use std::time::Duration;

use super::{Harness, PATIENCE, completed};
use crate::config::TenantLimits;
use crate::jobs::{CancelError, Ending, EventKind, JobStatus, SubmitError, TrackerOptions};

/// Gives tenant `a` the quotas `set` chooses.
fn limit_tenant_a(options: &mut TrackerOptions, set: impl FnOnce(&mut TenantLimits)) {
    set(options.tenants.entry("a".into()).or_default());
}

#[tokio::test]
async fn a_second_job_waits_at_position_one_until_the_first_ends() {
    let mut h = Harness::new();
    let first = h.submit("a").unwrap();
    let second = h.submit("a").unwrap();
    let run = h.next_start().await;
    assert_eq!(run.job.id, first.id);
    let waiting = h.tracker.get("a", second.id).unwrap();
    assert_eq!(waiting.status, JobStatus::Queued);
    assert_eq!(waiting.queue_position, Some(1));
    assert!(h.nothing_started(), "one slot runs one job");

    run.end(completed("one"));
    let next = h.next_start().await;
    assert_eq!(next.job.id, second.id);
    let first = h.tracker.get("a", first.id).unwrap();
    assert_eq!(first.status, JobStatus::Completed);
    let second = h.tracker.get("a", second.id).unwrap();
    assert_eq!(second.status, JobStatus::Running);
    assert_eq!(second.queue_position, None);
}

#[tokio::test]
async fn every_free_slot_is_used_and_no_more() {
    let mut h = Harness::with(|o| o.max_running = 2);
    let ids: Vec<_> = (0..3).map(|_| h.submit("a").unwrap().id).collect();
    let one = h.next_start().await;
    let two = h.next_start().await;
    assert_eq!([one.job.id, two.job.id], [ids[0], ids[1]]);
    assert!(h.nothing_started());
    assert_eq!(h.tracker.get("a", ids[2]).unwrap().queue_position, Some(1));

    two.end(completed("two"));
    assert_eq!(h.next_start().await.job.id, ids[2]);
    drop(one);
}

#[tokio::test]
async fn jobs_of_one_tenant_run_in_submission_order() {
    let mut h = Harness::new();
    let ids: Vec<_> = (0..3).map(|_| h.submit("a").unwrap().id).collect();
    let mut order = Vec::new();
    for _ in 0..3 {
        let run = h.next_start().await;
        order.push(run.job.id);
        run.end(completed("done"));
    }
    assert_eq!(order, ids);
}

#[tokio::test]
async fn a_tenant_with_one_job_goes_before_another_tenants_backlog() {
    let mut h = Harness::new();
    let a: Vec<_> = (0..3).map(|_| h.submit("a").unwrap().id).collect();
    let b = h.submit("b").unwrap().id;
    assert_eq!(h.tracker.get("b", b).unwrap().queue_position, Some(1));
    assert_eq!(h.tracker.get("a", a[1]).unwrap().queue_position, Some(2));
    assert_eq!(h.tracker.get("a", a[2]).unwrap().queue_position, Some(3));

    let mut order = Vec::new();
    for _ in 0..4 {
        let run = h.next_start().await;
        order.push(run.job.id);
        run.end(completed("done"));
    }
    assert_eq!(order, [a[0], b, a[1], a[2]]);
}

#[tokio::test]
async fn a_tenant_at_its_running_limit_leaves_the_free_slot_to_another() {
    let mut h = Harness::with(|o| {
        o.max_running = 2;
        limit_tenant_a(o, |a| a.max_running = Some(1));
    });
    let a1 = h.submit("a").unwrap().id;
    let a2 = h.submit("a").unwrap().id;
    let b1 = h.submit("b").unwrap().id;
    let first = h.next_start().await;
    let second = h.next_start().await;
    assert_eq!([first.job.id, second.job.id], [a1, b1]);
    assert_eq!(h.tracker.get("a", a2).unwrap().status, JobStatus::Queued);
    drop((first, second));
}

#[tokio::test]
async fn submissions_past_the_queue_bound_are_refused_as_full() {
    let mut h = Harness::with(|o| o.max_queued = 2);
    let _running = h.submit("a").unwrap();
    let _run = h.next_start().await;
    let waiting = h.submit("a").unwrap();
    h.submit("b").unwrap();
    assert!(matches!(h.submit("c"), Err(SubmitError::QueueFull(2))));

    h.tracker.cancel("a", waiting.id).await.unwrap();
    h.submit("c")
        .expect("a cancelled job frees its place in the queue");
}

#[tokio::test]
async fn a_tenant_past_its_queued_quota_is_refused_while_others_are_not() {
    let mut h = Harness::with(|o| limit_tenant_a(o, |a| a.max_queued = Some(1)));
    h.submit("a").unwrap();
    let _run = h.next_start().await;
    h.submit("a").expect("one job may wait");
    let refused = h.submit("a");
    assert!(
        matches!(
            refused,
            Err(SubmitError::QuotaExceeded {
                quota: "queued jobs",
                ..
            })
        ),
        "{refused:?}"
    );
    h.submit("b").expect("another tenant is not limited");
}

#[tokio::test]
async fn cancelling_a_queued_job_ends_it_and_frees_its_place() {
    let mut h = Harness::new();
    let (run, cancelled) = h.one_running_one_waiting("a").await;
    let behind = h.submit("a").unwrap().id;
    let upload = h.tracker.entry("a", cancelled).unwrap().upload.clone();
    assert_eq!(h.tracker.get("a", behind).unwrap().queue_position, Some(2));

    let snapshot = h.tracker.cancel("a", cancelled).await.unwrap();
    assert_eq!(snapshot.status, JobStatus::Cancelled);
    let events = h.all_events("a", cancelled).await;
    let last = &events.last().unwrap().kind;
    assert!(
        matches!(last, EventKind::Cancelled { message } if message == "cancelled while queued"),
        "{last:?}"
    );
    assert!(!upload.exists(), "a cancelled job's upload is removed");
    assert_eq!(h.tracker.get("a", behind).unwrap().queue_position, Some(1));
    assert!(matches!(
        h.tracker.cancel("a", cancelled).await,
        Err(CancelError::AlreadyFinished("cancelled"))
    ));

    run.end(completed("first"));
    assert_eq!(
        h.next_start().await.job.id,
        behind,
        "the cancelled job never runs"
    );
}

#[tokio::test]
async fn cancelling_a_running_job_raises_its_flag_and_waits_until_it_settled() {
    let mut h = Harness::new();
    let (run, waiting) = h.one_running_one_waiting("a").await;
    let (running, upload) = (run.job.id, run.job.upload.clone());
    let tracker = h.tracker.clone();
    let cancel = tokio::spawn(async move { tracker.cancel("a", running).await });

    let flag = run.job.cancel.clone();
    tokio::time::timeout(PATIENCE, async {
        while !flag.is_cancelled() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("the runner sees the cancel flag");
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(!cancel.is_finished(), "cancel waits for the run to end");

    run.end(Ending::Cancelled {
        message: "cancelled while running".into(),
    });
    let snapshot = cancel.await.unwrap().unwrap();
    assert_eq!(snapshot.status, JobStatus::Cancelled);
    assert_eq!(
        h.tracker.get("a", waiting).unwrap().status,
        JobStatus::Running,
        "by the time cancel returns, the slot is free and the next job started"
    );
    assert_eq!(h.next_start().await.job.id, waiting);
    assert!(!upload.exists(), "a cancelled job's upload is removed");
}
