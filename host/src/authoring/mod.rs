//! What a plugin author reaches for: a scaffold that builds as it is ([`scaffold`]),
//! building a plugin folder into an installed `plugins/<id>/` ([`build`]), and a smoke
//! test of an installed plugin under the server's limits ([`validate`]). Looking inside
//! one `.wasm` file is the runtime's ([`crate::runtime::Runtime::inspect`]), since it
//! needs the loader's own checks.
//!
//! Each step knows the plugin's language ([`PluginLanguage`], detected from the files in
//! its folder): Rust with cargo, Python with the Python SDK's `build.py`, C with clang and
//! wasi-libc (`sandscribe-cbuild`, the route PocketSphinx is built with).

pub mod build;
mod c;
mod cargo;
mod language;
mod python;
pub mod scaffold;
pub mod validate;

pub use language::{LanguageError, PluginLanguage};
pub use python::PythonToolchain;
