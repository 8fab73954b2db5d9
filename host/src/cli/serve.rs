//! `sandscribe serve`: the HTTP server.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use sandscribe::api::{self, AppState};
use sandscribe::jobs::{Tracker, TrackerOptions};
use sandscribe::runtime::Runtime;
use sandscribe::storage::{ResultStore, SqliteStore};

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
}

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let mut config = args.common.load_with(args.config.as_deref())?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(config))?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(config: sandscribe::config::Config) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)?;
    let store: Arc<dyn ResultStore> = Arc::new(SqliteStore::open(&config.data_dir)?);
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
    clean_stale_uploads(&config.uploads_dir());
    let tracker = Tracker::new(
        runtime,
        store.clone(),
        TrackerOptions {
            max_running: config.jobs.running_slots(),
            max_queued: config.jobs.max_queued,
            keep_finished: config.jobs.keep_finished,
            audio_limits: sandscribe::audio::DecodeLimits {
                max_bytes: config.limits.upload_bytes,
                max_duration_ms: config.limits.audio_seconds.saturating_mul(1000),
            },
            audio_dir: config.audio_dir(),
        },
    );
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let address = listener.local_addr()?;
    let state = Arc::new(AppState {
        config,
        plugins,
        tracker,
        store,
    });
    let app = api::router(state);
    // Tests and scripts read this line to find the port.
    println!("listening on http://{address}");
    tracing::info!(%address, "sandscribe is serving");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    Ok(())
}

/// Uploads left from a previous run belong to no job any more.
fn clean_stale_uploads(dir: &std::path::Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.filter_map(Result::ok) {
            let _ = std::fs::remove_file(entry.path());
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
