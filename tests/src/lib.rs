//! The harness of sandscribe's end-to-end tests.
//!
//! Every test starts the real `sandscribe` binary ([`Server::start`]) on a free port, with
//! its own temporary data folder and a config file written from [`ServerOptions`], and
//! talks to it over HTTP like any client would: multipart uploads ([`Form`]), JSON
//! ([`Reply`]) and Server-Sent Events ([`Events`]), and the pages as a browser would,
//! with cookies ([`Browser`]); webhooks go to a [`Receiver`] on loopback. Audio is made
//! in memory ([`wav`], [`sine`], [`noise`]), so the suite needs nothing but the server
//! binary and the fixture plugins that `cargo xtask setup` builds into `target/`.
//!
//! A test that needs PostgreSQL starts its own with [`Postgres::start`]: a private server
//! with its own data folder on a free loopback port, stopped when the test ends.
//!
//! The server's stdout and stderr are kept in `server.log` in its temporary folder; when
//! a test fails, the end of that log is printed with the test's output and the folder
//! (log, database, uploads) is left in place for a closer look.
//!
//! ```no_run
//! use sandscribe_e2e::{Server, ServerOptions, sine, wav};
//! use std::time::Duration;
//!
//! let server = Server::start(ServerOptions::new());
//! let audio = wav(&sine(1_000, 16_000, 0.5), 16_000);
//! let id = server.submit_ok("echo", &audio, "tone.wav", &serde_json::json!({}));
//! let job = server.wait_terminal(&id, Duration::from_secs(30));
//! assert_eq!(job["status"], "completed");
//! ```

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

mod browser;
mod media;
mod postgres;
mod raw;
mod receiver;
pub use browser::Browser;
pub use media::{
    PeakMemory, encode, example_plugins_dir, ffmpeg, memory_mib, speech_dir, wav_samples,
};
pub use postgres::Postgres;
pub use raw::RawRequest;
pub use receiver::{Delivered, Receiver};

/// How long one ordinary request may take before the test gives up on the server.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the server may take to print its address.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// Lines of the server log printed when a test fails.
const LOG_TAIL_LINES: usize = 150;

/// The cargo workspace this crate lives in.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the e2e crate lives inside the workspace")
        .to_owned()
}

/// Cargo's build folder: `CARGO_TARGET_DIR` (relative to the workspace when relative),
/// else `target/` in the workspace.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => workspace_root().join(dir),
        None => workspace_root().join("target"),
    }
}

/// The release build of the server (or `SANDSCRIBE_BIN`, to hold another build, an
/// older one say, to the same tests).
pub fn server_binary() -> PathBuf {
    let path = std::env::var_os("SANDSCRIBE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            target_dir()
                .join("release")
                .join(format!("sandscribe{}", std::env::consts::EXE_SUFFIX))
        });
    assert!(
        path.is_file(),
        "the server binary {} is missing; run `cargo xtask setup` first",
        path.display()
    );
    path
}

/// The folder with one sub-folder per fixture plugin (`<id>/plugin.wasm`):
/// `SANDSCRIBE_FIXTURE_PLUGINS`, or where `cargo xtask setup` puts them.
pub fn fixture_plugins_dir() -> PathBuf {
    let dir = std::env::var_os("SANDSCRIBE_FIXTURE_PLUGINS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/fixture-plugins"));
    assert!(
        dir.join("echo/plugin.wasm").is_file(),
        "the fixture plugins are missing from {}; run `cargo xtask setup` first",
        dir.display()
    );
    dir
}

/// The compiled component of one fixture plugin.
pub fn fixture_wasm(id: &str) -> PathBuf {
    let path = fixture_plugins_dir().join(id).join("plugin.wasm");
    assert!(
        path.is_file(),
        "the fixture plugin {} is missing; run `cargo xtask setup` first",
        path.display()
    );
    path
}

/// What a test server is started with: the plugins folder and the config file's values.
///
/// Anything left unset keeps the server's default, except the memory limit, which is
/// lowered to 256 MiB so that the `oom` fixture hits it quickly.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    plugins_dir: Option<PathBuf>,
    max_running: Option<u64>,
    max_queued: Option<u64>,
    memory_bytes: u64,
    job_seconds: Option<u64>,
    log_bytes: Option<u64>,
    output_bytes: Option<u64>,
    upload_bytes: Option<u64>,
    shutdown_grace_seconds: Option<u64>,
    stack_bytes: Option<u64>,
    /// (sha256 of the key, tenant, role)
    api_keys: Vec<(String, String, String)>,
    /// `public_url`, written before any section.
    public_url: Option<String>,
    /// sha256 of the `[metrics]` token.
    metrics_token: Option<String>,
    /// Extra TOML appended to the config file.
    extra_toml: String,
    /// Further `[limits]` entries (`threads_per_job`, `fuel_per_job`, ...).
    extra_limits: Vec<(String, u64)>,
    /// Further `[jobs]` entries (`retry_interrupted`, `lease_expiry_seconds`, ...).
    extra_jobs: Vec<(String, u64)>,
    /// Top-level string settings (`database`, `shared_dir`, `node_id`), before any section.
    top_level: Vec<(String, String)>,
    /// Entries of any section, as (section, key, TOML value): [`ServerOptions::setting`].
    settings: Vec<(String, String, String)>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl ServerOptions {
    /// The fixture plugins, the server's defaults and a 256 MiB memory limit.
    pub fn new() -> Self {
        Self {
            plugins_dir: None,
            max_running: None,
            max_queued: None,
            memory_bytes: 256 << 20,
            job_seconds: None,
            log_bytes: None,
            output_bytes: None,
            upload_bytes: None,
            shutdown_grace_seconds: None,
            stack_bytes: None,
            api_keys: Vec::new(),
            public_url: None,
            metrics_token: None,
            extra_toml: String::new(),
            extra_limits: Vec::new(),
            extra_jobs: Vec::new(),
            top_level: Vec::new(),
            settings: Vec::new(),
        }
    }

    /// Sets `key = value` in the config file's section `section` (`webhooks`,
    /// `tenants.alice`, `jobs`, ...): every setting of one section is written under one
    /// header, with `[jobs]`, `[limits]` and `[metrics]` merged into the ones the other
    /// options write, and a key set again replaces its value. A string, number or
    /// boolean `value` is written as TOML (JSON's quoting of a string is valid TOML). Do
    /// not also write the same section with [`ServerOptions::extra_toml`].
    pub fn setting(mut self, section: &str, key: &str, value: impl Into<Value>) -> Self {
        let value = value.into();
        assert!(
            !value.is_array() && !value.is_object() && !value.is_null(),
            "setting {section}.{key}: only strings, numbers and booleans"
        );
        self.settings.retain(|(s, k, _)| s != section || k != key);
        self.settings
            .push((section.to_owned(), key.to_owned(), value.to_string()));
        self
    }

    /// The [`ServerOptions::setting`] lines of `section`.
    fn settings_of(&self, section: &str) -> String {
        self.settings
            .iter()
            .filter(|(name, _, _)| name == section)
            .map(|(_, key, value)| format!("{key} = {value}\n"))
            .collect()
    }

    /// One node of a cluster: the shared PostgreSQL database, the folder every node
    /// shares for uploads, and this node's id.
    pub fn cluster_node(mut self, database_url: &str, shared_dir: &Path, node_id: &str) -> Self {
        self.top_level
            .push(("database".into(), database_url.into()));
        self.top_level
            .push(("shared_dir".into(), shared_dir.display().to_string()));
        self.top_level.push(("node_id".into(), node_id.into()));
        self
    }

    /// A further `[jobs]` entry.
    pub fn jobs_setting(mut self, key: &str, value: u64) -> Self {
        self.extra_jobs.push((key.to_owned(), value));
        self
    }

    /// `[metrics] token_sha256`: a token (given in clear) that may read `/metrics`.
    pub fn metrics_token(mut self, token: &str) -> Self {
        use sha2::Digest;
        self.metrics_token = Some(hex_lower(&sha2::Sha256::digest(token.as_bytes())));
        self
    }

    /// `public_url`: the origin browsers reach the server at.
    pub fn public_url(mut self, url: &str) -> Self {
        self.public_url = Some(url.to_owned());
        self
    }

    /// Appends raw TOML to the config file (e.g. `[tenants.alice]` quotas).
    pub fn extra_toml(mut self, toml: &str) -> Self {
        self.extra_toml.push_str(toml);
        self.extra_toml.push('\n');
        self
    }

    /// Adds an API key (given in clear; the config gets its sha256) for a tenant.
    pub fn api_key(mut self, key: &str, tenant: &str, role: &str) -> Self {
        use sha2::Digest;
        let hash = hex_lower(&sha2::Sha256::digest(key.as_bytes()));
        self.api_keys
            .push((hash, tenant.to_owned(), role.to_owned()));
        self
    }

    /// The wasm stack cap.
    pub fn stack_bytes(mut self, bytes: u64) -> Self {
        self.stack_bytes = Some(bytes);
        self
    }

    /// How long running jobs may go on after SIGTERM.
    pub fn shutdown_grace_seconds(mut self, seconds: u64) -> Self {
        self.shutdown_grace_seconds = Some(seconds);
        self
    }

    /// Loads plugins from `dir` instead of the fixture plugins.
    pub fn plugins_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.plugins_dir = Some(dir.into());
        self
    }

    /// `[jobs] max_running`: jobs running at once.
    pub fn max_running(mut self, jobs: u64) -> Self {
        self.max_running = Some(jobs);
        self
    }

    /// `[jobs] max_queued`: jobs waiting before submissions get 429.
    pub fn max_queued(mut self, jobs: u64) -> Self {
        self.max_queued = Some(jobs);
        self
    }

    /// `[limits] memory_bytes`: linear memory of one job.
    pub fn memory_bytes(mut self, bytes: u64) -> Self {
        self.memory_bytes = bytes;
        self
    }

    /// `[limits] job_seconds`: wall-clock time of one job.
    pub fn job_seconds(mut self, seconds: u64) -> Self {
        self.job_seconds = Some(seconds);
        self
    }

    /// `[limits] log_bytes`: log lines plus stdout/stderr kept per job.
    pub fn log_bytes(mut self, bytes: u64) -> Self {
        self.log_bytes = Some(bytes);
        self
    }

    /// `[limits] output_bytes`: transcript text per job.
    pub fn output_bytes(mut self, bytes: u64) -> Self {
        self.output_bytes = Some(bytes);
        self
    }

    /// `[limits] upload_bytes`: the largest upload.
    pub fn upload_bytes(mut self, bytes: u64) -> Self {
        self.upload_bytes = Some(bytes);
        self
    }

    /// Sets another `[limits]` key of the config file.
    pub fn limit(mut self, key: &str, value: u64) -> Self {
        self.extra_limits.push((key.to_owned(), value));
        self
    }

    /// The config file for these options.
    fn config_toml(&self) -> String {
        let mut toml = String::new();
        if let Some(url) = &self.public_url {
            toml.push_str(&format!("public_url = \"{url}\"\n"));
        }
        for (key, value) in &self.top_level {
            toml.push_str(&format!("{key} = {}\n", Value::String(value.clone())));
        }
        for (hash, tenant, role) in &self.api_keys {
            toml.push_str(&format!(
                "[[api_keys]]\nsha256 = \"{hash}\"\ntenant = \"{tenant}\"\nrole = \"{role}\"\n"
            ));
        }
        let mut section = |name: &str, entries: &[(&str, Option<u64>)], extra: &[(String, u64)]| {
            toml.push_str(&format!("[{name}]\n"));
            for (key, value) in entries {
                if let Some(value) = value {
                    toml.push_str(&format!("{key} = {value}\n"));
                }
            }
            for (key, value) in extra {
                toml.push_str(&format!("{key} = {value}\n"));
            }
            toml.push_str(&self.settings_of(name));
        };
        section(
            "jobs",
            &[
                ("max_running", self.max_running),
                ("max_queued", self.max_queued),
                ("shutdown_grace_seconds", self.shutdown_grace_seconds),
            ],
            &self.extra_jobs,
        );
        section(
            "limits",
            &[
                ("memory_bytes", Some(self.memory_bytes)),
                ("job_seconds", self.job_seconds),
                ("log_bytes", self.log_bytes),
                ("output_bytes", self.output_bytes),
                ("upload_bytes", self.upload_bytes),
                ("stack_bytes", self.stack_bytes),
            ],
            &self.extra_limits,
        );
        let metrics = self.settings_of("metrics");
        if self.metrics_token.is_some() || !metrics.is_empty() {
            toml.push_str("[metrics]\n");
            if let Some(hash) = &self.metrics_token {
                toml.push_str(&format!("token_sha256 = \"{hash}\"\n"));
            }
            toml.push_str(&metrics);
        }
        let mut others: Vec<&str> = Vec::new();
        for (name, _, _) in &self.settings {
            if !["jobs", "limits", "metrics"].contains(&name.as_str())
                && !others.contains(&name.as_str())
            {
                others.push(name);
            }
        }
        for name in others {
            toml.push_str(&format!("[{name}]\n{}", self.settings_of(name)));
        }
        toml.push_str(&self.extra_toml);
        toml
    }
}

/// The running server process and the threads copying its output into the log.
struct Process {
    child: Child,
    drains: Vec<JoinHandle<()>>,
}

impl Process {
    /// Sends SIGTERM and waits for the server to exit on its own; returns how long that
    /// took and the exit status.
    fn terminate(mut self, timeout: Duration) -> (Duration, std::process::ExitStatus) {
        let started = Instant::now();
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(
            sent.is_ok_and(|s| s.success()),
            "could not send SIGTERM to {pid}"
        );
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                for drain in self.drains.drain(..) {
                    let _ = drain.join();
                }
                return (started.elapsed(), status);
            }
            if started.elapsed() > timeout {
                self.stop();
                panic!("the server did not exit within {timeout:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server and waits until its output is fully in the log.
    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for drain in self.drains.drain(..) {
            let _ = drain.join();
        }
    }
}

/// A running `sandscribe serve` with its own temporary folder; killed when dropped.
pub struct Server {
    options: ServerOptions,
    dir: tempfile::TempDir,
    process: Option<Process>,
    base_url: String,
    agent: ureq::Agent,
    key: Mutex<Option<String>>,
}

impl Server {
    /// Writes the config, starts the server on a free port and waits for its address.
    pub fn start(options: ServerOptions) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("sandscribe-e2e-")
            .tempdir()
            .expect("create a temporary folder");
        fs::write(dir.path().join("config.toml"), options.config_toml())
            .expect("write the config file");
        let agent = ureq::config::Config::builder()
            .http_status_as_error(false)
            .timeout_global(Some(REQUEST_TIMEOUT))
            .build()
            .new_agent();
        let mut server = Self {
            options,
            dir,
            process: None,
            base_url: String::new(),
            agent,
            key: Mutex::new(None),
        };
        server.spawn();
        server
    }

    /// Stops the server and starts it again on the same data folder (a new port).
    pub fn restart(&mut self) {
        if let Some(process) = self.process.take() {
            process.stop();
        }
        self.append_log("---- restart ----\n");
        self.spawn();
    }

    /// Stops the server and starts it again on the same data folder with a new config
    /// (another set of API keys, say).
    pub fn restart_with(&mut self, options: ServerOptions) {
        fs::write(self.dir.path().join("config.toml"), options.config_toml())
            .expect("write the config file");
        self.options = options;
        self.restart();
    }

    /// Kills the server with SIGKILL (a crash or power loss: nothing runs on after it)
    /// and leaves it stopped.
    pub fn kill(&mut self) {
        if let Some(process) = self.process.take() {
            process.stop();
        }
        self.append_log("---- killed ----\n");
    }

    /// The server's process id (to read its memory use from /proc).
    pub fn pid(&self) -> u32 {
        self.process.as_ref().map_or(0, |p| p.child.id())
    }

    /// Stops the server with SIGTERM (a graceful shutdown), then starts it again on the
    /// same data folder. Returns how long the shutdown took and whether it exited cleanly.
    pub fn terminate_and_restart(&mut self, timeout: Duration) -> (Duration, bool) {
        let mut outcome = (Duration::ZERO, false);
        if let Some(process) = self.process.take() {
            let (took, status) = process.terminate(timeout);
            outcome = (took, status.success());
        }
        self.append_log("---- restart after SIGTERM ----\n");
        self.spawn();
        outcome
    }

    fn spawn(&mut self) {
        let plugins = self
            .options
            .plugins_dir
            .clone()
            .unwrap_or_else(fixture_plugins_dir);
        let mut child = Command::new(server_binary())
            .arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .arg("--plugins")
            .arg(&plugins)
            .arg("--data")
            .arg(self.data_dir())
            .arg("--config")
            .arg(self.dir.path().join("config.toml"))
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", server_binary().display()));
        let log = Arc::new(Mutex::new(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.log_path())
                .expect("open the server log"),
        ));
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (first_line, address) = mpsc::channel();
        let drains = vec![
            drain_stdout(stdout, log.clone(), first_line),
            drain_stderr(stderr, log),
        ];
        let process = Process { child, drains };
        match address.recv_timeout(STARTUP_TIMEOUT) {
            Ok(line) => match line.strip_prefix("listening on ") {
                Some(url) => {
                    self.base_url = url.trim().trim_end_matches('/').to_owned();
                    self.process = Some(process);
                }
                None => {
                    process.stop();
                    panic!("the server's first line was {line:?}, not \"listening on http://…\"");
                }
            },
            Err(_) => {
                process.stop();
                panic!(
                    "the server exited, or did not print its address within {STARTUP_TIMEOUT:?} \
                     (its log follows)"
                );
            }
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// `127.0.0.1:PORT`: what a client names in `Host`.
    pub fn authority(&self) -> &str {
        self.base_url
            .strip_prefix("http://")
            .unwrap_or(&self.base_url)
    }

    /// The server's data folder (database, uploads, kept audio, compile cache).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    fn append_log(&self, text: &str) {
        if let Ok(mut file) = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
        {
            let _ = file.write_all(text.as_bytes());
        }
    }

    /// Everything the server wrote so far (every run, restarts marked).
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The last lines of the server's output.
    pub fn log_tail(&self) -> String {
        let text = fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let start = lines.len().saturating_sub(LOG_TAIL_LINES);
        format!(
            "---- server log ({}), last {} lines ----\n{}\n---- end of server log ----",
            self.log_path().display(),
            lines.len() - start,
            lines[start..].join("\n")
        )
    }

    /// The absolute URL of an API path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Sends `Authorization: Bearer <key>` on every following request (None: no header).
    pub fn use_key(&self, key: Option<&str>) {
        *self.key.lock().expect("key lock") = key.map(str::to_owned);
    }

    fn authed<B>(&self, request: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match self.key.lock().expect("key lock").clone() {
            Some(key) => request.header("Authorization", format!("Bearer {key}")),
            None => request,
        }
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> Reply {
        self.call(path, self.authed(self.agent.get(self.url(path))).call())
    }

    /// `DELETE path`.
    pub fn delete(&self, path: &str) -> Reply {
        self.call(path, self.authed(self.agent.delete(self.url(path))).call())
    }

    /// `POST path` without a body.
    pub fn post_empty(&self, path: &str) -> Reply {
        self.call(
            path,
            self.authed(self.agent.post(self.url(path))).send_empty(),
        )
    }

    /// `POST path` with any body and content type (for malformed requests).
    pub fn post_raw(&self, path: &str, content_type: &str, body: &[u8]) -> Reply {
        let sent = self
            .authed(self.agent.post(self.url(path)))
            .header("Content-Type", content_type)
            .send(body);
        self.call(path, sent)
    }

    /// `PUT path` with a JSON body.
    pub fn put_json(&self, path: &str, body: &Value) -> Reply {
        let sent = self
            .authed(self.agent.put(self.url(path)))
            .header("Content-Type", "application/json")
            .send(body.to_string().as_bytes());
        self.call(path, sent)
    }

    /// `POST path` with a multipart form.
    pub fn post_form(&self, path: &str, form: &Form) -> Reply {
        let (content_type, body) = form.encode();
        let sent = self
            .authed(self.agent.post(self.url(path)))
            .header("Content-Type", content_type)
            .send(&body[..]);
        self.call(path, sent)
    }

    fn call(
        &self,
        path: &str,
        sent: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Reply {
        let mut response = sent.unwrap_or_else(|e| panic!("request to {path} failed: {e}"));
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    value.to_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        let body = response
            .body_mut()
            .with_config()
            .limit(256 << 20)
            .read_to_vec()
            .unwrap_or_else(|e| panic!("reading the answer to {path} failed: {e}"));
        Reply {
            status,
            headers,
            body,
        }
    }

    /// Submits a job: `POST /api/jobs` with the audio, the plugin id and the config.
    pub fn submit(&self, plugin: &str, audio: &[u8], file_name: &str, config: &Value) -> Reply {
        let form = Form::new()
            .text("plugin", plugin)
            .text("config", &config.to_string())
            .file("file", file_name, "audio/wav", audio);
        self.post_form("/api/jobs", &form)
    }

    /// Submits a job with API key `key` (whatever key [`Server::use_key`] set), so
    /// threads submitting for different tenants at once do not race on the shared key.
    pub fn submit_as(
        &self,
        key: &str,
        plugin: &str,
        audio: &[u8],
        file_name: &str,
        config: &Value,
    ) -> Reply {
        let form = Form::new()
            .text("plugin", plugin)
            .text("config", &config.to_string())
            .file("file", file_name, "audio/wav", audio);
        let (content_type, body) = form.encode();
        let sent = self
            .agent
            .post(self.url("/api/jobs"))
            .header("Authorization", format!("Bearer {key}"))
            .header("Content-Type", content_type)
            .send(&body[..]);
        self.call("/api/jobs", sent)
    }

    /// Submits a job that must be accepted (202) and returns its id.
    pub fn submit_ok(&self, plugin: &str, audio: &[u8], file_name: &str, config: &Value) -> String {
        let reply = self.submit(plugin, audio, file_name, config).expect(202);
        reply.json()["id"]
            .as_str()
            .expect("a submitted job has an id")
            .to_owned()
    }

    /// `GET /api/jobs/{id}`, which must answer 200.
    pub fn job(&self, id: &str) -> Value {
        self.get(&format!("/api/jobs/{id}")).expect(200).json()
    }

    /// `POST /api/jobs/{id}/cancel`.
    pub fn cancel(&self, id: &str) -> Reply {
        self.post_empty(&format!("/api/jobs/{id}/cancel"))
    }

    /// Follows the job's events to its terminal event, then returns `GET /api/jobs/{id}`.
    pub fn wait_terminal(&self, id: &str, timeout: Duration) -> Value {
        let events = self.events_within(id, None, timeout).to_end();
        let last = events.last().map(|e| e.event.as_str());
        assert!(
            events.last().is_some_and(SseEvent::is_terminal),
            "the event stream of job {id} ended without a terminal event (last: {last:?})"
        );
        self.job(id)
    }

    /// Submits a job and waits until it has finished; returns its final snapshot.
    pub fn run_job(&self, plugin: &str, audio: &[u8], config: &Value) -> Value {
        let id = self.submit_ok(plugin, audio, "audio.wav", config);
        self.wait_terminal(&id, REQUEST_TIMEOUT)
    }

    /// Runs a short `echo` job and checks it completes: the server still works.
    pub fn assert_serves_echo_job(&self) {
        let audio = wav(&sine(1_000, 16_000, 0.3), 16_000);
        let job = self.run_job("echo", &audio, &serde_json::json!({}));
        assert_eq!(
            job["status"], "completed",
            "a plain echo job should still complete: {job:#}"
        );
    }

    /// The job's events (`GET /api/jobs/{id}/events`), resuming after `last_event_id`.
    /// The stream may take up to 30 s in all.
    pub fn events(&self, id: &str, last_event_id: Option<u64>) -> Events {
        self.events_within(id, last_event_id, REQUEST_TIMEOUT)
    }

    /// Like [`Server::events`], with the whole stream limited to `timeout`.
    pub fn events_within(&self, id: &str, last_event_id: Option<u64>, timeout: Duration) -> Events {
        let path = format!("/api/jobs/{id}/events");
        let mut request = self
            .authed(self.agent.get(self.url(&path)))
            .header("Accept", "text/event-stream");
        if let Some(last) = last_event_id {
            request = request.header("Last-Event-ID", last.to_string());
        }
        let response = request
            .config()
            .timeout_global(Some(timeout))
            .build()
            .call()
            .unwrap_or_else(|e| panic!("GET {path} failed: {e}"));
        assert_eq!(
            response.status().as_u16(),
            200,
            "GET {path} should open an event stream"
        );
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(
            content_type.starts_with("text/event-stream"),
            "GET {path} answered {content_type:?}, not an event stream"
        );
        Events {
            lines: BufReader::new(response.into_body().into_reader()),
            ended: false,
            opened: Instant::now(),
            timeout,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(process) = self.process.take() {
            process.stop();
        }
        if std::thread::panicking() {
            // Keep the evidence (log, database, uploads) of a failed test; the tail of
            // the log is printed with the test's captured output.
            self.dir.disable_cleanup(true);
            eprintln!("{}", self.log_tail());
        }
    }
}

/// Copies the server's stdout into the log, sending the first line (its address) back.
fn drain_stdout(
    stdout: ChildStdout,
    log: Arc<Mutex<File>>,
    first_line: mpsc::Sender<String>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut first = Some(first_line);
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(sender) = first.take() {
                let _ = sender.send(line.clone());
            }
            if let Ok(mut file) = log.lock() {
                let _ = writeln!(file, "{line}");
            }
        }
    })
}

/// Copies the server's stderr (its tracing output) into the log.
fn drain_stderr(stderr: ChildStderr, log: Arc<Mutex<File>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Ok(mut file) = log.lock() {
                let _ = writeln!(file, "{line}");
            }
        }
    })
}

/// A complete HTTP answer: status, headers and the whole body.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    /// The first value of a header (names are case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header (`Set-Cookie` comes once per cookie).
    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics (showing the body) when it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "the answer ({}) is not JSON: {e}\n{}",
                self.status,
                self.text()
            )
        })
    }

    /// `error.code` of an error answer.
    pub fn error_code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("the answer has no error code: {}", self.text()))
            .to_owned()
    }

    /// `error.message` of an error answer.
    pub fn error_message(&self) -> String {
        self.json()["error"]["message"]
            .as_str()
            .unwrap_or_else(|| panic!("the answer has no error message: {}", self.text()))
            .to_owned()
    }

    /// Asserts the status (showing the body when it differs) and passes the reply on.
    #[track_caller]
    pub fn expect(self, status: u16) -> Self {
        assert_eq!(
            self.status,
            status,
            "expected status {status}, got {}: {}",
            self.status,
            self.text()
        );
        self
    }
}

/// One Server-Sent Event of a job: its id (the event's sequence number), name and data.
#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    pub id: u64,
    pub event: String,
    pub data: Value,
}

impl SseEvent {
    /// Whether this event ends the job's stream.
    pub fn is_terminal(&self) -> bool {
        is_terminal_event(&self.event)
    }
}

/// Whether an event name is one of the four terminal events.
pub fn is_terminal_event(name: &str) -> bool {
    matches!(name, "done" | "failed" | "cancelled" | "timed_out")
}

/// A job's event stream, read line by line. It ends after the terminal event or when the
/// server closes the stream; it panics when the stream's time limit passes first.
/// Dropping it closes the connection.
pub struct Events {
    lines: BufReader<ureq::BodyReader<'static>>,
    ended: bool,
    opened: Instant,
    timeout: Duration,
}

impl Events {
    /// Every remaining event, through the terminal one.
    pub fn to_end(self) -> Vec<SseEvent> {
        self.collect()
    }
}

impl Iterator for Events {
    type Item = SseEvent;

    fn next(&mut self) -> Option<SseEvent> {
        if self.ended {
            return None;
        }
        let mut id = None;
        let mut event = None;
        let mut data = String::new();
        loop {
            let mut line = String::new();
            match self.lines.read_line(&mut line) {
                Ok(0) => {
                    self.ended = true;
                    return None;
                }
                Ok(_) => {}
                Err(e) => panic!(
                    "reading the event stream failed after {:?} (limit {:?}): {e}",
                    self.opened.elapsed(),
                    self.timeout
                ),
            }
            let line = line.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                // A blank line ends an event; a heartbeat comment has no fields.
                let Some(name) = event.take() else { continue };
                let data: Value = serde_json::from_str(&data)
                    .unwrap_or_else(|e| panic!("event data is not JSON ({e}): {data}"));
                let event = SseEvent {
                    id: id.unwrap_or_else(|| panic!("event {name} has no id")),
                    event: name,
                    data,
                };
                self.ended = event.is_terminal();
                return Some(event);
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "id" => {
                    id = Some(
                        value
                            .parse::<u64>()
                            .unwrap_or_else(|_| panic!("event id {value:?} is not a number")),
                    );
                }
                "event" => event = Some(value.to_owned()),
                "data" => {
                    if !data.is_empty() {
                        data.push('\n');
                    }
                    data.push_str(value);
                }
                _ => {}
            }
        }
    }
}

/// A `multipart/form-data` body built by hand: text fields and files.
#[derive(Debug, Clone, Default)]
pub struct Form {
    parts: Vec<u8>,
}

/// Separates the parts; it appears in no test's data.
const BOUNDARY: &str = "sandscribe-e2e-7f3c9a1d5b2e4f60";

impl Form {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a text field.
    pub fn text(mut self, name: &str, value: &str) -> Self {
        self.parts.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
        self
    }

    /// Adds a file field.
    pub fn file(mut self, name: &str, file_name: &str, content_type: &str, bytes: &[u8]) -> Self {
        self.parts.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; \
                 filename=\"{file_name}\"\r\nContent-Type: {content_type}\r\n\r\n"
            )
            .as_bytes(),
        );
        self.parts.extend_from_slice(bytes);
        self.parts.extend_from_slice(b"\r\n");
        self
    }

    /// The `Content-Type` header and the body.
    pub fn encode(&self) -> (String, Vec<u8>) {
        let mut body = self.parts.clone();
        body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
        (format!("multipart/form-data; boundary={BOUNDARY}"), body)
    }
}

/// A 16-bit mono PCM WAV file holding `samples` at `rate` Hz.
pub fn wav(samples: &[i16], rate: u32) -> Vec<u8> {
    let data_len = u32::try_from(samples.len() * 2).expect("a test WAV fits in 4 GiB");
    let mut out = Vec::with_capacity(44 + samples.len() * 2);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes()); // fmt chunk size
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes()); // bytes per second
    out.extend_from_slice(&2u16.to_le_bytes()); // block align
    out.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for sample in samples {
        out.extend_from_slice(&sample.to_le_bytes());
    }
    out
}

/// A 440 Hz sine of `duration_ms` at `rate` Hz; `amplitude` is a fraction of full scale.
/// Its RMS level is `amplitude / √2`.
pub fn sine(duration_ms: u64, rate: u32, amplitude: f32) -> Vec<i16> {
    let frames = duration_ms * u64::from(rate) / 1000;
    (0..frames)
        .map(|n| {
            let t = n as f32 / rate as f32;
            let value = amplitude * (2.0 * std::f32::consts::PI * 440.0 * t).sin();
            (value * f32::from(i16::MAX)).round() as i16
        })
        .collect()
}

/// Deterministic white noise of `duration_ms` at `rate` Hz, uniform in ±`amplitude`.
pub fn noise(duration_ms: u64, rate: u32, amplitude: f32) -> Vec<i16> {
    let frames = duration_ms * u64::from(rate) / 1000;
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..frames)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let unit = (state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0;
            (unit * amplitude * f32::from(i16::MAX)).round() as i16
        })
        .collect()
}

/// Parses an RFC 3339 timestamp from the API.
pub fn timestamp(value: &Value) -> time::OffsetDateTime {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("{value} is not a timestamp string"));
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{text:?} is not RFC 3339: {e}"))
}

/// Waits until `condition` holds, checking every 20 ms, for at most `timeout`.
/// For states that announce themselves with no event (files on disk, for instance).
pub fn poll_until(timeout: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every file under `dir`, in its folders too (none when it does not exist).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
