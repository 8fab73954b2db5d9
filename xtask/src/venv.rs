//! `target/venv`: the project's one virtualenv, shared by the Python plugin toolchain
//! (`plugin-sdk/python/requirements.txt`) and the OpenAI API tests
//! (`tests/openai/requirements.txt`).
//!
//! Each requirements file installs into the same environment and keeps its own stamp (a
//! copy of the file it installed), so each is installed again only when it changed, and
//! the two never make each other reinstall.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cmd;

/// The virtualenv's Python.
pub fn python(venv: &Path) -> PathBuf {
    if cfg!(windows) {
        venv.join("Scripts/python.exe")
    } else {
        venv.join("bin/python")
    }
}

/// Creates the virtualenv if needed and installs `requirements` into it, unless it
/// already holds exactly these requirements (`stamp`, a file name inside the venv, keeps
/// the copy they were installed from).
pub fn ensure(venv: &Path, requirements: &Path, stamp: &str) -> Result<(), String> {
    let wanted = read(requirements)?;
    let stamp = venv.join(stamp);
    if python(venv).is_file() && std::fs::read_to_string(&stamp).is_ok_and(|s| s == wanted) {
        return Ok(());
    }
    if !python(venv).is_file() {
        let system_python = if cfg!(windows) { "python" } else { "python3" };
        cmd::run(Command::new(system_python).arg("-m").arg("venv").arg(venv))?;
    }
    cmd::run(
        Command::new(python(venv))
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
            ])
            .arg(requirements),
    )?;
    std::fs::write(&stamp, &wanted).map_err(|e| format!("cannot write {}: {e}", stamp.display()))
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}
