//! The browser workflow's tests: real headless Chromium (Debian's `chromium`) driven by
//! npm `playwright-core`, against the real server with the real Whisper plugin.
//!
//! Prepares, each step skipped when already done:
//! - `/usr/bin/chromium`: `apt-get update` then `apt-get install chromium`, non-interactive;
//! - `tests/browser/node_modules`: `npm ci` from the committed `package-lock.json` (again
//!   whenever the lock file changes);
//!
//! then runs `node --test` on `tests/browser/tests/`. Screenshots of every step land in
//! `target/browser-screenshots/`.

use std::path::Path;
use std::process::Command;

use crate::cmd;
use crate::setup::Paths;

const CHROMIUM: &str = "/usr/bin/chromium";

/// Installs what the browser tests need (Chromium, playwright-core) and runs them.
pub fn run(paths: &Paths) -> Result<(), String> {
    let root = &paths.root;
    let tests = root.join("tests/browser");
    ensure_chromium()?;
    cmd::npm_ci(&tests)
        .map_err(|e| format!("{e}; the browser tests need Node.js 20 or newer with npm"))?;
    let screenshots = root.join("target/browser-screenshots");
    // Start empty, so every screenshot there is from this run.
    let _ = std::fs::remove_dir_all(&screenshots);
    let mut node = Command::new("node");
    node.args(["--test", "--test-concurrency=1", "tests/"])
        .current_dir(&tests)
        .env("SANDSCRIBE_BIN", root.join("target/release/sandscribe"))
        .env("SANDSCRIBE_SPEECH_DIR", &paths.speech)
        .env("SANDSCRIBE_FIXTURE_PLUGINS", &paths.fixtures)
        .env("SANDSCRIBE_PLUGINS", &paths.plugins)
        .env("SANDSCRIBE_SCREENSHOTS", &screenshots)
        .env("CHROMIUM", CHROMIUM);
    cmd::run(&mut node)
}

/// Installs Debian's Chromium unless it is there.
fn ensure_chromium() -> Result<(), String> {
    if Path::new(CHROMIUM).is_file() {
        return Ok(());
    }
    let apt = |args: &[&str]| {
        let mut command = Command::new("apt-get");
        command.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        cmd::run(&mut command).map_err(|e| {
            format!("{e}; the browser tests need Chromium at {CHROMIUM} (as root: apt-get install chromium)")
        })
    };
    apt(&["update", "-qq"])?;
    apt(&[
        "install",
        "-y",
        "-qq",
        "--no-install-recommends",
        "chromium",
    ])
}
