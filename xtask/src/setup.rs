//! `cargo xtask setup`: everything a run or a test needs, built or fetched once.
//!
//! Services the tests start for themselves (PostgreSQL) are installed only by
//! `cargo xtask setup` and `cargo xtask test`: `cargo xtask run` needs no database server.

use std::path::{Path, PathBuf};

use crate::assets;
use crate::cmd;
use crate::setup_c;

/// Test fixture plugins (tests/fixtures/<id>), built into target/fixture-plugins/<id>/.
pub const FIXTURES: &[&str] = &[
    "fakespeakers",
    "echo",
    "spin",
    "oom",
    "trap",
    "flood",
    "slow",
    "liar",
    "legacy",
    "badcompute",
];

/// What `--models` selects; `tiny` (English) is always installed.
pub struct Options {
    pub models: Vec<String>,
    /// Installs PostgreSQL (Debian's `postgresql`) unless its programs are there: the
    /// end-to-end tests start private servers from them. Default: on for `cargo xtask
    /// setup` and `cargo xtask test`, off for `run` and `bench`, which need no database.
    pub postgres: bool,
}

impl Options {
    /// Adds a model if it is not selected yet.
    pub fn add(&mut self, model: &str) {
        if !self.models.iter().any(|m| m == model) {
            self.models.push(model.to_owned());
        }
    }

    pub fn parse(args: &[String]) -> Self {
        let mut models = vec!["tiny".to_owned()];
        let mut iter = args.iter();
        while let Some(arg) = iter.next() {
            let value = match arg.strip_prefix("--models=") {
                Some(v) => Some(v.to_owned()),
                None if arg == "--models" => iter.next().cloned(),
                None => None,
            };
            if let Some(value) = value {
                for model in value.split(',').map(str::trim).filter(|m| !m.is_empty()) {
                    if !models.iter().any(|m| m == model) {
                        models.push(model.to_owned());
                    }
                }
            }
        }
        // Only the tests (and the cluster bench) need a database server; `run` never does.
        Self {
            models,
            postgres: false,
        }
    }
}

/// Where setup put things.
pub struct Paths {
    pub root: PathBuf,
    pub plugins: PathBuf,
    pub fixtures: PathBuf,
    pub speech: PathBuf,
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

pub fn setup(options: &Options) -> Result<Paths, String> {
    let root = workspace_root();
    let paths = Paths {
        plugins: root.join("plugins"),
        fixtures: root.join("target/fixture-plugins"),
        speech: root.join("target/speech"),
        root: root.clone(),
    };
    ensure_wasm_target()?;
    if options.postgres {
        ensure_postgres()?;
    }

    let mut build = cmd::cargo(&root);
    build.args([
        "build",
        "--release",
        "--target",
        "wasm32-wasip2",
        "-p",
        "sandscribe-whisper",
        "-p",
        "speakers",
    ]);
    for fixture in FIXTURES {
        build.args(["-p", &format!("fixture-{fixture}")]);
    }
    // Plugins ship without debug info: a 28 MB component shrinks to 2 MB, which loads
    // and compiles faster (wasm artifacts live in their own target folder, so the host's
    // build keeps its line tables).
    build
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_STRIP", "debuginfo");
    cmd::run(&mut build)?;
    let wasm_dir = root.join("target/wasm32-wasip2/release");
    for fixture in FIXTURES {
        install_file(
            &wasm_dir.join(format!("fixture_{fixture}.wasm")),
            &paths.fixtures.join(fixture).join("plugin.wasm"),
        )?;
    }

    let downloads = root.join("target/downloads");
    for model in &options.models {
        let spec = assets::whisper_model(model)
            .ok_or_else(|| format!("unknown model \"{model}\"; known: tiny, base"))?;
        let dir = paths.plugins.join(spec.id);
        assets::install_whisper(&spec, &downloads, &dir.join("assets"))?;
        install_file(
            &wasm_dir.join("sandscribe_whisper.wasm"),
            &dir.join("plugin.wasm"),
        )?;
    }
    crate::setup_speakers::install(&downloads, &paths.plugins, &wasm_dir)?;
    crate::setup_python::setup(&paths, &downloads)?;
    assets::install_speech(&downloads, &paths.speech)?;
    setup_c::install_pocketsphinx(&root, &downloads, &paths.plugins)?;

    cmd::run(cmd::cargo(&root).args(["build", "--release", "-p", "sandscribe"]))?;
    Ok(paths)
}

/// Installs Debian's PostgreSQL unless `initdb` is already where the test harness
/// (`tests/src/postgres.rs`) looks: `SANDSCRIBE_PG_BIN`, `/usr/lib/postgresql/*/bin`, PATH.
fn ensure_postgres() -> Result<(), String> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("SANDSCRIBE_PG_BIN")
        .map(PathBuf::from)
        .into_iter()
        .collect();
    let debian = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten();
    dirs.extend(debian.flatten().map(|entry| entry.path().join("bin")));
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    if dirs.iter().any(|dir| dir.join("initdb").is_file()) {
        return Ok(());
    }
    cmd::apt_install(
        &["postgresql"],
        "the end-to-end tests start PostgreSQL servers of their own",
    )
}

fn ensure_wasm_target() -> Result<(), String> {
    let installed =
        cmd::output(std::process::Command::new("rustup").args(["target", "list", "--installed"]))
            .unwrap_or_default();
    if installed.lines().any(|l| l.trim() == "wasm32-wasip2") {
        return Ok(());
    }
    cmd::run(std::process::Command::new("rustup").args(["target", "add", "wasm32-wasip2"]))
}

/// Copies `from` to `to` unless `to` already has the same bytes.
pub fn install_file(from: &Path, to: &Path) -> Result<(), String> {
    let bytes = std::fs::read(from).map_err(|e| format!("cannot read {}: {e}", from.display()))?;
    if std::fs::read(to).is_ok_and(|existing| existing == bytes) {
        return Ok(());
    }
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    std::fs::write(to, bytes).map_err(|e| format!("cannot write {}: {e}", to.display()))
}
