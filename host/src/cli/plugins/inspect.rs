//! `sandscribe plugins inspect FILE.wasm`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use sandscribe::runtime::{Inspection, Manifest, PluginMeta, Runtime};

use super::{human_bytes, millis};
use crate::cli::Common;

#[derive(clap::Args)]
pub struct InspectArgs {
    /// The component (`plugin.wasm`, or what a build produced).
    file: PathBuf,
    /// The folder granted to `info()` at /assets (default: the one the plugin.toml next
    /// to FILE names, or an `assets/` folder beside it).
    #[arg(long)]
    assets: Option<PathBuf>,
    #[command(flatten)]
    common: Common,
}

pub fn run(args: InspectArgs) -> anyhow::Result<ExitCode> {
    let config = args.common.load()?;
    let bytes = std::fs::read(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let assets = args.assets.clone().or_else(|| assets_beside(&args.file));
    let runtime = Runtime::new(&config.limits, &config.cache_dir())?;
    let found = runtime.inspect(&bytes, assets.as_deref());
    print(&args.file, assets.as_deref(), &found);
    Ok(if found.is_valid() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The assets folder an installed plugin would be granted, when FILE sits in one.
fn assets_beside(file: &Path) -> Option<PathBuf> {
    let folder = file.parent()?;
    Manifest::read(folder).ok()?.assets_dir(folder).ok()?
}

fn print(file: &Path, assets: Option<&Path>, found: &Inspection) {
    let row = |label: &str, value: &str| println!("{label:<14}{value}");
    row(
        "file",
        &format!(
            "{} ({}, sha256 {})",
            file.display(),
            human_bytes(found.size_bytes),
            found.sha256
        ),
    );
    if found.compile_time.is_some() {
        row(
            "kind",
            &format!(
                "WebAssembly component, compiled in {}",
                millis(found.compile_time)
            ),
        );
    }
    if let Some(version) = found.wit_version {
        row("WIT", &format!("sandscribe:plugin@{version}"));
    }
    for (label, entries) in [("imports", &found.imports), ("exports", &found.exports)] {
        for (i, entry) in entries.iter().enumerate() {
            let label = if i == 0 { label } else { "" };
            row(label, &format!("{} ({})", entry.name, entry.kind));
        }
    }
    if let Some(meta) = &found.meta {
        row(
            "info()",
            &format!("answered in {}", millis(found.info_time)),
        );
        print_meta(meta);
        if let Some(assets) = assets {
            row("assets", &assets.display().to_string());
        }
        println!("config schema");
        let schema =
            serde_json::to_string_pretty(&meta.config_schema).unwrap_or_else(|_| "{}".into());
        for line in schema.lines() {
            println!("  {line}");
        }
    }
    for error in &found.schema_errors {
        row("schema error", &error.to_string());
    }
    for warning in &found.schema_warnings {
        row("schema warn", &warning.to_string());
    }
    match (&found.problem, &found.meta) {
        (None, Some(meta)) => row(
            "verdict",
            &format!(
                "a valid plugin; install it as plugins/{}/plugin.wasm",
                meta.id
            ),
        ),
        (None, None) => row("verdict", "a valid plugin"),
        (Some(problem), _) => row("verdict", &format!("not a valid plugin: {problem}")),
    }
}

fn print_meta(meta: &PluginMeta) {
    let row = |label: &str, value: &str| println!("  {label:<14}{value}");
    row("id", &meta.id);
    row("name", &meta.name);
    row("version", &meta.version);
    if !meta.description.is_empty() {
        row("description", &meta.description);
    }
    row("sample rate", &format!("{} Hz", meta.sample_rate));
    let languages = if meta.languages.is_empty() {
        "any".to_owned()
    } else {
        meta.languages.join(", ")
    };
    row("languages", &languages);
    let c = &meta.capabilities;
    let capabilities: Vec<&str> = [
        (c.segment_timestamps, "segment timestamps"),
        (c.word_timestamps, "word timestamps"),
        (c.language_detection, "language detection"),
        (c.translation, "translation"),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect();
    let capabilities = if capabilities.is_empty() {
        "plain text".to_owned()
    } else {
        capabilities.join(", ")
    };
    row("capabilities", &capabilities);
}
