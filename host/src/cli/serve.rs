//! `sandscribe serve`: the HTTP server.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use sandscribe::app::{self, AppState};
use sandscribe::jobs::cluster::{Cluster, ClusterOptions};
use sandscribe::jobs::{PluginRunner, Tracker, TrackerOptions};
use sandscribe::runtime::Runtime;
use sandscribe::storage::{JobLedger, PgDatabase, ResultStore, SqliteStore};

use super::Common;

#[derive(clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    common: Common,
    /// A TOML config file (flags win over it).
    #[arg(long)]
    config: Option<std::path::PathBuf>,
    /// Address to listen on (port 0 picks a free port; the real address is printed).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// The PostgreSQL database several nodes share (`postgresql://user@host:port/db`);
    /// wins over the config file's `database`.
    #[arg(long, env = "SANDSCRIBE_DATABASE_URL")]
    database: Option<String>,
}

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let mut config = args.common.load_with(args.config.as_deref())?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(url) = args.database.filter(|u| !u.trim().is_empty()) {
        config
            .set_database(url)
            .map_err(|e| anyhow::anyhow!("--database: {e}"))?;
    }
    // Plugins run on the runtime's blocking threads: their native stack must be well
    // above the wasm stack cap, or deep recursion in a plugin overflows the host thread
    // before wasmtime's own check stops the plugin.
    let stack = usize::try_from(config.limits.stack_bytes)
        .unwrap_or(usize::MAX)
        .saturating_add(8 << 20);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(stack)
        .build()?;
    runtime.block_on(serve(config))?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(config: sandscribe::config::Config) -> anyhow::Result<()> {
    let node = config.node_id();
    let shared = match &config.database {
        Some(url) => Some(
            PgDatabase::connect(url)
                .await
                .map_err(|e| anyhow::anyhow!("the database: {e}"))?,
        ),
        None => None,
    };
    // Browser logins live beside the web state: in the result store's database file, or
    // in the database the nodes share (a login works on every node).
    let logins = match &shared {
        Some(database) => sandscribe::auth::LoginStore::postgres(database.clone()),
        None => sandscribe::auth::LoginStore::new(
            config.data_dir.join(sandscribe::storage::DB_FILE_NAME),
        ),
    };
    let site = sandscribe::auth::Site::new(config.public_url.clone(), config.listen);
    let access = sandscribe::auth::Access::new(&config.api_keys, logins, site)
        .map_err(|e| anyhow::anyhow!("the config's api_keys are not valid: {e}"))?;
    if access.single_user() {
        if !config.listen.ip().is_loopback() {
            anyhow::bail!(
                "refusing to listen on {}: no API keys are configured, so anyone who can reach \
                 the server would be the admin of every job. Listen on 127.0.0.1, or add \
                 [[api_keys]] entries (sha256 of each key, tenant, role) to the config file",
                config.listen
            );
        }
        tracing::info!("single-user mode: no API keys configured, listening on loopback only");
    } else {
        tracing::info!(
            keys = config.api_keys.len(),
            "multi-tenant mode: API keys required"
        );
        if config.public_url.is_none() && !config.listen.ip().is_loopback() {
            tracing::warn!(
                "no public_url is configured, so requests naming any host are answered; \
                 set public_url to the address browsers use to pin it"
            );
        }
    }
    std::fs::create_dir_all(&config.data_dir)?;
    let (store, ledger): (Arc<dyn ResultStore>, Arc<dyn JobLedger>) = match &shared {
        Some(database) => {
            let database = Arc::new(database.clone());
            (database.clone(), database)
        }
        None => {
            let database = Arc::new(SqliteStore::open(&config.data_dir)?);
            (database.clone(), database)
        }
    };
    tracing::info!(
        %node,
        database = if shared.is_some() { "postgresql" } else { "sqlite" },
        "storage"
    );
    let runtime = Arc::new(Runtime::new(&config.limits, &config.cache_dir())?);
    let plugins = {
        let runtime = runtime.clone();
        let dir = config.plugins_dir.clone();
        Arc::new(tokio::task::spawn_blocking(move || runtime.load_plugins(&dir)).await?)
    };
    tracing::info!(
        loaded = plugins.plugins().len(),
        failed = plugins.failures().len(),
        dir = %config.plugins_dir.display(),
        "plugins"
    );
    // Several nodes scraped into one Prometheus need their series apart; one node is
    // told apart by its scrape target.
    let metrics = if config.database.is_some() {
        sandscribe::metrics::Metrics::for_node(&node)
    } else {
        sandscribe::metrics::Metrics::new()
    };
    metrics.set_plugins(plugins.plugins().len(), plugins.failures().len());
    metrics.watch_shared_weights(runtime.weights_cache());
    // Jobs decode with the limits their uploads were validated with.
    let audio_limits = sandscribe::audio::DecodeLimits {
        max_bytes: config.limits.upload_bytes,
        max_duration_ms: config.limits.audio_seconds.saturating_mul(1000),
    };
    let cluster = shared.clone().map(|database| {
        let options = ClusterOptions {
            node: node.clone(),
            lease_renew: std::time::Duration::from_secs(config.jobs.lease_renew_seconds),
            lease_expiry: std::time::Duration::from_secs(config.jobs.lease_expiry_seconds),
            retry_interrupted: config.jobs.retry_interrupted,
        };
        Arc::new(Cluster::new(database, plugins.clone(), options))
    });
    let tracker = Tracker::new(
        Arc::new(PluginRunner::new(runtime.clone(), audio_limits)),
        store.clone(),
        ledger,
        TrackerOptions {
            max_running: config.jobs.running_slots(),
            max_queued: config.jobs.max_queued,
            keep_finished: config.jobs.keep_finished,
            audio_dir: config.audio_dir(),
            metrics,
            tenants: config.tenants.clone(),
            node: node.clone(),
            cluster: cluster.clone(),
        },
    );
    match cluster {
        // The shared uploads folder holds other nodes' jobs too: nothing is stale here.
        Some(cluster) => sandscribe::jobs::cluster::workers::start(cluster, tracker.clone()),
        None => {
            let keep = tracker.recover_interrupted();
            clean_stale_uploads(&config.uploads_dir(), &keep);
        }
    }
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let address = listener.local_addr()?;
    let state = Arc::new(AppState {
        access,
        config,
        plugins,
        runtime,
        tracker,
        store,
        database: shared,
    });
    let app = app::app(state.clone());
    // Tests and scripts read this line to find the port.
    println!("listening on http://{address}");
    tracing::info!(%address, "sandscribe is serving");
    // On SIGTERM/Ctrl-C: stop accepting, give running jobs the grace period, then stop
    // and record the rest as interrupted. Their terminal events end the SSE streams, so
    // the server's own graceful shutdown can complete.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let tracker = state.tracker.clone();
    let grace = std::time::Duration::from_secs(state.config.jobs.shutdown_grace_seconds);
    let stopping = tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
        tracker.shutdown(grace).await;
    });
    let mut stop = stop_rx.clone();
    let http = state.config.http.clone();
    sandscribe::http::serve(listener, app, &http, async move {
        let _ = stop.wait_for(|s| *s).await;
    })
    .await?;
    let _ = stopping.await;
    tracing::info!("stopped");
    Ok(())
}

/// Uploads left from a previous run belong to no job any more, except those of
/// interrupted jobs, which can be resubmitted.
fn clean_stale_uploads(dir: &std::path::Path, keep: &[std::path::PathBuf]) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            if !keep.contains(&path) {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
