//! Server configuration: a TOML file, overridden by command-line flags.
//!
//! Every field has a default, so an empty file (or none) gives the embedded default:
//! listen on 127.0.0.1:8080, plugins from `./plugins`, data under `./data`.

use std::net::SocketAddr;
use std::num::NonZeroU64;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP server listens on. Default: `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// The origin browsers reach the server at (`https://transcribe.example`), when it is
    /// not the listen address (behind a reverse proxy). Requests naming another host are
    /// refused (403): that stops DNS rebinding. Form posts and cookie-authenticated API
    /// calls must come from this origin (or name the same host as `Host`), and cookies are
    /// `Secure` exactly when it is `https`. Default: none — a server listening on loopback
    /// answers only to loopback names (`localhost`, `127.0.0.1`, `[::1]`); one listening
    /// beyond loopback (only possible with API keys) answers to any name, so set this
    /// there to pin it.
    pub public_url: Option<crate::auth::PublicOrigin>,
    /// Folder with one sub-folder per plugin (`<id>/plugin.wasm`).
    pub plugins_dir: PathBuf,
    /// Folder for the database, uploads and the compiled-plugin cache.
    pub data_dir: PathBuf,
    /// The database every node of a deployment shares (`postgresql://user@host:port/db`;
    /// also `--database` or `SANDSCRIBE_DATABASE_URL`). Default: none — the embedded
    /// SQLite file under `data_dir`, one node, no server. With PostgreSQL, the queue,
    /// the job ledger, events, results, logins, sessions and settings all live there, and
    /// any number of nodes with the same config serve the same jobs.
    pub database: Option<String>,
    /// This node's name in `/healthz`, the job JSON (`node`), logs and metrics. Default:
    /// the host name and the listen port (`box-1:8080`).
    pub node_id: Option<String>,
    /// A folder every node mounts, for uploads and the kept audio of finished jobs, so a
    /// job accepted on one node can run on another. Required with a PostgreSQL
    /// `database`; default: none (both stay under `data_dir`).
    pub shared_dir: Option<PathBuf>,
    /// Folders of audio/video files the browser may pick from (read-only; paths can
    /// never leave them).
    pub media_folders: Vec<PathBuf>,
    pub jobs: JobsConfig,
    pub limits: Limits,
    /// How connections and requests are bounded (`[http]`).
    pub http: HttpConfig,
    pub openai: OpenAiConfig,
    /// Who may read `/metrics`.
    pub metrics: MetricsConfig,
    /// API keys (as sha256 hashes), each mapped to a tenant and a role. None: single-user
    /// mode, loopback only.
    pub api_keys: Vec<crate::auth::ApiKey>,
    /// Per-tenant quotas, by tenant name (`[tenants.alice]`).
    pub tenants: std::collections::HashMap<String, TenantLimits>,
    /// Signed notifications of finished jobs to their `callback_url`.
    pub webhooks: WebhooksConfig,
    /// Per-plugin settings, by plugin id (`[plugins.whisper-base-en]`).
    pub plugins: std::collections::HashMap<String, PluginDefaults>,
}

/// What a plugin's jobs get unless they say otherwise.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PluginDefaults {
    /// A diarizer (plugin id) that runs after this plugin's jobs that name none; a job
    /// opts out with `diarizer = none`. Default: none.
    pub diarizer: Option<String>,
}

/// One tenant's quotas and plugin allow-list; what is missing means only the
/// server-wide limits apply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TenantLimits {
    /// Jobs of this tenant running at once.
    pub max_running: Option<usize>,
    /// Jobs of this tenant waiting in the queue.
    pub max_queued: Option<usize>,
    /// Minutes of audio submitted per UTC day.
    pub audio_minutes_per_day: Option<u64>,
    /// Bytes of stored transcripts (text and segments) the tenant may keep.
    pub stored_bytes: Option<u64>,
    /// The media folders this tenant's browser may pick from (the server's when absent).
    pub media_folders: Option<Vec<PathBuf>>,
    /// The plugins this tenant may see and use (all when absent).
    pub plugins: Option<Vec<String>>,
    /// Fuel each of this tenant's jobs may burn (about one unit per WebAssembly
    /// instruction). Set, the tenant's jobs run metered, so the same job always burns the
    /// same fuel and a runaway one stops at a reproducible point instead of at a
    /// wall-clock deadline. Absent: not metered (unless `[limits]` or the plugin set one).
    pub fuel_per_job: Option<NonZeroU64>,
    /// Where this tenant's jobs submitted through `POST /api/jobs` without a
    /// `callback_url` of their own report their ending. Default: none.
    pub callback_url: Option<String>,
    /// The `whsec_<base64>` secret this tenant's webhooks are signed with. Default: the
    /// `[webhooks] secret`.
    pub webhook_secret: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            plugins_dir: PathBuf::from("plugins"),
            data_dir: PathBuf::from("data"),
            database: None,
            node_id: None,
            shared_dir: None,
            media_folders: Vec::new(),
            jobs: JobsConfig::default(),
            limits: Limits::default(),
            http: HttpConfig::default(),
            openai: OpenAiConfig::default(),
            metrics: MetricsConfig::default(),
            api_keys: Vec::new(),
            tenants: Default::default(),
            webhooks: WebhooksConfig::default(),
            plugins: Default::default(),
        }
    }
}

/// Webhooks: each job with a `callback_url` has its terminal event POSTed there, signed
/// as the Standard Webhooks specification says, retried until it is taken
/// ([`crate::webhooks`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhooksConfig {
    /// The `whsec_<base64>` signing secret of the single-user tenant and of every tenant
    /// without a `webhook_secret` of its own. Default: none — then only tenants with
    /// their own secret may ask for callbacks (others get 400 `invalid_callback_url`).
    pub secret: Option<String>,
    /// Tries per delivery, the first included (1 to 30). Default: 8, which with the
    /// default `retry_base_seconds` spreads them over about a day.
    pub max_attempts: u32,
    /// The wait after the first failed try; each later wait is 4 times the one before
    /// (at most a day), ±20 % jitter. Default: 15 (15 s, 1 min, 4 min, 16 min, 64 min,
    /// 4 h 16 min, 17 h 4 min: 22 h 45 min over 8 tries). Fractions are allowed (a
    /// test's receiver that fails twice sees its three tries within a second with 0.05).
    pub retry_base_seconds: f64,
    /// Seconds one try may take in all: connecting, sending and reading the answer
    /// (1 to 120). Default: 10.
    pub timeout_seconds: u64,
    /// Deliver to loopback, private, link-local and other non-public addresses. Default:
    /// false, so a tenant cannot make the server probe its own network (the check is
    /// made on every resolved address, and the connection goes to the checked one).
    pub allow_private: bool,
    /// Deliveries one tenant may have waiting; beyond, a new one is recorded failed at
    /// once (its job is unaffected). Default: 1000.
    pub max_pending_per_tenant: u64,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        Self {
            secret: None,
            max_attempts: 8,
            retry_base_seconds: 15.0,
            timeout_seconds: 10,
            allow_private: false,
            max_pending_per_tenant: 1000,
        }
    }
}

impl WebhooksConfig {
    /// The secret `tenant`'s deliveries are signed with, if any.
    pub fn secret_for<'a>(&'a self, tenant: Option<&'a TenantLimits>) -> Option<&'a str> {
        tenant
            .and_then(|t| t.webhook_secret.as_deref())
            .or(self.secret.as_deref())
    }
}

/// How many jobs run and wait.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobsConfig {
    /// Jobs running at once; 0 means the number of CPU cores.
    pub max_running: usize,
    /// Jobs waiting in the queue before new submissions get 429.
    pub max_queued: usize,
    /// Finished jobs whose live state (event log) is kept in memory.
    pub keep_finished: usize,
    /// Seconds between SSE heartbeat comments on an idle stream.
    pub heartbeat_seconds: u64,
    /// On SIGTERM, how long running jobs may go on before they are stopped.
    pub shutdown_grace_seconds: u64,
    /// With several nodes: how often a node renews the lease on the jobs it runs.
    /// Default: 2 seconds.
    pub lease_renew_seconds: u64,
    /// With several nodes: a running job whose node has not renewed its lease for this
    /// long is taken to have died with its node. Default: 10 seconds (at least three
    /// renewals, so one slow database round trip does not end a job).
    pub lease_expiry_seconds: u64,
    /// With several nodes: a job whose node died is queued again up to this many times
    /// (it starts over on another node); 0 marks it `interrupted` at once, to be
    /// resubmitted by hand. Default: 0.
    pub retry_interrupted: u32,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            max_running: 0,
            max_queued: 100,
            keep_finished: 1000,
            heartbeat_seconds: 15,
            shutdown_grace_seconds: 30,
            lease_renew_seconds: 2,
            lease_expiry_seconds: 10,
            retry_interrupted: 0,
        }
    }
}

impl JobsConfig {
    /// `max_running`, with 0 resolved to the number of cores.
    pub fn running_slots(&self) -> usize {
        if self.max_running == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            self.max_running
        }
    }
}

/// The limits a connection and a request live under, with defaults a public deployment
/// can use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// A client must send a request's headers within this many seconds; an idle
    /// keep-alive connection is closed after it too. Default: 30.
    pub header_timeout_seconds: u64,
    /// A request body that sends nothing for this many seconds is cut off (408).
    /// Default: 30.
    pub body_stall_seconds: u64,
    /// After 10 s, a request body slower than this on average is cut off (408): a
    /// rate, not a total time, so a slow but honest large upload completes. Default:
    /// 8192 bytes/s.
    pub body_min_bytes_per_second: u64,
    /// Connections open at once; beyond, a new one gets 503 with `Retry-After`.
    /// Default: 4096.
    pub max_connections: usize,
    /// With API keys configured: requests without a credential (the login form, pages
    /// before login, 401s) allowed per client address per minute; `/healthz` is exempt.
    /// Default: 120.
    pub anonymous_requests_per_minute: u32,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            header_timeout_seconds: 30,
            body_stall_seconds: 30,
            body_min_bytes_per_second: 8192,
            max_connections: 4096,
            anonymous_requests_per_minute: 120,
        }
    }
}

/// The OpenAI-compatible API (`/v1/...`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpenAiConfig {
    /// Cancel a request's job when its client disconnects before the answer (the job
    /// would otherwise run on and its result only show up in the history).
    pub cancel_on_disconnect: bool,
}

impl Default for OpenAiConfig {
    fn default() -> Self {
        Self {
            cancel_on_disconnect: true,
        }
    }
}

/// `GET /metrics`, which names tenants and their activity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Hex sha256 of a token that may read `/metrics` as `Authorization: Bearer <token>`,
    /// so a Prometheus scraper need not hold an admin key (which could also reload
    /// plugins). Default: none — with API keys configured only an admin key (or an admin's
    /// browser login) reads the metrics; in single-user mode they are open, on loopback.
    pub token_sha256: Option<String>,
}

impl MetricsConfig {
    /// Whether `token` is the configured metrics token.
    pub fn is_token(&self, token: &str) -> bool {
        self.token_sha256
            .as_deref()
            .is_some_and(|hash| hash == crate::digest::sha256_hex(token.trim()))
    }
}

/// The operator's ceilings. A plugin's `plugin.toml` may lower them, never raise them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Total linear memory of one job's store, in bytes.
    pub memory_bytes: u64,
    /// Wall-clock time one job may run, in seconds.
    pub job_seconds: u64,
    /// Maximum WebAssembly stack, in bytes (server-wide; compiled into the engine).
    pub stack_bytes: u64,
    /// Bytes of log lines plus stdout/stderr kept per job.
    pub log_bytes: u64,
    /// Bytes of transcript text (live segments and the final result) per job.
    pub output_bytes: u64,
    /// Largest upload, in bytes.
    pub upload_bytes: u64,
    /// Longest audio, in seconds.
    pub audio_seconds: u64,
    /// Fuel every job may burn; `None`: jobs are metered only where a tenant or a
    /// plugin sets a budget. A tenant's own budget cannot exceed it.
    pub fuel_per_job: Option<NonZeroU64>,
    /// Threads one compute call of a job may use (WIT 0.2.0 plugins). Default 1: jobs run
    /// side by side, each on one core; more makes one long file finish sooner. All
    /// multi-threaded calls share one pool sized to the cores, so jobs × threads never
    /// oversubscribe the machine.
    pub threads_per_job: u64,
    /// Memory all plugins' shared weights may take together (read once per plugin build
    /// from their assets, shared by every job). Default 8 GiB.
    pub shared_model_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: 2 << 30,
            job_seconds: 3600,
            stack_bytes: 1 << 20,
            log_bytes: 1 << 20,
            output_bytes: 8 << 20,
            upload_bytes: 512 << 20,
            audio_seconds: 4 * 3600,
            fuel_per_job: None,
            threads_per_job: 1,
            shared_model_bytes: 8 << 30,
        }
    }
}

impl Limits {
    /// The smallest stack a plugin can start with, and the largest the host's threads
    /// are sized for (a thread's stack is `stack_bytes` plus 8 MiB for the host).
    pub(crate) const STACK_BYTES: std::ops::RangeInclusive<u64> = (64 << 10)..=(512 << 20);

    /// Each ceiling must leave a job room to run: zero would fail every job, and
    /// silently, far from the config file that caused it.
    fn check(&self) -> Result<(), String> {
        let positive = [
            ("memory_bytes", self.memory_bytes),
            ("job_seconds", self.job_seconds),
            ("log_bytes", self.log_bytes),
            ("output_bytes", self.output_bytes),
            ("upload_bytes", self.upload_bytes),
            ("audio_seconds", self.audio_seconds),
            ("threads_per_job", self.threads_per_job),
            ("shared_model_bytes", self.shared_model_bytes),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, value)| *value == 0) {
            return Err(format!("limits.{name} must be more than 0"));
        }
        if !Self::STACK_BYTES.contains(&self.stack_bytes) {
            return Err(format!(
                "limits.stack_bytes must be between {} and {} bytes, not {}",
                Self::STACK_BYTES.start(),
                Self::STACK_BYTES.end(),
                self.stack_bytes
            ));
        }
        Ok(())
    }
}

/// The tighter of two fuel budgets, where `None` means "no budget": each of the server,
/// the plugin's manifest and the tenant may only lower the budget a job runs with.
pub fn tighter_fuel(a: Option<NonZeroU64>, b: Option<NonZeroU64>) -> Option<NonZeroU64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Why the configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the config file {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
}

impl Config {
    /// Reads a TOML config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text).map_err(|message| ConfigError::Parse {
            path: path.to_owned(),
            message,
        })
    }

    /// Parses TOML text and checks what the types alone cannot: key hashes that could
    /// ever match, and limits a job can run under. The error says what is wrong where.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        let mut config: Self = toml::from_str(text).map_err(|e| e.to_string())?;
        config.check()?;
        Ok(config)
    }

    /// Uses the PostgreSQL database at `url` (from the command line or the
    /// environment), checked like the config file's `database`.
    pub fn set_database(&mut self, url: String) -> Result<(), String> {
        self.database = Some(url);
        self.check()
    }

    /// Lower-cases the key hashes (how they are compared), then checks everything.
    fn check(&mut self) -> Result<(), String> {
        let mut seen = std::collections::HashSet::new();
        for (i, key) in self.api_keys.iter_mut().enumerate() {
            // Hashes are compared in lower case; `sha256sum` prints lower case, others not.
            key.sha256.make_ascii_lowercase();
            if key.sha256.len() != 64 || !key.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!(
                    "api_keys[{i}].sha256 must be the 64 hex digits of the key's sha256 \
                     (printf %s KEY | sha256sum), not {} characters",
                    key.sha256.chars().count()
                ));
            }
            if key.tenant.trim().is_empty() {
                return Err(format!("api_keys[{i}].tenant must not be empty"));
            }
            if !seen.insert(key.sha256.clone()) {
                return Err(format!(
                    "api_keys[{i}] lists the same key as an earlier entry; a key has one \
                     tenant and one role"
                ));
            }
        }
        if let Some(hash) = &mut self.metrics.token_sha256 {
            hash.make_ascii_lowercase();
            if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!(
                    "metrics.token_sha256 must be the 64 hex digits of the token's sha256 \
                     (printf %s TOKEN | sha256sum), not {} characters",
                    hash.chars().count()
                ));
            }
        }
        if let Some(url) = &self.database {
            let scheme = url.split_once("://").map(|(scheme, _)| scheme);
            if !matches!(scheme, Some("postgres" | "postgresql")) {
                return Err(format!(
                    "database must be a PostgreSQL URL (postgresql://user@host:port/db), \
                     not {:?}; leave it out to use the embedded SQLite file",
                    crate::storage::redact_url(url)
                ));
            }
            if self.shared_dir.is_none() {
                return Err(
                    "with a PostgreSQL database, set shared_dir to a folder every \
                     node mounts: a job accepted on one node reads its upload on another"
                        .into(),
                );
            }
        }
        if self.jobs.lease_renew_seconds == 0
            || self.jobs.lease_expiry_seconds < self.jobs.lease_renew_seconds.saturating_mul(2)
        {
            return Err(format!(
                "jobs.lease_expiry_seconds ({}) must be at least twice jobs.lease_renew_seconds \
                 ({}), which must be at least 1",
                self.jobs.lease_expiry_seconds, self.jobs.lease_renew_seconds
            ));
        }
        if self.http.header_timeout_seconds == 0
            || self.http.body_stall_seconds == 0
            || self.http.max_connections == 0
            || self.http.anonymous_requests_per_minute == 0
        {
            return Err(
                "the [http] timeouts, max_connections and anonymous_requests_per_minute \
                 must be at least 1"
                    .into(),
            );
        }
        if self.tenants.keys().any(|name| name.trim().is_empty()) {
            return Err("a [tenants] section has an empty name".into());
        }
        self.check_webhooks()?;
        self.limits.check()
    }

    /// Secrets in the `whsec_<base64>` form, default callback URLs that could be
    /// delivered to, and tries that can happen.
    fn check_webhooks(&self) -> Result<(), String> {
        let hooks = &self.webhooks;
        if let Some(secret) = &hooks.secret {
            crate::webhooks::signing::SigningKey::parse(secret)
                .map_err(|e| format!("webhooks.secret: {e}"))?;
        }
        if !(1..=30).contains(&hooks.max_attempts) {
            return Err("webhooks.max_attempts must be 1 to 30".into());
        }
        if !(1..=120).contains(&hooks.timeout_seconds) {
            return Err("webhooks.timeout_seconds must be 1 to 120".into());
        }
        if !(hooks.retry_base_seconds.is_finite()
            && (0.001..=86_400.0).contains(&hooks.retry_base_seconds))
        {
            return Err("webhooks.retry_base_seconds must be 0.001 to 86400".into());
        }
        for (name, tenant) in &self.tenants {
            if let Some(secret) = &tenant.webhook_secret {
                crate::webhooks::signing::SigningKey::parse(secret)
                    .map_err(|e| format!("tenants.{name}.webhook_secret: {e}"))?;
            }
            if let Some(url) = &tenant.callback_url {
                crate::webhooks::target::check_url(url, hooks.allow_private)
                    .map_err(|e| format!("tenants.{name}.callback_url: {e}"))?;
                if hooks.secret_for(Some(tenant)).is_none() {
                    return Err(format!(
                        "tenants.{name}.callback_url needs a secret to sign with: set \
                         tenants.{name}.webhook_secret or webhooks.secret (whsec_<base64>)"
                    ));
                }
            }
        }
        Ok(())
    }

    /// Where compiled plugin artifacts are cached.
    pub fn cache_dir(&self) -> PathBuf {
        self.data_dir.join("cache")
    }

    /// Where the audio of completed jobs is kept, for playback next to the transcript
    /// (in the shared folder when nodes share one).
    pub fn audio_dir(&self) -> PathBuf {
        self.shared_dir
            .as_ref()
            .unwrap_or(&self.data_dir)
            .join("audio")
    }

    /// Where uploads are kept until their job is finished (in the shared folder when
    /// nodes share one, so any node can run the job).
    pub fn uploads_dir(&self) -> PathBuf {
        self.shared_dir
            .as_ref()
            .unwrap_or(&self.data_dir)
            .join("uploads")
    }

    /// Where browser uploads wait until their job starts.
    pub fn staging_dir(&self) -> PathBuf {
        self.shared_dir
            .as_ref()
            .unwrap_or(&self.data_dir)
            .join("web")
            .join("staged")
    }

    /// This node's id: `node_id`, or the host name and listen port.
    pub fn node_id(&self) -> String {
        if let Some(id) = self.node_id.as_ref().filter(|id| !id.trim().is_empty()) {
            return id.trim().to_owned();
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| "localhost".into());
        format!("{host}:{}", self.listen.port())
    }
}

#[cfg(test)]
mod properties;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_that_could_never_match_and_limits_no_job_fits_are_refused() {
        let key = |hash: &str, tenant: &str| {
            format!("[[api_keys]]\nsha256 = \"{hash}\"\ntenant = \"{tenant}\"\nrole = \"user\"\n")
        };
        let upper = "AB".repeat(32);
        let config = Config::from_toml(&key(&upper, "a")).expect("upper-case hex is fine");
        assert_eq!(config.api_keys[0].sha256, "ab".repeat(32));
        let err = Config::from_toml(&key("secret", "a")).expect_err("a key, not its hash");
        assert!(
            err.contains("64 hex digits") && err.contains("sha256sum"),
            "{err}"
        );
        let err = Config::from_toml(&key(&upper, " ")).expect_err("no tenant");
        assert!(err.contains("tenant must not be empty"), "{err}");
        let twice = key(&upper, "a") + &key(&upper.to_lowercase(), "b");
        let err = Config::from_toml(&twice).expect_err("same key twice");
        assert!(err.contains("api_keys[1]"), "{err}");
        let err = Config::from_toml("[limits]\njob_seconds = 0\n").expect_err("zero");
        assert_eq!(err, "limits.job_seconds must be more than 0");
        let err = Config::from_toml("[limits]\nstack_bytes = 1024\n").expect_err("tiny stack");
        assert!(err.contains("limits.stack_bytes must be between"), "{err}");
    }

    #[test]
    fn public_url_and_metrics_token_are_checked() {
        let config = Config::from_toml(&format!(
            "public_url = \"https://Transcribe.Example/\"\n[metrics]\ntoken_sha256 = \"{}\"\n",
            "AB".repeat(32)
        ))
        .expect("valid");
        assert_eq!(
            config.public_url.map(|p| p.to_string()).as_deref(),
            Some("https://transcribe.example")
        );
        assert_eq!(config.metrics.token_sha256, Some("ab".repeat(32)));
        let err = Config::from_toml("public_url = \"transcribe.example\"\n").expect_err("scheme");
        assert!(err.contains("http:// or https://"), "{err}");
        let err = Config::from_toml("[metrics]\ntoken_sha256 = \"secret\"\n").expect_err("hash");
        assert!(err.contains("metrics.token_sha256"), "{err}");
        let metrics = MetricsConfig {
            token_sha256: Some(crate::digest::sha256_hex("scrape")),
        };
        assert!(metrics.is_token("scrape") && !metrics.is_token("other"));
        assert!(!MetricsConfig::default().is_token(""));
    }

    #[test]
    fn empty_file_gives_the_embedded_default() {
        let config: Config = toml::from_str("").expect("empty config parses");
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.data_dir, PathBuf::from("data"));
        assert_eq!(config.limits.memory_bytes, 2 << 30);
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = toml::from_str::<Config>("[limits]\nmemory = 5\n").expect_err("typo refused");
        assert!(err.to_string().contains("memory"), "{err}");
    }

    #[test]
    fn openai_section_defaults_to_cancelling_on_disconnect() {
        assert!(Config::default().openai.cancel_on_disconnect);
        let config: Config =
            toml::from_str("[openai]\ncancel_on_disconnect = false\n").expect("parses");
        assert!(!config.openai.cancel_on_disconnect);
        let err = toml::from_str::<Config>("[openai]\ncancel = false\n").expect_err("typo");
        assert!(err.to_string().contains("cancel"), "{err}");
    }

    #[test]
    fn fuel_budgets_only_get_tighter() {
        let n = |v: u64| NonZeroU64::new(v);
        assert_eq!(tighter_fuel(None, None), None);
        assert_eq!(tighter_fuel(n(5), None), n(5));
        assert_eq!(tighter_fuel(None, n(7)), n(7));
        assert_eq!(tighter_fuel(n(5), n(7)), n(5));
        assert_eq!(tighter_fuel(n(9), n(7)), n(7));
    }

    #[test]
    fn a_tenant_fuel_budget_of_zero_is_refused() {
        let config: Config =
            toml::from_str("[tenants.det]\nfuel_per_job = 1000000\n").expect("parses");
        assert_eq!(
            config.tenants["det"].fuel_per_job,
            NonZeroU64::new(1_000_000)
        );
        assert_eq!(config.limits.fuel_per_job, None);
        let err = toml::from_str::<Config>("[tenants.det]\nfuel_per_job = 0\n")
            .expect_err("zero refused");
        assert!(err.to_string().contains("fuel_per_job"), "{err}");
    }

    #[test]
    fn webhook_secrets_retries_and_default_callbacks_are_checked() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let config = Config::from_toml(&format!(
            "[webhooks]\nsecret = \"{secret}\"\nretry_base_seconds = 0.05\n\
             [tenants.alice]\ncallback_url = \"https://hooks.example/a\"\n"
        ))
        .expect("valid");
        assert_eq!(config.webhooks.retry_base_seconds, 0.05);
        assert_eq!(config.webhooks.max_attempts, 8);
        let refused = |text: &str| Config::from_toml(text).expect_err(text);
        let err = refused("[webhooks]\nsecret = \"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\n");
        assert!(
            err.contains("webhooks.secret") && err.contains("whsec_"),
            "{err}"
        );
        let err = refused("[webhooks]\nretry_base_seconds = 0\n");
        assert!(err.contains("retry_base_seconds"), "{err}");
        let err = refused("[webhooks]\nmax_attempts = 0\n");
        assert!(err.contains("max_attempts"), "{err}");
        let err = refused("[webhooks]\ntimeout_seconds = 3600\n");
        assert!(err.contains("timeout_seconds"), "{err}");
        // A default callback needs a secret to sign with, and a target that may be used.
        let err = refused("[tenants.alice]\ncallback_url = \"https://hooks.example/a\"\n");
        assert!(err.contains("tenants.alice.callback_url"), "{err}");
        let err = refused(&format!(
            "[webhooks]\nsecret = \"{secret}\"\n[tenants.alice]\ncallback_url = \"http://10.0.0.1/\"\n"
        ));
        assert!(err.contains("allow_private"), "{err}");
    }

    #[test]
    fn partial_sections_keep_other_defaults() {
        let config: Config = toml::from_str("[limits]\njob_seconds = 5\n").expect("parses");
        assert_eq!(config.limits.job_seconds, 5);
        assert_eq!(config.limits.log_bytes, Limits::default().log_bytes);
    }
}
