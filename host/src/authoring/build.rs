//! `sandscribe plugin build DIR`: from a plugin's sources to an installed
//! `plugins/<id>/` (`plugin.wasm`, its `plugin.toml` and its assets folder).
//!
//! The language's own step makes the component (Rust: cargo, see `cargo.rs`; Python: the
//! SDK's `build.py`, see `python.rs`; C: clang and wasi-libc, see `c.rs`); the rest is
//! the same for every language: the component is inspected as the loader would (so a
//! build that is no valid plugin fails here, not at the server), its id is taken from its
//! `info()`, and it is installed with `plugin.wasm` written atomically, so a server
//! reloading the folder never reads half a file.

use std::path::{Path, PathBuf};

use super::language::{LanguageError, PluginLanguage};
use super::python::PythonToolchain;
use crate::runtime::{Inspection, LoadError, Manifest, Runtime, is_plugin_id};

/// What to build, and where to install it.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    /// The plugin's source folder.
    pub source: PathBuf,
    /// The plugins folder the build is installed into (as `<id>/`).
    pub plugins_dir: PathBuf,
    /// The Python and Python SDK a Python plugin is built with.
    pub python: PythonToolchain,
}

/// A build installed.
#[derive(Debug)]
pub struct Built {
    pub language: PluginLanguage,
    pub id: String,
    /// The component the language's build produced.
    pub artifact: PathBuf,
    /// `plugins/<id>/`.
    pub installed: PathBuf,
    /// Whether `plugin.toml` and an assets folder were copied.
    pub manifest_copied: bool,
    pub assets_copied: Option<PathBuf>,
    /// Things the author should know that did not stop the build.
    pub notes: Vec<String>,
    pub inspection: Inspection,
}

/// Why a build did not install.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Language(#[from] LanguageError),
    #[error(transparent)]
    C(sandscribe_cbuild::CBuildError),
    #[error("cannot run cargo ({0}); install Rust from https://rustup.rs")]
    CargoMissing(std::io::Error),
    #[error("{0}")]
    Metadata(String),
    #[error(
        "{0} is a workspace without a package of its own; point `plugin build` at the plugin crate's folder"
    )]
    NotAPackage(PathBuf),
    #[error(
        "{0} does not build a cdylib, so cargo makes no WebAssembly component; add\n\n[lib]\ncrate-type = [\"cdylib\"]\n\nto it"
    )]
    NotCdylib(PathBuf),
    #[error(
        "cargo build failed ({0}); see its messages above. If it says the wasm32-wasip2 target is not installed, run `rustup target add wasm32-wasip2`"
    )]
    CargoFailed(String),
    #[error(
        "the Python SDK's build.py is not in {0}; pass --python-sdk with a sandscribe checkout's plugin-sdk/python"
    )]
    NoPythonSdk(PathBuf),
    #[error(
        "cannot run {python} ({reason}); install Python 3, or pass --python (or set SANDSCRIBE_PYTHON) to one that has componentize-py"
    )]
    PythonMissing { python: PathBuf, reason: String },
    #[error(
        "{python} has no componentize-py; install the pinned version with `{python} -m pip install -r {requirements}` (in a sandscribe checkout, `cargo xtask setup` makes target/venv with it), or pass --python (or set SANDSCRIBE_PYTHON) to a Python that has it",
        python = .python.display(),
        requirements = .requirements.display()
    )]
    NoComponentizePy {
        python: PathBuf,
        requirements: PathBuf,
    },
    #[error("build.py failed ({0}); see its messages above")]
    PythonFailed(String),
    #[error("cargo built the crate but reported no .wasm component for it")]
    NoArtifact,
    #[error("the build produced {artifact}, but it is not a valid plugin: {problem}")]
    NotAPlugin {
        artifact: PathBuf,
        problem: LoadError,
    },
    #[error(
        "the plugin's info() gives the id \"{0}\", which cannot name its folder: use lower-case letters, digits and '-'"
    )]
    BadId(String),
    #[error("{0}")]
    Manifest(String),
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> BuildError {
    let path = path.to_owned();
    move |source| BuildError::Io {
        action,
        path,
        source,
    }
}

/// Builds the plugin in `request.source` and installs it under `request.plugins_dir`.
/// `runtime` inspects the component (its `info()` runs under the runtime's limits).
pub fn build(runtime: &Runtime, request: &BuildRequest) -> Result<Built, BuildError> {
    // Absolute, since cargo runs in the folder and reads the manifest path from there.
    let source = &std::path::absolute(&request.source).map_err(io("find", &request.source))?;
    let language = PluginLanguage::detect(source)?;
    let artifact = match language {
        PluginLanguage::Rust => super::cargo::build(source)?,
        PluginLanguage::Python => super::python::build(source, &request.python)?,
        PluginLanguage::C => super::c::build(source)?,
    };
    let bytes = std::fs::read(&artifact).map_err(io("read", &artifact))?;
    let manifest = Manifest::read(source).map_err(BuildError::Manifest)?;
    let assets = manifest.assets_dir(source).map_err(BuildError::Manifest)?;
    let inspection = runtime.inspect(&bytes, assets.as_deref());
    if let Some(problem) = inspection.problem.clone() {
        return Err(BuildError::NotAPlugin { artifact, problem });
    }
    let id = inspection
        .meta
        .as_ref()
        .map(|m| m.id.clone())
        .unwrap_or_default();
    if !is_plugin_id(&id) {
        return Err(BuildError::BadId(id));
    }

    let installed = request.plugins_dir.join(&id);
    std::fs::create_dir_all(&installed).map_err(io("create", &installed))?;
    let wasm = installed.join("plugin.wasm");
    let partial = installed.join(".plugin.wasm.partial");
    std::fs::write(&partial, &bytes).map_err(io("write", &partial))?;
    std::fs::rename(&partial, &wasm).map_err(io("replace", &wasm))?;

    let mut notes = Vec::new();
    let manifest_path = source.join("plugin.toml");
    let manifest_copied = manifest_path.is_file();
    if manifest_copied {
        let target = installed.join("plugin.toml");
        std::fs::copy(&manifest_path, &target).map_err(io("copy", &manifest_path))?;
        if let Some(pin) = &manifest.sha256
            && !pin.eq_ignore_ascii_case(&inspection.sha256)
        {
            notes.push(format!(
                "plugin.toml pins sha256 {pin}, but this build has {}; the server refuses it until the pin is updated",
                inspection.sha256
            ));
        }
    }
    let assets_copied = match &assets {
        Some(folder) => {
            let relative = folder.strip_prefix(source).unwrap_or(Path::new("assets"));
            let target = installed.join(relative);
            if target.exists() {
                std::fs::remove_dir_all(&target).map_err(io("replace", &target))?;
            }
            copy_tree(folder, &target)?;
            Some(target)
        }
        None => None,
    };
    for warning in &inspection.schema_warnings {
        notes.push(format!("config-schema {warning}"));
    }
    Ok(Built {
        language,
        id,
        artifact,
        installed,
        manifest_copied,
        assets_copied,
        notes,
        inspection,
    })
}

/// Copies the folder `from` to `to` (files and sub-folders; links are followed).
fn copy_tree(from: &Path, to: &Path) -> Result<(), BuildError> {
    std::fs::create_dir_all(to).map_err(io("create", to))?;
    for entry in std::fs::read_dir(from).map_err(io("read", from))? {
        let entry = entry.map_err(io("read", from))?;
        let path = entry.path();
        let target = to.join(entry.file_name());
        if path.is_dir() {
            copy_tree(&path, &target)?;
        } else {
            std::fs::copy(&path, &target).map_err(io("copy", &path))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_c_plugin_missing_its_exports_fails_to_link_with_the_missing_symbol() {
        let runtime_dir = tempfile::tempdir().expect("a temporary folder");
        let runtime =
            Runtime::new(&crate::config::Limits::default(), runtime_dir.path()).expect("a runtime");
        let source = tempfile::tempdir().expect("a temporary folder");
        // Compiles, but defines none of the exports the bindings call.
        std::fs::write(source.path().join("vad.c"), "int unused;\n").expect("source");
        let err = build(
            &runtime,
            &BuildRequest {
                source: source.path().to_owned(),
                plugins_dir: source.path().join("plugins"),
                python: PythonToolchain::default(),
            },
        )
        .expect_err("no exports");
        let text = err.to_string();
        assert!(
            text.contains("exports_transcriber_info") || text.contains("toolchain"),
            "{text}"
        );
        assert!(!source.path().join("plugins").exists(), "nothing installed");
    }

    #[test]
    fn a_python_build_without_componentize_py_says_what_to_install() {
        let runtime_dir = tempfile::tempdir().expect("a temporary folder");
        let runtime =
            Runtime::new(&crate::config::Limits::default(), runtime_dir.path()).expect("a runtime");
        let source = tempfile::tempdir().expect("a temporary folder");
        std::fs::write(source.path().join("plugin.py"), "").expect("source");
        let err = build(
            &runtime,
            &BuildRequest {
                source: source.path().to_owned(),
                plugins_dir: source.path().join("plugins"),
                python: PythonToolchain {
                    python: Some(PathBuf::from("false")),
                    sdk: None,
                },
            },
        )
        .expect_err("no componentize-py");
        assert!(matches!(err, BuildError::NoComponentizePy { .. }), "{err}");
        assert!(!source.path().join("plugins").exists());
    }

    #[test]
    fn copy_tree_copies_nested_folders() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let from = dir.path().join("assets");
        std::fs::create_dir_all(from.join("model")).expect("folders");
        std::fs::write(from.join("model/weights.bin"), b"123").expect("file");
        std::fs::write(from.join("vocab.txt"), b"a b").expect("file");
        copy_tree(&from, &dir.path().join("copy")).expect("copied");
        assert_eq!(
            std::fs::read(dir.path().join("copy/model/weights.bin")).expect("copied file"),
            b"123"
        );
        assert!(dir.path().join("copy/vocab.txt").is_file());
    }
}
