//! `sandscribe plugins …`: what the server would make of installed plugins and files.

mod inspect;
mod list;
mod validate;

use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;

use super::Common;

#[derive(Subcommand)]
pub enum PluginsCommand {
    /// List loaded plugins and the ones that failed, with the reason (exits 1 when any
    /// failed).
    List(Common),
    /// Look inside one .wasm file: WIT version, imports, exports, info(), config schema.
    Inspect(inspect::InspectArgs),
    /// Load an installed plugin folder as the server would and run smoke jobs on it.
    Validate(validate::ValidateArgs),
}

pub fn run(command: PluginsCommand) -> anyhow::Result<ExitCode> {
    match command {
        PluginsCommand::List(common) => list::run(&common),
        PluginsCommand::Inspect(args) => inspect::run(args),
        PluginsCommand::Validate(args) => validate::run(args),
    }
}

/// `2.0 GiB`, `1.2 MiB`, `34.5 KiB`, `800 B`.
pub fn human_bytes(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.1} GiB", b as f64 / f64::from(1 << 30)),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / f64::from(1 << 20)),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

/// `812 ms`, or `-` when it did not happen.
pub fn millis(time: Option<Duration>) -> String {
    time.map_or_else(|| "-".to_owned(), |t| format!("{} ms", t.as_millis()))
}
