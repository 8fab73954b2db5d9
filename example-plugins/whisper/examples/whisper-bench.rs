//! Runs the plugin's engine natively on speech clips and reports the real-time factor.
//!
//! ```text
//! whisper-bench --assets DIR [--json] [--config JSON] CLIP...
//! ```
//!
//! CLIP is a 16 kHz mono 16-bit `.wav` or `.raw` file; a `.txt` beside it (same stem)
//! is taken as the reference text and scored by word error rate. The real-time factor
//! is processing time / audio duration (below 1 is faster than real time). With
//! `--json` the last line is one JSON object, for `cargo xtask bench` to compare with
//! the same engine inside the sandbox.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use sandscribe_whisper::config::Config;
use sandscribe_whisper::engine::{Engine, Quiet};
use sandscribe_whisper::eval::{read_pcm16, word_error_rate};
use sandscribe_whisper::mel::SAMPLE_RATE;

fn main() -> anyhow::Result<()> {
    let mut assets = None;
    let mut json = false;
    let mut config = Config::default();
    let mut clips = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--assets" => assets = Some(PathBuf::from(args.next().context("--assets DIR")?)),
            "--json" => json = true,
            "--config" => {
                let text = args.next().context("--config JSON")?;
                config = serde_json::from_str(&text).context("--config is not a valid config")?;
            }
            "-h" | "--help" => {
                println!("whisper-bench --assets DIR [--json] [--config JSON] CLIP...");
                return Ok(());
            }
            _ => clips.push(PathBuf::from(arg)),
        }
    }
    let Some(assets) = assets else {
        bail!("give the model folder with --assets DIR (model.bin, vocabulary.txt, …)");
    };
    if clips.is_empty() {
        bail!("give at least one 16 kHz mono 16-bit .wav or .raw clip");
    }

    let started = Instant::now();
    let engine = Engine::load(&assets).with_context(|| format!("loading {}", assets.display()))?;
    let load_s = started.elapsed().as_secs_f64();
    println!("model load: {load_s:.2} s ({})", assets.display());

    let mut total_audio = 0.0;
    let mut total_wall = 0.0;
    let mut wers = Vec::new();
    for clip in &clips {
        let samples = read_pcm16(clip).map_err(anyhow::Error::msg)?;
        let audio_s = samples.len() as f64 / SAMPLE_RATE as f64;
        let started = Instant::now();
        let result = engine.transcribe(&samples, &config, &mut Quiet)?;
        let wall_s = started.elapsed().as_secs_f64();
        total_audio += audio_s;
        total_wall += wall_s;
        let text = result.text();
        let wer = reference(clip).map(|r| word_error_rate(&r, &text));
        println!(
            "{}: {audio_s:.1} s audio in {wall_s:.2} s, RTF {:.3}{}",
            clip.display(),
            wall_s / audio_s,
            wer.map(|w| format!(", WER {w:.3}")).unwrap_or_default()
        );
        println!("  {text}");
        wers.extend(wer);
    }
    let rtf = total_wall / total_audio;
    println!("total: {total_audio:.1} s audio in {total_wall:.2} s, RTF {rtf:.3}");
    if json {
        println!(
            "{}",
            serde_json::json!({
                "engine": "native",
                "load_s": load_s,
                "audio_s": total_audio,
                "wall_s": total_wall,
                "rtf": rtf,
                "wer": wers,
            })
        );
    }
    Ok(())
}

/// The reference text beside a clip (`x.wav` → `x.txt`), if there is one.
fn reference(clip: &Path) -> Option<String> {
    std::fs::read_to_string(clip.with_extension("txt")).ok()
}
