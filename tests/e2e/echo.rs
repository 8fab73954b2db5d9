//! The whole path with the `echo` plugin: upload → decode → plugin → live events →
//! storage → result → exports.

use sandscribe_e2e::{Server, ServerOptions, SseEvent, noise, sine, wav};
use serde_json::{Value, json};

/// The `level` number of an echo segment text ("window 2 level 354").
fn level(text: &str) -> u32 {
    text.rsplit(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{text:?} does not end in a level"))
}

fn of_type<'a>(events: &'a [SseEvent], name: &str) -> Vec<&'a SseEvent> {
    events.iter().filter(|e| e.event == name).collect()
}

#[test]
fn echo_job_streams_progress_and_segments_then_stores_and_exports_the_result() {
    let server = Server::start(ServerOptions::new());
    let loud = wav(&sine(3_000, 16_000, 0.5), 16_000);

    let reply = server
        .submit("echo", &loud, "loud tone.wav", &json!({"window_ms": 1000}))
        .expect(202);
    let submitted = reply.json();
    let id = submitted["id"].as_str().expect("job id").to_owned();
    assert_eq!(
        reply.header("location"),
        Some(format!("/api/jobs/{id}").as_str())
    );
    assert_eq!(submitted["plugin"]["id"], "echo");
    assert_eq!(submitted["file_name"], "loud tone.wav");
    assert_eq!(submitted["config"]["window_ms"], 1000);

    // The live story: status, progress and segments, then `done` as the last event.
    let events = server.events(&id, None).to_end();
    let ids: Vec<u64> = events.iter().map(|e| e.id).collect();
    assert_eq!(ids, (1..=events.len() as u64).collect::<Vec<_>>());
    let done = events.last().expect("some events");
    assert_eq!(done.event, "done", "events: {events:#?}");
    assert!(
        !of_type(&events, "progress").is_empty(),
        "progress events arrive before done"
    );
    let live: Vec<Value> = of_type(&events, "segment")
        .iter()
        .enumerate()
        .map(|(i, e)| {
            assert_eq!(e.data["index"], i, "segment events are numbered in order");
            e.data["segment"].clone()
        })
        .collect();
    assert_eq!(
        live.len(),
        3,
        "a 3 s file in 1 s windows has three segments"
    );
    let result = done.data["result"].clone();
    assert_eq!(
        Value::Array(live),
        result["transcript"]["segments"],
        "the live segments are the final segments"
    );

    // The job, the stored result and the done event agree.
    let job = server.job(&id);
    assert_eq!(job["status"], "completed");
    assert_eq!(job["progress"], 1.0);
    assert_eq!(job["result"], result);
    let stored = server.get(&format!("/api/results/{id}")).expect(200).json();
    assert_eq!(stored, result);
    assert_eq!(stored["duration_ms"], 3000);

    let segments = result["transcript"]["segments"]
        .as_array()
        .expect("segments")
        .clone();
    let texts: Vec<&str> = segments
        .iter()
        .map(|s| s["text"].as_str().expect("segment text"))
        .collect();
    for (i, text) in texts.iter().enumerate() {
        assert!(
            text.starts_with(&format!("window {} level ", i + 1)),
            "{text:?}"
        );
    }
    // A sine at half of full scale has an RMS of 0.354: level 354.
    let loud_level = level(texts[0]);
    assert!(
        (344..=364).contains(&loud_level),
        "level of a 0.5 sine: {loud_level}"
    );

    let export = |format: &str| {
        server
            .get(&format!("/api/results/{id}/export?format={format}"))
            .expect(200)
    };

    let txt = export("txt");
    assert_eq!(
        txt.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(txt.text(), format!("{}\n", texts.join("\n")));
    assert!(
        txt.header("content-disposition")
            .is_some_and(|d| d.contains("loud_tone.txt")),
        "{:?}",
        txt.header("content-disposition")
    );

    let srt = export("srt");
    assert_eq!(
        srt.header("content-type"),
        Some("application/x-subrip; charset=utf-8")
    );
    assert_eq!(
        srt.text(),
        format!(
            "1\n00:00:00,000 --> 00:00:01,000\n{}\n\n\
             2\n00:00:01,000 --> 00:00:02,000\n{}\n\n\
             3\n00:00:02,000 --> 00:00:03,000\n{}\n",
            texts[0], texts[1], texts[2]
        )
    );

    let vtt = export("vtt");
    assert_eq!(vtt.header("content-type"), Some("text/vtt; charset=utf-8"));
    let vtt = vtt.text();
    assert!(vtt.starts_with("WEBVTT\n"), "{vtt}");
    assert!(
        vtt.contains(&format!("00:00:01.000 --> 00:00:02.000\n{}\n", texts[1])),
        "{vtt}"
    );

    let json_export = export("json");
    assert_eq!(json_export.header("content-type"), Some("application/json"));
    assert_eq!(json_export.json(), result);

    assert_eq!(
        server
            .get(&format!("/api/results/{id}/export?format=docx"))
            .expect(400)
            .error_code(),
        "bad_request"
    );
}

#[test]
fn echo_output_depends_on_the_audio_a_louder_file_gives_a_higher_level() {
    let server = Server::start(ServerOptions::new());
    let config = json!({"window_ms": 1000});
    let quiet = server.run_job("echo", &wav(&sine(2_000, 16_000, 0.05), 16_000), &config);
    let loud = server.run_job("echo", &wav(&sine(2_000, 16_000, 0.5), 16_000), &config);
    let first_level = |job: &Value| {
        assert_eq!(job["status"], "completed", "{job:#}");
        level(
            job["result"]["transcript"]["segments"][0]["text"]
                .as_str()
                .expect("segment text"),
        )
    };
    let (quiet, loud) = (first_level(&quiet), first_level(&loud));
    assert!(
        loud > quiet * 5,
        "a ten times louder file has a much higher level: quiet {quiet}, loud {loud}"
    );
    assert!((30..=40).contains(&quiet), "level of a 0.05 sine: {quiet}");

    // Uniform noise in ±0.5 has an RMS of 0.5/√3: level 289.
    let hiss = server.run_job("echo", &wav(&noise(2_000, 16_000, 0.5), 16_000), &config);
    let hiss = first_level(&hiss);
    assert!((279..=299).contains(&hiss), "level of ±0.5 noise: {hiss}");
}

#[test]
fn echo_resamples_other_rates_and_honours_its_config() {
    let server = Server::start(ServerOptions::new());
    // 44.1 kHz in, 16 kHz for the plugin; 500 ms windows and a prefix.
    let audio = wav(&sine(2_000, 44_100, 0.5), 44_100);
    let job = server.run_job(
        "echo",
        &audio,
        &json!({"window_ms": 500, "prefix": "P: ", "language": "de"}),
    );
    assert_eq!(job["status"], "completed", "{job:#}");
    let transcript = &job["result"]["transcript"];
    assert_eq!(transcript["language"], "de");
    let segments = transcript["segments"].as_array().expect("segments");
    assert_eq!(segments.len(), 4);
    assert_eq!(segments[1]["start_ms"], 500);
    assert!(
        segments.iter().all(|s| s["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("P: window"))),
        "{segments:#?}"
    );
}
