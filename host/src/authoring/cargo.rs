//! Building a Rust plugin crate: cargo, in release, for `wasm32-wasip2`.
//!
//! The crate must be a `cdylib` (a plain `lib` gives an rlib, which is no component), so
//! that is checked first from `cargo metadata`, with the fix in the message. The
//! component's path is read from cargo's own JSON messages rather than guessed, so a
//! `CARGO_TARGET_DIR`, a workspace or a `[lib] name` all work.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use super::build::BuildError;

/// The target every plugin is built for.
pub const TARGET: &str = "wasm32-wasip2";

/// The cargo to run: the one running us (`CARGO`, set by cargo for its children), else
/// `cargo` from the PATH.
fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Builds the crate whose manifest is `dir/Cargo.toml` and returns its component. Cargo's
/// progress and diagnostics go to our stderr.
pub(super) fn build(dir: &Path) -> Result<PathBuf, BuildError> {
    let manifest = dir.join("Cargo.toml");
    let metadata = cargo()
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .arg("--manifest-path")
        .arg(&manifest)
        .current_dir(dir)
        .stderr(Stdio::inherit())
        .output()
        .map_err(BuildError::CargoMissing)?;
    if !metadata.status.success() {
        return Err(BuildError::Metadata(format!(
            "cargo metadata failed ({}); is {} a valid Cargo.toml?",
            metadata.status,
            manifest.display()
        )));
    }
    let metadata: Value = serde_json::from_slice(&metadata.stdout)
        .map_err(|e| BuildError::Metadata(format!("cargo metadata printed no JSON: {e}")))?;
    let package_id = cdylib_package(&metadata, &manifest)?;

    let mut child = cargo()
        .args(["build", "--release", "--target", TARGET])
        .args(["--message-format", "json-render-diagnostics"])
        .arg("--manifest-path")
        .arg(&manifest)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(BuildError::CargoMissing)?;
    let mut artifact = None;
    if let Some(stdout) = child.stdout.take() {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(found) = wasm_artifact(&line, &package_id) {
                artifact = Some(found);
            }
        }
    }
    let status = child.wait().map_err(BuildError::CargoMissing)?;
    if !status.success() {
        return Err(BuildError::CargoFailed(status.to_string()));
    }
    artifact.ok_or(BuildError::NoArtifact)
}

/// The kinds of a crate's library target (its binaries, tests and build script are not).
const LIBRARY_KINDS: [&str; 5] = ["lib", "rlib", "dylib", "cdylib", "staticlib"];

/// The id of the package `manifest` describes, when its library is a `cdylib`.
fn cdylib_package(metadata: &Value, manifest: &Path) -> Result<String, BuildError> {
    let wanted = manifest
        .canonicalize()
        .unwrap_or_else(|_| manifest.to_owned());
    let package = metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| {
            p["manifest_path"]
                .as_str()
                .map(|m| Path::new(m).canonicalize().unwrap_or_else(|_| m.into()))
                == Some(wanted.clone())
        })
        .ok_or_else(|| BuildError::NotAPackage(manifest.to_owned()))?;
    let crate_types: Vec<&str> = package["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| {
            t["kind"]
                .as_array()
                .is_some_and(|kinds| kinds.iter().any(|k| LIBRARY_KINDS.iter().any(|l| k == l)))
        })
        .flat_map(|t| t["crate_types"].as_array().into_iter().flatten())
        .filter_map(Value::as_str)
        .collect();
    if !crate_types.contains(&"cdylib") {
        return Err(BuildError::NotCdylib(manifest.to_owned()));
    }
    package["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| BuildError::Metadata("cargo metadata gave a package without an id".into()))
}

/// The `.wasm` file of `package_id`'s cdylib, when `line` is cargo's message about it.
fn wasm_artifact(line: &str, package_id: &str) -> Option<PathBuf> {
    let message: Value = serde_json::from_str(line).ok()?;
    if message["reason"] != "compiler-artifact" || message["package_id"] != package_id {
        return None;
    }
    let is_cdylib = message["target"]["crate_types"]
        .as_array()
        .is_some_and(|types| types.iter().any(|t| t == "cdylib"));
    if !is_cdylib {
        return None;
    }
    message["filenames"]
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .find(|f| f.ends_with(".wasm"))
        .map(PathBuf::from)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn metadata(manifest: &str, crate_types: &[&str]) -> Value {
        json!({"packages": [{
            "id": "path+file:///p#vad@0.1.0",
            "manifest_path": manifest,
            "targets": [
                {"kind": crate_types, "crate_types": crate_types, "name": "vad"},
                {"kind": ["test"], "crate_types": ["bin"], "name": "it"}
            ]
        }]})
    }

    #[test]
    fn a_cdylib_crate_is_accepted() {
        let found = cdylib_package(
            &metadata("/p/Cargo.toml", &["cdylib"]),
            Path::new("/p/Cargo.toml"),
        );
        assert_eq!(found.ok().as_deref(), Some("path+file:///p#vad@0.1.0"));
        let both = cdylib_package(
            &metadata("/p/Cargo.toml", &["rlib", "cdylib"]),
            Path::new("/p/Cargo.toml"),
        );
        assert!(both.is_ok());
    }

    #[test]
    fn a_plain_lib_is_told_to_become_a_cdylib() {
        let err = cdylib_package(
            &metadata("/p/Cargo.toml", &["lib"]),
            Path::new("/p/Cargo.toml"),
        )
        .expect_err("refused");
        assert!(matches!(err, BuildError::NotCdylib(_)));
        assert!(
            err.to_string().contains(r#"crate-type = ["cdylib"]"#),
            "{err}"
        );
    }

    #[test]
    fn a_virtual_manifest_is_no_package() {
        let err = cdylib_package(&json!({"packages": []}), Path::new("/p/Cargo.toml"))
            .expect_err("refused");
        assert!(matches!(err, BuildError::NotAPackage(_)), "{err}");
    }

    #[test]
    fn the_component_is_read_from_cargos_artifact_message() {
        let id = "path+file:///p#vad@0.1.0";
        let line = json!({
            "reason": "compiler-artifact",
            "package_id": id,
            "target": {"crate_types": ["cdylib"], "kind": ["cdylib"]},
            "filenames": ["/t/wasm32-wasip2/release/vad.wasm"]
        })
        .to_string();
        assert_eq!(
            wasm_artifact(&line, id),
            Some(PathBuf::from("/t/wasm32-wasip2/release/vad.wasm"))
        );
        assert_eq!(wasm_artifact(&line, "another"), None);
        assert_eq!(wasm_artifact("Compiling vad", id), None);
        let dependency = json!({
            "reason": "compiler-artifact",
            "package_id": id,
            "target": {"crate_types": ["lib"]},
            "filenames": ["/t/libserde.rlib"]
        })
        .to_string();
        assert_eq!(wasm_artifact(&dependency, id), None);
    }
}
