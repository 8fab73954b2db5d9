//! Building a Python plugin folder (`plugin.py`): the Python SDK's `build.py`, which runs
//! componentize-py, with a Python that has it.
//!
//! The Python is `--python` (or `SANDSCRIBE_PYTHON`), else the virtualenv `cargo xtask
//! setup` makes beside the SDK (`<checkout>/target/venv`), else `python3` from the PATH.
//! It is asked for componentize-py first, so a missing toolchain is one clear message
//! rather than a traceback.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::build::BuildError;

/// Where a Python build finds its tools.
#[derive(Debug, Clone, Default)]
pub struct PythonToolchain {
    /// The Python to run `build.py` with (default: see the module's doc).
    pub python: Option<PathBuf>,
    /// The Python SDK, `plugin-sdk/python/` (default: the source tree's, when it is there).
    pub sdk: Option<PathBuf>,
}

impl PythonToolchain {
    /// The SDK folder holding `build.py`.
    fn sdk(&self) -> Result<PathBuf, BuildError> {
        let sdk = match &self.sdk {
            Some(sdk) => sdk.clone(),
            None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugin-sdk/python"),
        };
        // `--python-sdk` may name plugin-sdk/ itself.
        let sdk = if sdk.join("python/build.py").is_file() {
            sdk.join("python")
        } else {
            sdk
        };
        match sdk.canonicalize() {
            Ok(sdk) if sdk.join("build.py").is_file() => Ok(sdk),
            _ => Err(BuildError::NoPythonSdk(sdk)),
        }
    }

    /// The Python to run.
    fn python(&self, sdk: &Path) -> PathBuf {
        if let Some(python) = &self.python {
            return python.clone();
        }
        // <checkout>/plugin-sdk/python → <checkout>/target/venv
        if let Some(checkout) = sdk.parent().and_then(Path::parent) {
            let venv = checkout.join("target/venv");
            let python = if cfg!(windows) {
                venv.join("Scripts/python.exe")
            } else {
                venv.join("bin/python")
            };
            if python.is_file() {
                return python;
            }
        }
        PathBuf::from(if cfg!(windows) { "python" } else { "python3" })
    }
}

/// Builds the plugin in `dir` into `dir/build/plugin.wasm` and returns that path.
/// componentize-py's and `build.py`'s messages go to our stderr.
pub(super) fn build(dir: &Path, tools: &PythonToolchain) -> Result<PathBuf, BuildError> {
    let sdk = tools.sdk()?;
    let python = tools.python(&sdk);
    let requirements = sdk.join("requirements.txt");
    let cannot_run = |e: std::io::Error| BuildError::PythonMissing {
        python: python.clone(),
        reason: e.to_string(),
    };
    let probe = Command::new(&python)
        .args([
            "-c",
            "from importlib import metadata; print(metadata.version('componentize-py'))",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .output()
        .map_err(cannot_run)?;
    if !probe.status.success() {
        return Err(BuildError::NoComponentizePy {
            python: python.clone(),
            requirements,
        });
    }
    let output = dir.join("build/plugin.wasm");
    let status = Command::new(&python)
        .arg(sdk.join("build.py"))
        .arg(dir)
        .arg("-o")
        .arg(&output)
        .current_dir(dir)
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .status()
        .map_err(cannot_run)?;
    if !status.success() {
        return Err(BuildError::PythonFailed(status.to_string()));
    }
    Ok(output)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_source_trees_sdk_is_found_and_plugin_sdk_itself_is_accepted() {
        let found = PythonToolchain::default()
            .sdk()
            .expect("the source tree's SDK");
        assert!(found.join("build.py").is_file());
        let parent = found.parent().expect("plugin-sdk").to_owned();
        let given = PythonToolchain {
            sdk: Some(parent),
            ..Default::default()
        };
        assert_eq!(given.sdk().expect("plugin-sdk/ is accepted"), found);
    }

    #[test]
    fn a_missing_sdk_and_a_python_without_componentize_py_say_what_to_do() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let nowhere = PythonToolchain {
            sdk: Some(dir.path().join("nowhere")),
            ..Default::default()
        };
        let err = build(dir.path(), &nowhere).expect_err("no SDK");
        assert!(err.to_string().contains("--python-sdk"), "{err}");

        let missing = PythonToolchain {
            python: Some(dir.path().join("no-such-python")),
            ..Default::default()
        };
        let err = build(dir.path(), &missing).expect_err("no Python");
        assert!(err.to_string().contains("--python"), "{err}");

        // A Python that runs but has no componentize-py (here: one that always fails).
        let bare = PythonToolchain {
            python: Some(PathBuf::from("false")),
            ..Default::default()
        };
        let err = build(dir.path(), &bare).expect_err("no componentize-py");
        let text = err.to_string();
        assert!(
            text.contains("componentize-py") && text.contains("requirements.txt"),
            "{text}"
        );
    }
}
