//! The sandbox rows of `cargo xtask bench whisper`: `sandscribe transcribe --stats`, one
//! process per clip (a fresh store and a cold weights cache per job, as the first job of
//! a server), and the `pure-wasm` build of the same plugin beside the compute one.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{PLUGIN, Row, number, wer};
use crate::cmd;
use crate::setup;

/// Builds the plugin with `--features pure-wasm` (its own target folder, so the default
/// build's artifact stays) and installs it with the default install's assets as
/// `work/pure-wasm-plugins/<PLUGIN>/`; returns that plugins folder.
pub fn build_pure_wasm(root: &Path, plugins: &Path, work: &Path) -> Result<PathBuf, String> {
    let target = root.join("target/pure-wasm");
    cmd::run(
        cmd::cargo(root)
            .args(["build", "--release", "--target", "wasm32-wasip2"])
            .args(["-p", "sandscribe-whisper", "--features", "pure-wasm"])
            .arg("--target-dir")
            .arg(&target)
            // As `setup` ships plugins: no debug info.
            .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
            .env("CARGO_PROFILE_RELEASE_STRIP", "debuginfo"),
    )?;
    let dir = work.join("pure-wasm-plugins");
    let plugin = dir.join(PLUGIN);
    setup::install_file(
        &target.join("wasm32-wasip2/release/sandscribe_whisper.wasm"),
        &plugin.join("plugin.wasm"),
    )?;
    let from = plugins.join(PLUGIN).join("assets");
    let to = plugin.join("assets");
    std::fs::create_dir_all(&to).map_err(|e| format!("cannot create {}: {e}", to.display()))?;
    let entries =
        std::fs::read_dir(&from).map_err(|e| format!("cannot read {}: {e}", from.display()))?;
    for entry in entries.flatten() {
        let target = to.join(entry.file_name());
        if !target.exists() {
            // A hard link shares the 75 MB model; a copy where links cannot be made.
            std::fs::hard_link(entry.path(), &target)
                .or_else(|_| std::fs::copy(entry.path(), &target).map(|_| ()))
                .map_err(|e| format!("cannot install {}: {e}", target.display()))?;
        }
    }
    Ok(dir)
}

/// A server config giving each job `threads` compute threads.
pub fn server_config(work: &Path, threads: u32) -> Result<PathBuf, String> {
    std::fs::create_dir_all(work).map_err(|e| format!("cannot create {}: {e}", work.display()))?;
    let path = work.join(format!("threads-{threads}.toml"));
    std::fs::write(&path, format!("[limits]\nthreads_per_job = {threads}\n"))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

/// One plugin build with one server config.
pub struct Sandbox<'a> {
    pub bin: &'a Path,
    pub plugins: &'a Path,
    pub config: &'a Path,
    /// The plugin id in `plugins`.
    pub plugin: &'a str,
}

/// The job config of a row: Whisper's precision, nothing for the other engines.
fn job_config(plugin: &str, precision: &str) -> String {
    if plugin == PLUGIN {
        format!("{{\"precision\":\"{precision}\"}}")
    } else {
        "{}".to_owned()
    }
}

/// What `--stats` said about one job.
struct Job {
    wall_s: f64,
    load_s: f64,
    peak_mib: f64,
    text: String,
}

impl Sandbox<'_> {
    /// Every clip at `precision`, after one warm-up job (the compile cache, so no row
    /// pays for compiling the component).
    pub fn row(
        &self,
        engine: &'static str,
        threads: u32,
        precision: &'static str,
        clips: &[PathBuf],
        references: &[String],
    ) -> Result<Row, String> {
        self.job(&clips[0], precision)?;
        let mut row = Row {
            engine,
            threads,
            precision,
            clip_s: Vec::new(),
            wer: Vec::new(),
            load_s: 0.0,
            peak_mib: 0.0,
        };
        for (clip, reference) in clips.iter().zip(references) {
            let job = self.job(clip, precision)?;
            row.clip_s.push(job.wall_s - job.load_s);
            row.load_s = row.load_s.max(job.load_s);
            row.peak_mib = row.peak_mib.max(job.peak_mib);
            row.wer.push(wer(reference, &job.text));
        }
        Ok(row)
    }

    fn job(&self, wav: &Path, precision: &str) -> Result<Job, String> {
        let out = Command::new(self.bin)
            .args([
                "transcribe",
                "--plugin",
                self.plugin,
                "--format",
                "txt",
                "--stats",
            ])
            .arg("--config")
            .arg(job_config(self.plugin, precision))
            .arg("--plugins")
            .arg(self.plugins)
            .arg(wav)
            .env("SANDSCRIBE_CONFIG", self.config)
            .env("RUST_LOG", "warn")
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.bin.display()))?;
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
        Ok(Job {
            wall_s: number(line, "wall_ms")? / 1000.0,
            // An engine without a model-loading stage (PocketSphinx) loads nothing apart.
            load_s: stage_length(line, "loading the model").unwrap_or(0.0) / 1000.0,
            peak_mib: number(line, "peak_memory_bytes")? / (1u64 << 20) as f64,
            text: String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        })
    }
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
