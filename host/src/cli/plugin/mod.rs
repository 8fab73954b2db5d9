//! `sandscribe plugin …`: the author's commands, from sources to an installed plugin.

mod build;
mod new;

use std::process::ExitCode;

use clap::Subcommand;

#[derive(Subcommand)]
pub enum PluginCommand {
    /// Make a new plugin folder that builds and runs as it is.
    New(new::NewArgs),
    /// Build a plugin folder and install it as `<plugins>/<id>/plugin.wasm`.
    Build(build::BuildArgs),
}

pub fn run(command: PluginCommand) -> anyhow::Result<ExitCode> {
    match command {
        PluginCommand::New(args) => new::run(args),
        PluginCommand::Build(args) => build::run(args),
    }
}
