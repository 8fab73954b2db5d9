//! `cargo xtask bench whisper`: the Whisper plugin inside the sandbox and the same engine
//! code compiled natively, on the same clips in one run, side by side.
//!
//! Sandbox figures come from `sandscribe transcribe --stats` (a fresh store per job, as
//! in the server: instantiation and model load included in the job's wall time); native
//! figures from the plugin crate's `whisper-bench` example. The model-load time inside
//! the sandbox is the length of the plugin's "loading the model" stage. Each clip also
//! runs metered (`--fuel`, with a budget it never reaches), to show what fuel metering
//! costs next to the plain engine.

use std::path::Path;
use std::process::Command;

use crate::cmd;
use crate::setup;

const CLIPS: &[&str] = &[
    "goforward",
    "librivox-0870",
    "librivox-0880",
    "librivox-0890",
];
const PLUGIN: &str = "whisper-tiny-en";

pub fn bench(args: &[String]) -> Result<(), String> {
    match args.first().map(String::as_str) {
        Some("whisper") => whisper(&args[1..]),
        _ => Err("usage: cargo xtask bench whisper".into()),
    }
}

/// One measurement of one clip.
struct Row {
    clip: String,
    audio_s: f64,
    sandbox_s: f64,
    sandbox_load_s: f64,
    native_s: f64,
    native_load_s: f64,
    peak_mib: f64,
    metered_s: f64,
    fuel: f64,
}

/// A budget no clip comes near: metering on, never the reason a job stops.
const UNREACHED_FUEL: &str = "1000000000000000";

fn whisper(args: &[String]) -> Result<(), String> {
    let paths = setup::setup(&setup::Options::parse(args))?;
    let assets = paths.plugins.join(PLUGIN).join("assets");
    // Build the native side once, quietly.
    cmd::run(cmd::cargo(&paths.root).args([
        "build",
        "--release",
        "-p",
        "sandscribe-whisper",
        "--example",
        "whisper-bench",
    ]))?;
    let native_bin = paths.root.join("target/release/examples/whisper-bench");
    let server_bin = paths.root.join("target/release/sandscribe");
    // Warm the compile cache so no row pays for compiling the component.
    let first = paths.speech.join(format!("{}.wav", CLIPS[0]));
    sandbox(&server_bin, &paths.plugins, &first, false)?;
    sandbox(&server_bin, &paths.plugins, &first, true)?;

    let mut rows = Vec::new();
    for clip in CLIPS {
        let wav = paths.speech.join(format!("{clip}.wav"));
        let s = sandbox(&server_bin, &paths.plugins, &wav, false)?;
        let m = sandbox(&server_bin, &paths.plugins, &wav, true)?;
        let n = native(&native_bin, &assets, &wav)?;
        rows.push(Row {
            clip: (*clip).to_owned(),
            audio_s: s.audio_s,
            sandbox_s: s.wall_s,
            sandbox_load_s: s.load_s,
            native_s: n.wall_s,
            native_load_s: n.load_s,
            peak_mib: s.peak_mib,
            metered_s: m.wall_s - m.load_s,
            fuel: m.fuel,
        });
    }
    print_table(&rows);
    Ok(())
}

struct Sandbox {
    audio_s: f64,
    wall_s: f64,
    load_s: f64,
    peak_mib: f64,
    /// Fuel burnt, when metered (0 otherwise).
    fuel: f64,
}

fn sandbox(bin: &Path, plugins: &Path, wav: &Path, metered: bool) -> Result<Sandbox, String> {
    let mut command = Command::new(bin);
    if metered {
        command.args(["transcribe", "--fuel", UNREACHED_FUEL]);
    } else {
        command.arg("transcribe");
    }
    let out = command
        .args([
            "--plugin",
            PLUGIN,
            "--format",
            "txt",
            "--stats",
            "--plugins",
        ])
        .arg(plugins)
        .arg(wav)
        .env("RUST_LOG", "warn")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    if !out.status.success() {
        return Err(format!(
            "sandbox run failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .ok_or("no --stats line")?;
    let audio_ms = number(line, "audio_ms")?;
    let wall_ms = number(line, "wall_ms")?;
    let peak = number(line, "peak_memory_bytes")?;
    Ok(Sandbox {
        audio_s: audio_ms / 1000.0,
        wall_s: wall_ms / 1000.0,
        load_s: stage_length(line, "loading the model").unwrap_or(f64::NAN) / 1000.0,
        peak_mib: peak / (1u64 << 20) as f64,
        fuel: if metered {
            number(line, "fuel_consumed")?
        } else {
            0.0
        },
    })
}

struct Native {
    wall_s: f64,
    load_s: f64,
}

fn native(bin: &Path, assets: &Path, wav: &Path) -> Result<Native, String> {
    let stdout = cmd::output(
        Command::new(bin)
            .arg("--assets")
            .arg(assets)
            .arg("--json")
            .arg(wav),
    )?;
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .ok_or("no --json line")?;
    Ok(Native {
        wall_s: number(line, "wall_s")?,
        load_s: number(line, "load_s")?,
    })
}

/// A number field from a flat JSON line (no JSON dependency in xtask).
fn number(line: &str, key: &str) -> Result<f64, String> {
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

/// Milliseconds from the start of `stage` to the start of the next stage, from the
/// `"stages":[["name",ms],...]` list.
fn stage_length(line: &str, stage: &str) -> Option<f64> {
    let list = &line[line.find("\"stages\":")? + 9..];
    let entries: Vec<(String, f64)> = list
        .split("],[")
        .filter_map(|e| {
            let e = e.trim_matches(|c| c == '[' || c == ']' || c == '}');
            let (name, ms) = e.rsplit_once(',')?;
            Some((name.trim_matches('"').to_owned(), ms.trim().parse().ok()?))
        })
        .collect();
    let index = entries.iter().position(|(name, _)| name == stage)?;
    Some(entries.get(index + 1)?.1 - entries[index].1)
}

fn print_table(rows: &[Row]) {
    println!(
        "\n{:<16} {:>7} | {:>9} {:>7} | {:>9} {:>7} | {:>11} | {:>9} {:>9} | {:>8} | {:>9} {:>10} {:>16}",
        "clip",
        "audio s",
        "sandbox s",
        "RTF",
        "native s",
        "RTF",
        "sandbox/nat",
        "load sbx",
        "load nat",
        "peak MiB",
        "metered s",
        "metered/sbx",
        "fuel"
    );
    let mut totals = (0.0, 0.0, 0.0, 0.0);
    for r in rows {
        // Native time excludes model load; compare like with like.
        let sandbox_run = r.sandbox_s - r.sandbox_load_s;
        println!(
            "{:<16} {:>7.1} | {:>9.2} {:>7.3} | {:>9.2} {:>7.3} | {:>10.2}x | {:>9.2} {:>9.2} | {:>8.0} | {:>9.2} {:>9.3}x {:>16.0}",
            r.clip,
            r.audio_s,
            sandbox_run,
            sandbox_run / r.audio_s,
            r.native_s,
            r.native_s / r.audio_s,
            sandbox_run / r.native_s,
            r.sandbox_load_s,
            r.native_load_s,
            r.peak_mib,
            r.metered_s,
            r.metered_s / sandbox_run,
            r.fuel
        );
        totals.0 += r.audio_s;
        totals.1 += sandbox_run;
        totals.2 += r.native_s;
        totals.3 += r.metered_s;
    }
    println!(
        "{:<16} {:>7.1} | {:>9.2} {:>7.3} | {:>9.2} {:>7.3} | {:>10.2}x | {:>30} | {:>9.2} {:>9.3}x",
        "total",
        totals.0,
        totals.1,
        totals.1 / totals.0,
        totals.2,
        totals.2 / totals.0,
        totals.1 / totals.2,
        "",
        totals.3,
        totals.3 / totals.1
    );
    println!(
        "\nsandbox s: job wall time minus model load (fresh store, instantiate, decode); RTF = time / audio length.\nmetered s: the same, fuel-metered (second engine, fuel checks compiled in); fuel = units burnt."
    );
}
