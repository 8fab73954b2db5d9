//! The state of one job's `Store`: WASI context, resource table, limits and reporting.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::limiter::MemoryLimiter;
use super::output::{Budget, LogSink};
use super::{JobLimits, JobReporter, LogLevel};

/// Where a plugin's granted assets folder appears inside the sandbox.
pub const ASSETS_GUEST_PATH: &str = "/assets";

/// The `wasi:random/insecure-seed` of a metered store. Rust's `HashMap` seeds its hasher
/// from it, and a fresh seed per run changes how many probes each lookup takes, so an
/// otherwise deterministic plugin would burn a slightly different amount of fuel each
/// time. The seed is documented as for hash-flooding protection only; the secure random
/// source stays unpredictable.
const METERED_INSECURE_SEED: u128 = 0x5a4d_5eed_5a4d_5eed_5a4d_5eed_5a4d_5eed;

/// Shared flag a job's owner sets to stop it; checked by the epoch callback.
#[derive(Debug, Clone, Default)]
pub struct CancelFlag(Arc<AtomicBool>);

impl CancelFlag {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Everything one job's store holds. One job, one store: nothing is shared with others.
pub struct JobContext {
    wasi: WasiCtx,
    pub(super) table: ResourceTable,
    pub(super) limiter: MemoryLimiter,
    pub(super) reporter: Arc<dyn JobReporter>,
    pub(super) log: LogSink,
    pub(super) output: Budget,
    pub(super) cancel: CancelFlag,
    pub(super) deadline: Instant,
    /// Length of the job's audio, for checking live segments.
    pub(super) audio_ms: u64,
    /// Why the epoch callback (or a compute call) stopped the plugin, if it did.
    pub(super) interrupted: Option<super::Interrupt>,
    /// Threads, shared weights and faults of the compute interface (WIT 0.2.0).
    pub(super) compute: super::compute::ComputeState,
}

impl JobContext {
    /// A sandbox with no network, no environment, no arguments and no host files except
    /// the plugin's assets folder, read-only. A metered store (`limits.fuel`) gets a fixed
    /// insecure random seed, so the same job burns the same fuel.
    pub fn new(
        assets: Option<&Path>,
        limits: &JobLimits,
        reporter: Arc<dyn JobReporter>,
        cancel: CancelFlag,
    ) -> Result<Self, std::io::Error> {
        let log = LogSink::new(limits.log_bytes, reporter.clone());
        let mut wasi = WasiCtxBuilder::new();
        wasi.stdout(log.stream(LogLevel::Info))
            .stderr(log.stream(LogLevel::Warn))
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        if limits.fuel.is_some() {
            wasi.insecure_random_seed(METERED_INSECURE_SEED);
        }
        if let Some(dir) = assets {
            wasi.preopened_dir(dir, ASSETS_GUEST_PATH, FsPerms::ReadOnly)
                .map_err(|e| std::io::Error::other(e.to_string()))?;
        }
        Ok(Self {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(limits.memory_bytes),
            reporter,
            log,
            output: Budget::new(limits.output_bytes),
            cancel,
            deadline: Instant::now() + limits.time,
            audio_ms: 0,
            interrupted: None,
            compute: super::compute::ComputeState::default(),
        })
    }
}

impl WasiView for JobContext {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}
