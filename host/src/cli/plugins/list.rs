//! `sandscribe plugins list`.

use std::process::ExitCode;

use sandscribe::runtime::Runtime;

use crate::cli::Common;

pub fn run(common: &Common) -> anyhow::Result<ExitCode> {
    let config = common.load()?;
    let runtime = Runtime::new(&config.limits, &config.cache_dir())?;
    let registry = runtime.load_plugins(&config.plugins_dir);
    for plugin in registry.plugins() {
        let m = &plugin.meta;
        let kind = match m.kind {
            sandscribe::runtime::PluginKind::Transcriber => "",
            sandscribe::runtime::PluginKind::Diarizer => " [diarizer]",
        };
        println!(
            "{:<20} {:<10} {}{kind} — {}",
            m.id, m.version, m.name, m.description
        );
        for warning in &plugin.schema_warnings {
            println!("{:<20} warning: config-schema {warning}", "");
        }
    }
    // Only here: the loader's own log line for a failure is kept below `error` for this
    // command (see `cli::log_filter`), so each failure is printed once.
    let failures = registry.failures();
    for failure in &failures {
        println!("{:<20} FAILED     {}", failure.id, failure.reason);
    }
    if registry.plugins().is_empty() && failures.is_empty() {
        println!("no plugins in {}", config.plugins_dir.display());
    }
    Ok(if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
