//! `sandscribe cluster status`: the nodes sharing a PostgreSQL database, read from the
//! database itself (no server needs to answer).

use std::process::ExitCode;

use sandscribe::storage::PgDatabase;

use super::Common;

#[derive(clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    common: Common,
    /// The shared database (else the config file's `database`).
    #[arg(long, env = "SANDSCRIBE_DATABASE_URL")]
    database: Option<String>,
}

pub fn status(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let config = args.common.load()?;
    let Some(url) = args.database.or(config.database) else {
        anyhow::bail!(
            "no database is configured: a single node on SQLite has no cluster \
             (set `database` in the config file or pass --database)"
        );
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let nodes = runtime.block_on(async {
        let database = PgDatabase::connect(&url).await?;
        database.nodes().await
    })?;
    println!(
        "{:<28} {:>10} {:>7} {:>7}  started",
        "node", "heartbeat", "slots", "running"
    );
    for node in &nodes {
        let alive = if node.heartbeat_age_seconds < 10.0 {
            ""
        } else {
            "  (silent)"
        };
        println!(
            "{:<28} {:>8.1}s {:>7} {:>7}  {}{alive}",
            node.id,
            node.heartbeat_age_seconds,
            node.slots,
            node.running,
            node.started_at
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
        );
    }
    if nodes.is_empty() {
        println!("no node has sent a heartbeat yet");
    }
    Ok(ExitCode::SUCCESS)
}
