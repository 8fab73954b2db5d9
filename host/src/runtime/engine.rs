//! The wasmtime engines and their on-disk cache of compiled components.
//!
//! There are two engines, identical but for fuel metering, each with its own linker and
//! compiled code. Fuel has to be compiled in: with `Config::consume_fuel` every basic
//! block adds its instruction count to a counter and every function entry and loop
//! header checks it, and a store of such an engine cannot opt out. Measured with
//! `sandscribe transcribe --stats` on the Whisper plugin (tiny.en, 3 s and 7 s clips), a
//! metered run took 3-5 % more CPU time (2.99 s against 2.89 s for the 7 s clip, model
//! load included); branchy scalar code pays more.
//! One engine with fuel on and unmetered stores given `u64::MAX` would make every job pay
//! that for the few tenants that want reproducible budgets. So unmetered jobs run on the
//! plain engine exactly as before, and a plugin is compiled for the metered engine only
//! when its first metered job runs (see `LoadedPlugin::metered_pre`; about 2 s for
//! Whisper, once, then from the compile cache). The cache is keyed by each engine's
//! compatibility hash, which covers `consume_fuel`, so the two kinds of artifact never
//! clash on disk.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine};

use super::RuntimeError;
use super::bindings;
use super::store::JobContext;

/// Whether an engine's compiled code counts fuel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metering {
    Unmetered,
    Fuel,
}

/// Builds an engine plugins run on: component model, epoch interruption (for
/// cancellation and time limits), a capped wasm stack, and fuel counting if asked.
pub fn build_engine(max_stack_bytes: u64, metering: Metering) -> wasmtime::Result<Engine> {
    let stack = usize::try_from(max_stack_bytes).unwrap_or(usize::MAX);
    let mut config = Config::new();
    config
        // Not used (plugins run synchronously) but wasmtime requires it to be at least
        // the wasm stack cap.
        .async_stack_size(stack.saturating_add(1 << 20))
        .wasm_component_model(true)
        .epoch_interruption(true)
        .consume_fuel(metering == Metering::Fuel)
        .max_wasm_stack(stack)
        .cranelift_opt_level(wasmtime::OptLevel::Speed)
        .parallel_compilation(true);
    Engine::new(&config)
}

/// One engine and what is bound to it: the linker with every host interface, and the
/// compile cache for its configuration.
pub struct PluginEngine {
    pub engine: Engine,
    pub linker: Linker<JobContext>,
    pub cache: ArtifactCache,
}

impl PluginEngine {
    pub fn new(
        max_stack_bytes: u64,
        metering: Metering,
        cache_dir: &Path,
    ) -> Result<Self, RuntimeError> {
        let failed = |e: wasmtime::Error| RuntimeError::Engine(format!("{e:#}"));
        let engine = build_engine(max_stack_bytes, metering).map_err(failed)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(failed)?;
        bindings::add_to_linker(&mut linker).map_err(failed)?;
        Ok(Self {
            cache: ArtifactCache::new(&engine, cache_dir),
            engine,
            linker,
        })
    }
}

/// Compiles components once and keeps the native code on disk, keyed by the component's
/// sha256 and the engine's configuration, so a restart does not compile again.
pub struct ArtifactCache {
    dir: PathBuf,
    engine_key: String,
}

impl ArtifactCache {
    pub fn new(engine: &Engine, dir: &Path) -> Self {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Self {
            dir: dir.to_owned(),
            engine_key: format!("{:016x}", hasher.finish()),
        }
    }

    fn path_for(&self, sha256: &str) -> PathBuf {
        self.dir.join(format!("{sha256}-{}.cwasm", self.engine_key))
    }

    /// Loads the compiled component from the cache, or compiles and stores it.
    /// Returns the component and whether it came from the cache.
    pub fn load(
        &self,
        engine: &Engine,
        bytes: &[u8],
        sha256: &str,
    ) -> wasmtime::Result<(Component, bool)> {
        let path = self.path_for(sha256);
        if path.is_file() {
            // SAFETY: the file was written by `Component::serialize` of an engine with the
            // same compatibility hash (it is in the file name), into a folder only this
            // server writes; wasmtime still checks the header and refuses a mismatch.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(component) => return Ok((component, true)),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "ignoring a bad cache entry");
                }
            }
        }
        let component = Component::from_binary(engine, bytes)?;
        if let Err(e) = self.store(&path, &component) {
            tracing::warn!(path = %path.display(), error = %e, "could not write the compile cache");
        }
        Ok((component, false))
    }

    fn store(&self, path: &Path, component: &Component) -> wasmtime::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, component.serialize()?)?;
        std::fs::rename(&tmp, path)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metered_and_unmetered_artifacts_have_different_cache_files() {
        let dir = Path::new("/nonexistent");
        let plain = build_engine(1 << 20, Metering::Unmetered).expect("engine");
        let metered = build_engine(1 << 20, Metering::Fuel).expect("engine");
        assert_ne!(
            ArtifactCache::new(&plain, dir).path_for("abc"),
            ArtifactCache::new(&metered, dir).path_for("abc")
        );
    }
}
