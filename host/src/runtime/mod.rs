//! The WebAssembly side: one wasmtime `Engine`, plugin loading, and running a job in a
//! fresh, limited `Store`.
//!
//! The runtime never touches HTTP or the job tracker directly: it reports through a
//! [`JobReporter`], which the tracker implements.

mod bindings;
mod engine;
mod health;
mod host_audio;
mod host_events;
mod limiter;
mod manifest;
mod output;
mod plugin;
mod run;
mod store;
mod ticker;
pub mod validate;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use wasmtime::Engine;
use wasmtime::component::{HasSelf, Linker};

pub use bindings::{LogLevel, WIT_VERSION};
pub use health::{PluginHealth, Quarantine};
pub use plugin::{
    Capabilities, ConfigProblem, LoadError, LoadFailure, LoadedPlugin, PluginMeta, PluginRegistry,
};
pub use run::{PluginErrorKind, ResourceUse, RunError, RunOutcome};
pub use store::CancelFlag;

use crate::audio::Audio;
use crate::config::Limits;
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
}

impl From<&Limits> for JobLimits {
    fn from(limits: &Limits) -> Self {
        Self {
            memory_bytes: limits.memory_bytes,
            time: Duration::from_secs(limits.job_seconds),
            log_bytes: limits.log_bytes,
            output_bytes: limits.output_bytes,
        }
    }
}

/// The runtime could not start.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("cannot configure the WebAssembly engine: {0}")]
    Engine(String),
}

/// The engine, the linker with every host interface, the compile cache and the ticker.
pub struct Runtime {
    engine: Engine,
    linker: Linker<store::JobContext>,
    cache: engine::ArtifactCache,
    limits: Limits,
    _ticker: ticker::EpochTicker,
}

impl Runtime {
    /// Builds the engine for the server's limits, with compiled plugins cached in `cache_dir`.
    pub fn new(limits: &Limits, cache_dir: &Path) -> Result<Self, RuntimeError> {
        let engine = engine::build_engine(limits.stack_bytes)
            .map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
        bindings::Transcriber::add_to_linker::<_, HasSelf<_>>(&mut linker, |ctx| ctx)
            .map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
        Ok(Self {
            cache: engine::ArtifactCache::new(&engine, cache_dir),
            _ticker: ticker::EpochTicker::start(engine.clone()),
            engine,
            linker,
            limits: limits.clone(),
        })
    }

    /// Loads every plugin folder under `dir`; failures are kept with their reasons.
    pub fn load_plugins(&self, dir: &Path) -> PluginRegistry {
        plugin::load_all(&self.engine, &self.linker, &self.cache, &self.limits, dir)
    }

    /// Loads a single plugin folder.
    pub fn load_plugin(&self, folder: &Path) -> Result<LoadedPlugin, LoadError> {
        plugin::load_one(
            &self.engine,
            &self.linker,
            &self.cache,
            &self.limits,
            folder,
        )
    }

    /// Reloads one plugin folder into `registry` (see [`PluginRegistry`]).
    pub fn reload_plugin(
        &self,
        registry: &PluginRegistry,
        plugins_dir: &Path,
        id: &str,
    ) -> Result<Arc<LoadedPlugin>, LoadError> {
        plugin::reload_one(
            &self.engine,
            &self.linker,
            &self.cache,
            &self.limits,
            registry,
            &plugins_dir.join(id),
            id,
        )
    }

    /// Runs one transcription. Blocking: call it from `spawn_blocking`.
    pub fn transcribe(
        &self,
        plugin: &LoadedPlugin,
        audio: &Audio,
        config_json: &str,
        reporter: Arc<dyn JobReporter>,
        cancel: CancelFlag,
    ) -> RunOutcome {
        run::transcribe(&self.engine, plugin, audio, config_json, reporter, cancel)
    }
}
