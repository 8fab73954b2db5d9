//! Write a sandscribe transcription plugin as a trait impl.
//!
//! A plugin is a WebAssembly component built for `wasm32-wasip2` against the WIT package
//! `sandscribe:plugin@0.2.0` (`wit/v0.2.0/` in the repository). This crate generates
//! the bindings, so an author implements [`Transcriber`] and adds one
//! [`export_plugin!`] line; no WIT glue by hand. Heavy math (matrix products, attention,
//! convolutions) can run natively in the host through [`compute`], which also runs
//! in-process when the plugin is compiled natively for its unit tests.
//!
//! ```ignore
//! use sandscribe_plugin_sdk::prelude::*;
//!
//! #[derive(serde::Deserialize, Default)]
//! #[serde(default, deny_unknown_fields)]
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
mod info;
mod reporting;

/// Bindings generated from `wit/`. Plugins normally use the re-exports and the prelude.
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit/v0.2.0",
        world: "transcriber",
        pub_export_macro: true,
        export_macro_name: "__export_transcriber",
        default_bindings_module: "sandscribe_plugin_sdk::bindings",
    });
}

pub use audio::AudioInput;
pub use bindings::sandscribe::plugin::host::LogLevel;
pub use bindings::sandscribe::plugin::types::{
    Capabilities, PluginError, PluginInfo, Segment, Transcript, Word,
};
pub use info::parse_config;
pub use reporting::{debug, emit_segment, error, info, is_cancelled, log, progress, warn};

/// Everything a plugin usually needs.
pub mod prelude {
    pub use crate::{
        AudioInput, Capabilities, LogLevel, PluginError, PluginInfo, Segment, Transcriber,
        Transcript, Word, emit_segment, export_plugin, is_cancelled, progress,
    };
}

/// What a plugin implements.
pub trait Transcriber {
    /// The plugin's configuration, parsed from the JSON object the host passes.
    /// `#[serde(default)]` on the struct makes every field optional.
    type Config: serde::de::DeserializeOwned;

    /// Static description; called once when the host loads the plugin.
    fn info() -> PluginInfo;

    /// Transcribe the whole audio. Report progress with [`progress`], emit each segment
    /// with [`emit_segment`] as soon as it is final, and check [`is_cancelled`] between
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
                <$plugin as $crate::Transcriber>::info()
            }

            fn transcribe(
                input: &$crate::bindings::sandscribe::plugin::audio::Audio,
                config_json: ::std::string::String,
            ) -> ::std::result::Result<$crate::Transcript, $crate::PluginError> {
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
