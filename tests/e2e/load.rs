//! Load: a thousand concurrent submissions from a bounded client. Each one ends completed
//! or gets a clear 429, none is lost, the server's memory stays bounded, and the
//! metrics agree with what happened.

use std::sync::Mutex;
use std::time::Duration;

use sandscribe_e2e::{Server, ServerOptions, sine, wav};
use serde_json::json;

const SUBMISSIONS: usize = 1000;
const CLIENTS: usize = 16;

/// Resident memory of a process in MiB.
fn rss_mib(pid: u32) -> u64 {
    sandscribe_e2e::memory_mib(pid).0
}

#[test]
fn a_thousand_concurrent_submissions_each_complete_or_get_429_and_none_is_lost() {
    let server = Server::start(ServerOptions::new().max_running(2).max_queued(200));
    let audio = wav(&sine(500, 16_000, 0.3), 16_000);
    let accepted = Mutex::new(Vec::new());
    let refused = Mutex::new(0usize);
    let peak_rss = Mutex::new(0u64);
    std::thread::scope(|scope| {
        for client in 0..CLIENTS {
            let (server, audio, accepted, refused, peak_rss) =
                (&server, &audio, &accepted, &refused, &peak_rss);
            scope.spawn(move || {
                for n in (client..SUBMISSIONS).step_by(CLIENTS) {
                    let reply = server.submit("echo", audio, &format!("load-{n}.wav"), &json!({}));
                    match reply.status {
                        202 => accepted
                            .lock()
                            .expect("lock")
                            .push(reply.json()["id"].as_str().expect("id").to_owned()),
                        429 => {
                            assert_eq!(reply.error_code(), "queue_full", "{}", reply.text());
                            *refused.lock().expect("lock") += 1;
                        }
                        other => panic!("submission {n}: unexpected {other}: {}", reply.text()),
                    }
                    if n % 50 == 0 {
                        let rss = rss_mib(server.pid());
                        let mut peak = peak_rss.lock().expect("lock");
                        *peak = (*peak).max(rss);
                    }
                }
            });
        }
    });
    let accepted = accepted.into_inner().expect("lock");
    let refused = refused.into_inner().expect("lock");
    assert_eq!(accepted.len() + refused, SUBMISSIONS);
    assert!(!accepted.is_empty(), "some submissions must be accepted");
    for id in &accepted {
        let job = server.wait_terminal(id, Duration::from_secs(120));
        assert_eq!(job["status"], "completed", "{job:#}");
    }
    let peak = peak_rss.into_inner().expect("lock");
    eprintln!(
        "load: {} accepted, {refused} refused with 429, peak server RSS {peak} MiB",
        accepted.len()
    );
    assert!(
        peak < 1024,
        "server memory should stay bounded; peak RSS {peak} MiB"
    );
    let metrics = server.get("/metrics").expect(200).text();
    let line = format!(
        r#"sandscribe_jobs_total{{plugin="echo",tenant="default",outcome="completed"}} {}"#,
        accepted.len()
    );
    assert!(
        metrics.contains(&line),
        "metrics should count every completed job ({line}):\n{metrics}"
    );
    assert!(metrics.contains("sandscribe_queue_depth 0"), "{metrics}");
    assert!(metrics.contains("sandscribe_sse_streams 0"), "{metrics}");
    let results = server.get("/api/results?per_page=1").expect(200).json();
    assert_eq!(
        results["total"],
        accepted.len(),
        "every completed job is stored exactly once"
    );
}
