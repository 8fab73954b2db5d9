//! Write a sandscribe transcription (or diarization) plugin as a trait impl.
//!
//! A plugin is a WebAssembly component built for `wasm32-wasip2` against the WIT package
//! `sandscribe:plugin@0.3.0` (vendored in this crate's `wit/`, a copy of `wit/v0.3.0/` in
//! the repository). This crate generates the bindings, so an author implements
//! [`Transcriber`] and adds one [`export_plugin!`] line (or, for a diarizer, who spoke
//! when, [`Diarizer`] and [`export_diarizer!`]); no WIT glue by hand. It
//! re-exports [`serde`], so a plugin needs no serde dependency of its own, and installs a
//! panic hook that reports where a panic happened (see the author's guide, `README.md`). Heavy math (matrix products, attention,
//! convolutions) can run natively in the host through [`compute`], which also runs
//! in-process when the plugin is compiled natively for its unit tests.
//!
//! ```ignore
//! use sandscribe_plugin_sdk::prelude::*;
//!
//! #[derive(Deserialize, Default)]
//! #[serde(crate = "sandscribe_plugin_sdk::serde", default, deny_unknown_fields)]
//! struct Config { uppercase: bool }
//!
//! struct Shout;
//!
//! impl Transcriber for Shout {
//!     type Config = Config;
//!
//!     fn info() -> PluginInfo {
//!         PluginInfo::new("shout", "Shout", env!("CARGO_PKG_VERSION"), 16_000)
//!             .description("Says how long the audio is.")
//!             .config_schema(r#"{"type":"object","properties":{"uppercase":{"type":"boolean","default":false}}}"#)
//!     }
//!
//!     fn transcribe(audio: &AudioInput<'_>, config: Config) -> Result<Transcript, PluginError> {
//!         let text = format!("{} samples", audio.frames());
//!         let text = if config.uppercase { text.to_uppercase() } else { text };
//!         let segment = Segment::new(0, audio.duration_ms(), text);
//!         emit_segment(&segment);
//!         progress(1.0, "done");
//!         Ok(Transcript::from_segments(vec![segment], None))
//!     }
//! }
//!
//! export_plugin!(Shout);
//! ```

pub mod accuracy;
mod audio;
pub mod compute;
mod diarizer;
mod info;
#[cfg(not(target_family = "wasm"))]
pub mod mock;
#[doc(hidden)]
pub mod panic;
mod reporting;

/// Serde, for the plugin's `Config`: derive with
/// `#[serde(crate = "sandscribe_plugin_sdk::serde")]` and no serde dependency is needed.
pub use serde;

// Lets the diarizer bindings name the shared types by the path plugins see them under.
extern crate self as sandscribe_plugin_sdk;

/// Bindings generated from `wit/` for the `transcriber` world, and the home of every type
/// and import both worlds share. Plugins normally use the re-exports and the prelude.
///
/// With `pub_export_macro` wit-bindgen puts only a world's imports in the module's
/// component-type section and its exports in the export macro's, so a crate that never
/// calls [`export_plugin!`] does not have to export `transcribe`.
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "transcriber",
        pub_export_macro: true,
        export_macro_name: "__export_transcriber",
        default_bindings_module: "sandscribe_plugin_sdk::bindings",
    });
}

/// Bindings for the `diarizer` world: only its exports are generated here; its imports
/// and types are those of [`bindings`] (so `Segment`, `PluginInfo` and the audio are one
/// type whichever world a crate exports).
#[doc(hidden)]
// The generated ABI shim of `diarize` takes the lowered arguments one by one.
#[allow(clippy::too_many_arguments)]
pub mod diarizer_bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "diarizer",
        pub_export_macro: true,
        export_macro_name: "__export_diarizer",
        default_bindings_module: "sandscribe_plugin_sdk::diarizer_bindings",
        with: {
            "sandscribe:plugin/types@0.3.0": ::sandscribe_plugin_sdk::bindings::sandscribe::plugin::types,
            "sandscribe:plugin/audio@0.3.0": ::sandscribe_plugin_sdk::bindings::sandscribe::plugin::audio,
            "sandscribe:plugin/host@0.3.0": ::sandscribe_plugin_sdk::bindings::sandscribe::plugin::host,
            "sandscribe:plugin/compute@0.3.0": ::sandscribe_plugin_sdk::bindings::sandscribe::plugin::compute,
        },
    });
}

pub use audio::{AudioInput, Chunk, MAX_READ_FRAMES};
pub use bindings::sandscribe::plugin::host::LogLevel;
pub use bindings::sandscribe::plugin::types::{
    Capabilities, PluginError, PluginInfo, Segment, SpeakerCount, SpeakerRange, SpeakerTurn,
    Transcript, Word,
};
pub use diarizer::Diarizer;
pub use info::parse_config;
pub use reporting::{
    check_cancelled, debug, emit_segment, error, info, is_cancelled, log, progress, warn,
};

/// Everything a plugin usually needs, serde's `Deserialize` included.
pub mod prelude {
    pub use crate::{
        AudioInput, Capabilities, Diarizer, LogLevel, PluginError, PluginInfo, Segment,
        SpeakerCount, SpeakerRange, SpeakerTurn, Transcriber, Transcript, Word, check_cancelled,
        emit_segment, export_diarizer, export_plugin, is_cancelled, progress,
    };
    pub use serde::Deserialize;
}

/// What a plugin implements.
pub trait Transcriber {
    /// The plugin's configuration, parsed from the JSON object the host passes.
    /// `#[serde(default)]` on the struct makes every field optional.
    type Config: serde::de::DeserializeOwned;

    /// Static description; called once when the host loads the plugin.
    fn info() -> PluginInfo;

    /// Transcribe the whole audio. Report progress with [`progress`], emit each segment
    /// with [`emit_segment`] as soon as it is final, and call [`check_cancelled`] between
    /// units of work.
    fn transcribe(audio: &AudioInput<'_>, config: Self::Config) -> Result<Transcript, PluginError>;
}

/// Export a [`Transcriber`] as the plugin's component exports.
///
/// ```ignore
/// sandscribe_plugin_sdk::export_plugin!(MyPlugin);
/// ```
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        #[doc(hidden)]
        struct __SandscribeExports;

        impl $crate::bindings::Guest for __SandscribeExports {
            fn info() -> $crate::PluginInfo {
                $crate::panic::install_hook();
                <$plugin as $crate::Transcriber>::info()
            }

            fn transcribe(
                input: &$crate::bindings::sandscribe::plugin::audio::Audio,
                config_json: ::std::string::String,
            ) -> ::std::result::Result<$crate::Transcript, $crate::PluginError> {
                $crate::panic::install_hook();
                let config = $crate::parse_config::<<$plugin as $crate::Transcriber>::Config>(
                    &config_json,
                )?;
                <$plugin as $crate::Transcriber>::transcribe(
                    &$crate::AudioInput::new(input),
                    config,
                )
            }
        }

        $crate::bindings::__export_transcriber!(
            __SandscribeExports with_types_in $crate::bindings
        );
    };
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// The WIT package this SDK builds against, from its vendored copy.
    fn vendored_package_version() -> String {
        let wit = Path::new(env!("CARGO_MANIFEST_DIR")).join("wit/plugin.wit");
        let text = std::fs::read_to_string(&wit).expect("the vendored WIT is in the crate");
        text.lines()
            .find_map(|l| l.trim().strip_prefix("package sandscribe:plugin@"))
            .and_then(|rest| rest.strip_suffix(';'))
            .expect("plugin.wit declares its package")
            .to_owned()
    }

    #[test]
    fn the_vendored_wit_is_identical_to_the_repositorys_frozen_copy() {
        let sdk = Path::new(env!("CARGO_MANIFEST_DIR"));
        let version = vendored_package_version();
        let frozen = sdk.join(format!("../wit/v{version}"));
        let names = |dir: &Path| {
            let mut names: Vec<String> = std::fs::read_dir(dir)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
                .map(|e| {
                    e.expect("a folder entry")
                        .file_name()
                        .to_string_lossy()
                        .into_owned()
                })
                .collect();
            names.sort();
            names
        };
        assert_eq!(
            names(&sdk.join("wit")),
            names(&frozen),
            "plugin-sdk/wit/ must hold exactly the files of wit/v{version}/"
        );
        for name in names(&frozen) {
            let ours = std::fs::read(sdk.join("wit").join(&name)).expect("vendored file");
            let theirs = std::fs::read(frozen.join(&name)).expect("frozen file");
            assert!(
                ours == theirs,
                "plugin-sdk/wit/{name} differs from wit/v{version}/{name}; copy it again (the frozen WIT is the source of truth)"
            );
        }
    }

    #[test]
    fn the_sdk_version_follows_the_wit_package_it_builds_against() {
        let major_minor = |v: &str| v.split('.').take(2).collect::<Vec<_>>().join(".");
        assert_eq!(
            major_minor(env!("CARGO_PKG_VERSION")),
            major_minor(&vendored_package_version())
        );
    }
}
