//! `plugin.toml`: the operator's manifest for one installed plugin.
//!
//! ```toml
//! sha256 = "9f2c…"          # refuse the plugin unless plugin.wasm has this hash
//! assets = "assets"         # folder (relative to the plugin folder) granted read-only
//! [limits]                  # may only lower the server's ceilings
//! memory_bytes = 1073741824
//! job_seconds = 600
//! fuel_per_job = 50000000000  # meters every job of this plugin, at most this much fuel
//! ```

use std::num::NonZeroU64;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::config::{Limits, tighter_fuel};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Manifest {
    /// Expected hex sha256 of `plugin.wasm`.
    pub sha256: Option<String>,
    /// Folder granted to the plugin read-only at `/assets`. Default: `assets` if present.
    pub assets: Option<PathBuf>,
    pub limits: ManifestLimits,
}

/// Per-plugin limits; any that is higher than the server's ceiling is ignored.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ManifestLimits {
    pub memory_bytes: Option<u64>,
    pub job_seconds: Option<u64>,
    pub log_bytes: Option<u64>,
    pub output_bytes: Option<u64>,
    /// A fuel budget: with none on the server this turns metering on for the plugin
    /// (no budget counts as unlimited, so that is still a lowering).
    pub fuel_per_job: Option<NonZeroU64>,
    /// Threads per compute call; only lowers the server's `threads_per_job`.
    pub threads_per_job: Option<u64>,
}

impl Manifest {
    /// Reads `<dir>/plugin.toml`; a missing file is an empty manifest.
    pub fn read(dir: &Path) -> Result<Self, String> {
        let path = dir.join("plugin.toml");
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).map_err(|e| format!("plugin.toml is not valid: {e}")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(format!("cannot read plugin.toml: {e}")),
        }
    }

    /// The assets folder to grant, if any.
    pub fn assets_dir(&self, dir: &Path) -> Result<Option<PathBuf>, String> {
        match &self.assets {
            Some(rel) => {
                if rel.is_absolute()
                    || rel
                        .components()
                        .any(|c| matches!(c, std::path::Component::ParentDir))
                {
                    return Err(format!(
                        "plugin.toml: assets must be a folder inside the plugin folder, not {}",
                        rel.display()
                    ));
                }
                let path = dir.join(rel);
                if !path.is_dir() {
                    return Err(format!(
                        "plugin.toml: assets folder {} does not exist",
                        path.display()
                    ));
                }
                Ok(Some(path))
            }
            None => {
                let path = dir.join("assets");
                Ok(path.is_dir().then_some(path))
            }
        }
    }

    /// The server's ceilings, lowered where the manifest asks for less.
    pub fn effective_limits(&self, server: &Limits) -> Limits {
        let lower = |mine: Option<u64>, ceiling: u64| mine.map_or(ceiling, |m| m.min(ceiling));
        Limits {
            memory_bytes: lower(self.limits.memory_bytes, server.memory_bytes),
            job_seconds: lower(self.limits.job_seconds, server.job_seconds),
            log_bytes: lower(self.limits.log_bytes, server.log_bytes),
            output_bytes: lower(self.limits.output_bytes, server.output_bytes),
            fuel_per_job: tighter_fuel(self.limits.fuel_per_job, server.fuel_per_job),
            threads_per_job: lower(self.limits.threads_per_job, server.threads_per_job).max(1),
            ..server.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_limits_only_lower_the_ceilings() {
        let manifest: Manifest =
            toml::from_str("[limits]\nmemory_bytes = 1000\njob_seconds = 999999999\n")
                .expect("parses");
        let server = Limits::default();
        let limits = manifest.effective_limits(&server);
        assert_eq!(limits.memory_bytes, 1000);
        assert_eq!(limits.job_seconds, server.job_seconds);
    }

    #[test]
    fn manifest_fuel_budget_lowers_the_servers_but_never_raises_it() {
        let manifest: Manifest = toml::from_str("[limits]\nfuel_per_job = 1000\n").expect("parses");
        let unmetered = Limits::default();
        assert_eq!(
            manifest.effective_limits(&unmetered).fuel_per_job,
            NonZeroU64::new(1000)
        );
        let metered = Limits {
            fuel_per_job: NonZeroU64::new(10),
            ..Limits::default()
        };
        assert_eq!(
            manifest.effective_limits(&metered).fuel_per_job,
            NonZeroU64::new(10)
        );
        let silent = Manifest::default();
        assert_eq!(
            silent.effective_limits(&metered).fuel_per_job,
            NonZeroU64::new(10)
        );
    }

    #[test]
    fn assets_may_not_escape_the_plugin_folder() {
        let manifest: Manifest = toml::from_str("assets = \"../secrets\"\n").expect("parses");
        let err = manifest.assets_dir(Path::new("/tmp")).expect_err("refused");
        assert!(err.contains("inside the plugin folder"), "{err}");
    }
}
