//! Results are durable: a restarted server still lists, serves and exports them.

use sandscribe_e2e::{Server, ServerOptions, sine, wav};
use serde_json::json;

#[test]
fn results_written_before_a_restart_are_served_after_it() {
    let mut server = Server::start(ServerOptions::new());
    let job = server.run_job("echo", &wav(&sine(2_000, 16_000, 0.4), 16_000), &json!({}));
    assert_eq!(job["status"], "completed", "{job:#}");
    let id = job["id"].as_str().expect("id").to_owned();
    let before = server.get(&format!("/api/results/{id}")).expect(200).json();
    let srt_before = server
        .get(&format!("/api/results/{id}/export?format=srt"))
        .expect(200)
        .text();

    server.restart();

    let list = server.get("/api/results").expect(200).json();
    assert_eq!(list["total"], 1, "{list:#}");
    assert_eq!(list["items"][0]["id"], id.as_str());

    assert_eq!(
        server.get(&format!("/api/results/{id}")).expect(200).json(),
        before
    );
    let job = server.job(&id);
    assert_eq!(job["status"], "completed", "{job:#}");
    assert_eq!(job["result"], before);
    let srt_after = server
        .get(&format!("/api/results/{id}/export?format=srt"))
        .expect(200)
        .text();
    assert_eq!(srt_after, srt_before);

    // The job's story after a restart is its `done` event.
    let events = server.events(&id, None).to_end();
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0].event, "done");
    assert_eq!(events[0].data["result"], before);

    // A finished job cannot be cancelled after a restart either.
    assert_eq!(
        server.cancel(&id).expect(409).error_code(),
        "already_finished"
    );
    server.assert_serves_echo_job();
}
