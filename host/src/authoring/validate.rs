//! `sandscribe plugins validate DIR`: is this installed plugin fit to serve?
//!
//! The folder is loaded exactly as the server loads it (manifest, hash pin, the server's
//! limits lowered by the manifest, `info()`, the schema check), then the plugin runs a
//! smoke job on audio made here (tone, silence, tone) and on the author's own clip if
//! given, under those limits, through the same runtime call as a server job. Every check
//! is reported with what it measured; the validation passes when every check does.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::audio::{Audio, DecodeLimits};
use crate::config::{Config, Limits};
use crate::runtime::{
    CancelFlag, JobReporter, LOG_LIMIT_REACHED, LoadError, LoadedPlugin, LogLevel,
    OUTPUT_LIMIT_REACHED, PluginKind, PluginMeta, ResourceUse, RunError, Runtime, SchemaIssue,
};
use crate::transcript::{Segment, Transcript};

/// What to validate.
#[derive(Debug, Clone)]
pub struct ValidateRequest {
    /// An installed plugin folder (`plugins/<id>/`).
    pub folder: PathBuf,
    /// The author's own clip, run after the generated audio.
    pub audio: Option<PathBuf>,
    /// The job configuration the smoke jobs run with (defaults filled in).
    pub config: serde_json::Value,
}

/// Why the validation could not even start (a failed check is not this: it is reported).
#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    #[error(
        "{0} holds plugin sources but no plugin.wasm; build and install it first with `sandscribe plugin build {0}`, then validate the installed folder"
    )]
    SourcesNotBuilt(PathBuf),
    #[error("cannot decode {path}: {reason}")]
    Audio { path: PathBuf, reason: String },
}

/// One check and its verdict.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: String,
    pub passed: bool,
    /// What was measured or why it failed.
    pub detail: String,
}

/// One smoke job: the audio it ran on and everything it did.
#[derive(Debug, Clone)]
pub struct SmokeRun {
    /// What the audio was ("generated: …" or the file's name).
    pub audio: String,
    pub audio_ms: u64,
    pub result: Result<Transcript, RunError>,
    pub usage: ResourceUse,
    /// Limits the job ran into, by their config names (`memory_bytes`, `log_bytes`, ...).
    pub limits_hit: Vec<&'static str>,
    pub live_segments: Vec<Segment>,
    pub progress_updates: usize,
    /// The job's log as the plugin wrote it (level, line), stdout and stderr included.
    pub log: Vec<(LogLevel, String)>,
}

impl SmokeRun {
    pub fn passed(&self) -> bool {
        self.result.is_ok() && self.limits_hit.is_empty()
    }
}

/// The whole verdict.
#[derive(Debug)]
pub struct Validation {
    /// What the plugin says of itself, when it loaded.
    pub meta: Option<PluginMeta>,
    /// The limits its jobs run under (the server's, lowered by its manifest).
    pub limits: Option<Limits>,
    pub checks: Vec<Check>,
    pub schema_warnings: Vec<SchemaIssue>,
    pub runs: Vec<SmokeRun>,
}

impl Validation {
    /// Whether every check and every smoke job passed.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.passed) && self.runs.iter().all(SmokeRun::passed)
    }
}

/// The generated smoke audio: 0.5 s silence, 1 s of a 440 Hz tone, 1 s silence, 1 s tone,
/// 0.5 s silence. Two stretches of sound, so a voice-activity plugin finds two.
pub fn smoke_audio(sample_rate: u32) -> Audio {
    let rate = sample_rate as usize;
    let mut samples = Vec::with_capacity(rate * 4);
    let mut add = |seconds: f32, loud: bool| {
        let count = (seconds * rate as f32) as usize;
        samples.extend((0..count).map(|i| {
            let phase = std::f32::consts::TAU * 440.0 * i as f32 / rate as f32;
            if loud { 0.5 * phase.sin() } else { 0.0 }
        }));
    };
    add(0.5, false);
    add(1.0, true);
    add(1.0, false);
    add(1.0, true);
    add(0.5, false);
    Audio {
        samples: samples.into(),
        sample_rate,
    }
}

/// Describes [`smoke_audio`] in reports.
pub const SMOKE_AUDIO: &str = "generated: 4 s of tone and silence (2 tones)";

/// Loads `request.folder` with `runtime` (built from `server`'s limits) and runs the
/// checks and smoke jobs.
pub fn validate(
    runtime: &Runtime,
    server: &Config,
    request: &ValidateRequest,
) -> Result<Validation, ValidateError> {
    let folder = &request.folder;
    if !folder.join("plugin.wasm").is_file() && super::PluginLanguage::detect(folder).is_ok() {
        return Err(ValidateError::SourcesNotBuilt(folder.clone()));
    }
    let mut validation = Validation {
        meta: None,
        limits: None,
        checks: Vec::new(),
        schema_warnings: Vec::new(),
        runs: Vec::new(),
    };
    let plugin = match runtime.load_plugin(folder) {
        Ok(plugin) => plugin,
        Err(e) => {
            validation.checks.push(load_failed(&e));
            return Ok(validation);
        }
    };
    validation.checks.push(Check {
        name: "loads as the server loads it".into(),
        passed: true,
        detail: format!(
            "{} {} (WIT {}), compiled{} and info() in {} ms",
            plugin.meta.id,
            plugin.meta.version,
            plugin.meta.wit_version,
            if plugin.from_cache { " (cached)" } else { "" },
            plugin.load_time.as_millis()
        ),
    });
    validation.schema_warnings = plugin.schema_warnings.clone();
    validation.checks.push(Check {
        name: "config-schema".into(),
        passed: true,
        detail: match plugin.schema_warnings.len() {
            0 => "valid, defaults valid, no unknown keywords".into(),
            n => format!("valid, with {n} warning(s) below"),
        },
    });
    let resolved = match plugin.resolve_config(&request.config) {
        Ok(resolved) => {
            validation.checks.push(Check {
                name: "job configuration".into(),
                passed: true,
                detail: resolved.to_string(),
            });
            resolved
        }
        Err(problems) => {
            let detail = problems
                .iter()
                .map(|p| format!("{} {}", p.field, p.message))
                .collect::<Vec<_>>()
                .join("; ");
            validation.checks.push(Check {
                name: "job configuration".into(),
                passed: false,
                detail,
            });
            return Ok(validation);
        }
    };

    let mut inputs = vec![(SMOKE_AUDIO.to_owned(), smoke_audio(plugin.meta.sample_rate))];
    if let Some(path) = &request.audio {
        inputs.push((clip_name(path), decode(path, &server.limits, &plugin)?));
    }
    for (name, audio) in inputs {
        validation
            .runs
            .push(smoke_run(runtime, &plugin, name, &audio, &resolved));
    }
    validation.meta = Some(plugin.meta.clone());
    validation.limits = Some(plugin.limits.clone());
    Ok(validation)
}

fn load_failed(error: &LoadError) -> Check {
    Check {
        name: "loads as the server loads it".into(),
        passed: false,
        detail: error.to_string(),
    }
}

fn clip_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

fn decode(path: &Path, limits: &Limits, plugin: &LoadedPlugin) -> Result<Audio, ValidateError> {
    let limits = DecodeLimits {
        max_bytes: limits.upload_bytes,
        max_duration_ms: limits.audio_seconds.saturating_mul(1000),
    };
    crate::audio::decode_file_at(path, &limits, plugin.meta.sample_rate).map_err(|e| {
        ValidateError::Audio {
            path: path.to_owned(),
            reason: e.to_string(),
        }
    })
}

/// Runs one job as the server would and keeps everything it reported.
fn smoke_run(
    runtime: &Runtime,
    plugin: &LoadedPlugin,
    name: String,
    audio: &Audio,
    config: &serde_json::Value,
) -> SmokeRun {
    let recorder = Arc::new(Recorder::default());
    let outcome = match plugin.meta.kind {
        PluginKind::Transcriber => runtime.transcribe(
            plugin,
            audio,
            &config.to_string(),
            recorder.clone(),
            CancelFlag::new(),
            None,
        ),
        // A diarizer gets the whole audio as one segment; its turns are shown as
        // segments named after their speaker.
        PluginKind::Diarizer => {
            let whole = [Segment::new(0, audio.duration_ms(), "")];
            let outcome = runtime.diarize(
                plugin,
                audio,
                &whole,
                crate::diarize::SpeakerCount::Auto,
                &config.to_string(),
                recorder.clone(),
                CancelFlag::new(),
                None,
            );
            crate::runtime::RunOutcome {
                result: outcome.result.map(turns_as_transcript),
                usage: outcome.usage,
            }
        }
    };
    let recorded = std::mem::take(&mut *recorder.lock());
    let mut limits_hit = Vec::new();
    match &outcome.result {
        Err(RunError::TimedOut { .. }) => limits_hit.push("job_seconds"),
        Err(RunError::OutOfMemory { .. }) => limits_hit.push("memory_bytes"),
        Err(RunError::FuelExhausted { .. }) => limits_hit.push("fuel_per_job"),
        Err(RunError::StackOverflow) => limits_hit.push("stack_bytes"),
        Err(RunError::SharedModelMemory(_)) => limits_hit.push("shared_model_bytes"),
        Err(RunError::InvalidOutput(_)) if recorded.output_limit => limits_hit.push("output_bytes"),
        _ => {}
    }
    if recorded.log_limit {
        limits_hit.push("log_bytes");
    }
    if recorded.output_limit && !limits_hit.contains(&"output_bytes") {
        limits_hit.push("output_bytes");
    }
    SmokeRun {
        audio: name,
        audio_ms: audio.duration_ms(),
        result: outcome.result,
        usage: outcome.usage,
        limits_hit,
        live_segments: recorded.segments,
        progress_updates: recorded.progress_updates,
        log: recorded.log,
    }
}

/// A diarizer's turns as a transcript to print: one segment per turn, its text and
/// speaker the turn's label.
fn turns_as_transcript(turns: Vec<crate::diarize::SpeakerTurn>) -> Transcript {
    let segments: Vec<Segment> = turns
        .into_iter()
        .map(|turn| Segment {
            confidence: turn.confidence,
            speaker: Some(turn.speaker.clone()),
            ..Segment::new(turn.start_ms, turn.end_ms, turn.speaker)
        })
        .collect();
    let text = segments
        .iter()
        .map(|s| s.text.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    Transcript {
        text,
        language: None,
        segments,
    }
}

/// The most log lines a smoke run keeps (the job's byte budget caps them too).
const MAX_LOG_LINES: usize = 1000;

/// What a smoke job reported while it ran.
#[derive(Default)]
struct Recorded {
    segments: Vec<Segment>,
    progress_updates: usize,
    log: Vec<(LogLevel, String)>,
    log_limit: bool,
    output_limit: bool,
}

#[derive(Default)]
struct Recorder(Mutex<Recorded>);

impl Recorder {
    fn lock(&self) -> std::sync::MutexGuard<'_, Recorded> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl JobReporter for Recorder {
    fn progress(&self, _fraction: f32, _stage: &str) {
        self.lock().progress_updates += 1;
    }

    fn segment(&self, segment: Segment) {
        self.lock().segments.push(segment);
    }

    fn log(&self, level: LogLevel, line: &str) {
        let mut recorded = self.lock();
        // The runtime's own notices about the budgets arrive through the same call.
        match line {
            LOG_LIMIT_REACHED => recorded.log_limit = true,
            OUTPUT_LIMIT_REACHED => recorded.output_limit = true,
            _ => {}
        }
        if recorded.log.len() < MAX_LOG_LINES {
            recorded.log.push((level, line.to_owned()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_smoke_audio_is_two_tones_between_silences() {
        let audio = smoke_audio(16_000);
        assert_eq!(audio.duration_ms(), 4000);
        let loud = |from_ms: usize, to_ms: usize| {
            audio.samples[from_ms * 16..to_ms * 16]
                .iter()
                .any(|s| s.abs() > 0.1)
        };
        assert!(!loud(0, 500));
        assert!(loud(500, 1500));
        assert!(!loud(1500, 2500));
        assert!(loud(2500, 3500));
        assert!(!loud(3500, 4000));
    }

    #[test]
    fn plugin_sources_without_a_build_are_sent_to_plugin_build() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        std::fs::write(dir.path().join("Cargo.toml"), "").expect("manifest");
        let runtime =
            Runtime::new(&Limits::default(), &dir.path().join("cache")).expect("a runtime");
        let err = validate(
            &runtime,
            &Config::default(),
            &ValidateRequest {
                folder: dir.path().to_owned(),
                audio: None,
                config: serde_json::json!({}),
            },
        )
        .expect_err("not built");
        assert!(err.to_string().contains("sandscribe plugin build"), "{err}");
    }

    #[test]
    fn a_folder_that_does_not_load_fails_with_the_loaders_reason() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let folder = dir.path().join("broken");
        std::fs::create_dir(&folder).expect("folder");
        std::fs::write(folder.join("plugin.wasm"), b"not wasm").expect("file");
        let runtime =
            Runtime::new(&Limits::default(), &dir.path().join("cache")).expect("a runtime");
        let validation = validate(
            &runtime,
            &Config::default(),
            &ValidateRequest {
                folder,
                audio: None,
                config: serde_json::json!({}),
            },
        )
        .expect("validated");
        assert!(!validation.passed());
        assert!(
            validation.checks[0].detail.contains("not WebAssembly"),
            "{:?}",
            validation.checks
        );
        assert!(validation.runs.is_empty());
    }
}
