//! A private PostgreSQL server for one test: [`Postgres::start`].
//!
//! A service a test needs is started by the harness itself, never borrowed from the
//! machine: each [`Postgres`] gets its own data folder (`initdb` into a fresh temporary
//! folder), listens only on a free loopback port (and a Unix socket inside that folder),
//! and is stopped when the test ends. So tests run in parallel without seeing each
//! other's rows, and a test passes or fails the same way on a laptop with its own
//! PostgreSQL running as on a bare CI machine.
//!
//! `initdb` and `postgres` refuse to run as root. When the tests do (containers, CI), every
//! PostgreSQL command runs as the unprivileged `postgres` user that Debian's package
//! creates (`nobody` where there is none), and the temporary folder is handed to that user.
//!
//! The server is tuned for tests, not for keeping data: `fsync = off`, small shared
//! buffers, and an immediate stop at the end. Its output goes to `postgres.log` in the
//! temporary folder; when a test fails, the end of that log is printed with the test's
//! output and the folder is left in place, as [`crate::Server`] does with its log.
//!
//! ```no_run
//! use sandscribe_e2e::Postgres;
//!
//! let db = Postgres::start();
//! db.psql("create table jobs (id int)");
//! assert_eq!(db.psql("select count(*) from jobs"), "0");
//! let url = db.url(); // postgresql://sandscribe@127.0.0.1:PORT/sandscribe
//! # let _ = url;
//! ```

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The superuser `initdb` creates, and the user in every URL.
const USER: &str = "sandscribe";

/// The database [`Postgres::start`] creates and [`Postgres::url`] names.
const DATABASE: &str = "sandscribe";

/// Seconds `pg_ctl` waits for the server to accept connections, or to stop.
const WAIT_SECONDS: &str = "30";

/// Lines of the PostgreSQL log printed when a test fails.
const LOG_TAIL_LINES: usize = 80;

/// How often [`Postgres::start`] picks another port when the one it chose was taken
/// between choosing and binding (another test got it first).
const PORT_ATTEMPTS: usize = 3;

/// A running PostgreSQL server with its own temporary folder; stopped when dropped.
#[derive(Debug)]
pub struct Postgres {
    dir: tempfile::TempDir,
    /// The folder holding `initdb`, `pg_ctl` and `psql`.
    bin: PathBuf,
    /// Who runs the PostgreSQL commands when the tests run as root.
    run_as: Option<RunAs>,
    port: u16,
    running: bool,
}

/// An unprivileged user's ids.
#[derive(Debug, Clone, Copy)]
struct RunAs {
    uid: u32,
    gid: u32,
}

impl Postgres {
    /// Creates a data folder, starts the server on a free loopback port, waits until it
    /// accepts connections and creates the database `sandscribe`.
    ///
    /// Panics, saying what to do, when the PostgreSQL binaries are missing.
    pub fn start() -> Self {
        let bin = binaries();
        let run_as = unprivileged_user();
        let dir = tempfile::Builder::new()
            .prefix("sandscribe-pg-")
            .tempdir()
            .expect("create a temporary folder");
        if let Some(user) = run_as {
            let path = dir.path();
            if let Err(e) = std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid)) {
                panic!("cannot hand {} to uid {}: {e}", path.display(), user.uid);
            }
        }
        let mut postgres = Self {
            dir,
            bin,
            run_as,
            port: 0,
            running: false,
        };
        postgres.init_data_folder();
        let mut attempt = 1;
        loop {
            postgres.port = free_port();
            match postgres.pg_ctl_start() {
                Ok(()) => break,
                Err(log) if attempt < PORT_ATTEMPTS && log.contains("already in use") => {
                    attempt += 1;
                }
                Err(log) => panic!("PostgreSQL did not start:\n{log}"),
            }
        }
        postgres.psql_in("postgres", &format!("create database {DATABASE}"));
        postgres
    }

    /// `postgresql://sandscribe@127.0.0.1:PORT/sandscribe`: what the server under test is
    /// configured with. No password: the server trusts every local connection.
    pub fn url(&self) -> String {
        self.url_of(DATABASE)
    }

    /// The loopback port the server listens on (the same after [`Postgres::start_again`]).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Creates another, empty database on this server and returns its URL, for tests that
    /// share one server but want tables of their own. `name` is a plain SQL identifier
    /// (lowercase letters, digits, `_`).
    pub fn create_database(&self, name: &str) -> String {
        assert!(
            !name.is_empty()
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
            "{name:?} is not a plain database name (lowercase letters, digits, _)"
        );
        self.psql_in("postgres", &format!("create database {name}"));
        self.url_of(name)
    }

    /// Stops the server (`pg_ctl stop -m fast`: open connections are cut) and waits until
    /// it is gone, as when the database goes away under a running sandscribe.
    pub fn stop(&mut self) {
        if !self.running {
            return;
        }
        let mut command = self.pg_ctl();
        command.args(["stop", "-m", "fast", "-w", "-t", WAIT_SECONDS]);
        let output = self.output(&mut command);
        assert!(
            output.status.success(),
            "pg_ctl stop failed ({}):\n{}",
            output.status,
            both_streams(&output)
        );
        self.running = false;
    }

    /// Starts the stopped server again on the same data folder and port, and waits until
    /// it accepts connections.
    pub fn start_again(&mut self) {
        if self.running {
            return;
        }
        self.append_log("---- start again ----\n");
        if let Err(log) = self.pg_ctl_start() {
            panic!(
                "PostgreSQL did not start again on port {}:\n{log}",
                self.port
            );
        }
    }

    /// Runs `sql` in the database `sandscribe` with `psql` and returns what it printed,
    /// unaligned and without headers (`select count(*) ...` gives `"3"`), trimmed.
    /// Panics, with psql's error, when the SQL fails.
    pub fn psql(&self, sql: &str) -> String {
        self.psql_in(DATABASE, sql)
    }

    /// The last lines of the server's log.
    pub fn log_tail(&self) -> String {
        let text = fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let start = lines.len().saturating_sub(LOG_TAIL_LINES);
        format!(
            "---- postgres log ({}), last {} lines ----\n{}\n---- end of postgres log ----",
            self.log_path().display(),
            lines.len() - start,
            lines[start..].join("\n")
        )
    }

    fn url_of(&self, database: &str) -> String {
        format!("postgresql://{USER}@127.0.0.1:{}/{database}", self.port)
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    fn append_log(&self, text: &str) {
        if let Ok(mut file) = OpenOptions::new().append(true).open(self.log_path()) {
            let _ = file.write_all(text.as_bytes());
        }
    }

    /// `initdb`, then the settings every start shares.
    fn init_data_folder(&self) {
        let mut initdb = self.tool("initdb");
        initdb
            .arg("-D")
            .arg(self.data_dir())
            .args(["-U", USER, "--auth=trust", "-E", "UTF8", "--locale=C"])
            // Nothing here has to survive a power cut: skip the fsync of every file.
            .arg("--no-sync");
        let output = self.output(&mut initdb);
        assert!(
            output.status.success(),
            "initdb failed ({}):\n{}",
            output.status,
            both_streams(&output)
        );
        let socket_dir = self.dir.path().display().to_string().replace('\'', "''");
        // Appended, so the file keeps its owner (the user the server runs as).
        let settings = format!(
            "\n# The sandscribe test harness: loopback only, its own socket, fast and small.\n\
             listen_addresses = '127.0.0.1'\n\
             unix_socket_directories = '{socket_dir}'\n\
             fsync = off\n\
             synchronous_commit = off\n\
             max_connections = 200\n\
             shared_buffers = 32MB\n"
        );
        let conf = self.data_dir().join("postgresql.conf");
        OpenOptions::new()
            .append(true)
            .open(&conf)
            .and_then(|mut file| file.write_all(settings.as_bytes()))
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", conf.display()));
    }

    /// `pg_ctl start` on `self.port`, waiting until the server accepts connections; on
    /// failure, what pg_ctl and the log said.
    fn pg_ctl_start(&mut self) -> Result<(), String> {
        let log_before = fs::metadata(self.log_path()).map_or(0, |m| m.len() as usize);
        let mut command = self.pg_ctl();
        command
            .args(["start", "-w", "-t", WAIT_SECONDS, "-l"])
            .arg(self.log_path())
            .arg("-o")
            .arg(format!("-p {}", self.port));
        let output = self.output(&mut command);
        if output.status.success() {
            self.running = true;
            return Ok(());
        }
        // pg_ctl may give up while the server is still starting: make sure it is gone.
        let mut stop = self.pg_ctl();
        stop.args(["stop", "-m", "immediate", "-w", "-t", WAIT_SECONDS]);
        let _ = self.output(&mut stop);
        let log = fs::read(self.log_path()).unwrap_or_default();
        Err(format!(
            "{}\n{}",
            both_streams(&output),
            String::from_utf8_lossy(log.get(log_before..).unwrap_or_default())
        ))
    }

    fn pg_ctl(&self) -> Command {
        let mut command = self.tool("pg_ctl");
        command.arg("-D").arg(self.data_dir());
        command
    }

    fn psql_in(&self, database: &str, sql: &str) -> String {
        let mut psql = self.tool("psql");
        psql.args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1"])
            .args(["-h", "127.0.0.1", "-U", USER, "-d", database])
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-c")
            .arg(sql);
        let output = self.output(&mut psql);
        assert!(
            output.status.success(),
            "psql failed on {sql:?} ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// A PostgreSQL program, run as the unprivileged user when the tests run as root,
    /// from the temporary folder (which that user can enter), in the C locale.
    fn tool(&self, name: &str) -> Command {
        let mut command = Command::new(self.bin.join(name));
        command
            .current_dir(self.dir.path())
            .env("LC_ALL", "C")
            .stdin(Stdio::null());
        if let Some(user) = self.run_as {
            command.uid(user.uid).gid(user.gid);
        }
        command
    }

    fn output(&self, command: &mut Command) -> Output {
        command.output().unwrap_or_else(|e| {
            panic!(
                "cannot run {}: {e}",
                Path::new(command.get_program()).display()
            )
        })
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if self.running {
            // Immediate: a test's database is thrown away, so there is nothing to flush.
            let mut stop = self.pg_ctl();
            stop.args(["stop", "-m", "immediate", "-w", "-t", WAIT_SECONDS]);
            let _ = stop.output();
            self.running = false;
        }
        if std::thread::panicking() {
            // Keep the evidence (log, data folder) of a failed test; the tail of the log
            // is printed with the test's captured output.
            self.dir.disable_cleanup(true);
            eprintln!("{}", self.log_tail());
        }
    }
}

/// The folder with the PostgreSQL programs: `SANDSCRIBE_PG_BIN`, else the highest version
/// under `/usr/lib/postgresql/*/bin` (where Debian puts them), else `initdb`'s on PATH.
fn binaries() -> PathBuf {
    const TOOLS: [&str; 3] = ["initdb", "pg_ctl", "psql"];
    let has_tools = |dir: &Path| TOOLS.iter().all(|tool| dir.join(tool).is_file());
    if let Some(dir) = std::env::var_os("SANDSCRIBE_PG_BIN").map(PathBuf::from) {
        assert!(
            has_tools(&dir),
            "SANDSCRIBE_PG_BIN={} lacks one of {TOOLS:?}",
            dir.display()
        );
        return dir;
    }
    let debian = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = version_key(&entry.file_name().to_string_lossy())?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, bin)| has_tools(bin))
        .max();
    if let Some((_, bin)) = debian {
        return bin;
    }
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .find(|dir| has_tools(dir));
    on_path.unwrap_or_else(|| {
        panic!(
            "PostgreSQL ({TOOLS:?}) was not found under /usr/lib/postgresql/*/bin, on PATH or \
             in SANDSCRIBE_PG_BIN; run `cargo xtask setup` (it installs Debian's `postgresql`)"
        )
    })
}

/// `"15"` → `[15]`, `"9.6"` → `[9, 6]`, so versions compare as numbers.
fn version_key(name: &str) -> Option<Vec<u32>> {
    name.split('.').map(|part| part.parse().ok()).collect()
}

/// When the tests run as root: the user PostgreSQL runs as (`postgres`, else `nobody`).
fn unprivileged_user() -> Option<RunAs> {
    if id(&["-u"])? != 0 {
        return None;
    }
    ["postgres", "nobody"].into_iter().find_map(|name| {
        Some(RunAs {
            uid: id(&["-u", name])?,
            gid: id(&["-g", name])?,
        })
    })
}

/// What `id ARGS` prints, as a number.
fn id(args: &[&str]) -> Option<u32> {
    let output = Command::new("id").args(args).output().ok()?;
    if !output.status.success() {
        return None;
    }
    String::from_utf8_lossy(&output.stdout).trim().parse().ok()
}

/// A loopback port nobody listens on right now.
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .expect("bind a free loopback port")
        .port()
}

fn both_streams(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpStream;
    use std::time::Instant;

    #[test]
    fn starts_answers_restarts_and_stops() {
        let started = Instant::now();
        let mut db = Postgres::start();
        eprintln!("Postgres::start took {:?}", started.elapsed());
        let port = db.port();
        assert_eq!(
            db.url(),
            format!("postgresql://sandscribe@127.0.0.1:{port}/sandscribe")
        );
        assert_eq!(db.psql("select 40+2"), "42");

        db.psql("create table kept (n int); insert into kept values (1), (2)");
        db.stop();
        assert!(
            TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err(),
            "a stopped server still accepts connections"
        );
        db.start_again();
        assert_eq!(db.port(), port);
        assert_eq!(
            db.psql("select count(*) from kept"),
            "2",
            "rows survive a restart"
        );

        let other = db.create_database("isolated");
        assert_eq!(
            other,
            format!("postgresql://sandscribe@127.0.0.1:{port}/isolated")
        );

        let dir = db.dir.path().to_owned();
        drop(db);
        assert!(
            TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err(),
            "the server outlived its Postgres"
        );
        TcpListener::bind((Ipv4Addr::LOCALHOST, port)).expect("the port is free after drop");
        assert!(!dir.exists(), "the temporary folder is removed after drop");
    }
}
