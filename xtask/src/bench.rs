//! `cargo xtask bench whisper`: the Whisper plugin in the sandbox on the compute
//! interface, the same plugin built `pure-wasm` (the network on candle inside the
//! component, as before WIT 0.2.0), and faster-whisper on the plugin's own CTranslate2
//! directory, on the same clips in one run, printed as one table.
//!
//! - sandbox rows: `sandscribe transcribe --stats` with `[limits] threads_per_job` set
//!   to 1 or 2 and `{"precision": ...}` (a fresh store per job, as in the server). Run
//!   time is the job's wall time minus its "loading the model" stage (in the server the
//!   weights are read once and shared, so a job after the first does not pay it); the
//!   load is its own column.
//! - faster-whisper rows: `faster-whisper` from PyPI in `target/venv-bench`,
//!   `compute_type` float32 or int8, `cpu_threads` 1 or 2, beam 5, English, no VAD,
//!   previous-text conditioning off (as the plugin's default), one warm-up clip first;
//!   audio decoded before timing.
//! - every text is scored with the SDK's word error rate (`plugin-sdk/src/accuracy.rs`,
//!   compiled in here), so all numbers are computed one way.
//! - a 60 s clip (the four clips with half a second of silence between them, repeated)
//!   shows what a second thread does for a long file (two 30 s windows).
//! - for the record, rows without a ratio: the Python Whisper plugin (same weights,
//!   greedy) and PocketSphinx (C, its own small model), one thread each.
//! - memory: the job's own peak (linear memory + host tensors) from `--stats`, and what
//!   a second concurrent job adds to a running server's resident memory (see
//!   `bench_memory.rs`).

#[path = "../../plugin-sdk/src/accuracy.rs"]
#[allow(dead_code)]
mod accuracy;
#[path = "bench_cluster.rs"]
mod cluster;
#[path = "bench_diarize.rs"]
mod diarize;
#[path = "bench_faster_whisper.rs"]
mod faster_whisper;
#[path = "bench_memory.rs"]
mod memory;
#[path = "bench_sandbox.rs"]
mod sandbox;

use std::path::Path;

use crate::setup;

pub const CLIPS: &[&str] = &[
    "goforward",
    "librivox-0870",
    "librivox-0880",
    "librivox-0890",
];
const PLUGIN: &str = "whisper-tiny-en";
/// The Whisper greedy decoder written in Python (`example-plugins/whisper-py`).
const PYTHON_PLUGIN: &str = "whisper-tiny-en-py";
/// PocketSphinx 5 in C (`example-plugins/pocketsphinx`).
const POCKETSPHINX_PLUGIN: &str = "pocketsphinx-en-us";
const THREADS: [u32; 2] = [1, 2];
/// The plugin's `precision` and faster-whisper's `compute_type` it is compared with.
const PRECISIONS: [&str; 2] = ["float32", "int8"];

pub fn bench(args: &[String]) -> Result<(), String> {
    match args.first().map(String::as_str) {
        Some("whisper") => whisper(&args[1..]),
        Some("cluster") => cluster::cluster(&args[1..]),
        Some("diarize") => diarize::diarize(&args[1..]),
        _ => Err("usage: cargo xtask bench <whisper | cluster | diarize>".into()),
    }
}

/// One engine setup measured on every clip.
pub struct Row {
    pub engine: &'static str,
    pub threads: u32,
    pub precision: &'static str,
    /// Seconds per clip, in `CLIPS` order (model load excluded).
    pub clip_s: Vec<f64>,
    pub wer: Vec<f64>,
    /// Model load, seconds (the sandbox: the longest "loading the model" stage seen).
    pub load_s: f64,
    /// Peak memory of one job or process, MiB.
    pub peak_mib: f64,
}

fn whisper(args: &[String]) -> Result<(), String> {
    let paths = setup::setup(&setup::Options::parse(args))?;
    let assets = paths.plugins.join(PLUGIN).join("assets");
    let mut clips: Vec<_> = CLIPS
        .iter()
        .map(|c| paths.speech.join(format!("{c}.wav")))
        .collect();
    let mut references = CLIPS
        .iter()
        .map(|c| {
            let path = paths.speech.join(format!("{c}.txt"));
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let work = paths.root.join("target/bench");
    let (long, long_text) = long_clip(&clips, &references, &work)?;
    clips.push(long);
    references.push(long_text);
    let server_bin = paths.root.join("target/release/sandscribe");
    let pure_wasm_plugins = sandbox::build_pure_wasm(&paths.root, &paths.plugins, &work)?;
    let configs = THREADS
        .iter()
        .map(|&t| sandbox::server_config(&work, t))
        .collect::<Result<Vec<_>, _>>()?;

    let mut rows = Vec::new();
    for (&threads, config) in THREADS.iter().zip(&configs) {
        for precision in PRECISIONS {
            let bin = sandbox::Sandbox {
                bin: &server_bin,
                plugins: &paths.plugins,
                config,
                plugin: PLUGIN,
            };
            rows.push(bin.row("sandbox", threads, precision, &clips, &references)?);
        }
    }
    let pure_wasm = sandbox::Sandbox {
        bin: &server_bin,
        plugins: &pure_wasm_plugins,
        config: &configs[0],
        plugin: PLUGIN,
    };
    rows.push(pure_wasm.row("pure-wasm", 1, "float32", &clips, &references)?);
    // The other engines, for the record (no faster-whisper twin, so no ratio): the same
    // weights decoded greedily by the Python plugin, and PocketSphinx in C.
    for (engine, plugin, precision) in [
        ("python-whisper", PYTHON_PLUGIN, "-"),
        ("pocketsphinx", POCKETSPHINX_PLUGIN, "-"),
    ] {
        let other = sandbox::Sandbox {
            bin: &server_bin,
            plugins: &paths.plugins,
            config: &configs[0],
            plugin,
        };
        rows.push(other.row(engine, 1, precision, &clips, &references)?);
    }
    let python = faster_whisper::ensure_venv(&paths.root)?;
    for threads in THREADS {
        for precision in PRECISIONS {
            rows.push(faster_whisper::row(
                &python,
                &work,
                &assets,
                threads,
                precision,
                &clips,
                &references,
            )?);
        }
    }
    let memory = memory::concurrent_jobs(&server_bin, &paths.plugins, &work, &clips[1])?;
    print_table(&rows, &clips);
    memory.print();
    Ok(())
}

/// The name of the long clip in the table.
const LONG: &str = "60 s";
/// Its length in samples (16 kHz).
const LONG_SAMPLES: usize = 60 * 16_000;

/// Writes `work/long-60s.wav`: the clips one after the other with half a second of
/// silence between them, repeated to 60 s; returns it and its reference text.
fn long_clip(
    clips: &[std::path::PathBuf],
    references: &[String],
    work: &Path,
) -> Result<(std::path::PathBuf, String), String> {
    let mut pcm: Vec<u8> = Vec::new();
    let mut text = String::new();
    'fill: loop {
        for (clip, reference) in clips.iter().zip(references) {
            if pcm.len() >= 2 * LONG_SAMPLES {
                break 'fill;
            }
            let bytes =
                std::fs::read(clip).map_err(|e| format!("cannot read {}: {e}", clip.display()))?;
            let samples = bytes.get(44..).unwrap_or_default();
            let room = 2 * LONG_SAMPLES - pcm.len();
            if samples.len() > room {
                break 'fill;
            }
            pcm.extend_from_slice(samples);
            text.push_str(reference.trim());
            text.push(' ');
            pcm.resize((pcm.len() + 16_000).min(2 * LONG_SAMPLES), 0);
        }
    }
    pcm.resize(2 * LONG_SAMPLES, 0);
    let mut wav = Vec::with_capacity(44 + pcm.len());
    let data_len = pcm.len() as u32;
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + data_len).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    // PCM, mono, 16 kHz, 32000 bytes/s, 2-byte frames, 16 bits.
    for field in [
        16u32.to_le_bytes().as_slice(),
        &1u16.to_le_bytes(),
        &1u16.to_le_bytes(),
    ] {
        wav.extend_from_slice(field);
    }
    wav.extend_from_slice(&16_000u32.to_le_bytes());
    wav.extend_from_slice(&32_000u32.to_le_bytes());
    wav.extend_from_slice(&2u16.to_le_bytes());
    wav.extend_from_slice(&16u16.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&data_len.to_le_bytes());
    wav.extend_from_slice(&pcm);
    std::fs::create_dir_all(work).map_err(|e| format!("cannot create {}: {e}", work.display()))?;
    let path = work.join("long-60s.wav");
    std::fs::write(&path, wav).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok((path, text.trim().to_owned()))
}

/// Seconds of audio in a 16 kHz mono 16-bit WAV (its size past the 44-byte header).
fn audio_seconds(wav: &Path) -> f64 {
    let bytes = std::fs::metadata(wav).map(|m| m.len()).unwrap_or(44);
    bytes.saturating_sub(44) as f64 / 32_000.0
}

fn print_table(rows: &[Row], clips: &[std::path::PathBuf]) {
    let audio: Vec<f64> = clips.iter().map(|c| audio_seconds(c)).collect();
    let total_audio: f64 = audio.iter().sum();
    print!("\n{:<16} {:>3} {:<8} |", "engine", "thr", "precis.");
    for clip in CLIPS.iter().chain(&[LONG]) {
        print!(" {:>15} |", clip.trim_start_matches("librivox-"));
    }
    println!(
        " {:>15} | {:>6} | {:>6} | {:>8}",
        "total", "RTF", "WER", "load s / peak MiB"
    );
    print!("{:<16} {:>3} {:<8} |", "audio s", "", "");
    for a in &audio {
        print!(" {a:>15.1} |");
    }
    println!(" {total_audio:>15.1} |");
    for row in rows {
        // Compared with faster-whisper at the same threads and precision.
        let reference = rows.iter().find(|r| {
            r.engine == "faster-whisper" && r.threads == row.threads && r.precision == row.precision
        });
        print!(
            "{:<16} {:>3} {:<8} |",
            row.engine, row.threads, row.precision
        );
        for (i, s) in row.clip_s.iter().enumerate() {
            match reference.filter(|r| r.engine != row.engine) {
                Some(r) => print!(" {s:>6.2} ({:>5.2}x) |", s / r.clip_s[i]),
                None => print!(" {s:>15.2} |"),
            }
        }
        let total: f64 = row.clip_s.iter().sum();
        match reference.filter(|r| r.engine != row.engine) {
            Some(r) => print!(
                " {total:>6.2} ({:>5.2}x) |",
                total / r.clip_s.iter().sum::<f64>()
            ),
            None => print!(" {total:>15.2} |"),
        }
        let wer = row.wer.iter().sum::<f64>() / row.wer.len().max(1) as f64;
        println!(
            " {:>6.3} | {wer:>6.3} | {:>6.2} / {:>5.0}",
            total / total_audio,
            row.load_s,
            row.peak_mib
        );
    }
    let time_of = |engine: &str, threads: u32, precision: &str| -> Option<f64> {
        rows.iter()
            .find(|r| r.engine == engine && r.threads == threads && r.precision == precision)
            .map(|r| r.clip_s.iter().sum())
    };
    println!(
        "\nseconds per clip, model load excluded; (Nx) = time / faster-whisper's at the same threads and precision \
         (pure-wasm: against float32, 1 thread). WER: mean over the clips. peak: the job's own memory \
         (sandbox: linear memory + host tensors, shared weights apart) or the process's resident peak (faster-whisper)."
    );
    if let (Some(old), Some(new)) = (
        time_of("pure-wasm", 1, "float32"),
        time_of("sandbox", 1, "float32"),
    ) {
        println!("pure-wasm / compute (float32, 1 thread): {:.2}x", old / new);
    }
    // The last clip is the 60 s one.
    let long_of = |engine: &str, threads: u32, precision: &str| -> Option<f64> {
        rows.iter()
            .find(|r| r.engine == engine && r.threads == threads && r.precision == precision)
            .and_then(|r| r.clip_s.last().copied())
    };
    for engine in ["sandbox", "faster-whisper"] {
        for precision in PRECISIONS {
            if let (Some(one), Some(two), Some(one_long), Some(two_long)) = (
                time_of(engine, 1, precision),
                time_of(engine, 2, precision),
                long_of(engine, 1, precision),
                long_of(engine, 2, precision),
            ) {
                println!(
                    "{engine} {precision}: 1 thread / 2 threads = {:.2}x on every clip, {:.2}x on the {LONG} clip",
                    one / two,
                    one_long / two_long
                );
            }
        }
    }
}

/// A number field from a flat JSON line (no JSON dependency in xtask): the first
/// `"key": value` in `line`.
pub fn number(line: &str, key: &str) -> Result<f64, String> {
    let needle = format!("\"{key}\":");
    let start = line
        .find(&needle)
        .ok_or_else(|| format!("no {key} in {line}"))?
        + needle.len();
    let rest = &line[start..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    rest[..end]
        .trim()
        .parse()
        .map_err(|e| format!("bad {key}: {e}"))
}

/// Word error rate of `text` against `reference`.
pub fn wer(reference: &str, text: &str) -> f64 {
    accuracy::word_error_rate(reference, text)
}
