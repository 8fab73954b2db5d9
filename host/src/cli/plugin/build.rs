//! `sandscribe plugin build DIR`: sources to `plugins/<id>/`.

use std::path::PathBuf;
use std::process::ExitCode;

use sandscribe::authoring::PythonToolchain;
use sandscribe::authoring::build::{self, BuildRequest};
use sandscribe::runtime::Runtime;

use crate::cli::Common;
use crate::cli::plugins::{human_bytes, millis};

#[derive(clap::Args)]
pub struct BuildArgs {
    /// The plugin's source folder (a Cargo crate for Rust, a folder with plugin.py for
    /// Python).
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Python: the Python with componentize-py to build with (default: the source tree's
    /// target/venv, else python3).
    #[arg(long, env = "SANDSCRIBE_PYTHON", value_name = "PYTHON")]
    python: Option<PathBuf>,
    /// Python: the Python SDK, a checkout's plugin-sdk/python (default: the one this
    /// binary was built from).
    #[arg(long, value_name = "PATH")]
    python_sdk: Option<PathBuf>,
    /// `--plugins` is where it is installed (default: the config's plugins folder).
    #[command(flatten)]
    common: Common,
}

pub fn run(args: BuildArgs) -> anyhow::Result<ExitCode> {
    let config = args.common.load()?;
    let runtime = Runtime::new(&config.limits, &config.cache_dir())?;
    let built = build::build(
        &runtime,
        &BuildRequest {
            source: args.dir,
            plugins_dir: config.plugins_dir.clone(),
            python: PythonToolchain {
                python: args.python,
                sdk: args.python_sdk,
            },
        },
    )?;
    let found = &built.inspection;
    let version = found.meta.as_ref().map_or("", |m| m.version.as_str());
    let wit = found.wit_version.map(|v| v.to_string()).unwrap_or_default();
    println!(
        "built {} {version} ({}, WIT {wit}): {}, compiled in {}",
        built.id,
        built.language,
        human_bytes(found.size_bytes),
        millis(found.compile_time),
    );
    let mut parts = vec!["plugin.wasm".to_owned()];
    if built.manifest_copied {
        parts.push("plugin.toml".into());
    }
    if let Some(assets) = &built.assets_copied {
        let name = assets.file_name().map(|n| n.to_string_lossy().into_owned());
        parts.push(format!("{}/", name.unwrap_or_default()));
    }
    println!(
        "installed {} ({})",
        built.installed.display(),
        parts.join(", ")
    );
    for note in &built.notes {
        println!("note: {note}");
    }
    println!(
        "next: sandscribe plugins validate {}",
        built.installed.display()
    );
    Ok(ExitCode::SUCCESS)
}
