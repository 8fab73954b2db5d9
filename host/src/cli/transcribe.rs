//! `sandscribe transcribe FILE --plugin ID`: one file, no server; result on stdout,
//! progress on stderr (with `--verbose`, the plugin's whole log, its progress and its
//! live segments as they come). Uses the same runtime, validation and writers as the
//! server.

use std::num::NonZeroU64;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, anyhow};
use indicatif::{ProgressBar, ProgressStyle};
use sandscribe::export::{self, ExportFormat, SubtitleOptions};
use sandscribe::runtime::{CancelFlag, JobReporter, LogLevel, Runtime};
use sandscribe::storage::StoredResult;
use sandscribe::transcript::Segment;
use time::OffsetDateTime;

use super::Common;

#[derive(clap::Args)]
pub struct TranscribeArgs {
    /// The audio or video file.
    file: PathBuf,
    /// Plugin id (see `sandscribe plugins list`).
    #[arg(long)]
    plugin: String,
    /// Plugin configuration as a JSON object.
    #[arg(long, default_value = "{}")]
    config: String,
    /// Output format: txt, srt, vtt or json.
    #[arg(long, default_value = "txt")]
    format: String,
    /// Subtitles: maximum characters per line.
    #[arg(long)]
    max_chars_per_line: Option<usize>,
    /// Subtitles: maximum lines per cue.
    #[arg(long)]
    max_lines_per_cue: Option<usize>,
    /// Print one JSON line of measurements (times, peak memory, fuel, the plugin's load
    /// time and whether its compiled code came from the cache, the job's instantiation
    /// time, when each stage began) to stderr at the end; `cargo xtask bench` reads it.
    #[arg(long)]
    stats: bool,
    /// Run metered with this much fuel (about one unit per WebAssembly instruction);
    /// the config's `[limits] fuel_per_job` and the plugin's may lower it. Metered runs
    /// are slower but burn the same fuel every time.
    #[arg(long, value_name = "UNITS")]
    fuel: Option<NonZeroU64>,
    /// Stream the plugin's log lines (every level), progress and live segments to stderr
    /// as they come, instead of a progress bar.
    #[arg(long, short)]
    verbose: bool,
    #[command(flatten)]
    common: Common,
}

/// Shows progress on stderr and remembers when each stage began.
struct BarReporter {
    bar: ProgressBar,
    started: Instant,
    stages: Mutex<Vec<(String, u64)>>,
    /// `--verbose`: every event is a line on stderr (and the bar is hidden).
    verbose: bool,
    /// The last progress line printed in verbose mode: (tenth reached, stage).
    shown: Mutex<(u32, String)>,
}

impl BarReporter {
    /// A line on stderr, stamped with the time since the start.
    fn say(&self, line: &str) {
        eprintln!("[{:>7.3} s] {line}", self.started.elapsed().as_secs_f64());
    }
}

impl JobReporter for BarReporter {
    fn progress(&self, fraction: f32, stage: &str) {
        self.bar.set_position((fraction * 1000.0) as u64);
        self.bar.set_message(stage.to_owned());
        if let Ok(mut stages) = self.stages.lock()
            && stages.last().is_none_or(|(last, _)| last != stage)
        {
            stages.push((stage.to_owned(), self.started.elapsed().as_millis() as u64));
        }
        // Verbose: a line per new stage and per tenth of the way, not per call.
        if self.verbose
            && let Ok(mut shown) = self.shown.lock()
        {
            let tenth = (fraction * 10.0) as u32;
            if tenth != shown.0 || stage != shown.1 {
                *shown = (tenth, stage.to_owned());
                self.say(&format!("progress {:>3.0}% {stage}", fraction * 100.0));
            }
        }
    }

    fn segment(&self, segment: Segment) {
        if self.verbose {
            self.say(&format!(
                "segment  {:.2}–{:.2} s {}",
                segment.start_ms as f64 / 1000.0,
                segment.end_ms as f64 / 1000.0,
                segment.text
            ));
        }
    }

    fn log(&self, level: LogLevel, line: &str) {
        if self.verbose {
            self.say(&format!("log {:<5} {line}", level.as_str()));
        } else if matches!(level, LogLevel::Warn | LogLevel::Error) {
            self.bar.println(format!("plugin: {line}"));
        }
    }
}

pub fn run(args: TranscribeArgs) -> anyhow::Result<ExitCode> {
    let format: ExportFormat = args.format.parse()?;
    let config = args.common.load()?;
    let runtime = Runtime::new(&config.limits, &config.cache_dir())?;
    let plugin_dir = config.plugins_dir.join(&args.plugin);
    let plugin = runtime.load_plugin(&plugin_dir).with_context(|| {
        format!(
            "cannot load plugin {} from {}",
            args.plugin,
            plugin_dir.display()
        )
    })?;
    let user_config: serde_json::Value =
        serde_json::from_str(&args.config).context("--config is not valid JSON")?;
    let resolved = plugin.resolve_config(&user_config).map_err(|problems| {
        let text: Vec<String> = problems
            .iter()
            .map(|p| format!("{} {}", p.field, p.message))
            .collect();
        anyhow!("invalid --config: {}", text.join("; "))
    })?;
    let limits = sandscribe::audio::DecodeLimits {
        max_bytes: config.limits.upload_bytes,
        max_duration_ms: config.limits.audio_seconds.saturating_mul(1000),
    };
    let audio = sandscribe::audio::decode_file_at(&args.file, &limits, plugin.meta.sample_rate)
        .with_context(|| format!("cannot decode {}", args.file.display()))?;

    let bar = if args.verbose {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(1000)
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {percent}% {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let reporter = Arc::new(BarReporter {
        bar: bar.clone(),
        started: Instant::now(),
        stages: Mutex::default(),
        verbose: args.verbose,
        shown: Mutex::new((u32::MAX, String::new())),
    });
    let started_at = OffsetDateTime::now_utc();
    let outcome = runtime.transcribe(
        &plugin,
        &audio,
        &resolved.to_string(),
        reporter.clone(),
        CancelFlag::new(),
        args.fuel,
    );
    bar.finish_and_clear();
    let transcript = outcome.result?;
    let file_name = args
        .file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let result = StoredResult {
        id: uuid::Uuid::new_v4(),
        tenant: "cli".into(),
        file_name,
        plugin_id: plugin.meta.id.clone(),
        plugin_name: plugin.meta.name.clone(),
        plugin_version: plugin.meta.version.clone(),
        config: resolved,
        transcript,
        duration_ms: audio.duration_ms(),
        created_at: started_at,
        started_at,
        finished_at: OffsetDateTime::now_utc(),
        diarization: None,
    };
    let options = SubtitleOptions {
        max_chars_per_line: args.max_chars_per_line,
        max_lines_per_cue: args.max_lines_per_cue,
        ..SubtitleOptions::default()
    };
    print!("{}", export::render(&result, format, &options));
    if args.stats {
        let stages = reporter
            .stages
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default();
        eprintln!(
            "{}",
            serde_json::json!({
                "audio_ms": audio.duration_ms(),
                "wall_ms": outcome.usage.wall_ms,
                "peak_memory_bytes": outcome.usage.peak_memory_bytes,
                "fuel_consumed": outcome.usage.fuel_consumed,
                "instantiate_us": outcome.usage.instantiate_us,
                "plugin_load_ms": plugin.load_time.as_millis() as u64,
                "plugin_from_cache": plugin.from_cache,
                "stages": stages,
            })
        );
        return Ok(ExitCode::SUCCESS);
    }
    let fuel = outcome
        .usage
        .fuel_consumed
        .map(|fuel| format!(", fuel {fuel} units"))
        .unwrap_or_default();
    eprintln!(
        "done in {:.1} s (audio {:.1} s, peak memory {} MiB{fuel})",
        outcome.usage.wall_ms as f64 / 1000.0,
        audio.duration_ms() as f64 / 1000.0,
        outcome.usage.peak_memory_bytes >> 20
    );
    Ok(ExitCode::SUCCESS)
}
