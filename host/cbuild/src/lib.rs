//! Building sandscribe plugin components from C, for every C plugin the project builds:
//! `cargo xtask setup` builds PocketSphinx with it, `sandscribe plugin build DIR` an
//! author's C plugin.
//!
//! The route, every piece from a package registry (Debian, crates.io):
//! - clang compiles for WASI preview 1 (`wasm32-wasi`, or `wasm32-wasip1` where the
//!   installed wasi-libc is laid out under that name) against `wasi-libc`, with
//!   compiler-rt's wasm32 builtins ([`Toolchain`]);
//! - the C bindings of the WIT world come from `wit-bindgen-c` as a library
//!   ([`generate_bindings`]);
//! - `wit-component` turns the linked core module into a component, adapting its WASI
//!   preview 1 imports with the adapter of the wasmtime the host runs ([`link_component`]).
//!
//! Every object file is named by a hash of everything that made it (compiler, flags,
//! source, headers), so a second build compiles only what changed, and the same inputs
//! give the same component byte for byte (no debug info; callers map source paths to
//! fixed names with `-ffile-prefix-map`).

mod bindings;
mod compile;
mod digest;
mod link;
mod toolchain;

use std::path::PathBuf;

pub use bindings::{WitSource, generate_bindings};
pub use compile::{Unit, compile_units};
pub use digest::{digest_files, hash};
pub use link::link_component;
pub use toolchain::{APT_PACKAGES, CLANG_CANDIDATES, Toolchain};

/// Flags for every file: optimised, no debug info (reproducible, and a smaller module),
/// wasm SIMD for the auto-vectoriser (wasmtime enables it by default).
pub const COMMON_FLAGS: &[&str] = &["-O2", "-g0", "-msimd128"];

/// Why a C build did not make a component.
#[derive(Debug, thiserror::Error)]
pub enum CBuildError {
    #[error(
        "no clang that builds WebAssembly for WASI was found (tried {tried}); on Debian or Ubuntu install it with `sudo apt-get install {packages}`, or point SANDSCRIBE_CLANG at a clang with wasi-libc (e.g. wasi-sdk's)",
        packages = APT_PACKAGES.join(" ")
    )]
    NoToolchain { tried: String },
    #[error("cannot read the WIT in {origin}: {message}")]
    Wit { origin: String, message: String },
    #[error("wit-bindgen-c: {0}")]
    Bindgen(String),
    #[error("{compiler} failed on {}:\n{diagnostics}", file.display())]
    Compile {
        compiler: String,
        file: PathBuf,
        diagnostics: String,
    },
    #[error("linking {} failed:\n{diagnostics}", module.display())]
    Link {
        module: PathBuf,
        diagnostics: String,
    },
    #[error("cannot make a component of {}: {message}", module.display())]
    Componentize { module: PathBuf, message: String },
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// `map_err` helper: an I/O failure on `path`.
pub(crate) fn io(
    action: &'static str,
    path: &std::path::Path,
) -> impl FnOnce(std::io::Error) -> CBuildError {
    let path = path.to_owned();
    move |source| CBuildError::Io {
        action,
        path,
        source,
    }
}
