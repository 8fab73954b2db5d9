//! `cargo xtask bench diarize`: what finding speakers costs beside transcribing, in one
//! run, printed as one table.
//!
//! A real `sandscribe serve` (started by the end-to-end harness) with Whisper tiny.en and
//! the `speakers` diarizer, `threads_per_job` 1, one job at a time. The audio is the test
//! speech (a man, then one woman reader) joined with half a second of silence, repeated to
//! about 30 s, 60 s and 120 s. Each length runs three times after one untimed warm-up;
//! the table gives the median wall time of each stage (the transcription's `usage.wall_ms`
//! and the diarization's `wall_ms`, both inside the sandbox, each in its own store) per
//! minute of audio, and the diarization stage as a share of the transcription.

use std::time::Duration;

use sandscribe_e2e::{Form, Server, ServerOptions, wav, wav_samples};
use serde_json::Value;

use crate::setup;

const TRANSCRIBER: &str = "whisper-tiny-en";
const DIARIZER: &str = "speakers";
const RATE: u32 = 16_000;
const LENGTHS_S: [u64; 3] = [30, 60, 120];
const RUNS: usize = 3;

struct Row {
    audio_s: f64,
    transcribe_s: f64,
    diarize_s: f64,
    speakers: usize,
}

pub fn diarize(args: &[String]) -> Result<(), String> {
    let paths = setup::setup(&setup::Options::parse(args))?;
    let clips: Vec<Vec<i16>> = crate::bench::CLIPS
        .iter()
        .map(|c| wav_samples(&paths.speech.join(format!("{c}.wav"))))
        .collect();
    let rows = std::panic::catch_unwind(|| measure(&clips))
        .map_err(|_| "bench diarize stopped: a job did not complete (see above)".to_owned())?;
    print_table(&rows);
    Ok(())
}

/// The clips with 0.5 s of silence after each, repeated until `seconds` are filled.
fn joined(clips: &[Vec<i16>], seconds: u64) -> Vec<i16> {
    let want = (seconds * u64::from(RATE)) as usize;
    let mut audio = Vec::with_capacity(want);
    for clip in clips.iter().cycle() {
        if audio.len() >= want {
            break;
        }
        audio.extend_from_slice(clip);
        audio.extend(std::iter::repeat_n(0, RATE as usize / 2));
    }
    audio.truncate(want);
    audio
}

fn measure(clips: &[Vec<i16>]) -> Vec<Row> {
    let server = Server::start(
        ServerOptions::new()
            .plugins_dir(sandscribe_e2e::example_plugins_dir(&[
                TRANSCRIBER,
                DIARIZER,
            ]))
            .max_running(1),
    );
    let warm_up = wav(&joined(clips, 10), RATE);
    run(&server, &warm_up);
    LENGTHS_S
        .iter()
        .map(|&seconds| {
            let audio = wav(&joined(clips, seconds), RATE);
            let mut transcribe = Vec::new();
            let mut diarize = Vec::new();
            let mut speakers = 0;
            for _ in 0..RUNS {
                let job = run(&server, &audio);
                transcribe.push(job["usage"]["wall_ms"].as_f64().unwrap_or_default() / 1e3);
                let diarization = &job["result"]["diarization"];
                diarize.push(diarization["wall_ms"].as_f64().unwrap_or_default() / 1e3);
                speakers = diarization["speakers"].as_array().map_or(0, Vec::len);
            }
            eprintln!("bench diarize: {seconds} s done");
            Row {
                audio_s: seconds as f64,
                transcribe_s: median(&mut transcribe),
                diarize_s: median(&mut diarize),
                speakers,
            }
        })
        .collect()
}

/// One job with the diarizer, to its end; its final snapshot.
fn run(server: &Server, audio: &[u8]) -> Value {
    let form = Form::new()
        .text("plugin", TRANSCRIBER)
        .text("diarizer", DIARIZER)
        .file("file", "bench.wav", "audio/wav", audio);
    let id = server.post_form("/api/jobs", &form).expect(202).json()["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let job = server.wait_terminal(&id, Duration::from_secs(1_800));
    assert_eq!(job["status"], "completed", "{job:#}");
    assert_eq!(job["result"]["diarization"]["state"], "done", "{job:#}");
    job
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or_default()
}

fn print_table(rows: &[Row]) {
    println!(
        "\nsandscribe diarize: {TRANSCRIBER} then {DIARIZER}, threads_per_job 1, median of {RUNS} runs"
    );
    println!(
        "{:>7} | {:>13} {:>13} | {:>13} {:>13} | {:>13} | {:>8}",
        "audio s",
        "transcribe s",
        "diarize s",
        "transcribe/min",
        "diarize/min",
        "diarize share",
        "speakers"
    );
    for row in rows {
        let per_minute = |s: f64| s * 60.0 / row.audio_s;
        println!(
            "{:>7.0} | {:>13.2} {:>13.2} | {:>13.2} {:>13.2} | {:>12.0}% | {:>8}",
            row.audio_s,
            row.transcribe_s,
            row.diarize_s,
            per_minute(row.transcribe_s),
            per_minute(row.diarize_s),
            100.0 * row.diarize_s / row.transcribe_s.max(1e-9),
            row.speakers
        );
    }
}
