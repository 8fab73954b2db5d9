//! The author's tools, run as an author runs them: `plugin new` makes a Rust plugin that
//! builds as it is, outside this workspace, depending on the SDK by absolute path;
//! `plugin build` installs it; `plugins validate` passes it; a server with it transcribes
//! tone and silence into one segment per tone. `plugins inspect` and `plugins validate`
//! refuse what is no plugin (a text file, a core module, a plugin of a WIT version the
//! server does not serve, a plugin under another name, one that panics in `info()`) with
//! the reason and a non-zero exit; schema mistakes are reported each with its JSON path;
//! a panic is reported with where it happened; `plugins list` and `transcribe --verbose`
//! say what an author needs to see. `plugin new --lang python` (and `--lang c`) makes the
//! same detector in Python (C), which `plugin build` builds with componentize-py (clang and
//! wasi-libc) and a server runs alike.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use sandscribe_e2e::{
    Server, ServerOptions, fixture_wasm, server_binary, sine, target_dir, wav, workspace_root,
};
use serde_json::json;

/// What one run of the binary did.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn assert_ok(&self, what: &str) -> &Self {
        assert_eq!(self.code, Some(0), "{what} failed:\n{self}");
        self
    }

    fn assert_failed(&self, what: &str) -> &Self {
        assert!(
            self.code.is_some_and(|c| c != 0),
            "{what} should exit non-zero:\n{self}"
        );
        self
    }

    /// Asserts that stdout holds each of `expected`.
    fn assert_stdout(&self, expected: &[&str]) -> &Self {
        for text in expected {
            assert!(self.stdout.contains(text), "{text:?} on stdout:\n{self}");
        }
        self
    }

    /// Asserts that stderr holds each of `expected`.
    fn assert_stderr(&self, expected: &[&str]) -> &Self {
        for text in expected {
            assert!(self.stderr.contains(text), "{text:?} on stderr:\n{self}");
        }
        self
    }

    /// Asserts that the first failed smoke job's line of `plugins validate` holds each of
    /// `expected`.
    fn assert_smoke_failure(&self, expected: &[&str]) -> &Self {
        let failure = self
            .stdout
            .lines()
            .find(|l| l.starts_with("FAIL  smoke job"))
            .unwrap_or_default();
        for text in expected {
            assert!(
                failure.contains(text),
                "{text:?} in the smoke job's failure:\n{self}"
            );
        }
        self
    }

    /// Everything it printed.
    fn output(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs `sandscribe ARGS` in `cwd` (so nothing lands in the repository).
fn sandscribe<I, S>(cwd: &Path, args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(server_binary())
        .args(args)
        .current_dir(cwd)
        // A warm, shared build folder for the plugin crates the tests build.
        .env("CARGO_TARGET_DIR", target_dir())
        .env_remove("RUST_LOG")
        .output()
        .expect("the sandscribe binary runs");
    Run {
        code: status.code(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// `sandscribe ARGS --data CWD/data`: a command that reads the server's config, with a
/// data folder of its own.
fn tool(cwd: &Path, args: &[&OsStr]) -> Run {
    let data = cwd.join("data");
    let mut args = args.to_vec();
    args.extend([OsStr::new("--data"), data.as_os_str()]);
    sandscribe(cwd, args)
}

/// A scaffold made with `plugin new` and installed with `plugin build`.
struct Scaffold {
    /// Holds the sources, the plugins folder and the data folder.
    dir: tempfile::TempDir,
    id: String,
}

impl Scaffold {
    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn source(&self) -> PathBuf {
        self.root().join(&self.id)
    }

    fn plugins(&self) -> PathBuf {
        self.root().join("plugins")
    }

    fn installed(&self) -> PathBuf {
        self.plugins().join(&self.id)
    }
}

/// `plugin new ID` in a fresh folder outside the workspace, with `edit` applied to its
/// `src/lib.rs`.
fn scaffold(id: &str, edit: impl FnOnce(String) -> String) -> Scaffold {
    let dir = tempfile::Builder::new()
        .prefix("sandscribe-author-")
        .tempdir()
        .expect("a temporary folder");
    let scaffold = Scaffold {
        dir,
        id: id.to_owned(),
    };
    assert!(
        !scaffold.root().starts_with(workspace_root()),
        "the scaffold must live outside the workspace"
    );
    let sdk = workspace_root().join("plugin-sdk");
    sandscribe(
        scaffold.root(),
        [
            OsStr::new("plugin"),
            OsStr::new("new"),
            OsStr::new(id),
            OsStr::new("--lang"),
            OsStr::new("rust"),
            OsStr::new("--dir"),
            scaffold.root().as_os_str(),
            OsStr::new("--sdk"),
            sdk.as_os_str(),
        ],
    )
    .assert_ok("plugin new");
    let manifest =
        std::fs::read_to_string(scaffold.source().join("Cargo.toml")).expect("Cargo.toml");
    assert!(
        manifest.contains(&format!("path = \"{}\"", sdk.display())),
        "the scaffold depends on the SDK by absolute path:\n{manifest}"
    );
    let lib = scaffold.source().join("src/lib.rs");
    let text = std::fs::read_to_string(&lib).expect("src/lib.rs");
    std::fs::write(&lib, edit(text)).expect("edit src/lib.rs");
    scaffold
}

/// `plugin build` of a scaffold into its own `plugins/`.
fn build(scaffold: &Scaffold) -> Run {
    tool(
        scaffold.root(),
        &[
            OsStr::new("plugin"),
            OsStr::new("build"),
            scaffold.source().as_os_str(),
            OsStr::new("--plugins"),
            scaffold.plugins().as_os_str(),
        ],
    )
}

/// The component cargo made for a scaffold (there even when `plugin build` refused it).
fn artifact(scaffold: &Scaffold) -> PathBuf {
    target_dir()
        .join("wasm32-wasip2/release")
        .join(format!("{}.wasm", scaffold.id.replace('-', "_")))
}

/// [`scaffold`], then a `plugin build` that must succeed.
fn scaffold_and_build(id: &str, edit: impl FnOnce(String) -> String) -> Scaffold {
    let scaffold = scaffold(id, edit);
    let built = build(&scaffold);
    built.assert_ok("plugin build");
    assert!(
        built
            .stdout
            .contains(&format!("built {id} 0.1.0 (Rust, WIT 0.3.0)")),
        "{built}"
    );
    scaffold
}

/// The Rust template as it is, built once for the tests that use it.
fn template() -> &'static Scaffold {
    static BUILT: OnceLock<Scaffold> = OnceLock::new();
    BUILT.get_or_init(|| scaffold_and_build("tone-vad", |text| text))
}

/// `plugins validate DIR` with its own data folder.
fn validate(scaffold_root: &Path, folder: &Path) -> Run {
    tool(
        scaffold_root,
        &[
            OsStr::new("plugins"),
            OsStr::new("validate"),
            folder.as_os_str(),
        ],
    )
}

/// `plugins inspect FILE` with its own data folder.
fn inspect(cwd: &Path, file: &Path) -> Run {
    tool(
        cwd,
        &[
            OsStr::new("plugins"),
            OsStr::new("inspect"),
            file.as_os_str(),
        ],
    )
}

/// Installs the fixture `fixture` as `plugins/<as_id>/` under `root`.
fn install_fixture(root: &Path, fixture: &str, as_id: &str) -> PathBuf {
    let folder = root.join("plugins").join(as_id);
    std::fs::create_dir_all(&folder).expect("plugin folder");
    std::fs::copy(fixture_wasm(fixture), folder.join("plugin.wasm")).expect("copy fixture");
    folder
}

/// A server with `plugins` runs the template `id` on three tones with silence between
/// them: three segments, one per tone.
fn transcribes_one_segment_per_tone(plugins: &Path, id: &str) {
    let rate = 16_000;
    let silence = vec![0_i16; rate as usize];
    let mut samples = Vec::new();
    for _ in 0..3 {
        samples.extend(sine(1_000, rate, 0.5));
        samples.extend(&silence);
    }
    let server = Server::start(ServerOptions::new().plugins_dir(plugins.to_owned()));
    let job = server.run_job(id, &wav(&samples, rate), &json!({}));
    assert_eq!(job["status"], "completed", "{job:#}");
    let texts: Vec<&str> = job["result"]["transcript"]["segments"]
        .as_array()
        .expect("segments")
        .iter()
        .map(|s| s["text"].as_str().expect("text"))
        .collect();
    assert_eq!(
        texts,
        [
            "[speech 0.0–1.0 s]",
            "[speech 2.0–3.0 s]",
            "[speech 4.0–5.0 s]"
        ],
        "{job:#}"
    );
}

#[test]
fn the_rust_template_builds_outside_the_workspace_validates_and_transcribes_each_tone() {
    let scaffold = template();
    let installed = scaffold.installed();
    assert!(installed.join("plugin.wasm").is_file());
    assert!(
        installed.join("plugin.toml").is_file(),
        "plugin build copies the manifest"
    );

    let validated = validate(scaffold.root(), &installed);
    validated.assert_ok("plugins validate");
    validated.assert_stdout(&[
        "PASS  loads as the server loads it: tone-vad 0.1.0 (WIT 0.3.0)",
        "PASS  config-schema: valid, defaults valid, no unknown keywords",
        "PASS  smoke job on generated",
        "2 segment(s)",
        "[speech 0.5–1.5 s]",
        "[speech 2.5–3.5 s]",
        "peak memory",
        "validation passed",
    ]);

    transcribes_one_segment_per_tone(&scaffold.plugins(), &scaffold.id);
}

/// `plugin new --lang LANG`, `plugin build` without extra options, `plugins validate`,
/// and a server run of the result: what the README promises for every template but Rust's
/// (whose own test also builds it outside the workspace).
fn template_builds_validates_and_transcribes_each_tone(
    lang: &str,
    language: &str,
    id: &str,
    made: &[&str],
) {
    let dir = tempfile::Builder::new()
        .prefix(&format!("sandscribe-author-{lang}-"))
        .tempdir()
        .expect("a temporary folder");
    let root = dir.path();
    sandscribe(
        root,
        [
            OsStr::new("plugin"),
            OsStr::new("new"),
            OsStr::new(id),
            OsStr::new("--lang"),
            OsStr::new(lang),
            OsStr::new("--dir"),
            root.as_os_str(),
        ],
    )
    .assert_ok(&format!("plugin new --lang {lang}"));
    let source = root.join(id);
    for file in made.iter().chain(&["plugin.toml"]) {
        assert!(source.join(file).is_file(), "the scaffold has {file}");
    }

    // Python: SANDSCRIBE_PYTHON if the caller set one, else the source tree's target/venv,
    // found by the binary itself. C: SANDSCRIBE_CLANG, else Debian's clang-19.
    let plugins = root.join("plugins");
    let built = tool(
        root,
        &[
            OsStr::new("plugin"),
            OsStr::new("build"),
            source.as_os_str(),
            OsStr::new("--plugins"),
            plugins.as_os_str(),
        ],
    );
    built
        .assert_ok(&format!("plugin build of the {language} template"))
        .assert_stdout(&[&format!("built {id} 0.1.0 ({language}, WIT 0.2.0)")]);
    let installed = plugins.join(id);
    assert!(installed.join("plugin.wasm").is_file());
    assert!(installed.join("plugin.toml").is_file());
    assert!(
        !installed.join(".plugin.wasm.partial").exists(),
        "plugin.wasm is written atomically"
    );

    validate(root, &installed)
        .assert_ok(&format!("plugins validate of the {language} template"))
        .assert_stdout(&[
            &format!("PASS  loads as the server loads it: {id} 0.1.0 (WIT 0.2.0)"),
            "PASS  config-schema: valid, defaults valid, no unknown keywords",
            "PASS  smoke job on generated",
            "[speech 0.5–1.5 s]",
            "[speech 2.5–3.5 s]",
            "validation passed",
        ]);

    transcribes_one_segment_per_tone(&plugins, id);
}

#[test]
fn the_python_template_builds_validates_and_transcribes_each_tone() {
    template_builds_validates_and_transcribes_each_tone(
        "python",
        "Python",
        "py-tone-vad",
        &["plugin.py"],
    );
}

#[test]
fn the_c_template_builds_validates_and_transcribes_each_tone() {
    template_builds_validates_and_transcribes_each_tone(
        "c",
        "C",
        "c-tone-vad",
        &["plugin.c", "schema.json"],
    );
}

#[test]
fn plugin_build_shows_the_c_compilers_error_and_installs_nothing() {
    let dir = tempfile::Builder::new()
        .prefix("sandscribe-author-c-bad-")
        .tempdir()
        .expect("a temporary folder");
    let root = dir.path();
    let source = root.join("broken");
    std::fs::create_dir_all(&source).expect("folder");
    std::fs::write(source.join("plugin.c"), "int broken( {\n").expect("write");
    let plugins = root.join("plugins");
    tool(
        root,
        &[
            OsStr::new("plugin"),
            OsStr::new("build"),
            source.as_os_str(),
            OsStr::new("--plugins"),
            plugins.as_os_str(),
        ],
    )
    .assert_failed("plugin build of a C file that does not compile")
    .assert_stderr(&["failed on", "plugin.c", "error:"]);
    assert!(!plugins.exists(), "nothing installed");
}

#[test]
fn inspect_shows_the_built_plugins_contract_and_info() {
    let scaffold = template();
    let found = inspect(scaffold.root(), &scaffold.installed().join("plugin.wasm"));
    found.assert_ok("inspect");
    found.assert_stdout(&[
        "WebAssembly component, compiled in",
        "sandscribe:plugin@0.3.0",
        "sandscribe:plugin/host@0.3.0 (instance)",
        "transcribe (function)",
        "id            tone-vad",
        "sample rate   16000 Hz",
        "\"threshold_db\"",
        "a valid plugin; install it as plugins/tone-vad/plugin.wasm",
    ]);
}

#[test]
fn inspect_says_the_legacy_fixture_is_a_valid_0_1_0_plugin() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let found = inspect(dir.path(), &fixture_wasm("legacy"));
    found
        .assert_ok("inspect legacy")
        .assert_stdout(&["WIT           sandscribe:plugin@0.1.0", "a valid plugin"]);
}

#[test]
fn inspect_refuses_a_text_file_and_a_core_module_with_the_reason() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let text = dir.path().join("notes.wasm");
    std::fs::write(&text, "just some text\n").expect("text file");
    let found = inspect(dir.path(), &text);
    found
        .assert_failed("inspect of a text file")
        .assert_stdout(&["is not WebAssembly"]);

    // The smallest core module: magic and version 1, no sections.
    let module = dir.path().join("module.wasm");
    std::fs::write(&module, b"\0asm\x01\0\0\0").expect("core module");
    let found = inspect(dir.path(), &module);
    found
        .assert_failed("inspect of a core module")
        .assert_stdout(&["core WebAssembly module, not a component", "wasm32-wasip2"]);
}

#[test]
fn validate_refuses_a_plugin_installed_under_another_name() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let folder = install_fixture(dir.path(), "liar", "not-liar");
    let validated = validate(dir.path(), &folder);
    validated
        .assert_failed("validate of a misnamed plugin")
        .assert_stdout(&[
            "FAIL  loads as the server loads it",
            "calls itself \"liar\"",
        ]);
}

#[test]
fn validate_fails_a_panicking_fixture_and_says_where_it_panicked() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let folder = install_fixture(dir.path(), "trap", "trap");
    let validated = validate(dir.path(), &folder);
    validated
        .assert_failed("validate of the trap fixture")
        .assert_stdout(&["FAIL  smoke job on generated"]);
    // Built with Rust's default panic hook or the SDK's, the failure itself names the place.
    validated.assert_smoke_failure(&[
        "the plugin crashed: panicked at tests/fixtures/trap/src/lib.rs:",
        "panics on purpose",
    ]);
}

#[test]
fn a_panic_in_an_sdk_plugin_fails_the_job_with_the_panics_location() {
    let scaffold = scaffold_and_build("panic-vad", |text| {
        let marker = "        let frame_len =";
        assert!(
            text.contains(marker),
            "the template changed: update this test"
        );
        text.replacen(
            marker,
            &format!("        panic!(\"the author's plugin panics\");\n        #[allow(unreachable_code)]\n{marker}"),
            1,
        )
    });
    let validated = validate(scaffold.root(), &scaffold.installed());
    // The failure says where the plugin panicked.
    validated
        .assert_failed("validate of a panicking plugin")
        .assert_smoke_failure(&[
            "the plugin crashed: panicked at src/lib.rs:",
            "the author's plugin panics",
        ]);
    // The SDK's hook logged it as an error through the host.
    validated.assert_stdout(&["error: panicked at src/lib.rs:"]);
    // A server's job fails with the same place in its message.
    let server = Server::start(ServerOptions::new().plugins_dir(scaffold.plugins()));
    let job = server.run_job(
        &scaffold.id,
        &wav(&sine(500, 16_000, 0.5), 16_000),
        &json!({}),
    );
    assert_eq!(job["error"]["kind"], "plugin_trap", "{job:#}");
    let message = job["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("panicked at src/lib.rs:")
            && message.contains("the author's plugin panics"),
        "{job:#}"
    );
}

#[test]
fn validate_on_plugin_sources_points_to_plugin_build() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    std::fs::write(dir.path().join("Cargo.toml"), "[package]\nname = \"x\"\n").expect("manifest");
    let validated = validate(dir.path(), dir.path());
    validated
        .assert_failed("validate of sources")
        .assert_stderr(&["sandscribe plugin build"]);
}

#[test]
fn plugin_build_tells_a_crate_without_cdylib_how_to_fix_it() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let source = dir.path().join("plain-lib");
    std::fs::create_dir_all(source.join("src")).expect("crate folder");
    std::fs::write(
        source.join("Cargo.toml"),
        "[package]\nname = \"plain-lib\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[workspace]\n",
    )
    .expect("manifest");
    std::fs::write(source.join("src/lib.rs"), "").expect("lib.rs");
    let built = tool(
        dir.path(),
        &[
            OsStr::new("plugin"),
            OsStr::new("build"),
            source.as_os_str(),
            OsStr::new("--plugins"),
            dir.path().join("plugins").as_os_str(),
        ],
    );
    built
        .assert_failed("plugin build of a plain lib")
        .assert_stderr(&["does not build a cdylib", "crate-type = [\"cdylib\"]"]);
}

#[test]
fn plugins_list_exits_non_zero_and_prints_each_failure_once() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    install_fixture(dir.path(), "echo", "echo");
    let broken = dir.path().join("plugins/broken");
    std::fs::create_dir_all(&broken).expect("folder");
    std::fs::write(broken.join("plugin.wasm"), b"\0asm\x01\0\0\0").expect("core module");
    let listed = tool(
        dir.path(),
        &[
            OsStr::new("plugins"),
            OsStr::new("list"),
            OsStr::new("--plugins"),
            dir.path().join("plugins").as_os_str(),
        ],
    );
    listed
        .assert_failed("plugins list with a failure")
        .assert_stdout(&["echo "]);
    assert_eq!(
        listed.output().matches("core WebAssembly module").count(),
        1,
        "the failure is printed exactly once:\n{listed}"
    );
}

#[test]
fn transcribe_verbose_streams_the_plugins_log_progress_and_live_segments() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    // The legacy fixture uses every host import: log, progress, live segments.
    install_fixture(dir.path(), "legacy", "legacy");
    let clip = dir.path().join("tone.wav");
    std::fs::write(&clip, wav(&sine(2_000, 16_000, 0.5), 16_000)).expect("clip");
    let run = tool(
        dir.path(),
        &[
            OsStr::new("transcribe"),
            clip.as_os_str(),
            OsStr::new("--plugin"),
            OsStr::new("legacy"),
            OsStr::new("--verbose"),
            OsStr::new("--plugins"),
            dir.path().join("plugins").as_os_str(),
        ],
    );
    run.assert_ok("transcribe --verbose").assert_stderr(&[
        "log info  legacy plugin: 32000 frames",
        "progress  50% listening",
    ]);
    assert_eq!(
        run.stderr.matches("segment  ").count(),
        2,
        "a 2 s clip read a second at a time streams two live segments:\n{run}"
    );
}

#[test]
fn inspect_and_validate_refuse_a_plugin_of_a_wit_version_this_server_does_not_serve() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    // The echo fixture with its sandscribe imports renamed to 0.9.0 (same length, so the
    // component stays well-formed).
    let mut bytes = std::fs::read(fixture_wasm("echo")).expect("echo fixture");
    let prefix = b"sandscribe:plugin/";
    let mut patched = 0;
    let mut at = 0;
    while let Some(found) = bytes[at..].windows(prefix.len()).position(|w| w == prefix) {
        let start = at + found + prefix.len();
        let name_end = start + bytes[start..].iter().position(|&b| b == b'@').unwrap_or(0);
        if bytes[name_end..].starts_with(b"@0.3.0") {
            bytes[name_end + 1..name_end + 6].copy_from_slice(b"0.9.0");
            patched += 1;
        }
        at = start;
    }
    assert!(
        patched > 0,
        "the echo fixture imports sandscribe:plugin@0.3.0"
    );
    let folder = dir.path().join("plugins/echo");
    std::fs::create_dir_all(&folder).expect("plugin folder");
    std::fs::write(folder.join("plugin.wasm"), &bytes).expect("patched fixture");

    let found = inspect(dir.path(), &folder.join("plugin.wasm"));
    found
        .assert_failed("inspect of a 0.9.0 plugin")
        .assert_stdout(&["built against sandscribe:plugin@0.9.0, but this server serves"]);
    // It still lists what the component imports.
    found.assert_stdout(&["sandscribe:plugin/host@0.9.0"]);

    let validated = validate(dir.path(), &folder);
    validated
        .assert_failed("validate of a 0.9.0 plugin")
        .assert_stdout(&[
            "FAIL  loads as the server loads it",
            "sandscribe:plugin@0.9.0",
        ]);
}

#[test]
fn a_plugin_that_panics_in_info_is_refused_with_where_it_panicked() {
    let scaffold = scaffold("info-panic", |text| {
        let marker = "    fn info() -> PluginInfo {\n";
        assert!(
            text.contains(marker),
            "the template changed: update this test"
        );
        text.replacen(
            marker,
            &format!(
                "{marker}        if std::hint::black_box(true) {{\n            panic!(\"info cannot start\");\n        }}\n"
            ),
            1,
        )
    });
    let built = build(&scaffold);
    built
        .assert_failed("plugin build of a plugin that panics in info()")
        .assert_stderr(&["info()", "panicked at src/lib.rs:"]);

    let found = inspect(scaffold.root(), &artifact(&scaffold));
    found
        .assert_failed("inspect of a plugin that panics in info()")
        .assert_stdout(&[
            "not a valid plugin: the plugin's info()",
            "panicked at src/lib.rs:",
            "info cannot start",
        ]);

    let folder = scaffold.installed();
    std::fs::create_dir_all(&folder).expect("plugin folder");
    std::fs::copy(artifact(&scaffold), folder.join("plugin.wasm")).expect("install by hand");
    let validated = validate(scaffold.root(), &folder);
    validated
        .assert_failed("validate of a plugin that panics in info()")
        .assert_stdout(&["FAIL  loads as the server loads it", "info cannot start"]);
}

#[test]
fn schema_mistakes_are_reported_each_with_its_json_path() {
    let scaffold = scaffold("schema-slips", |text| {
        let edits = [
            // A misspelt keyword: ignored by JSON Schema, so a warning.
            (
                r#""frame_ms": {"type": "integer", "minimum": 5"#,
                r#""frame_ms": {"type": "integer", "minimun": 5"#,
            ),
            // Two defaults that break their own bounds: errors, both reported.
            (
                r#""minimum": -100, "maximum": 0, "default": -35"#,
                r#""minimum": -100, "maximum": 0, "default": -135"#,
            ),
            (
                r#""maximum": 10000, "default": 200"#,
                r#""maximum": 10000, "default": 20000"#,
            ),
        ];
        edits.iter().fold(text, |text, (from, to)| {
            assert!(
                text.contains(from),
                "the template changed: update this test ({from})"
            );
            text.replacen(from, to, 1)
        })
    });
    let built = build(&scaffold);
    built
        .assert_failed("plugin build with a broken schema")
        .assert_stderr(&[
            "config-schema has 2 problem(s)",
            "/properties/threshold_db/default",
            "/properties/min_speech_ms/default",
        ]);

    let found = inspect(scaffold.root(), &artifact(&scaffold));
    found.assert_failed("inspect with a broken schema");
    found.assert_stdout(&[
        "schema error  /properties/threshold_db/default: the default breaks its own schema",
        "schema error  /properties/min_speech_ms/default: the default breaks its own schema",
        "schema warn   /properties/frame_ms/minimun: unknown keyword `minimun`",
        "did you mean `minimum`?",
    ]);
    assert_eq!(found.stdout.matches("schema error").count(), 2, "{found}");
}
