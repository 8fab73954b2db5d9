//! Plugin discovery and loading: `plugins/<id>/plugin.wasm` (+ optional `plugin.toml`).
//!
//! Loading reads the component once (through the compile cache), checks that it speaks
//! our WIT version and exports what we need, prepares an `InstancePre` for fast per-job
//! instantiation, and calls `info()` once. A plugin that fails is reported with its
//! reason; the others still load.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use wasmtime::component::Component;
use wasmtime::component::types::ComponentItem;
use wasmtime::{Engine, Store};

use super::bindings::{PluginPre, WitVersion, imported_version};
use super::compute::{PluginWeights, WeightsCache};
use super::config_schema::{ConfigProblem, ConfigSchema};
use super::contract::{PluginKind, RawInfo};
use super::engine::PluginEngine;
use super::manifest::Manifest;
use super::schema_check::{self, SchemaIssue};
use super::store::{CancelFlag, JobContext};
use super::{JobLimits, JobReporter, NullReporter};
use crate::config::Limits;
use crate::digest::sha256_hex;

/// What the host knows about a plugin, from its `info()`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PluginMeta {
    pub id: String,
    pub name: String,
    pub version: String,
    pub description: String,
    pub languages: Vec<String>,
    pub sample_rate: u32,
    pub capabilities: Capabilities,
    /// The JSON Schema a job's `config` must match.
    #[schema(value_type = Object)]
    pub config_schema: serde_json::Value,
    /// The version of `sandscribe:plugin` the plugin was built against.
    pub wit_version: WitVersion,
    /// A transcriber (a job's plugin) or a diarizer (a job's optional second stage).
    pub kind: PluginKind,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Capabilities {
    pub segment_timestamps: bool,
    pub word_timestamps: bool,
    pub language_detection: bool,
    pub translation: bool,
}

/// A plugin ready to run jobs.
pub struct LoadedPlugin {
    pub meta: PluginMeta,
    pub dir: PathBuf,
    pub sha256: String,
    pub assets: Option<PathBuf>,
    /// The server's ceilings, lowered by the plugin's manifest.
    pub limits: Limits,
    /// Whether the compiled code came from the on-disk cache.
    pub from_cache: bool,
    pub load_time: Duration,
    /// The compiled `config_schema`, for checking each job's configuration.
    config: ConfigSchema,
    /// Compiled for the plain engine at load time. `None` only in the metadata-only
    /// stand-in that unit tests build ([`LoadedPlugin::metadata_only`]): a `PluginPre`
    /// cannot exist without a compiled component, and the tracker's tests never run one.
    pub(super) pre: Option<PluginPre>,
    /// Compiled for the fuel-metered engine when the first metered job needs it.
    metered: std::sync::Mutex<Option<PluginPre>>,
    /// The weights its jobs read through the compute interface, shared between them.
    pub(super) weights: Arc<PluginWeights>,
    /// Crash history and quarantine of this loaded version.
    pub health: super::health::PluginHealth,
    /// What the schema check found that does not refuse the plugin (unknown keywords).
    pub schema_warnings: Vec<SchemaIssue>,
}

impl LoadedPlugin {
    /// Validates a configuration against the plugin's schema and fills in the schema's
    /// top-level defaults, giving the configuration the job really runs with.
    pub fn resolve_config(
        &self,
        config: &serde_json::Value,
    ) -> Result<serde_json::Value, Vec<ConfigProblem>> {
        self.config.resolve(config)
    }

    /// The plugin compiled for the fuel-metered engine, compiled (or read from the compile
    /// cache) on first use, so servers and plugins that never meter never pay for it.
    /// Concurrent first jobs wait for one compilation. The code is read again from
    /// `plugin.wasm` and must still have the hash it was loaded with.
    pub(super) fn metered_pre(
        &self,
        metered: &PluginEngine,
        reporter: &dyn JobReporter,
    ) -> Result<PluginPre, LoadError> {
        let mut slot = self.metered.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(pre) = slot.as_ref() {
            return Ok(pre.clone());
        }
        reporter.progress(0.0, "preparing the plugin for metered runs");
        let wasm_path = self.dir.join("plugin.wasm");
        let bytes = std::fs::read(&wasm_path).map_err(|e| LoadError::Read {
            path: wasm_path.clone(),
            message: e.to_string(),
        })?;
        let sha256 = sha256_hex(&bytes);
        if sha256 != self.sha256 {
            return Err(LoadError::ChangedOnDisk(wasm_path));
        }
        let (component, from_cache) = metered
            .cache
            .load(&metered.engine, &bytes, &sha256)
            .map_err(|e| LoadError::BadComponent(format!("{e:#}")))?;
        let pre = prepare(metered, &component, self.meta.wit_version, self.meta.kind)?;
        tracing::info!(plugin = %self.meta.id, cached = from_cache, "plugin compiled for metered runs");
        *slot = Some(pre.clone());
        Ok(pre)
    }

    /// A plugin that has only its metadata: what the job tracker's unit tests submit, so
    /// they can test queueing and endings without compiling a WebAssembly component
    /// (their fake runner never instantiates it). Running it fails with a sandbox error.
    #[cfg(test)]
    pub fn metadata_only(id: &str) -> Self {
        let meta = PluginMeta {
            id: id.to_owned(),
            name: format!("{id} (stand-in)"),
            version: "0.0.0".to_owned(),
            description: String::new(),
            languages: Vec::new(),
            sample_rate: 16_000,
            capabilities: Capabilities {
                segment_timestamps: false,
                word_timestamps: false,
                language_detection: false,
                translation: false,
            },
            config_schema: serde_json::json!({}),
            wit_version: WitVersion::LATEST,
            kind: PluginKind::Transcriber,
        };
        let config = ConfigSchema::new(&meta.config_schema).expect("{} is a valid JSON Schema");
        Self {
            meta,
            dir: PathBuf::new(),
            sha256: String::new(),
            assets: None,
            limits: Limits::default(),
            from_cache: false,
            load_time: Duration::ZERO,
            config,
            pre: None,
            metered: std::sync::Mutex::default(),
            weights: WeightsCache::new(0).for_plugin("", None),
            health: super::health::PluginHealth::default(),
            schema_warnings: Vec::new(),
        }
    }
}

/// Links a component against the host interfaces of its WIT version, ready for fast
/// instantiation.
pub(super) fn prepare(
    engine: &PluginEngine,
    component: &Component,
    version: WitVersion,
    kind: PluginKind,
) -> Result<PluginPre, LoadError> {
    let instance_pre = engine
        .linker
        .instantiate_pre(component)
        .map_err(|e| LoadError::Link(format!("{e:#}")))?;
    PluginPre::new(version, kind, instance_pre).map_err(|e| LoadError::Link(format!("{e:#}")))
}

/// Why a plugin could not be loaded. The message tells the operator what to do.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LoadError {
    #[error("no plugin.wasm in {0}")]
    MissingWasm(PathBuf),
    #[error(
        "the file is not WebAssembly (it does not start with \"\\0asm\"); a plugin is the .wasm component a wasm32-wasip2 build produces"
    )]
    NotWebAssembly,
    #[error("cannot read {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("{0}")]
    Manifest(String),
    #[error(
        "plugin.wasm has sha256 {actual}, but plugin.toml pins {expected}; reinstall the plugin or update the pin"
    )]
    HashMismatch { expected: String, actual: String },
    #[error(
        "the file is a core WebAssembly module, not a component; build it for wasm32-wasip2 (wasm32-wasip1 and wasm32-unknown-unknown make core modules)"
    )]
    CoreModule,
    #[error("plugin.wasm is not a valid WebAssembly component: {0}")]
    BadComponent(String),
    #[error(
        "the plugin was built against sandscribe:plugin@{found}, but this server serves {supported}; rebuild it with a matching plugin-sdk"
    )]
    WitVersion { found: String, supported: String },
    #[error(
        "the plugin does not export `{0}`; is it built with sandscribe-plugin-sdk's export_plugin! macro?"
    )]
    MissingExport(String),
    #[error(
        "the plugin exports `diarize`, but diarizers came with sandscribe:plugin@0.3.0 and it was built against {0}; rebuild it with plugin-sdk 0.3"
    )]
    DiarizerTooOld(WitVersion),
    #[error("the plugin needs something this server does not provide: {0}")]
    Link(String),
    #[error("the plugin's info() failed: {0}")]
    Info(String),
    #[error("the plugin's info() is not acceptable: {0}")]
    BadInfo(String),
    #[error(
        "the plugin's config-schema has {} problem(s); fix them and rebuild: {}",
        .0.len(),
        join_issues(.0)
    )]
    BadSchema(Vec<SchemaIssue>),
    #[error("{0} changed since the plugin was loaded; reload the plugin")]
    ChangedOnDisk(PathBuf),
}

/// `path: message; path: message`, for one-line reasons.
pub fn join_issues(issues: &[SchemaIssue]) -> String {
    issues
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// A plugin folder that did not load, and why.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LoadFailure {
    pub id: String,
    #[schema(value_type = String)]
    pub path: PathBuf,
    pub reason: String,
}

/// Everything found in the plugins folder. Reloadable while the server runs: a reload
/// swaps in new `Arc<LoadedPlugin>`s, and jobs that hold the old ones finish on them.
#[derive(Default)]
pub struct PluginRegistry {
    state: std::sync::RwLock<RegistryState>,
}

#[derive(Default, Clone)]
struct RegistryState {
    plugins: Vec<Arc<LoadedPlugin>>,
    failures: Vec<LoadFailure>,
}

impl PluginRegistry {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, RegistryState> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, RegistryState> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, id: &str) -> Option<Arc<LoadedPlugin>> {
        self.read()
            .plugins
            .iter()
            .find(|p| p.meta.id == id)
            .cloned()
    }

    /// Loaded plugins, sorted by id.
    pub fn plugins(&self) -> Vec<Arc<LoadedPlugin>> {
        self.read().plugins.clone()
    }

    /// Loaded plugins of one kind (the transcribers a job can name as its plugin, or the
    /// diarizers it can add), sorted by id.
    pub fn plugins_of(&self, kind: PluginKind) -> Vec<Arc<LoadedPlugin>> {
        self.read()
            .plugins
            .iter()
            .filter(|p| p.meta.kind == kind)
            .cloned()
            .collect()
    }

    pub fn failures(&self) -> Vec<LoadFailure> {
        self.read().failures.clone()
    }

    pub fn failure(&self, id: &str) -> Option<LoadFailure> {
        self.read().failures.iter().find(|f| f.id == id).cloned()
    }

    /// Replaces everything with a fresh scan.
    pub fn replace_all(&self, other: PluginRegistry) {
        let fresh = other.read().clone();
        *self.write() = fresh;
    }

    /// Puts one plugin's new load result in place of the old one.
    fn replace_one(&self, id: &str, loaded: Result<Arc<LoadedPlugin>, LoadFailure>) {
        let mut state = self.write();
        state.plugins.retain(|p| p.meta.id != id);
        state.failures.retain(|f| f.id != id);
        match loaded {
            Ok(plugin) => {
                state.plugins.push(plugin);
                state.plugins.sort_by(|a, b| a.meta.id.cmp(&b.meta.id));
            }
            Err(failure) => state.failures.push(failure),
        }
    }
}

/// Reloads one plugin folder. On success the new version replaces the old one; on
/// failure the old version stays loaded (a bad update does not take a working plugin
/// away) and the reason is returned.
pub(super) fn reload_one(
    engine: &PluginEngine,
    limits: &Limits,
    weights: &Arc<WeightsCache>,
    registry: &PluginRegistry,
    folder: &Path,
    id: &str,
) -> Result<Arc<LoadedPlugin>, LoadError> {
    match load_one(engine, limits, weights, folder) {
        Ok(plugin) => {
            let plugin = Arc::new(plugin);
            registry.replace_one(id, Ok(plugin.clone()));
            tracing::info!(plugin = %id, version = %plugin.meta.version, "plugin reloaded");
            Ok(plugin)
        }
        Err(e) => {
            if registry.get(id).is_none() {
                registry.replace_one(
                    id,
                    Err(LoadFailure {
                        id: id.to_owned(),
                        path: folder.to_owned(),
                        reason: e.to_string(),
                    }),
                );
            }
            tracing::warn!(plugin = %id, reason = %e, "plugin reload failed");
            Err(e)
        }
    }
}

/// Loads every `<dir>/<id>/` folder. Never fails as a whole.
pub(super) fn load_all(
    engine: &PluginEngine,
    limits: &Limits,
    weights: &Arc<WeightsCache>,
    dir: &Path,
) -> PluginRegistry {
    let registry = PluginRegistry::default();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot read the plugins folder");
            return registry;
        }
    };
    let mut folders: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    folders.sort();
    for folder in folders {
        let id = folder
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match load_one(engine, limits, weights, &folder) {
            Ok(plugin) => {
                tracing::info!(
                    plugin = %plugin.meta.id,
                    version = %plugin.meta.version,
                    wit = %plugin.meta.wit_version,
                    cached = plugin.from_cache,
                    ms = plugin.load_time.as_millis() as u64,
                    "plugin loaded"
                );
                registry.write().plugins.push(Arc::new(plugin));
            }
            Err(e) => {
                tracing::warn!(plugin = %id, reason = %e, "plugin failed to load");
                registry.write().failures.push(LoadFailure {
                    id,
                    path: folder,
                    reason: e.to_string(),
                });
            }
        }
    }
    registry
}

/// Whether `id` is a plugin id as the WIT describes it: 1 to 64 lower-case ASCII letters,
/// digits and '-', starting with a letter or digit. The loader does not enforce it (older
/// plugins may not follow it); the author tools do, since an id names a folder they write.
pub fn is_plugin_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && !id.starts_with('-')
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Loads one plugin folder, compiled for the plain engine.
pub(super) fn load_one(
    engine: &PluginEngine,
    limits: &Limits,
    weights: &Arc<WeightsCache>,
    folder: &Path,
) -> Result<LoadedPlugin, LoadError> {
    let started = Instant::now();
    let wasm_path = folder.join("plugin.wasm");
    if !wasm_path.is_file() {
        return Err(LoadError::MissingWasm(folder.to_owned()));
    }
    let manifest = Manifest::read(folder).map_err(LoadError::Manifest)?;
    let assets = manifest.assets_dir(folder).map_err(LoadError::Manifest)?;
    let limits = manifest.effective_limits(limits);
    let bytes = std::fs::read(&wasm_path).map_err(|e| LoadError::Read {
        path: wasm_path.clone(),
        message: e.to_string(),
    })?;
    let sha256 = sha256_hex(&bytes);
    if let Some(expected) = &manifest.sha256
        && !expected.eq_ignore_ascii_case(&sha256)
    {
        return Err(LoadError::HashMismatch {
            expected: expected.clone(),
            actual: sha256,
        });
    }
    check_header(&bytes)?;
    let (component, from_cache) = engine
        .cache
        .load(&engine.engine, &bytes, &sha256)
        .map_err(|e| LoadError::BadComponent(format!("{e:#}")))?;
    let (version, kind) = check_contract(&engine.engine, &component)?;
    let pre = prepare(engine, &component, version, kind)?;
    let info = call_info(&engine.engine, &pre, assets.as_deref(), &limits)?;
    let meta = check_info(info, version, kind)?;
    check_folder_name(&meta, folder)?;
    let (config, schema_warnings) = check_schema(&meta)?;
    for warning in &schema_warnings {
        tracing::warn!(plugin = %meta.id, "config-schema {warning}");
    }
    let weights = weights.for_plugin(&sha256, assets.as_deref());
    Ok(LoadedPlugin {
        meta,
        dir: folder.to_owned(),
        sha256,
        assets,
        limits,
        from_cache,
        load_time: started.elapsed(),
        config,
        pre: Some(pre),
        metered: std::sync::Mutex::default(),
        health: super::health::PluginHealth::default(),
        weights,
        schema_warnings,
    })
}

/// Refuses what is not a component before compiling it: a file that is not WebAssembly
/// at all, or a core module (what `wasm32-wasip1` and `wasm32-unknown-unknown` give).
pub(super) fn check_header(bytes: &[u8]) -> Result<(), LoadError> {
    if bytes.len() < 8 || bytes[..4] != *b"\0asm" {
        return Err(LoadError::NotWebAssembly);
    }
    if bytes[4..8] == [1, 0, 0, 0] {
        return Err(LoadError::CoreModule);
    }
    Ok(())
}

/// Checks the plugin's config-schema (see [`schema_check`]) and compiles it; the
/// warnings are returned for the operator.
pub(super) fn check_schema(
    meta: &PluginMeta,
) -> Result<(ConfigSchema, Vec<SchemaIssue>), LoadError> {
    let report = schema_check::check(&meta.config_schema);
    if !report.errors.is_empty() {
        return Err(LoadError::BadSchema(report.errors));
    }
    let config = ConfigSchema::new(&meta.config_schema).map_err(|e| {
        LoadError::BadInfo(format!("config-schema is not a valid JSON Schema: {e}"))
    })?;
    Ok((config, report.warnings))
}

/// Finds the WIT version of our imports and the kind of plugin from its exports, so a
/// wrong plugin gets a precise reason instead of a linker message. A plugin that imports
/// none of our interfaces runs as the latest version; one that exports `diarize` and not
/// `transcribe` is a diarizer.
pub(super) fn check_contract(
    engine: &Engine,
    component: &Component,
) -> Result<(WitVersion, PluginKind), LoadError> {
    let ty = component.component_type();
    let version = imported_version(engine, component)
        .map_err(|found| LoadError::WitVersion {
            found,
            supported: WitVersion::supported_list(),
        })?
        .unwrap_or(WitVersion::LATEST);
    let exports = |wanted: &str| {
        ty.exports(engine).any(|(name, item)| {
            name == wanted && matches!(item.ty, ComponentItem::ComponentFunc(_))
        })
    };
    if !exports("info") {
        return Err(LoadError::MissingExport("info".into()));
    }
    let kind = if exports(PluginKind::Transcriber.export()) {
        PluginKind::Transcriber
    } else if exports(PluginKind::Diarizer.export()) {
        PluginKind::Diarizer
    } else {
        return Err(LoadError::MissingExport("transcribe".into()));
    };
    if !version.offers(kind) {
        return Err(LoadError::DiarizerTooOld(version));
    }
    Ok((version, kind))
}

pub(super) fn call_info(
    engine: &Engine,
    pre: &PluginPre,
    assets: Option<&Path>,
    limits: &Limits,
) -> Result<RawInfo, LoadError> {
    let mut job_limits = JobLimits::from(limits);
    job_limits.time = job_limits.time.min(Duration::from_secs(30));
    let context = JobContext::new(
        assets,
        &job_limits,
        Arc::new(NullReporter),
        CancelFlag::new(),
    )
    .map_err(|e| LoadError::Info(format!("cannot grant the assets folder: {e}")))?;
    let mut store = Store::new(engine, context);
    super::run::arm_store(&mut store);
    let instance = pre
        .instantiate(&mut store)
        .map_err(|e| LoadError::Info(super::run::describe_trap(&store, &e)))?;
    instance
        .call_info(&mut store)
        .map_err(|e| LoadError::Info(super::run::describe_trap(&store, &e)))
}

/// The folder a plugin is installed in must be named after its id.
fn check_folder_name(meta: &PluginMeta, folder: &Path) -> Result<(), LoadError> {
    let folder_name = folder
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if meta.id != folder_name {
        return Err(LoadError::BadInfo(format!(
            "the plugin calls itself \"{}\" but is installed in the folder \"{folder_name}\"; the folder name must equal the id",
            meta.id
        )));
    }
    Ok(())
}

/// Checks what `info()` returned, wherever the plugin is installed.
pub(super) fn check_info(
    info: RawInfo,
    wit_version: WitVersion,
    kind: PluginKind,
) -> Result<PluginMeta, LoadError> {
    if !(1000..=192_000).contains(&info.sample_rate) {
        return Err(LoadError::BadInfo(format!(
            "sample-rate {} Hz is outside 1000..=192000",
            info.sample_rate
        )));
    }
    let config_schema: serde_json::Value = serde_json::from_str(&info.config_schema)
        .map_err(|e| LoadError::BadInfo(format!("config-schema is not JSON: {e}")))?;
    if config_schema.get("type").and_then(|t| t.as_str()) != Some("object") {
        return Err(LoadError::BadInfo(
            "config-schema must describe an object (\"type\": \"object\")".into(),
        ));
    }
    Ok(PluginMeta {
        id: info.id,
        name: info.name,
        version: info.version,
        description: info.description,
        languages: info.languages,
        sample_rate: info.sample_rate,
        capabilities: Capabilities {
            segment_timestamps: info.segment_timestamps,
            word_timestamps: info.word_timestamps,
            language_detection: info.language_detection,
            translation: info.translation,
        },
        config_schema,
        wit_version,
        kind,
    })
}
