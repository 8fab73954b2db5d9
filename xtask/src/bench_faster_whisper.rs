//! The faster-whisper rows of `cargo xtask bench whisper`: what a user would run instead
//! of sandscribe, on the plugin's own CTranslate2 directory (same weights, same clips).
//!
//! `target/venv-bench` gets `faster-whisper` from PyPI (pinned, reinstalled only when the
//! pin changes). One Python process per (compute type, threads) loads the model once,
//! transcribes the first clip as a warm-up, then each clip timed, and prints one JSON
//! line per clip.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{Row, number, wer};
use crate::cmd;

/// What the bench installs; the stamp in the virtualenv holds it.
const REQUIREMENT: &str = "faster-whisper==1.2.1";
const STAMP: &str = ".sandscribe-installed";

/// Decodes the WAV before timing (the sandbox's rows do not count decoding either) and
/// runs faster-whisper with the plugin's defaults: beam 5, English, the temperature
/// fallback, previous-text conditioning off, no VAD.
const SCRIPT: &str = r#"
import json, resource, sys, time, wave
import numpy as np
from faster_whisper import WhisperModel

model_dir, compute_type, threads, clips = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
started = time.perf_counter()
model = WhisperModel(model_dir, device="cpu", compute_type=compute_type, cpu_threads=threads, num_workers=1)
load_s = time.perf_counter() - started

def samples(path):
    with wave.open(path) as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    return pcm.astype(np.float32) / 32768.0

def transcribe(audio):
    segments, _ = model.transcribe(audio, language="en", beam_size=5, vad_filter=False,
                                   condition_on_previous_text=False)
    return " ".join(s.text.strip() for s in segments)

audio = [samples(c) for c in clips]
transcribe(audio[0])
for path, a in zip(clips, audio):
    started = time.perf_counter()
    text = transcribe(a)
    wall_s = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"clip": path, "wall_s": wall_s, "load_s": load_s, "peak_mib": peak_mib, "text": text}))
"#;

/// The virtualenv's Python, with faster-whisper installed.
pub fn ensure_venv(root: &Path) -> Result<PathBuf, String> {
    let venv = root.join("target/venv-bench");
    let python = venv.join("bin/python");
    let stamp = venv.join(STAMP);
    if python.is_file() && std::fs::read_to_string(&stamp).is_ok_and(|s| s == REQUIREMENT) {
        return Ok(python);
    }
    if !python.is_file() {
        cmd::run(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
    }
    cmd::run(Command::new(&python).args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        REQUIREMENT,
    ]))?;
    std::fs::write(&stamp, REQUIREMENT)
        .map_err(|e| format!("cannot write {}: {e}", stamp.display()))?;
    Ok(python)
}

/// faster-whisper at `compute_type` (the plugin's precision names are CTranslate2's) on
/// `threads` threads.
pub fn row(
    python: &Path,
    work: &Path,
    assets: &Path,
    threads: u32,
    compute_type: &'static str,
    clips: &[PathBuf],
    references: &[String],
) -> Result<Row, String> {
    let script = work.join("faster_whisper_bench.py");
    std::fs::create_dir_all(work).map_err(|e| format!("cannot create {}: {e}", work.display()))?;
    std::fs::write(&script, SCRIPT)
        .map_err(|e| format!("cannot write {}: {e}", script.display()))?;
    let stdout = cmd::output(
        Command::new(python)
            .arg(&script)
            .arg(assets)
            .arg(compute_type)
            .arg(threads.to_string())
            .args(clips)
            // Its own thread settings only: no stray OpenMP pool beside `cpu_threads`.
            .env("OMP_NUM_THREADS", threads.to_string()),
    )?;
    let lines: Vec<&str> = stdout.lines().filter(|l| l.starts_with('{')).collect();
    if lines.len() != clips.len() {
        return Err(format!(
            "faster-whisper printed {} results for {} clips:\n{stdout}",
            lines.len(),
            clips.len()
        ));
    }
    let mut row = Row {
        engine: "faster-whisper",
        threads,
        precision: compute_type,
        clip_s: Vec::new(),
        wer: Vec::new(),
        load_s: 0.0,
        peak_mib: 0.0,
    };
    for (line, reference) in lines.iter().zip(references) {
        row.clip_s.push(number(line, "wall_s")?);
        row.load_s = number(line, "load_s")?;
        row.peak_mib = row.peak_mib.max(number(line, "peak_mib")?);
        row.wer.push(wer(reference, &text_field(line)?));
    }
    Ok(row)
}

/// The `"text"` string of a JSON line written by Python's `json.dumps` (escapes: `\"`,
/// `\\`, `\uXXXX`).
fn text_field(line: &str) -> Result<String, String> {
    let start = line
        .find("\"text\": \"")
        .ok_or_else(|| format!("no text in {line}"))?
        + 9;
    let mut out = String::new();
    let mut chars = line[start..].chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Ok(out),
            '\\' => match chars.next() {
                Some('u') => {
                    let hex: String = chars.by_ref().take(4).collect();
                    let code = u32::from_str_radix(&hex, 16).unwrap_or(0xFFFD);
                    out.push(char::from_u32(code).unwrap_or('\u{FFFD}'));
                }
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(other) => out.push(other),
                None => break,
            },
            _ => out.push(c),
        }
    }
    Err(format!("unterminated text in {line}"))
}
