//! The result store's behaviour, specified against the SQLite backend.

use time::{Duration, OffsetDateTime, UtcOffset};
use uuid::Uuid;

use super::*;
use crate::transcript::{Segment, Transcript, Word};

/// A fixed, ms-distinct base time so ordering tests do not depend on the clock.
fn base_time() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_750_000_000).expect("valid timestamp")
}

fn result(tenant: &str, file_name: &str, text: &str, created_at: OffsetDateTime) -> StoredResult {
    StoredResult {
        id: Uuid::new_v4(),
        tenant: tenant.into(),
        file_name: file_name.into(),
        plugin_id: "whisper-tiny".into(),
        plugin_name: "Whisper tiny".into(),
        plugin_version: "1.2.3".into(),
        config: serde_json::json!({ "beam_size": 5, "temperature": 0.2, "prompt": null }),
        transcript: Transcript {
            text: text.into(),
            language: Some("en".into()),
            segments: vec![Segment {
                start_ms: 0,
                end_ms: 1500,
                text: text.into(),
                confidence: Some(0.87),
                words: vec![Word {
                    text: "hello".into(),
                    start_ms: 0,
                    end_ms: 400,
                    confidence: Some(0.99),
                    speaker: None,
                }],
                speaker: None,
            }],
        },
        duration_ms: 1500,
        created_at,
        started_at: created_at + Duration::milliseconds(10),
        finished_at: created_at + Duration::seconds(3),
        diarization: None,
    }
}

fn list(store: &SqliteStore, tenant: &str, text: Option<&str>) -> ResultPage {
    store
        .list(&ResultQuery {
            tenant: tenant.into(),
            text: text.map(Into::into),
            page: 0,
            per_page: 50,
        })
        .expect("list")
}

fn file_names(page: &ResultPage) -> Vec<&str> {
    page.items.iter().map(|i| i.file_name.as_str()).collect()
}

#[test]
fn insert_then_get_returns_the_identical_result() {
    let store = SqliteStore::open_in_memory().expect("open");
    let mut stored = result("default", "talk.wav", "hello world", base_time());
    // Sub-millisecond precision and a non-UTC offset must survive too.
    stored.created_at = (base_time() + Duration::nanoseconds(123_456_789))
        .to_offset(UtcOffset::from_hms(2, 0, 0).expect("offset"));
    stored.transcript.language = None;
    store.insert(&stored).expect("insert");

    let got = store
        .get("default", stored.id)
        .expect("get")
        .expect("found");
    assert_eq!(got, stored);
    assert_eq!(got.created_at.offset(), stored.created_at.offset());
    assert_eq!(got.created_at.nanosecond(), 123_456_789);
}

#[test]
fn get_of_unknown_id_is_none() {
    let store = SqliteStore::open_in_memory().expect("open");
    assert_eq!(store.get("default", Uuid::new_v4()).expect("get"), None);
}

#[test]
fn inserting_the_same_id_twice_is_a_duplicate_error() {
    let store = SqliteStore::open_in_memory().expect("open");
    let first = result("default", "a.wav", "first", base_time());
    store.insert(&first).expect("insert");

    let mut again = result("other", "b.wav", "second", base_time());
    again.id = first.id;
    let err = store.insert(&again).expect_err("duplicate");
    assert!(
        matches!(err, StorageError::Duplicate(id) if id == first.id),
        "{err}"
    );
    // The first result is untouched.
    assert_eq!(store.get("default", first.id).expect("get"), Some(first));
}

#[test]
fn list_is_newest_first_with_paging_and_total() {
    let store = SqliteStore::open_in_memory().expect("open");
    for i in 0..5 {
        let created = base_time() + Duration::minutes(i);
        store
            .insert(&result("default", &format!("{i}.wav"), "text", created))
            .expect("insert");
    }
    let page = |page, per_page| {
        store
            .list(&ResultQuery {
                tenant: "default".into(),
                text: None,
                page,
                per_page,
            })
            .expect("list")
    };

    let first = page(0, 2);
    assert_eq!(file_names(&first), ["4.wav", "3.wav"]);
    assert_eq!((first.page, first.per_page, first.total), (0, 2, 5));
    assert_eq!(file_names(&page(1, 2)), ["2.wav", "1.wav"]);
    assert_eq!(file_names(&page(2, 2)), ["0.wav"]);
    let past_end = page(3, 2);
    assert!(past_end.items.is_empty());
    assert_eq!(past_end.total, 5);
}

#[test]
fn results_created_in_the_same_millisecond_list_last_inserted_first() {
    let store = SqliteStore::open_in_memory().expect("open");
    for name in ["a.wav", "b.wav", "c.wav"] {
        store
            .insert(&result("default", name, "text", base_time()))
            .expect("insert");
    }
    assert_eq!(
        file_names(&list(&store, "default", None)),
        ["c.wav", "b.wav", "a.wav"]
    );
}

#[test]
fn list_sorts_by_instant_not_by_offset_text() {
    let store = SqliteStore::open_in_memory().expect("open");
    let plus_five = UtcOffset::from_hms(5, 0, 0).expect("offset");
    // Earlier instant, but its local text ("…T05:…") sorts after the later one's ("…T01:…").
    let earlier = base_time().to_offset(plus_five);
    let later = base_time() + Duration::hours(1);
    store
        .insert(&result("default", "earlier.wav", "x", earlier))
        .expect("insert");
    store
        .insert(&result("default", "later.wav", "x", later))
        .expect("insert");
    assert_eq!(
        file_names(&list(&store, "default", None)),
        ["later.wav", "earlier.wav"]
    );
}

#[test]
fn per_page_is_clamped_to_1_through_200() {
    let store = SqliteStore::open_in_memory().expect("open");
    for i in 0..3 {
        store
            .insert(&result(
                "default",
                "x.wav",
                "x",
                base_time() + Duration::seconds(i),
            ))
            .expect("insert");
    }
    let with_per_page = |per_page| {
        store
            .list(&ResultQuery {
                tenant: "default".into(),
                text: None,
                page: 0,
                per_page,
            })
            .expect("list")
    };
    let zero = with_per_page(0);
    assert_eq!((zero.per_page, zero.items.len()), (1, 1));
    let huge = with_per_page(10_000);
    assert_eq!((huge.per_page, huge.items.len()), (200, 3));
}

#[test]
fn summary_preview_is_cut_at_a_char_boundary_with_ellipsis() {
    let store = SqliteStore::open_in_memory().expect("open");
    let long = "ä€😀 ".repeat(100);
    store
        .insert(&result("default", "long.wav", &long, base_time()))
        .expect("insert");
    store
        .insert(&result("default", "short.wav", "Short text.", base_time()))
        .expect("insert");

    let page = list(&store, "default", None);
    assert_eq!(page.items[0].preview, "Short text.");
    let preview = &page.items[1].preview;
    assert!(preview.ends_with('…'), "{preview}");
    assert!(preview.chars().count() <= ResultSummary::PREVIEW_CHARS + 1);
    assert!(long.starts_with(preview.trim_end_matches('…')));
}

#[test]
fn summary_carries_the_result_metadata() {
    let store = SqliteStore::open_in_memory().expect("open");
    let stored = result("default", "talk.wav", "hello world", base_time());
    store.insert(&stored).expect("insert");
    let summary = &list(&store, "default", None).items[0];
    let expected = ResultSummary {
        id: stored.id,
        file_name: stored.file_name.clone(),
        plugin_id: stored.plugin_id.clone(),
        plugin_name: stored.plugin_name.clone(),
        language: stored.transcript.language.clone(),
        duration_ms: stored.duration_ms,
        preview: "hello world".into(),
        created_at: stored.created_at,
        finished_at: stored.finished_at,
    };
    assert_eq!(summary, &expected);
}

fn search_fixture() -> SqliteStore {
    let store = SqliteStore::open_in_memory().expect("open");
    let t = base_time();
    for (i, (file, text)) in [
        ("board-meeting.mp3", "The quarterly budget was approved."),
        (
            "interview.wav",
            "Tell me about your experience with budgets.",
        ),
        ("café-notes.ogg", "Remember to buy coffee beans."),
    ]
    .into_iter()
    .enumerate()
    {
        let created = t + Duration::seconds(i as i64);
        store
            .insert(&result("default", file, text, created))
            .expect("insert");
    }
    store
}

fn search(store: &SqliteStore, text: &str) -> Vec<String> {
    let page = list(store, "default", Some(text));
    assert_eq!(page.total, page.items.len() as u64, "total for {text:?}");
    page.items.into_iter().map(|i| i.file_name).collect()
}

#[test]
fn search_finds_a_word_in_the_text() {
    let store = search_fixture();
    assert_eq!(search(&store, "coffee"), ["café-notes.ogg"]);
    assert_eq!(search(&store, "QUARTERLY"), ["board-meeting.mp3"]);
}

#[test]
fn search_finds_by_file_name() {
    let store = search_fixture();
    assert_eq!(search(&store, "interview"), ["interview.wav"]);
    assert_eq!(search(&store, "board-meeting.mp3"), ["board-meeting.mp3"]);
    // Diacritics are folded: "cafe" finds "café".
    assert_eq!(search(&store, "cafe"), ["café-notes.ogg"]);
}

#[test]
fn search_matches_the_last_word_as_a_prefix() {
    let store = search_fixture();
    assert_eq!(
        search(&store, "budg"),
        ["interview.wav", "board-meeting.mp3"]
    );
    // Only the last term is a prefix; earlier ones are whole words.
    assert!(search(&store, "budg approved").is_empty());
}

#[test]
fn search_requires_all_terms() {
    let store = search_fixture();
    assert_eq!(search(&store, "budget approved"), ["board-meeting.mp3"]);
    assert!(search(&store, "coffee budget").is_empty());
}

#[test]
fn blank_search_lists_everything() {
    let store = search_fixture();
    assert_eq!(search(&store, "   ").len(), 3);
    assert_eq!(search(&store, "").len(), 3);
}

#[test]
fn search_input_never_causes_an_error() {
    let store = search_fixture();
    for input in [
        r#""; DROP TABLE results; --"#,
        "a AND OR (",
        "NEAR(budget approved, 2)",
        "text: coffee",
        "\"",
        "\"\"\"",
        "*",
        "budget*",
        "^budget",
        "budget -approved",
        "{file_name text}: x",
        "( ) AND NOT",
        "\0 \u{feff} \u{202e}",
        "😀",
    ] {
        list(&store, "default", Some(input));
    }
    // The quoted operators are just words that do not occur.
    assert!(search(&store, "budget AND").is_empty());
    // Punctuation around a word does not hide it.
    assert_eq!(search(&store, "\"coffee\""), ["café-notes.ogg"]);
    assert_eq!(search(&store, "(coffee"), ["café-notes.ogg"]);
    assert_eq!(search(&store, "; coffee"), ["café-notes.ogg"]);
}

#[test]
fn delete_removes_the_result_from_get_list_and_search() {
    let store = search_fixture();
    let id = list(&store, "default", Some("coffee")).items[0].id;

    assert!(store.delete("default", id).expect("delete"));
    assert_eq!(store.get("default", id).expect("get"), None);
    assert_eq!(list(&store, "default", None).total, 2);
    assert!(search(&store, "coffee").is_empty());
    assert!(search(&store, "cafe").is_empty());
    assert!(!store.delete("default", id).expect("second delete"));
}

#[test]
fn tenants_never_see_each_others_results() {
    let store = SqliteStore::open_in_memory().expect("open");
    let alice = result("alice", "alice.wav", "secret plans", base_time());
    let bob = result("bob", "bob.wav", "secret recipes", base_time());
    store.insert(&alice).expect("insert");
    store.insert(&bob).expect("insert");

    assert_eq!(store.get("bob", alice.id).expect("get"), None);
    assert_eq!(file_names(&list(&store, "bob", None)), ["bob.wav"]);
    assert_eq!(list(&store, "bob", None).total, 1);
    assert_eq!(search(&store, "secret"), Vec::<String>::new());
    assert_eq!(
        file_names(&list(&store, "alice", Some("secret"))),
        ["alice.wav"]
    );

    assert!(!store.delete("bob", alice.id).expect("delete"));
    assert_eq!(store.get("alice", alice.id).expect("get"), Some(alice));
}

#[test]
fn results_survive_closing_and_reopening_the_database() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let stored = result("default", "talk.wav", "persistent words", base_time());
    {
        let store = SqliteStore::open(&data_dir).expect("open");
        store.insert(&stored).expect("insert");
    }
    assert!(data_dir.join("sandscribe.db").is_file());

    let store = SqliteStore::open(&data_dir).expect("reopen");
    assert_eq!(
        store.get("default", stored.id).expect("get"),
        Some(stored.clone())
    );
    assert_eq!(
        file_names(&list(&store, "default", Some("persist"))),
        ["talk.wav"]
    );
    let err = store.insert(&stored).expect_err("still a duplicate");
    assert!(matches!(err, StorageError::Duplicate(_)), "{err}");
}

#[test]
fn a_file_database_uses_wal_and_full_sync() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(dir.path()).expect("open");
    let conn = store.conn();
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .expect("journal_mode");
    let sync: i64 = conn
        .pragma_query_value(None, "synchronous", |r| r.get(0))
        .expect("synchronous");
    assert_eq!((mode.as_str(), sync), ("wal", 2));
}

#[test]
fn a_damaged_json_column_is_reported_as_corrupt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let stored = result("default", "talk.wav", "words", base_time());
    let store = SqliteStore::open(dir.path()).expect("open");
    store.insert(&stored).expect("insert");

    let outside = rusqlite::Connection::open(dir.path().join("sandscribe.db")).expect("open");
    outside
        .execute("UPDATE results SET segments = '[{oops'", [])
        .expect("damage");

    let err = store.get("default", stored.id).expect_err("corrupt");
    assert!(matches!(err, StorageError::Corrupt(_)), "{err}");
}

#[test]
fn a_database_from_a_newer_version_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(SqliteStore::open(dir.path()).expect("open"));
    let outside = rusqlite::Connection::open(dir.path().join("sandscribe.db")).expect("open");
    outside
        .pragma_update(None, "user_version", 999)
        .expect("bump version");
    drop(outside);

    let err = SqliteStore::open(dir.path()).expect_err("too new");
    assert!(
        matches!(err, StorageError::SchemaTooNew { found: 999, .. }),
        "{err}"
    );
}

#[test]
fn opening_an_unusable_path_names_the_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let not_a_dir = dir.path().join("file");
    std::fs::write(&not_a_dir, b"").expect("write");
    let err = SqliteStore::open(&not_a_dir).expect_err("not a directory");
    assert!(matches!(err, StorageError::Io { .. }), "{err}");
    assert!(err.to_string().contains("file"), "{err}");
}

#[test]
fn the_store_can_be_shared_as_a_trait_object() {
    let store: std::sync::Arc<dyn ResultStore> =
        std::sync::Arc::new(SqliteStore::open_in_memory().expect("open"));
    let stored = result("default", "talk.wav", "words", base_time());
    let writer = std::sync::Arc::clone(&store);
    let inserted = stored.clone();
    std::thread::spawn(move || writer.insert(&inserted))
        .join()
        .expect("thread")
        .expect("insert");
    assert_eq!(store.get("default", stored.id).expect("get"), Some(stored));
}

/// A diarized result: speaker labels on its segments and the diarization record.
pub(super) fn diarized(mut stored: StoredResult) -> StoredResult {
    for (segment, label) in stored.transcript.segments.iter_mut().zip(["SPEAKER_1"]) {
        segment.speaker = Some(label.into());
    }
    stored.diarization = Some(Diarization {
        diarizer: "speakers".into(),
        state: DiarizationState::Done,
        error: None,
        speakers: vec!["SPEAKER_1".into(), "SPEAKER_2".into()],
        names: Default::default(),
        wall_ms: 120,
    });
    stored
}

#[test]
fn a_diarized_result_round_trips_and_keeps_renamed_speakers() {
    let store = SqliteStore::open_in_memory().expect("open");
    let stored = diarized(result("default", "talk.wav", "hello world", base_time()));
    store.insert(&stored).expect("insert");
    assert_eq!(
        store.get("default", stored.id).expect("get"),
        Some(stored.clone())
    );

    let names = std::collections::BTreeMap::from([("SPEAKER_2".into(), "Interviewer".into())]);
    assert!(
        !store
            .set_speaker_names("other", stored.id, &names)
            .expect("other tenant")
    );
    assert!(
        store
            .set_speaker_names("default", stored.id, &names)
            .expect("rename")
    );
    let got = store
        .get("default", stored.id)
        .expect("get")
        .expect("found");
    let diarization = got.diarization.expect("still diarized");
    assert_eq!(diarization.names, names);
    assert_eq!(diarization.display_name("SPEAKER_2"), "Interviewer");
    assert_eq!(diarization.display_name("SPEAKER_1"), "Speaker 1");
    assert_eq!(
        diarization.speakers.len(),
        2,
        "the rest of the record is kept"
    );
    assert_eq!(got.transcript, stored.transcript);

    let plain = result("default", "plain.wav", "no speakers", base_time());
    store.insert(&plain).expect("insert");
    assert!(
        !store
            .set_speaker_names("default", plain.id, &names)
            .expect("undiarized"),
        "a result without diarization has no speakers to name"
    );
    assert_eq!(
        store
            .get("default", plain.id)
            .expect("get")
            .expect("found")
            .diarization,
        None
    );
}
