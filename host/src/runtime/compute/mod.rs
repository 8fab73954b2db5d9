//! The host side of WIT 0.2.0's `compute` interface: native kernels
//! ([`sandscribe_compute`]) on tensors the host holds for a job, with the sandbox's limits
//! kept.
//!
//! - Handles: a plugin holds [`TensorHandle`]s, [`WeightsHandle`]s and [`CacheHandle`]s in
//!   its store's resource table; a handle of another job cannot exist (tables are per
//!   store) and a dropped one is an error from the table.
//! - Memory: every host tensor and cache counts toward the job's memory cap together with
//!   its linear memory ([`super::limiter::MemoryLimiter::reserve_host`]); weights read from
//!   assets are shared between jobs of one plugin build ([`weights_cache`]) and count
//!   toward the operator's `shared_model_bytes` instead.
//! - Time: kernels poll the job's cancel flag and deadline between blocks, so a long call
//!   stops within milliseconds.
//! - Fuel: a metered job is charged for each call's work, computed from shapes only
//!   ([`FUEL_PER_WORK`]), so the same job burns the same fuel every time.
//! - Faults: a wrong call (bad shape, foreign region, huge size) ends the job with
//!   `invalid_compute_call` and the reason ([`ComputeFault`]).

pub(crate) mod calls;
pub mod weights_cache;

use std::path::PathBuf;
use std::sync::Arc;

pub use weights_cache::{JobRegions, PluginWeights, WeightsCache, WeightsCacheError};

/// Work units (about one multiply-add each) per unit of fuel: a 512-bit SIMD lane does 16
/// multiply-adds in one instruction, and wasm fuel counts instructions.
pub const FUEL_PER_WORK: u64 = 16;

/// A tensor of this job, in its resource table.
pub struct TensorHandle {
    pub(crate) tensor: sandscribe_compute::Tensor,
}

/// Weights in the job's resource table: shared ones live in the plugin's cache, data
/// ones only here.
pub struct WeightsHandle {
    pub(crate) weights: Arc<sandscribe_compute::Weights>,
    /// Whether the weights came from assets (shared; not counted in the job's memory).
    pub(crate) shared: bool,
}

/// A key/value cache of this job.
pub struct CacheHandle {
    pub(crate) cache: sandscribe_compute::KvCache,
}

/// Why a compute call ended the job.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ComputeFault {
    /// The plugin called wrongly: the message says what it passed.
    #[error("{0}")]
    Invalid(String),
    /// The job's memory cap (linear memory plus host tensors) would be passed.
    #[error(
        "host tensors would pass the job's memory limit ({needed} bytes wanted, {allowed} left)"
    )]
    OutOfMemory { needed: u64, allowed: u64 },
    /// The operator's `shared_model_bytes` would be passed.
    #[error("{0}")]
    SharedBudget(String),
}

/// What a job's compute calls run with, set when its store is made.
pub struct ComputeConfig {
    /// Threads one call may use (`[limits] threads_per_job`).
    pub threads: usize,
    /// The server-wide pool multi-threaded calls run in.
    pub pool: Option<Arc<rayon::ThreadPool>>,
    /// The plugin's shared weights (its build, its assets).
    pub weights: Option<Arc<PluginWeights>>,
    /// The plugin's assets folder, for `weights.from-asset`.
    pub assets: Option<PathBuf>,
}

impl Default for ComputeConfig {
    fn default() -> Self {
        Self {
            threads: 1,
            pool: None,
            weights: None,
            assets: None,
        }
    }
}

/// A job's compute state: its configuration, and the first fault, kept so the job's
/// failure names it (the trap itself only says "invalid compute call").
#[derive(Default)]
pub struct ComputeState {
    pub config: ComputeConfig,
    pub fault: Option<ComputeFault>,
    /// The asset regions this job loaded (for the overlap check).
    pub regions: JobRegions,
}
