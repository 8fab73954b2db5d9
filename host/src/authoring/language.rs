//! Which language a plugin folder is written in, from the files it holds.

use std::path::Path;

/// The languages a plugin can be written in. Each has its own scaffold and build step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PluginLanguage {
    /// A Cargo crate (`Cargo.toml`) built for `wasm32-wasip2` with the Rust SDK.
    Rust,
    /// A `plugin.py` componentized with the Python SDK.
    Python,
    /// C sources (`*.c`) compiled with clang for WASI (see `c.rs`).
    C,
}

/// Why a folder's language could not be told.
#[derive(Debug, thiserror::Error)]
pub enum LanguageError {
    #[error("cannot read the plugin folder {path}: {source}")]
    Read {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{0} holds no plugin sources: expected a Cargo.toml (Rust), a plugin.py (Python) or .c files (C); `sandscribe plugin new NAME --lang rust` (or `--lang python`, `--lang c`) makes one"
    )]
    Unknown(std::path::PathBuf),
}

impl PluginLanguage {
    /// The language of the plugin in `dir`: `Cargo.toml` means Rust, `plugin.py` Python,
    /// and `*.c` files C, in that order.
    pub fn detect(dir: &Path) -> Result<Self, LanguageError> {
        if dir.join("Cargo.toml").is_file() {
            return Ok(Self::Rust);
        }
        if dir.join("plugin.py").is_file() {
            return Ok(Self::Python);
        }
        let read = |source| LanguageError::Read {
            path: dir.to_owned(),
            source,
        };
        let has_c_sources = std::fs::read_dir(dir)
            .map_err(read)?
            .filter_map(Result::ok)
            .any(|e| e.path().extension().is_some_and(|x| x == "c"));
        if has_c_sources {
            return Ok(Self::C);
        }
        Err(LanguageError::Unknown(dir.to_owned()))
    }

    /// The name people use for it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Rust => "Rust",
            Self::Python => "Python",
            Self::C => "C",
        }
    }

    /// Where the guide for this language lives in the repository.
    pub fn guide(self) -> &'static str {
        match self {
            Self::Rust => "plugin-sdk/README.md",
            Self::Python => "plugin-sdk/README.md (its Python section)",
            Self::C => "plugin-sdk/README.md (its C section)",
        }
    }
}

impl std::fmt::Display for PluginLanguage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(files: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("a temporary folder");
        for file in files {
            std::fs::write(dir.path().join(file), "").expect("write a file");
        }
        dir
    }

    #[test]
    fn each_language_is_told_by_its_files() {
        let detect = |files: &[&str]| PluginLanguage::detect(folder(files).path()).ok();
        assert_eq!(detect(&["Cargo.toml"]), Some(PluginLanguage::Rust));
        assert_eq!(detect(&["plugin.py"]), Some(PluginLanguage::Python));
        assert_eq!(detect(&["vad.c"]), Some(PluginLanguage::C));
        assert_eq!(detect(&["vad.c", "Makefile"]), Some(PluginLanguage::C));
        // Cargo.toml wins: a Rust crate may carry C sources of its own.
        assert_eq!(
            detect(&["Cargo.toml", "vad.c", "build.sh"]),
            Some(PluginLanguage::Rust)
        );
    }

    #[test]
    fn a_folder_without_sources_is_no_plugin() {
        let dir = folder(&["README.md", "vad.h"]);
        let err = PluginLanguage::detect(dir.path()).expect_err("not a plugin");
        assert!(err.to_string().contains("plugin new"), "{err}");
    }
}
