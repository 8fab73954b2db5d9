//! Server-Sent Events: resuming with `Last-Event-ID` gives exactly what was missed.

use std::collections::BTreeSet;

use sandscribe_e2e::{Server, ServerOptions, SseEvent, sine, wav};
use serde_json::json;

fn audio() -> Vec<u8> {
    wav(&sine(2_000, 16_000, 0.3), 16_000)
}

#[test]
fn resuming_a_finished_jobs_events_after_k_gives_exactly_the_events_after_k() {
    let server = Server::start(ServerOptions::new());
    let id = server.submit_ok(
        "slow",
        &audio(),
        "slow.wav",
        &json!({"steps": 6, "step_ms": 20}),
    );
    let all = server.events(&id, None).to_end();
    assert_eq!(all.last().map(|e| e.event.as_str()), Some("done"));
    let n = all.len() as u64;
    assert!(
        n >= 8,
        "a six-step job tells more than {n} events: {all:#?}"
    );
    assert_eq!(
        all.iter().map(|e| e.id).collect::<Vec<_>>(),
        (1..=n).collect::<Vec<_>>(),
        "ids are 1..=n without gaps"
    );

    for k in [1, n / 2, n - 1] {
        let resumed = server.events(&id, Some(k)).to_end();
        assert_eq!(
            resumed,
            all[k as usize..].to_vec(),
            "resuming after {k} gives events {}..={n}",
            k + 1
        );
    }
    // After the last event there is nothing left, and the stream ends.
    assert_eq!(server.events(&id, Some(n)).to_end(), Vec::<SseEvent>::new());

    // `?after=` does the same for clients that cannot set headers.
    let path = format!("/api/jobs/{id}/events?after={}", n - 2);
    let text = server.get(&path).expect(200).text();
    assert!(
        text.contains(&format!("id: {}\n", n - 1)) && text.contains(&format!("id: {n}\n")),
        "{text}"
    );
    assert!(!text.contains(&format!("id: {}\n", n - 2)), "{text}");
}

#[test]
fn reconnecting_to_a_running_job_with_last_event_id_misses_nothing_and_repeats_nothing() {
    let server = Server::start(ServerOptions::new());
    let id = server.submit_ok(
        "slow",
        &audio(),
        "slow.wav",
        &json!({"steps": 10, "step_ms": 150}),
    );

    // Read a few events, then drop the connection while the job is still running.
    let first: Vec<SseEvent> = server.events(&id, None).take(4).collect();
    assert_eq!(first.len(), 4);
    assert!(first.iter().all(|e| !e.is_terminal()));
    let last_seen = first.last().expect("four events").id;
    assert_eq!(
        server.job(&id)["status"],
        "running",
        "the job outlives its subscriber"
    );

    let rest = server.events(&id, Some(last_seen)).to_end();
    assert_eq!(rest.last().map(|e| e.event.as_str()), Some("done"));
    assert!(
        rest.iter().any(|e| e.event == "segment"),
        "live events arrive after the reconnect: {rest:#?}"
    );

    let ids: Vec<u64> = first.iter().chain(&rest).map(|e| e.id).collect();
    let unique: BTreeSet<u64> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "no event twice: {ids:?}");
    assert_eq!(
        ids,
        (1..=ids.len() as u64).collect::<Vec<_>>(),
        "no gaps, in order"
    );

    // And the two halves are the job's whole story, as a fresh subscriber sees it.
    let whole = server.events(&id, None).to_end();
    assert_eq!(whole, first.into_iter().chain(rest).collect::<Vec<_>>());
}
