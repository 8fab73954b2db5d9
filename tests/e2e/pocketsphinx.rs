//! The PocketSphinx plugin (C, `example-plugins/pocketsphinx/`) on real speech, through
//! the real sandbox: "go forward ten meters" within the word error rate bound, with
//! ordered word times inside the audio and live segments equal to the final ones; a key
//! phrase spotted as a timed segment of its own; a JSGF grammar followed word for word;
//! a configuration outside the schema refused with 400 naming the field, a key phrase
//! PocketSphinx cannot pronounce failing the job as the plugin's bad config, and a
//! cancel in the middle of long speech ending the job at once.
//! The word error rates on the LibriVox clips are printed for the record.
//!
//! `cargo xtask setup` builds the plugin and installs it with the en-us model into
//! `plugins/pocketsphinx-en-us/`; the clips come from the same pocketsphinx sdist.

use std::time::{Duration, Instant};

use sandscribe_e2e::{Server, ServerOptions};

use crate::whisper::{clip, reference, transcribe_with};
use sandscribe_plugin_sdk::accuracy::word_error_rate as wer;
use serde_json::{Value, json};

const PLUGIN: &str = "pocketsphinx-en-us";

/// The bound on "go forward ten meters" (one word in four).
const MAX_GOFORWARD_WER: f64 = 0.25;

/// A loose guard over the three LibriVox clips together: PocketSphinx's small model
/// mishears about a third of this 19th-century prose (Whisper tiny.en stays under
/// 0.15); a broken build or endpointer does far worse.
const MAX_LIBRIVOX_WER: f64 = 0.5;

const LIBRIVOX: [&str; 3] = ["librivox-0870", "librivox-0880", "librivox-0890"];

fn server() -> Server {
    Server::start(
        ServerOptions::new()
            .plugins_dir(sandscribe_e2e::example_plugins_dir(&[PLUGIN]))
            .max_running(2),
    )
}

/// Submits a clip and follows its events to the end; returns (final job, live segments).
fn transcribe(server: &Server, name: &str, config: &Value) -> (Value, Vec<Value>) {
    transcribe_with(server, PLUGIN, &clip(name), &format!("{name}.wav"), config)
}

fn segments(job: &Value) -> Vec<Value> {
    job["result"]["transcript"]["segments"]
        .as_array()
        .expect("segments")
        .clone()
}

/// Checks that segments and their words are in order inside the audio and that the live
/// segments are the final ones; returns the segments' text.
fn check_segments(job: &Value, live: &[Value]) -> String {
    let duration = job["duration_ms"].as_u64().expect("duration");
    let segments = segments(job);
    let mut previous_end = 0;
    for segment in &segments {
        let start = segment["start_ms"].as_u64().expect("start");
        let end = segment["end_ms"].as_u64().expect("end");
        assert!(
            start >= previous_end && end > start && end <= duration,
            "segment out of order or outside the audio ({duration} ms): {segment}"
        );
        previous_end = end;
        let words = segment["words"].as_array().expect("words");
        assert!(!words.is_empty(), "a segment without words: {segment}");
        let mut word_end = start;
        for word in words {
            let (from, to) = (word["start_ms"].as_u64(), word["end_ms"].as_u64());
            let (Some(from), Some(to)) = (from, to) else {
                panic!("a word without times: {word}");
            };
            assert!(
                from >= word_end && to >= from && to <= end,
                "word times out of order or outside their segment: {segment}"
            );
            word_end = to;
        }
        let text: Vec<&str> = words.iter().filter_map(|w| w["text"].as_str()).collect();
        assert_eq!(segment["text"], text.join(" "), "the text is the words");
    }
    assert_eq!(
        live,
        segments.as_slice(),
        "live segments differ from the final ones"
    );
    assert_eq!(job["result"]["transcript"]["language"], "en");
    segments
        .iter()
        .map(|s| s["text"].as_str().unwrap_or_default())
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn pocketsphinx_transcribes_go_forward_within_the_word_error_rate() {
    let server = server();
    let (job, live) = transcribe(&server, "goforward", &json!({}));
    assert!(!live.is_empty(), "no live segment events");
    let text = check_segments(&job, &live);
    let rate = wer(&reference("goforward"), &text);
    eprintln!("{PLUGIN} goforward: WER {rate:.3} — {text}");
    assert!(
        rate <= MAX_GOFORWARD_WER,
        "WER {rate:.3} > {MAX_GOFORWARD_WER}: {text}"
    );
    let confidence = job["result"]["transcript"]["segments"][0]["confidence"]
        .as_f64()
        .expect("word posteriors from the lattice pass give a confidence");
    assert!((0.0..=1.0).contains(&confidence), "{confidence}");
}

#[test]
fn pocketsphinx_word_error_rates_on_the_librivox_clips() {
    let server = server();
    let (mut all_ref, mut all_hyp) = (String::new(), String::new());
    for name in LIBRIVOX {
        let (job, live) = transcribe(&server, name, &json!({}));
        let text = check_segments(&job, &live);
        eprintln!(
            "{PLUGIN} {name}: WER {:.3} — {text}",
            wer(&reference(name), &text)
        );
        all_ref.push_str(&reference(name));
        all_ref.push(' ');
        all_hyp.push_str(&text);
        all_hyp.push(' ');
    }
    let overall = wer(&all_ref, &all_hyp);
    eprintln!("{PLUGIN} LibriVox overall WER {overall:.3}");
    assert!(
        overall <= MAX_LIBRIVOX_WER,
        "overall WER {overall:.3} > {MAX_LIBRIVOX_WER}"
    );
}

#[test]
fn pocketsphinx_spots_a_key_phrase_as_a_timed_segment() {
    let server = server();
    let (job, live) = transcribe(&server, "goforward", &json!({"keyphrase": "forward"}));
    check_segments(&job, &live);
    let segments = segments(&job);
    assert!(!segments.is_empty(), "\"forward\" was not spotted: {job:#}");
    for segment in &segments {
        assert_eq!(segment["text"], "forward", "only the key phrase: {segment}");
        assert_eq!(segment["words"][0]["text"], "forward");
    }
    // "go forward ten meters": the word is spoken between about 0.6 s and 1.3 s.
    let start = segments[0]["start_ms"].as_u64().unwrap_or_default();
    let end = segments[0]["end_ms"].as_u64().unwrap_or_default();
    assert!(
        (400..=1000).contains(&start) && (900..=1600).contains(&end),
        "spotted at {start}-{end} ms"
    );
}

#[test]
fn pocketsphinx_follows_a_jsgf_grammar() {
    let server = server();
    let grammar = "#JSGF V1.0;\ngrammar move;\n\
        public <move> = go (forward | back) (one | two | ten) (meters | steps);\n";
    let (job, live) = transcribe(&server, "goforward", &json!({"jsgf": grammar}));
    assert_eq!(check_segments(&job, &live), "go forward ten meters");
}

#[test]
fn pocketsphinx_refuses_a_config_outside_its_schema_naming_the_field() {
    let server = server();
    let audio = clip("goforward");
    for (config, field) in [
        (json!({"beam": 2}), "/beam"),
        (json!({"vad": "sometimes"}), "/vad"),
        (json!({"kws_threshold": "high"}), "/kws_threshold"),
        (json!({"keyphrase": ""}), "/keyphrase"),
        (json!({"beems": 1e-40}), ""),
    ] {
        let reply = server.submit(PLUGIN, &audio, "goforward.wav", &config);
        assert_eq!(reply.status, 400, "{config}: {}", reply.text());
        assert_eq!(reply.error_code(), "invalid_config", "{config}");
        let fields = reply.json()["error"]["fields"].clone();
        assert_eq!(fields[0]["field"], field, "{config}: {fields:#}");
        let named = field.trim_start_matches('/');
        let message = reply.error_message();
        assert!(
            message.contains(if named.is_empty() { "beems" } else { named }),
            "{config}: {message}"
        );
    }
    // A key phrase and a grammar at once: the schema forbids the pair.
    let both = json!({"keyphrase": "forward", "jsgf": "#JSGF V1.0; grammar g; public <g> = go;"});
    let reply = server.submit(PLUGIN, &audio, "goforward.wav", &both);
    assert_eq!(reply.status, 400, "{}", reply.text());
}

#[test]
fn pocketsphinx_fails_a_key_phrase_it_cannot_pronounce_as_bad_config() {
    let server = server();
    let job = server.run_job(
        PLUGIN,
        &clip("goforward"),
        &json!({"keyphrase": "frobnicate"}),
    );
    assert_eq!(job["status"], "failed", "{job:#}");
    assert_eq!(job["error"]["kind"], "plugin_bad_config", "{job:#}");
    let message = job["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("keyphrase") && message.contains("frobnicate"),
        "{message}"
    );
}

#[test]
fn pocketsphinx_cancel_mid_speech_ends_the_job_at_once() {
    let server = server();
    // Two minutes of speech: the clips again and again, with pauses between them.
    let mut pcm = Vec::new();
    while pcm.len() < 16_000 * 120 {
        for name in LIBRIVOX {
            pcm.extend(
                clip(name)[44..]
                    .chunks_exact(2)
                    .map(|b| i16::from_le_bytes([b[0], b[1]])),
            );
            pcm.extend(std::iter::repeat_n(0i16, 16_000));
        }
    }
    let audio = sandscribe_e2e::wav(&pcm, 16_000);
    let id = server.submit_ok(PLUGIN, &audio, "long.wav", &json!({}));
    let mut events = server.events(&id, None);
    assert!(
        events.any(|e| e.event == "segment"),
        "no segment before the end"
    );
    let sent = Instant::now();
    let job = server.cancel(&id).expect(200).json();
    let latency = sent.elapsed();
    eprintln!("{PLUGIN}: cancelled mid-speech in {latency:?}");
    assert_eq!(job["status"], "cancelled", "{job:#}");
    assert!(latency < Duration::from_secs(1), "took {latency:?} to stop");
    let (next, _) = transcribe(&server, "goforward", &json!({}));
    assert_eq!(next["status"], "completed", "{next:#}");
}
