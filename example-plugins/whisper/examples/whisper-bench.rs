//! Runs the plugin's engine natively on speech clips: wall time, real-time factor and
//! word error rate per clip, for each backend, thread count and precision asked for.
//!
//! ```text
//! whisper-bench --assets DIR [--json] [--config JSON] [--threads 1,2]
//!               [--precision float32,int8,bfloat16] [--backend compute,pure-wasm] CLIP...
//! ```
//!
//! CLIP is a 16 kHz mono 16-bit `.wav` or `.raw` file; a `.txt` beside it (same stem)
//! is taken as the reference text and scored by word error rate. The real-time factor
//! is processing time / audio duration (below 1 is faster than real time). `compute` is
//! the plugin's network on the SDK's compute interface, run natively in-process (the
//! host's kernels, `--threads` per call); `pure-wasm` is the candle reference compiled
//! natively (build with `--features pure-wasm`; candle picks its own threads, so it runs
//! once, at float32). With `--json` each configuration ends with one JSON line, for
//! `cargo xtask bench`. On Linux each clip also shows the process's CPU time (all
//! threads), which a busy machine disturbs far less than wall time.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use sandscribe_whisper::config::{Config, Precision};
use sandscribe_whisper::engine::{Backend, Engine, Quiet};
use sandscribe_whisper::eval::{read_pcm16, word_error_rate};
use sandscribe_whisper::mel::SAMPLE_RATE;

const USAGE: &str = "whisper-bench --assets DIR [--json] [--config JSON] [--threads 1,2] \
    [--precision float32,int8,bfloat16] [--backend compute,pure-wasm] CLIP...";

/// One clip, read once.
struct Clip {
    path: PathBuf,
    samples: Vec<f32>,
    reference: Option<String>,
}

/// One way to run the engine.
#[derive(Clone, Copy)]
struct Setup {
    backend: Backend,
    threads: usize,
    precision: Precision,
}

fn main() -> anyhow::Result<()> {
    let mut assets = None;
    let mut json = false;
    let mut config = Config::default();
    let mut threads = vec![1];
    let mut precisions = None;
    let mut backends = vec![Backend::Compute];
    let mut clips = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().with_context(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--assets" => assets = Some(PathBuf::from(value("--assets")?)),
            "--json" => json = true,
            "--config" => {
                let text = value("--config")?;
                config = serde_json::from_str(&text).context("--config is not a valid config")?;
            }
            "--threads" => {
                threads = list(&value("--threads")?, |t| t.parse::<usize>().ok())
                    .context("--threads takes counts such as 1,2")?;
            }
            "--precision" => {
                precisions = Some(
                    list(&value("--precision")?, |p| {
                        Precision::ALL.into_iter().find(|x| x.name() == p)
                    })
                    .context("--precision takes float32, int8 or bfloat16")?,
                );
            }
            "--backend" => {
                backends = list(&value("--backend")?, backend)
                    .context("--backend takes compute or pure-wasm (with --features pure-wasm)")?;
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            _ => clips.push(PathBuf::from(arg)),
        }
    }
    let Some(assets) = assets else {
        bail!("give the model folder with --assets DIR (model.bin, vocabulary.txt, …)\n{USAGE}");
    };
    if clips.is_empty() {
        bail!("give at least one 16 kHz mono 16-bit .wav or .raw clip\n{USAGE}");
    }
    let clips = clips
        .into_iter()
        .map(|path| {
            let samples = read_pcm16(&path).map_err(anyhow::Error::msg)?;
            let reference = std::fs::read_to_string(path.with_extension("txt")).ok();
            Ok(Clip {
                path,
                samples,
                reference,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let precisions = precisions.unwrap_or_else(|| vec![config.precision]);

    let mut setups = Vec::new();
    for &backend in &backends {
        if backend == Backend::Compute {
            for &t in &threads {
                for &p in &precisions {
                    setups.push(Setup {
                        backend,
                        threads: t,
                        precision: p,
                    });
                }
            }
        } else {
            setups.push(Setup {
                backend,
                threads: 0,
                precision: Precision::Float32,
            });
        }
    }
    for setup in setups {
        run(&assets, &clips, &config, setup, json)?;
    }
    Ok(())
}

/// Transcribes every clip with one setup and prints the figures.
fn run(
    assets: &Path,
    clips: &[Clip],
    config: &Config,
    setup: Setup,
    json: bool,
) -> anyhow::Result<()> {
    let label = match setup.backend {
        Backend::Compute => format!(
            "compute, {} thread{}, {}",
            setup.threads,
            if setup.threads == 1 { "" } else { "s" },
            setup.precision.name()
        ),
        #[cfg(feature = "pure-wasm")]
        Backend::PureWasm => "pure-wasm (candle, natively)".to_owned(),
    };
    // The example is native; it only type-checks for wasm32 (`--all-targets`).
    #[cfg(not(target_arch = "wasm32"))]
    sandscribe_plugin_sdk::compute::native::configure(assets, setup.threads.max(1));
    let config = Config {
        precision: setup.precision,
        ..config.clone()
    };

    let started = Instant::now();
    let engine = Engine::load_with(assets, setup.backend)
        .with_context(|| format!("loading {}", assets.display()))?;
    engine.prepare(setup.precision)?;
    let load_s = started.elapsed().as_secs_f64();
    println!("\n{label}: model load {load_s:.2} s ({})", assets.display());

    let (mut total_audio, mut total_wall) = (0.0, 0.0);
    let mut wers = Vec::new();
    let mut walls = Vec::new();
    for clip in clips {
        let audio_s = clip.samples.len() as f64 / SAMPLE_RATE as f64;
        let (started, cpu_before) = (Instant::now(), cpu_seconds());
        let result = engine.transcribe(&clip.samples, &config, &mut Quiet)?;
        let wall_s = started.elapsed().as_secs_f64();
        let cpu = cpu_seconds()
            .zip(cpu_before)
            .map(|(after, before)| after - before);
        total_audio += audio_s;
        total_wall += wall_s;
        let text = result.text();
        let wer = clip.reference.as_ref().map(|r| word_error_rate(r, &text));
        println!(
            "{}: {audio_s:.1} s audio in {wall_s:.2} s{}, RTF {:.3}{}",
            clip.path.display(),
            cpu.map(|c| format!(" ({c:.2} s CPU)")).unwrap_or_default(),
            wall_s / audio_s,
            wer.map(|w| format!(", WER {w:.3}")).unwrap_or_default()
        );
        println!("  {text}");
        wers.extend(wer);
        walls.push(wall_s);
    }
    let rtf = total_wall / total_audio;
    let mean_wer = if wers.is_empty() {
        f64::NAN
    } else {
        wers.iter().sum::<f64>() / wers.len() as f64
    };
    println!(
        "total: {total_audio:.1} s audio in {total_wall:.2} s, RTF {rtf:.3}, mean WER {mean_wer:.3}"
    );
    if json {
        println!(
            "{}",
            serde_json::json!({
                "engine": "native",
                "backend": match setup.backend {
                    Backend::Compute => "compute",
                    #[cfg(feature = "pure-wasm")]
                    Backend::PureWasm => "pure-wasm",
                },
                "threads": setup.threads,
                "precision": setup.precision.name(),
                "load_s": load_s,
                "audio_s": total_audio,
                "wall_s": total_wall,
                "rtf": rtf,
                "clip_wall_s": walls,
                "wer": wers,
            })
        );
    }
    Ok(())
}

/// CPU time of this process so far (user + system, all threads), from `/proc/self/stat`
/// in clock ticks of 10 ms (Linux's `USER_HZ` on every common build); `None` elsewhere.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may hold spaces: fields are counted after its closing paren.
    let mut fields = stat
        .get(stat.rfind(')')? + 1..)?
        .split_whitespace()
        .skip(11);
    let user: f64 = fields.next()?.parse().ok()?;
    let system: f64 = fields.next()?.parse().ok()?;
    Some((user + system) / 100.0)
}

/// A comma-separated list, each item parsed by `parse`.
fn list<T>(text: &str, parse: impl Fn(&str) -> Option<T>) -> Option<Vec<T>> {
    text.split(',').map(|s| parse(s.trim())).collect()
}

fn backend(name: &str) -> Option<Backend> {
    match name {
        "compute" => Some(Backend::Compute),
        #[cfg(feature = "pure-wasm")]
        "pure-wasm" => Some(Backend::PureWasm),
        _ => None,
    }
}
