//! Looking inside one `.wasm` file the way the loader would, without installing it: what
//! it is, what it imports and exports, which WIT version it speaks, what its `info()`
//! says and what the schema check finds. `sandscribe plugins inspect` prints it, and
//! `sandscribe plugin build` asks it for the id of what it built.
//!
//! Unlike loading, an inspection always compiles afresh (no compile cache), so its
//! compile time is the real one, and it goes as far as it can: a component with the
//! wrong WIT version still lists its imports.

use std::path::Path;
use std::time::{Duration, Instant};

use wasmtime::component::Component;
use wasmtime::component::types::ComponentItem;

use super::bindings::{WitVersion, imported_version};
use super::engine::PluginEngine;
use super::plugin::{self, LoadError, PluginMeta};
use super::schema_check::{self, SchemaIssue};
use crate::config::Limits;
use crate::digest::sha256_hex;

/// One import or export of a component: its name and what kind of item it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentEntry {
    pub name: String,
    /// `function`, `instance` (an interface), `type`, `resource`, `component`, ...
    pub kind: &'static str,
}

/// What an inspection found, as far as it got.
#[derive(Debug, Clone)]
pub struct Inspection {
    pub size_bytes: u64,
    pub sha256: String,
    /// Time to compile the component with the server's engine, when it compiled.
    pub compile_time: Option<Duration>,
    /// Time `info()` took, when it ran.
    pub info_time: Option<Duration>,
    /// The `sandscribe:plugin` version of its imports, when it is one this host serves.
    pub wit_version: Option<WitVersion>,
    pub imports: Vec<ComponentEntry>,
    pub exports: Vec<ComponentEntry>,
    /// What `info()` returned, when it ran and passed the checks.
    pub meta: Option<PluginMeta>,
    /// Schema errors (they refuse the plugin) and warnings (they do not).
    pub schema_errors: Vec<SchemaIssue>,
    pub schema_warnings: Vec<SchemaIssue>,
    /// Why the server would not load it; `None` for a valid plugin.
    pub problem: Option<LoadError>,
}

impl Inspection {
    /// Whether the server would load this component as a plugin (installed in a folder
    /// named after its id).
    pub fn is_valid(&self) -> bool {
        self.problem.is_none()
    }
}

/// Inspects `bytes` with the plain engine, calling `info()` under `limits` with `assets`
/// granted, as the loader would.
pub(super) fn inspect(
    engine: &PluginEngine,
    limits: &Limits,
    bytes: &[u8],
    assets: Option<&Path>,
) -> Inspection {
    let mut found = Inspection {
        size_bytes: bytes.len() as u64,
        sha256: sha256_hex(bytes),
        compile_time: None,
        info_time: None,
        wit_version: None,
        imports: Vec::new(),
        exports: Vec::new(),
        meta: None,
        schema_errors: Vec::new(),
        schema_warnings: Vec::new(),
        problem: None,
    };
    if let Err(problem) = look_inside(engine, limits, bytes, assets, &mut found) {
        found.problem = Some(problem);
    }
    found
}

/// Fills `found` step by step; the first refusal ends it.
fn look_inside(
    engine: &PluginEngine,
    limits: &Limits,
    bytes: &[u8],
    assets: Option<&Path>,
    found: &mut Inspection,
) -> Result<(), LoadError> {
    plugin::check_header(bytes)?;
    let started = Instant::now();
    let component = Component::from_binary(&engine.engine, bytes)
        .map_err(|e| LoadError::BadComponent(format!("{e:#}")))?;
    found.compile_time = Some(started.elapsed());
    let ty = component.component_type();
    found.imports = ty
        .imports(&engine.engine)
        .map(|(name, item)| entry(name, &item.ty))
        .collect();
    found.exports = ty
        .exports(&engine.engine)
        .map(|(name, item)| entry(name, &item.ty))
        .collect();
    found.wit_version = imported_version(&engine.engine, &component).ok().flatten();
    let (version, kind) = plugin::check_contract(&engine.engine, &component)?;
    found.wit_version = Some(version);
    let pre = plugin::prepare(engine, &component, version, kind)?;
    let started = Instant::now();
    let info = plugin::call_info(&engine.engine, &pre, assets, limits)?;
    found.info_time = Some(started.elapsed());
    let meta = plugin::check_info(info, version, kind)?;
    let report = schema_check::check(&meta.config_schema);
    found.schema_errors = report.errors.clone();
    found.schema_warnings = report.warnings;
    found.meta = Some(meta);
    if !report.errors.is_empty() {
        return Err(LoadError::BadSchema(report.errors));
    }
    Ok(())
}

fn entry(name: &str, item: &ComponentItem) -> ComponentEntry {
    let kind = match item {
        ComponentItem::ComponentFunc(_) => "function",
        ComponentItem::CoreFunc(_) => "core function",
        ComponentItem::Module(_) => "core module",
        ComponentItem::Component(_) => "component",
        ComponentItem::ComponentInstance(_) => "instance",
        ComponentItem::Type(_) => "type",
        ComponentItem::Resource(_) => "resource",
    };
    ComponentEntry {
        name: name.to_owned(),
        kind,
    }
}
