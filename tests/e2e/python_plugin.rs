//! A plugin written in Python is first-class: the Whisper plugin built with the Python SDK
//! (componentize-py, `example-plugins/whisper-py`) transcribes the real speech clips
//! through the real sandbox with the word error rate of the Rust plugin decoding
//! greedily (`beam_size` 1: the same rules, so the same text), live segments equal to
//! the final ones; it gives nothing for silence; and its 18 MB component, slow to
//! compile once, loads from the compile cache after a restart and is instantiated for
//! each job in milliseconds.

use std::time::Duration;

use sandscribe_e2e::{Server, ServerOptions};
use sandscribe_plugin_sdk::accuracy::word_error_rate as wer;
use serde_json::{Value, json};

use crate::whisper::{
    CLIPS, MAX_WER, TINY_MAX_CLIP_WER, assert_reaches_past_40_s, check_segments, clip, long_clip,
    reference, transcribe_with, word_error_rates,
};

/// The Python plugin, on the tiny.en weights of the Rust one.
const PYTHON: &str = "whisper-tiny-en-py";
const RUST: &str = "whisper-tiny-en";

/// The most a job of the Python plugin may spend instantiating its component.
const MAX_INSTANTIATE: Duration = Duration::from_millis(250);

fn server_with(plugins: &[&str]) -> Server {
    Server::start(
        ServerOptions::new()
            .plugins_dir(sandscribe_e2e::example_plugins_dir(plugins))
            .memory_bytes(1 << 30)
            .max_running(2),
    )
}

#[test]
fn python_whisper_has_the_rust_plugins_greedy_word_error_rate_on_real_speech() {
    let server = server_with(&[PYTHON, RUST]);
    let (python, python_overall) = word_error_rates(&server, PYTHON, &json!({}));
    let (rust, rust_overall) = word_error_rates(&server, RUST, &json!({"beam_size": 1}));
    eprintln!("overall WER: Python {python_overall:.3}, Rust greedy {rust_overall:.3}");
    for ((name, rate, text), (_, rust_rate, rust_text)) in python.iter().zip(&rust) {
        assert!(
            *rate <= TINY_MAX_CLIP_WER,
            "{PYTHON} {name}: WER {rate:.3} > {TINY_MAX_CLIP_WER}\nref: {}\nhyp: {text}",
            reference(name)
        );
        assert!(
            (rate - rust_rate).abs() < 1e-9,
            "{name}: WER {rate:.3} in Python, {rust_rate:.3} in Rust\npy: {text}\nrs: {rust_text}"
        );
    }
    assert!(
        python_overall <= MAX_WER,
        "{PYTHON}: overall WER {python_overall:.3} > {MAX_WER}"
    );
    assert!((python_overall - rust_overall).abs() < 1e-9);
}

#[test]
fn python_whisper_transcribes_long_audio_across_windows_like_the_rust_plugin() {
    let server = server_with(&[PYTHON, RUST]);
    let (pcm, reference_text) = long_clip(&CLIPS);
    let audio = sandscribe_e2e::wav(&pcm, 16_000);
    let text_of = |plugin: &str, config: Value| {
        let (job, live) = transcribe_with(&server, plugin, &audio, "long.wav", &config);
        assert_reaches_past_40_s(&job, plugin);
        (
            check_segments(&job, &live),
            job["usage"]["wall_ms"].as_u64().unwrap_or(0),
        )
    };
    let (python, python_ms) = text_of(PYTHON, json!({}));
    let (rust, rust_ms) = text_of(RUST, json!({"beam_size": 1}));
    let (python_rate, rust_rate) = (wer(&reference_text, &python), wer(&reference_text, &rust));
    eprintln!(
        "long clip ({} s): WER {python_rate:.3} in {python_ms} ms (Python), {rust_rate:.3} in {rust_ms} ms (Rust greedy)",
        pcm.len() / 16_000
    );
    assert!(
        python_rate <= MAX_WER,
        "long clip: WER {python_rate:.3}\nref: {reference_text}\nhyp: {python}"
    );
    assert!(
        (python_rate - rust_rate).abs() < 1e-9,
        "long clip: WER {python_rate:.3} in Python, {rust_rate:.3} in Rust\npy: {python}\nrs: {rust}"
    );
}

#[test]
fn python_whisper_gives_an_empty_transcript_for_silence() {
    let server = server_with(&[PYTHON]);
    let audio = sandscribe_e2e::wav(&vec![0i16; 16_000 * 3], 16_000);
    let (job, live) = transcribe_with(&server, PYTHON, &audio, "silence.wav", &json!({}));
    assert!(live.is_empty(), "silence produced live segments: {live:?}");
    let text = job["result"]["transcript"]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(text.trim().is_empty(), "silence produced text: {text:?}");
}

/// The `cached` and `ms` fields of the latest "plugin loaded" line for `plugin`.
fn latest_load(log: &str, plugin: &str) -> Option<(bool, u64)> {
    let plain = strip_ansi(log);
    let line = plain
        .lines()
        .rev()
        .find(|l| l.contains("plugin loaded") && l.contains(&format!("plugin={plugin} ")))?;
    let field = |name: &str| -> Option<&str> {
        let at = line.find(&format!(" {name}="))? + name.len() + 2;
        line[at..].split_whitespace().next()
    };
    Some((field("cached")? == "true", field("ms")?.parse().ok()?))
}

fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn python_plugin_loads_from_the_compile_cache_after_a_restart_and_instantiates_per_job_quickly() {
    let mut server = server_with(&[PYTHON]);
    let (cached, first_ms) = latest_load(&server.log(), PYTHON)
        .unwrap_or_else(|| panic!("no load line\n{}", server.log_tail()));
    assert!(!cached, "a fresh data folder has no compiled code");
    server.restart();
    let (cached, restart_ms) =
        latest_load(&server.log(), PYTHON).expect("a load line after the restart");
    assert!(
        cached,
        "the restarted server reads the compiled component from its cache"
    );
    let audio = clip("goforward");
    let mut instantiate_us = Vec::new();
    for i in 0..3 {
        let id = server.submit_ok(PYTHON, &audio, &format!("{i}.wav"), &json!({}));
        let job = server.wait_terminal(&id, Duration::from_secs(300));
        assert_eq!(job["status"], "completed", "{job:#}");
        assert_eq!(job["result"]["transcript"]["text"], "Go forward 10 meters.");
        instantiate_us.push(
            job["usage"]["instantiate_us"]
                .as_u64()
                .expect("instantiate_us"),
        );
    }
    eprintln!(
        "{PYTHON}: first load (compile) {first_ms} ms, cached restart {restart_ms} ms, \
         per-job instantiation {instantiate_us:?} µs"
    );
    assert!(
        restart_ms * 2 < first_ms,
        "cached {restart_ms} ms, compiled {first_ms} ms"
    );
    for us in instantiate_us {
        assert!(
            us > 0 && us < MAX_INSTANTIATE.as_micros() as u64,
            "instantiation took {us} µs"
        );
    }
}
