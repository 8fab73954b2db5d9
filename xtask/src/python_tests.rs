//! The OpenAI-compatible API's tests: pytest with OpenAI's own Python client against the
//! real server, and the subtitle validators (PyPI `srt`, npm `webvtt-parser`); and the
//! webhooks' signatures, verified by Standard Webhooks' own library (PyPI
//! `standardwebhooks`); and the OpenAPI document, by `openapi-spec-validator` and
//! Schemathesis (PyPI) against the real server.
//!
//! Prepares, each step skipped when already done with the same inputs:
//! - `target/venv`: a virtualenv with `tests/openai/requirements.txt` installed;
//! - `tests/openai/node_modules`: `npm ci` from the committed `package-lock.json`;
//! - `target/export-samples`: SRT and WebVTT files for tricky transcripts, written by the
//!   host's real export writers (`host/examples/export-samples.rs`);
//!
//! then runs `pytest tests/openai`.

use std::process::Command;

use crate::cmd;
use crate::setup::Paths;
use crate::venv;

/// The copy of `tests/openai/requirements.txt` the venv was last installed from.
const STAMP: &str = ".sandscribe-installed";

pub fn run(paths: &Paths) -> Result<(), String> {
    let root = &paths.root;
    let tests = root.join("tests/openai");
    let venv = root.join("target/venv");
    venv::ensure(&venv, &tests.join("requirements.txt"), STAMP)?;
    cmd::npm_ci(&tests)?;

    let samples = root.join("target/export-samples");
    // Start empty, so no file of a case that no longer exists is validated.
    let _ = std::fs::remove_dir_all(&samples);
    let mut write_samples = cmd::cargo(root);
    write_samples
        .args(["run", "--release", "--quiet", "-p", "sandscribe"])
        .args(["--example", "export-samples", "--"])
        .arg(&samples);
    cmd::run(&mut write_samples)?;

    let mut pytest = Command::new(venv::python(&venv));
    pytest
        .args(["-m", "pytest", "-p", "no:cacheprovider", "-q"])
        .arg(&tests)
        .current_dir(root)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("SANDSCRIBE_BIN", root.join("target/release/sandscribe"))
        .env("SANDSCRIBE_SPEECH_DIR", &paths.speech)
        .env("SANDSCRIBE_FIXTURE_PLUGINS", &paths.fixtures)
        .env("SANDSCRIBE_PLUGINS", &paths.plugins)
        .env("SANDSCRIBE_EXPORT_SAMPLES", &samples);
    cmd::run(&mut pytest)
}
