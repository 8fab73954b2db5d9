//! Python plugins in `cargo xtask setup`: the pinned componentize-py in `target/venv`
//! (`plugin-sdk/python/requirements.txt`), and each example plugin written in Python
//! built with the SDK's `build.py` and installed into `plugins/<id>/` with its assets.
//!
//! A build takes about 15 s (componentize-py snapshots CPython with the plugin
//! imported), so it is skipped while its inputs (the plugin's and the SDK's sources,
//! the WIT package, the pinned toolchain) and the installed `plugin.wasm` are unchanged.

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::assets;
use crate::cmd;
use crate::setup::{Paths, install_file};
use crate::venv;

/// The copy of `plugin-sdk/python/requirements.txt` the venv was last installed from.
const STAMP: &str = ".sandscribe-installed-plugin-sdk";

/// An example plugin written in Python and the model whose weights it runs.
struct PythonPlugin {
    /// Its folder under `example-plugins/`.
    source: &'static str,
    /// The `assets::whisper_model` name of its weights.
    model: &'static str,
    /// Its id (the folder under `plugins/`): the model's id with `-py` appended, as the
    /// plugin's `info()` says.
    id: &'static str,
}

const PLUGINS: &[PythonPlugin] = &[PythonPlugin {
    source: "whisper-py",
    model: "tiny",
    id: "whisper-tiny-en-py",
}];

/// Installs the toolchain, then builds and installs every Python example plugin.
pub fn setup(paths: &Paths, downloads: &Path) -> Result<(), String> {
    let root = &paths.root;
    let sdk = root.join("plugin-sdk/python");
    let venv_dir = root.join("target/venv");
    venv::ensure(&venv_dir, &sdk.join("requirements.txt"), STAMP)?;
    for plugin in PLUGINS {
        let spec = assets::whisper_model(plugin.model)
            .ok_or_else(|| format!("unknown model \"{}\"", plugin.model))?;
        let dir = paths.plugins.join(plugin.id);
        assets::install_whisper(&spec, downloads, &dir.join("assets"))?;
        let built = build(root, &venv_dir, plugin)?;
        install_file(&built, &dir.join("plugin.wasm"))?;
    }
    Ok(())
}

/// Builds one plugin into `target/python-plugins/<id>/plugin.wasm` unless that file
/// was built from the current inputs; returns its path.
fn build(root: &Path, venv_dir: &Path, plugin: &PythonPlugin) -> Result<PathBuf, String> {
    let source = root.join("example-plugins").join(plugin.source);
    let out_dir = root.join("target/python-plugins").join(plugin.id);
    let output = out_dir.join("plugin.wasm");
    let stamp = out_dir.join("inputs.sha256");
    let inputs = inputs_hash(&[
        source.clone(),
        root.join("plugin-sdk/python"),
        root.join("wit/v0.2.0"),
    ])?;
    let output_hash = || {
        std::fs::read(&output)
            .ok()
            .map(|b| hex(&Sha256::digest(&b)))
    };
    let wanted = |out: &str| format!("{inputs} {out}");
    if let (Some(out), Ok(recorded)) = (output_hash(), std::fs::read_to_string(&stamp))
        && recorded == wanted(&out)
    {
        return Ok(output);
    }
    std::fs::create_dir_all(&out_dir)
        .map_err(|e| format!("cannot create {}: {e}", out_dir.display()))?;
    cmd::run(
        Command::new(venv::python(venv_dir))
            .arg(root.join("plugin-sdk/python/build.py"))
            .arg(&source)
            .arg("-o")
            .arg(&output),
    )?;
    let out =
        output_hash().ok_or_else(|| format!("build.py did not write {}", output.display()))?;
    std::fs::write(&stamp, wanted(&out))
        .map_err(|e| format!("cannot write {}: {e}", stamp.display()))?;
    Ok(output)
}

/// sha256 over the relative paths and contents of the source files (`.py`, `.wit`,
/// `.txt`) under `dirs`, in a fixed order.
fn inputs_hash(dirs: &[PathBuf]) -> Result<String, String> {
    let mut files = Vec::new();
    for dir in dirs {
        collect(dir, &mut files)?;
    }
    files.sort();
    let mut hasher = Sha256::new();
    for file in files {
        let bytes =
            std::fs::read(&file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        hasher.update(file.to_string_lossy().as_bytes());
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(&bytes);
    }
    Ok(hex(&hasher.finalize()))
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || name == "__pycache__" || name == "assets" {
            continue;
        }
        if path.is_dir() {
            collect(&path, files)?;
        } else if path
            .extension()
            .is_some_and(|e| e == "py" || e == "wit" || e == "txt")
        {
            files.push(path);
        }
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
