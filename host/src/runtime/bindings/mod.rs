//! Every WIT version the host serves, side by side.
//!
//! One module per released version of `sandscribe:plugin` (generated from the frozen
//! copy under `wit/v<version>/`), each converting its generated types into the host's
//! model ([`super::contract`]). The rest of the host sees only [`PluginPre`] and
//! [`PluginInstance`], enums over the versions, so a new version is a new module and a
//! new arm here, and plugins built against an older version keep running unchanged.

mod common;
mod v0_1;
mod v0_2;
mod v0_3;

use wasmtime::component::{Component, InstancePre, Linker, Resource};
use wasmtime::{Engine, Store};

use super::contract::{PluginKind, RawInfo, RawOutcome, RawTurns};
use super::host_audio::AudioResource;
use super::store::JobContext;
use crate::diarize::SpeakerCount;
use crate::transcript::Segment;

/// A version of the contract this host serves.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, utoipa::ToSchema,
)]
pub enum WitVersion {
    #[serde(rename = "0.1.0")]
    V0_1,
    #[serde(rename = "0.2.0")]
    V0_2,
    #[serde(rename = "0.3.0")]
    V0_3,
}

impl WitVersion {
    /// Every version served, oldest first.
    pub const SUPPORTED: [WitVersion; 3] = [WitVersion::V0_1, WitVersion::V0_2, WitVersion::V0_3];

    /// The newest version: what the SDK builds against.
    pub const LATEST: WitVersion = WitVersion::V0_3;

    /// Whether a plugin of this version can be `kind` (diarizers came with 0.3.0).
    pub fn offers(self, kind: PluginKind) -> bool {
        match kind {
            PluginKind::Transcriber => true,
            PluginKind::Diarizer => self >= Self::V0_3,
        }
    }

    /// The package version, as `sandscribe:plugin@<this>` names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V0_1 => v0_1::VERSION,
            Self::V0_2 => v0_2::VERSION,
            Self::V0_3 => v0_3::VERSION,
        }
    }

    /// The served version a plugin built against `found` runs as: same major and minor
    /// (Cargo's rule for 0.x), any patch.
    pub fn matching(found: &str) -> Option<Self> {
        let key = |v: &str| v.split('.').take(2).collect::<Vec<_>>().join(".");
        Self::SUPPORTED
            .into_iter()
            .find(|v| !found.is_empty() && key(found) == key(v.as_str()))
    }

    /// The served versions, for messages ("0.1.0, 0.2.0").
    pub fn supported_list() -> String {
        Self::SUPPORTED
            .iter()
            .map(|v| v.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl std::fmt::Display for WitVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Adds the host side of every served version to `linker`. Interface names carry their
/// version (`sandscribe:plugin/host@0.1.0`), so the versions never clash.
pub fn add_to_linker(linker: &mut Linker<JobContext>) -> wasmtime::Result<()> {
    v0_1::add_to_linker(linker)?;
    v0_2::add_to_linker(linker)?;
    v0_3::add_to_linker(linker)
}

/// The version of the contract a component was built against, from the versions of the
/// `sandscribe:plugin/...` interfaces it imports (`Ok(None)` when it imports none).
pub fn imported_version(
    engine: &Engine,
    component: &Component,
) -> Result<Option<WitVersion>, String> {
    let mut version = None;
    for (name, _) in component.component_type().imports(engine) {
        let Some(rest) = name.strip_prefix("sandscribe:plugin/") else {
            continue;
        };
        let found = rest.split_once('@').map_or("", |(_, v)| v);
        let Some(matched) = WitVersion::matching(found) else {
            return Err(if found.is_empty() {
                "(unversioned)".to_owned()
            } else {
                found.to_owned()
            });
        };
        version = Some(matched);
    }
    Ok(version)
}

/// A plugin linked and ready to instantiate, for the version it was built against.
#[derive(Clone)]
pub enum PluginPre {
    V0_1(v0_1::Pre),
    V0_2(v0_2::Pre),
    V0_3(v0_3::Pre),
    V0_3Diarizer(v0_3::DiarizerPre),
}

impl PluginPre {
    /// Checks that `pre` has the exports of `version`'s world for `kind` and prepares it.
    pub fn new(
        version: WitVersion,
        kind: PluginKind,
        pre: InstancePre<JobContext>,
    ) -> wasmtime::Result<Self> {
        Ok(match (version, kind) {
            (WitVersion::V0_1, PluginKind::Transcriber) => Self::V0_1(v0_1::Pre::new(pre)?),
            (WitVersion::V0_2, PluginKind::Transcriber) => Self::V0_2(v0_2::Pre::new(pre)?),
            (WitVersion::V0_3, PluginKind::Transcriber) => Self::V0_3(v0_3::Pre::new(pre)?),
            (WitVersion::V0_3, PluginKind::Diarizer) => {
                Self::V0_3Diarizer(v0_3::DiarizerPre::new(pre)?)
            }
            (version, kind) => {
                return Err(wasmtime::Error::msg(format!(
                    "sandscribe:plugin@{version} has no {kind:?} world"
                )));
            }
        })
    }

    pub fn engine(&self) -> &Engine {
        match self {
            Self::V0_1(pre) => pre.engine(),
            Self::V0_2(pre) => pre.engine(),
            Self::V0_3(pre) => pre.engine(),
            Self::V0_3Diarizer(pre) => pre.engine(),
        }
    }

    /// A fresh instance in `store` (one per job).
    pub fn instantiate(&self, store: &mut Store<JobContext>) -> wasmtime::Result<PluginInstance> {
        Ok(match self {
            Self::V0_1(pre) => PluginInstance::V0_1(pre.instantiate(store)?),
            Self::V0_2(pre) => PluginInstance::V0_2(pre.instantiate(store)?),
            Self::V0_3(pre) => PluginInstance::V0_3(pre.instantiate(store)?),
            Self::V0_3Diarizer(pre) => PluginInstance::V0_3Diarizer(pre.instantiate(store)?),
        })
    }
}

/// One instantiated plugin.
pub enum PluginInstance {
    V0_1(v0_1::Instance),
    V0_2(v0_2::Instance),
    V0_3(v0_3::Instance),
    V0_3Diarizer(v0_3::DiarizerInstance),
}

impl PluginInstance {
    pub fn call_info(&self, store: &mut Store<JobContext>) -> wasmtime::Result<RawInfo> {
        match self {
            Self::V0_1(instance) => v0_1::call_info(instance, store),
            Self::V0_2(instance) => v0_2::call_info(instance, store),
            Self::V0_3(instance) => v0_3::call_info(instance, store),
            Self::V0_3Diarizer(instance) => v0_3::diarizer_info(instance, store),
        }
    }

    /// Runs a diarizer's `diarize`; an error for a transcriber (the host checks the kind
    /// before it gets here).
    pub fn call_diarize(
        &self,
        store: &mut Store<JobContext>,
        audio: Resource<AudioResource>,
        segments: &[Segment],
        speakers: SpeakerCount,
        config_json: &str,
    ) -> wasmtime::Result<RawTurns> {
        match self {
            Self::V0_3Diarizer(instance) => {
                v0_3::call_diarize(instance, store, audio, segments, speakers, config_json)
            }
            _ => Err(wasmtime::Error::msg("the plugin is not a diarizer")),
        }
    }

    pub fn call_transcribe(
        &self,
        store: &mut Store<JobContext>,
        audio: Resource<AudioResource>,
        config_json: &str,
    ) -> wasmtime::Result<RawOutcome> {
        match self {
            Self::V0_1(instance) => v0_1::call_transcribe(instance, store, audio, config_json),
            Self::V0_2(instance) => v0_2::call_transcribe(instance, store, audio, config_json),
            Self::V0_3(instance) => v0_3::call_transcribe(instance, store, audio, config_json),
            Self::V0_3Diarizer(_) => Err(wasmtime::Error::msg("a diarizer cannot transcribe")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_match_on_major_and_minor() {
        assert_eq!(WitVersion::matching("0.1.0"), Some(WitVersion::V0_1));
        assert_eq!(WitVersion::matching("0.1.3"), Some(WitVersion::V0_1));
        assert_eq!(WitVersion::matching("0.2.0"), Some(WitVersion::V0_2));
        assert_eq!(WitVersion::matching("0.3.0"), Some(WitVersion::V0_3));
        assert_eq!(WitVersion::matching("0.4.0"), None);
        assert_eq!(WitVersion::matching(""), None);
    }

    #[test]
    fn each_version_is_the_one_its_frozen_wit_declares() {
        let wit = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit");
        for version in WitVersion::SUPPORTED {
            let v = version.as_str();
            let text = std::fs::read_to_string(wit.join(format!("v{v}/plugin.wit")))
                .expect("every served version has its frozen WIT folder");
            assert!(
                text.contains(&format!("package sandscribe:plugin@{v};")),
                "wit/v{v}/plugin.wit declares another version"
            );
        }
    }

    #[test]
    fn the_latest_version_is_served() {
        assert!(WitVersion::SUPPORTED.contains(&WitVersion::LATEST));
        assert_eq!(WitVersion::supported_list(), "0.1.0, 0.2.0, 0.3.0");
    }
}
