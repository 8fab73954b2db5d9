//! The result history: newest first, full-text search, deletion.

use sandscribe_e2e::{Server, ServerOptions, sine, wav};
use serde_json::{Value, json};

fn item_ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items: {page:#}"))
        .iter()
        .map(|item| item["id"].as_str().expect("id").to_owned())
        .collect()
}

fn completed_id(job: &Value) -> String {
    assert_eq!(job["status"], "completed", "{job:#}");
    job["id"].as_str().expect("id").to_owned()
}

#[test]
fn results_are_listed_newest_first_found_by_a_word_and_deleted() {
    let server = Server::start(ServerOptions::new());
    let audio = wav(&sine(1_000, 16_000, 0.3), 16_000);
    let oldest = completed_id(&server.run_job("echo", &audio, &json!({})));
    let steps = completed_id(&server.run_job("slow", &audio, &json!({"steps": 2, "step_ms": 0})));
    let newest = completed_id(&server.run_job("echo", &audio, &json!({})));

    let all = server.get("/api/results").expect(200).json();
    assert_eq!(
        item_ids(&all),
        [newest.as_str(), steps.as_str(), oldest.as_str()]
    );
    assert_eq!(all["total"], 3);
    assert!(
        all["items"][0]["preview"]
            .as_str()
            .is_some_and(|p| p.starts_with("window 1 level")),
        "{all:#}"
    );

    // Echo's text has "window"; slow's has "step".
    let found = server.get("/api/results?q=window").expect(200).json();
    assert_eq!(item_ids(&found), [newest.as_str(), oldest.as_str()]);
    assert_eq!(found["total"], 2);
    let found = server.get("/api/results?q=step").expect(200).json();
    assert_eq!(item_ids(&found), [steps.as_str()]);

    // Paging.
    let page = server
        .get("/api/results?per_page=1&page=1")
        .expect(200)
        .json();
    assert_eq!(item_ids(&page), [steps.as_str()]);
    assert_eq!(page["total"], 3);

    // Deleting removes the result and the audio kept for playback.
    let kept_audio = || {
        std::fs::read_dir(server.data_dir().join("audio"))
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .any(|e| e.file_name().to_string_lossy().starts_with(&newest))
            })
            .unwrap_or(false)
    };
    assert!(kept_audio(), "a completed job keeps its audio");
    let path = format!("/api/results/{newest}");
    assert_eq!(server.delete(&path).status, 204);
    assert!(!kept_audio(), "deleting the result removes its audio");
    assert_eq!(server.get(&path).expect(404).error_code(), "not_found");
    assert_eq!(server.delete(&path).expect(404).error_code(), "not_found");
    let all = server.get("/api/results").expect(200).json();
    assert_eq!(item_ids(&all), [steps.as_str(), oldest.as_str()]);
    let found = server.get("/api/results?q=window").expect(200).json();
    assert_eq!(item_ids(&found), [oldest.as_str()]);
}
