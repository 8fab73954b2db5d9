//! The WebAssembly side: the wasmtime engines (plain, and fuel-metered for tenants that
//! want deterministic budgets), plugin loading, and running a job in a fresh, limited
//! `Store`.
//!
//! The runtime never touches HTTP or the job tracker directly: it reports through a
//! [`JobReporter`], which the tracker implements.

mod bindings;
pub mod compute;
mod config_schema;
mod contract;
mod engine;
mod health;
mod host_audio;
mod host_events;
mod inspect;
mod limiter;
mod manifest;
mod output;
mod panic_report;
mod plugin;
mod run;
mod schema_check;
mod store;
mod ticker;
pub mod validate;

use std::num::NonZeroU64;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub use bindings::WitVersion;
pub use compute::WeightsCache;
pub use config_schema::{ConfigProblem, ConfigSchema};
pub use contract::{LogLevel, PluginKind};
pub use health::{PluginHealth, Quarantine};
pub use host_audio::MAX_READ_FRAMES;
pub use inspect::{ComponentEntry, Inspection};
pub use manifest::Manifest;
pub use output::{LOG_LIMIT_REACHED, OUTPUT_LIMIT_REACHED};
pub use plugin::{
    Capabilities, LoadError, LoadFailure, LoadedPlugin, PluginMeta, PluginRegistry, is_plugin_id,
    join_issues,
};
pub use run::{PluginErrorKind, ResourceUse, RunError, RunOutcome};
pub use schema_check::{SchemaIssue, SchemaReport, check as check_schema};
pub use store::CancelFlag;

use crate::audio::Audio;
use crate::config::{Limits, tighter_fuel};
use crate::diarize::{SpeakerCount, SpeakerTurn};
use crate::transcript::Segment;

/// Where a running job's live output goes (the job tracker, or the CLI's progress bar).
pub trait JobReporter: Send + Sync {
    fn progress(&self, fraction: f32, stage: &str);
    fn segment(&self, segment: Segment);
    fn log(&self, level: LogLevel, line: &str);
}

/// A reporter that drops everything (used for `info()` at load time).
pub struct NullReporter;

impl JobReporter for NullReporter {
    fn progress(&self, _fraction: f32, _stage: &str) {}
    fn segment(&self, _segment: Segment) {}
    fn log(&self, _level: LogLevel, _line: &str) {}
}

/// Why the epoch callback stopped a plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Interrupt {
    Cancelled,
    TimedOut,
}

/// The limits one store runs under.
#[derive(Debug, Clone)]
pub struct JobLimits {
    pub memory_bytes: u64,
    pub time: Duration,
    pub log_bytes: u64,
    pub output_bytes: u64,
    /// Fuel the store starts with: `Some` only for a store of the metered engine, which
    /// the runtime chooses per job (see [`Runtime::transcribe`]).
    pub fuel: Option<u64>,
}

impl From<&Limits> for JobLimits {
    fn from(limits: &Limits) -> Self {
        Self {
            memory_bytes: limits.memory_bytes,
            time: Duration::from_secs(limits.job_seconds),
            log_bytes: limits.log_bytes,
            output_bytes: limits.output_bytes,
            fuel: None,
        }
    }
}

/// The runtime could not start.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("cannot configure the WebAssembly engine: {0}")]
    Engine(String),
}

/// The engines with their linkers and compile caches, and the epoch ticker.
pub struct Runtime {
    /// Runs every job that has no fuel budget.
    plain: engine::PluginEngine,
    /// Runs jobs with a fuel budget; plugins are compiled for it on first use.
    metered: engine::PluginEngine,
    limits: Limits,
    /// Weights shared between the jobs of each plugin build.
    weights: Arc<WeightsCache>,
    /// The pool multi-threaded compute calls share, sized to the cores.
    pool: Option<Arc<rayon::ThreadPool>>,
    _ticker: ticker::EpochTicker,
}

impl Runtime {
    /// Builds the engines for the server's limits, with compiled plugins cached in
    /// `cache_dir`.
    pub fn new(limits: &Limits, cache_dir: &Path) -> Result<Self, RuntimeError> {
        let plain =
            engine::PluginEngine::new(limits.stack_bytes, engine::Metering::Unmetered, cache_dir)?;
        let metered =
            engine::PluginEngine::new(limits.stack_bytes, engine::Metering::Fuel, cache_dir)?;
        // Only built when some job may use more than one thread.
        let pool = if limits.threads_per_job > 1 {
            let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .thread_name(|i| format!("sandscribe-compute-{i}"))
                .build()
                .map_err(|e| RuntimeError::Engine(format!("cannot start the compute pool: {e}")))?;
            Some(Arc::new(pool))
        } else {
            None
        };
        Ok(Self {
            _ticker: ticker::EpochTicker::start(vec![plain.engine.clone(), metered.engine.clone()]),
            plain,
            metered,
            limits: limits.clone(),
            weights: WeightsCache::new(limits.shared_model_bytes),
            pool,
        })
    }

    /// Bytes of plugin weights shared between jobs now (`sandscribe_shared_model_bytes`).
    pub fn shared_model_bytes(&self) -> u64 {
        self.weights.used_bytes()
    }

    /// The shared weights cache, for metrics that read it later.
    pub fn weights_cache(&self) -> Arc<WeightsCache> {
        self.weights.clone()
    }

    /// Loads every plugin folder under `dir`; failures are kept with their reasons.
    pub fn load_plugins(&self, dir: &Path) -> PluginRegistry {
        plugin::load_all(&self.plain, &self.limits, &self.weights, dir)
    }

    /// Looks inside one component without installing it (see [`Inspection`]): `info()`
    /// runs under the server's limits with `assets` granted read-only, as at load time.
    pub fn inspect(&self, bytes: &[u8], assets: Option<&Path>) -> Inspection {
        inspect::inspect(&self.plain, &self.limits, bytes, assets)
    }

    /// Loads a single plugin folder.
    pub fn load_plugin(&self, folder: &Path) -> Result<LoadedPlugin, LoadError> {
        plugin::load_one(&self.plain, &self.limits, &self.weights, folder)
    }

    /// Reloads one plugin folder into `registry` (see [`PluginRegistry`]).
    pub fn reload_plugin(
        &self,
        registry: &PluginRegistry,
        plugins_dir: &Path,
        id: &str,
    ) -> Result<Arc<LoadedPlugin>, LoadError> {
        plugin::reload_one(
            &self.plain,
            &self.limits,
            &self.weights,
            registry,
            &plugins_dir.join(id),
            id,
        )
    }

    /// Runs one transcription. Blocking: call it from `spawn_blocking`.
    ///
    /// `fuel` is the caller's budget (the tenant's, or the CLI's `--fuel`); the server's
    /// and the plugin's budgets may lower it. With a budget from any of them the job runs
    /// metered and its usage says how much fuel it burnt; with none it runs on the plain
    /// engine at full speed.
    pub fn transcribe(
        &self,
        plugin: &LoadedPlugin,
        audio: &Audio,
        config_json: &str,
        reporter: Arc<dyn JobReporter>,
        cancel: CancelFlag,
        fuel: Option<NonZeroU64>,
    ) -> RunOutcome {
        self.execute(
            plugin,
            audio,
            config_json,
            run::Call::Transcribe,
            reporter,
            cancel,
            fuel,
        )
        .map(|output| match output {
            run::Output::Transcript(transcript) => Some(transcript),
            run::Output::Turns(_) => None,
        })
    }

    /// Runs a diarizer on the audio of a finished transcript's `segments`, under the same
    /// sandbox, limits and budgets as a transcription. Blocking, like [`Self::transcribe`].
    #[allow(clippy::too_many_arguments)]
    pub fn diarize(
        &self,
        plugin: &LoadedPlugin,
        audio: &Audio,
        segments: &[Segment],
        speakers: SpeakerCount,
        config_json: &str,
        reporter: Arc<dyn JobReporter>,
        cancel: CancelFlag,
        fuel: Option<NonZeroU64>,
    ) -> RunOutcome<Vec<SpeakerTurn>> {
        if plugin.meta.kind != PluginKind::Diarizer {
            return RunOutcome {
                result: Err(RunError::Sandbox(format!(
                    "{} is not a diarizer",
                    plugin.meta.id
                ))),
                usage: ResourceUse::default(),
            };
        }
        let call = run::Call::Diarize { segments, speakers };
        self.execute(plugin, audio, config_json, call, reporter, cancel, fuel)
            .map(|output| match output {
                run::Output::Turns(turns) => Some(turns),
                run::Output::Transcript(_) => None,
            })
    }

    /// Runs `call` on the plain engine, or on the metered one when any budget applies.
    #[allow(clippy::too_many_arguments)]
    fn execute(
        &self,
        plugin: &LoadedPlugin,
        audio: &Audio,
        config_json: &str,
        call: run::Call<'_>,
        reporter: Arc<dyn JobReporter>,
        cancel: CancelFlag,
        fuel: Option<NonZeroU64>,
    ) -> RunOutcome<run::Output> {
        let job = |fuel| run::JobRun {
            reporter: reporter.clone(),
            cancel: cancel.clone(),
            fuel,
            pool: self.pool.clone(),
        };
        let Some(fuel) = tighter_fuel(plugin.limits.fuel_per_job, fuel) else {
            let Some(pre) = &plugin.pre else {
                return RunOutcome {
                    result: Err(RunError::Sandbox(
                        "the plugin has no compiled code (a metadata-only stand-in)".into(),
                    )),
                    usage: ResourceUse::default(),
                };
            };
            return run::execute(pre, plugin, audio, config_json, call, job(None));
        };
        let pre = match plugin.metered_pre(&self.metered, reporter.as_ref()) {
            Ok(pre) => pre,
            Err(e) => {
                return RunOutcome {
                    result: Err(RunError::Sandbox(format!(
                        "the plugin could not be prepared for a metered run: {e}"
                    ))),
                    usage: ResourceUse::default(),
                };
            }
        };
        run::execute(
            &pre,
            plugin,
            audio,
            config_json,
            call,
            job(Some(fuel.get())),
        )
    }
}
