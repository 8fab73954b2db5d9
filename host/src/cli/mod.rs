//! Command-line interface.

mod cluster;
mod plugin;
mod plugins;
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
    #[arg(
        id = "server_config",
        long = "server-config",
        env = "SANDSCRIBE_CONFIG"
    )]
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
    /// Write and build a plugin: `plugin new`, `plugin build`.
    Plugin {
        #[command(subcommand)]
        command: plugin::PluginCommand,
    },
    /// Inspect plugins: `plugins list`, `plugins inspect FILE`, `plugins validate DIR`.
    Plugins {
        #[command(subcommand)]
        command: plugins::PluginsCommand,
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

/// The log filter when `RUST_LOG` sets none. The server logs what it does; the tools
/// print their findings themselves, so their log shows only warnings, without the
/// loader's lines about plugins that failed or have schema warnings, which they print.
fn log_filter(command: &Command) -> &'static str {
    match command {
        Command::Serve(_) | Command::Transcribe(_) | Command::Cluster { .. } => "info",
        Command::Plugin { .. } | Command::Plugins { .. } => {
            "warn,sandscribe::runtime::plugin=error"
        }
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(log_filter(&cli.command))),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Transcribe(args) => transcribe::run(args),
        Command::Plugin { command } => plugin::run(command),
        Command::Plugins { command } => plugins::run(command),
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
