//! The `speakers` diarizer (`example-plugins/speakers/`, Resemblyzer's encoder) after
//! Whisper, through the real sandbox, on two real voices: the pocketsphinx sdist's man
//! saying "go forward ten meters" and the LibriVox reader (a woman), joined with and
//! without a pause, in both orders. Two speakers are found and the change falls where the
//! voices change; one reader alone is one speaker; asking for three is honoured.

use std::time::Duration;

use sandscribe_e2e::{Form, Server, ServerOptions, speech_dir, wav, wav_samples};
use serde_json::Value;

const TRANSCRIBER: &str = "whisper-tiny-en";
const DIARIZER: &str = "speakers";
const RATE: u32 = 16_000;

fn server() -> Server {
    Server::start(
        ServerOptions::new()
            .plugins_dir(sandscribe_e2e::example_plugins_dir(&[
                TRANSCRIBER,
                DIARIZER,
            ]))
            .max_running(1),
    )
}

/// The 16-bit mono samples of a test clip.
fn samples(name: &str) -> Vec<i16> {
    wav_samples(&speech_dir().join(format!("{name}.wav")))
}

/// `first`, `pause_ms` of silence, `second`; and where the second voice starts (ms).
fn joined(first: &str, second: &str, pause_ms: u64) -> (Vec<u8>, u64) {
    let mut audio = samples(first);
    audio.extend(std::iter::repeat_n(
        0,
        (pause_ms * u64::from(RATE) / 1000) as usize,
    ));
    let boundary_ms = audio.len() as u64 * 1000 / u64::from(RATE);
    audio.extend(samples(second));
    (wav(&audio, RATE), boundary_ms)
}

fn diarized(server: &Server, audio: &[u8], speakers: &str) -> Value {
    let form = Form::new()
        .text("plugin", TRANSCRIBER)
        .text("diarizer", DIARIZER)
        .text("speakers", speakers)
        .file("file", "voices.wav", "audio/wav", audio);
    let reply = server.post_form("/api/jobs", &form).expect(202);
    let id = reply.json()["id"].as_str().expect("id").to_owned();
    let job = server.wait_terminal(&id, Duration::from_secs(600));
    assert_eq!(job["status"], "completed", "{job:#}\n{}", server.log_tail());
    let diarization = &job["result"]["diarization"];
    assert_eq!(
        diarization["state"],
        "done",
        "{diarization:#}\n{}",
        server.log_tail()
    );
    job
}

/// (start, end, speaker) of every segment.
fn segments(job: &Value) -> Vec<(u64, u64, String)> {
    job["result"]["transcript"]["segments"]
        .as_array()
        .expect("segments")
        .iter()
        .map(|s| {
            (
                s["start_ms"].as_u64().unwrap_or_default(),
                s["end_ms"].as_u64().unwrap_or_default(),
                s["speaker"].as_str().unwrap_or("(none)").to_owned(),
            )
        })
        .collect()
}

#[test]
fn two_voices_are_two_speakers_changing_where_the_voices_change() {
    let server = server();
    for (first, second, pause_ms) in [
        ("goforward", "librivox-0870", 500),
        ("goforward", "librivox-0870", 0),
        ("librivox-0870", "goforward", 500),
        ("librivox-0870", "goforward", 0),
    ] {
        let (audio, boundary) = joined(first, second, pause_ms);
        let job = diarized(&server, &audio, "auto");
        let labels = &job["result"]["diarization"]["speakers"];
        let segments = segments(&job);
        let case =
            format!("{first} + {pause_ms} ms + {second} (boundary {boundary} ms): {segments:?}");
        eprintln!(
            "{case}; stage {} ms",
            job["result"]["diarization"]["wall_ms"]
        );
        assert_eq!(labels.as_array().map(Vec::len), Some(2), "{case}");
        // Whisper's segments do not straddle the join by more than the tolerance, so
        // each one is wholly one voice's: the first voice's before it, the other after.
        let before: Vec<_> = segments.iter().filter(|s| s.1 <= boundary + 500).collect();
        let after: Vec<_> = segments.iter().filter(|s| s.0 + 500 >= boundary).collect();
        assert!(!before.is_empty() && !after.is_empty(), "{case}");
        let first_voice = &before[0].2;
        assert!(before.iter().all(|s| &s.2 == first_voice), "{case}");
        assert!(after.iter().all(|s| &s.2 != first_voice), "{case}");
    }
}

#[test]
fn one_reader_is_one_speaker_and_three_asked_for_is_honoured() {
    let server = server();
    let one = diarized(&server, &wav(&samples("librivox-0870"), RATE), "auto");
    assert_eq!(
        one["result"]["diarization"]["speakers"]
            .as_array()
            .map(Vec::len),
        Some(1),
        "{:?}",
        segments(&one)
    );
    let (audio, _) = joined("goforward", "librivox-0870", 500);
    let three = diarized(&server, &audio, "3");
    let labels = three["result"]["diarization"]["speakers"]
        .as_array()
        .map(Vec::len)
        .unwrap_or_default();
    assert!((1..=3).contains(&labels), "{:?}", segments(&three));
}
