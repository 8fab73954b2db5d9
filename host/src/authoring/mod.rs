//! What a plugin author reaches for: a scaffold that builds as it is ([`scaffold`]),
//! building a plugin folder into an installed `plugins/<id>/` ([`build`]), and a smoke
//! test of an installed plugin under the server's limits ([`validate`]). Looking inside
//! one `.wasm` file is the runtime's ([`crate::runtime::Runtime::inspect`]), since it
//! needs the loader's own checks.
//!
//! Each step knows the plugin's language ([`PluginLanguage`], detected from the files in
//! its folder). Rust is built here; the Python and C arms are the extension point for
//! their toolchains and answer "not yet supported by this build" until they land.

pub mod build;
mod cargo;
mod language;
pub mod scaffold;
pub mod validate;

pub use language::{LanguageError, PluginLanguage};
