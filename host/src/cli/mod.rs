//! Command-line interface.

mod cluster;
mod serve;
mod transcribe;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sandscribe::config::Config;

#[derive(Parser)]
#[command(
    name = "sandscribe",
    version,
    about = "Speech transcription with sandboxed WebAssembly plugins"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Options every command that loads plugins shares.
#[derive(clap::Args, Clone)]
pub struct Common {
    /// The server's TOML config file, for its limits and folders (flags win over it).
    /// `serve` also takes it as `--config`.
    #[arg(long = "server-config", env = "SANDSCRIBE_CONFIG")]
    config: Option<PathBuf>,
    /// The plugins folder (one sub-folder per plugin).
    #[arg(long)]
    plugins: Option<PathBuf>,
    /// The data folder (database, uploads, compile cache).
    #[arg(long)]
    data: Option<PathBuf>,
}

impl Common {
    /// The config file (or the default), with flags applied.
    pub fn load(&self) -> anyhow::Result<Config> {
        self.load_with(self.config.as_deref())
    }

    /// Like [`Common::load`], with the config file given explicitly.
    pub fn load_with(&self, file: Option<&std::path::Path>) -> anyhow::Result<Config> {
        let mut config = match file.or(self.config.as_deref()) {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        if let Some(plugins) = &self.plugins {
            config.plugins_dir = plugins.clone();
        }
        if let Some(data) = &self.data {
            config.data_dir = data.clone();
        }
        Ok(config)
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server.
    Serve(serve::ServeArgs),
    /// Transcribe one file and print the result.
    Transcribe(transcribe::TranscribeArgs),
    /// Inspect the installed plugins.
    Plugins {
        #[command(subcommand)]
        command: PluginsCommand,
    },
    /// Inspect the nodes sharing the configured PostgreSQL database.
    Cluster {
        #[command(subcommand)]
        command: ClusterCommand,
    },
}

#[derive(Subcommand)]
enum ClusterCommand {
    /// Every node, its last heartbeat, its slots and the jobs it runs.
    Status(cluster::StatusArgs),
}

#[derive(Subcommand)]
enum PluginsCommand {
    /// List loaded plugins and the ones that failed, with the reason.
    List(Common),
}

pub fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Transcribe(args) => transcribe::run(args),
        Command::Plugins {
            command: PluginsCommand::List(common),
        } => list_plugins(&common),
        Command::Cluster {
            command: ClusterCommand::Status(args),
        } => cluster::status(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn list_plugins(common: &Common) -> anyhow::Result<ExitCode> {
    let config = common.load()?;
    let runtime = sandscribe::runtime::Runtime::new(&config.limits, &config.cache_dir())?;
    let registry = runtime.load_plugins(&config.plugins_dir);
    for plugin in registry.plugins() {
        let m = &plugin.meta;
        println!(
            "{:<20} {:<10} {} — {}",
            m.id, m.version, m.name, m.description
        );
    }
    for failure in registry.failures() {
        println!("{:<20} FAILED     {}", failure.id, failure.reason);
    }
    if registry.plugins().is_empty() && registry.failures().is_empty() {
        println!("no plugins in {}", config.plugins_dir.display());
    }
    Ok(ExitCode::SUCCESS)
}
