//! `sandscribe plugins validate DIR [--audio FILE]`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use sandscribe::authoring::validate::{self, Check, SmokeRun, ValidateRequest, Validation};
use sandscribe::runtime::Runtime;

use super::human_bytes;
use crate::cli::Common;

#[derive(clap::Args)]
pub struct ValidateArgs {
    /// The installed plugin folder (`plugins/<id>/`).
    dir: PathBuf,
    /// Also run a smoke job on this audio or video file.
    #[arg(long)]
    audio: Option<PathBuf>,
    /// The job configuration for the smoke jobs, as a JSON object (defaults fill the rest).
    #[arg(long, default_value = "{}")]
    config: String,
    /// Log lines shown per smoke job (the last ones).
    #[arg(long, default_value_t = 20)]
    log_lines: usize,
    /// `--server-config` gives the limits the plugin is held to (default: the server's
    /// defaults).
    #[command(flatten)]
    common: Common,
}

pub fn run(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let config = args.common.load()?;
    let job_config: serde_json::Value =
        serde_json::from_str(&args.config).context("--config is not valid JSON")?;
    let runtime = Runtime::new(&config.limits, &config.cache_dir())?;
    let validation = validate::validate(
        &runtime,
        &config,
        &ValidateRequest {
            folder: args.dir.clone(),
            audio: args.audio.clone(),
            config: job_config,
        },
    )?;
    print(&args, &validation);
    Ok(if validation.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn verdict(passed: bool) -> &'static str {
    if passed { "PASS" } else { "FAIL" }
}

fn print(args: &ValidateArgs, validation: &Validation) {
    println!("validating {}", args.dir.display());
    if let Some(limits) = &validation.limits {
        let fuel = limits
            .fuel_per_job
            .map(|f| format!(", fuel {f} units"))
            .unwrap_or_default();
        println!(
            "limits: memory {}, {} s per job, log {}, output {}{fuel}",
            human_bytes(limits.memory_bytes),
            limits.job_seconds,
            human_bytes(limits.log_bytes),
            human_bytes(limits.output_bytes)
        );
    }
    for Check {
        name,
        passed,
        detail,
    } in &validation.checks
    {
        println!("{}  {name}: {detail}", verdict(*passed));
        if name == "config-schema" {
            for warning in &validation.schema_warnings {
                println!("      warning: {warning}");
            }
        }
    }
    for run in &validation.runs {
        print_run(run, args.log_lines);
    }
    let total = validation.checks.len() + validation.runs.len();
    let failed = validation.checks.iter().filter(|c| !c.passed).count()
        + validation.runs.iter().filter(|r| !r.passed()).count();
    if failed == 0 {
        println!("validation passed ({total} checks)");
    } else {
        println!("validation FAILED: {failed} of {total} checks failed");
    }
}

fn print_run(run: &SmokeRun, log_lines: usize) {
    let outcome = match &run.result {
        Ok(_) if !run.limits_hit.is_empty() => "ran into a limit".to_owned(),
        Ok(_) => "completed".to_owned(),
        Err(e) => e.to_string(),
    };
    println!(
        "{}  smoke job on {} ({:.1} s): {outcome}",
        verdict(run.passed()),
        run.audio,
        run.audio_ms as f64 / 1000.0
    );
    let usage = &run.usage;
    let fuel = usage
        .fuel_consumed
        .map(|f| format!(", fuel {f} units"))
        .unwrap_or_default();
    println!(
        "      wall {} ms, peak memory {}, output {}, log {}{fuel}; {} live segment(s), {} progress update(s)",
        usage.wall_ms,
        human_bytes(usage.peak_memory_bytes),
        human_bytes(usage.output_bytes),
        human_bytes(usage.log_bytes),
        run.live_segments.len(),
        run.progress_updates
    );
    for limit in &run.limits_hit {
        println!("      limit hit: {limit}");
    }
    if let Ok(transcript) = &run.result {
        println!("      {} segment(s)", transcript.segments.len());
        for segment in transcript.segments.iter().take(10) {
            println!(
                "        {:>8.2}–{:<8.2} {}",
                segment.start_ms as f64 / 1000.0,
                segment.end_ms as f64 / 1000.0,
                segment.text
            );
        }
        if transcript.segments.len() > 10 {
            println!("        … {} more", transcript.segments.len() - 10);
        }
    }
    let skip = run.log.len().saturating_sub(log_lines);
    if !run.log.is_empty() {
        println!("      log ({} line(s)):", run.log.len());
    }
    for (level, line) in &run.log[skip..] {
        println!("        {}: {line}", level.as_str());
    }
}
