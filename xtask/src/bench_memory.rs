//! What a second concurrent Whisper job costs in memory, measured on a real server.
//!
//! The server first runs two jobs at once (which loads the plugin's shared weights and
//! warms the allocator on both worker threads, as in a server that has been up a while),
//! then one job alone and two at once; before each, the kernel's peak resident-set
//! counter is reset (`/proc/PID/clear_refs`, value 5), so `VmHWM` afterwards is that
//! phase's peak. The second job's extra is the difference of the two peaks: with shared
//! weights it is the job's own memory (plugin linear memory, host tensors, KV caches,
//! the store), never a second copy of the model. Beside it, the job's own peak as the
//! host accounts it (`usage.peak_memory_bytes`), which does not depend on the allocator.
//! Linux only.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{PLUGIN, number};
use crate::cmd;

pub struct Memory {
    /// Resident memory with the weights loaded and no job running, MiB.
    idle_mib: f64,
    /// Peak above idle with one job, MiB.
    one_mib: f64,
    /// Peak above idle with two concurrent jobs, MiB.
    two_mib: f64,
    /// The job's own peak as the server reports it (`usage.peak_memory_bytes`), MiB.
    job_peak_mib: f64,
    /// The plugin's shared weights (`usage.shared_weights_bytes`), MiB.
    shared_mib: f64,
}

impl Memory {
    pub fn print(&self) {
        println!(
            "memory (server, float32, 1 thread, {PLUGIN}, after a warm-up pair): {:.0} MiB resident \
             idle with the shared weights loaded ({:.0} MiB of weights, one copy); one job adds \
             {:.0} MiB at its peak (the job's own accounted peak: {:.0} MiB), two concurrent jobs \
             {:.0} MiB: the second job adds {:.0} MiB",
            self.idle_mib,
            self.shared_mib,
            self.one_mib,
            self.job_peak_mib,
            self.two_mib,
            self.two_mib - self.one_mib
        );
    }
}

/// Runs the three phases on `clip` against a server started for the purpose.
pub fn concurrent_jobs(
    bin: &Path,
    plugins: &Path,
    work: &Path,
    clip: &Path,
) -> Result<Memory, String> {
    let config = work.join("memory.toml");
    std::fs::write(
        &config,
        "[jobs]\nmax_running = 2\n\n[limits]\nthreads_per_job = 1\n",
    )
    .map_err(|e| format!("cannot write {}: {e}", config.display()))?;
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("no free port: {e}"))?
        .port();
    let data = work.join("memory-data");
    let _ = std::fs::remove_dir_all(&data);
    let server = Command::new(bin)
        .arg("serve")
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--plugins")
        .arg(plugins)
        .arg("--data")
        .arg(&data)
        .env("SANDSCRIBE_CONFIG", &config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    let server = Server {
        child: server,
        base: format!("http://127.0.0.1:{port}"),
    };
    server.wait_healthy()?;
    let pid = server.child.id();

    let warm = [server.submit(clip)?, server.submit(clip)?];
    for id in &warm {
        server.wait(id)?;
    }
    let idle = status_kib(pid, "VmRSS")?;
    reset_peak(pid)?;
    let one = server.submit(clip)?;
    let job = server.wait(&one)?;
    let peak_one = status_kib(pid, "VmHWM")?;
    reset_peak(pid)?;
    let pair = [server.submit(clip)?, server.submit(clip)?];
    for id in &pair {
        server.wait(id)?;
    }
    let peak_two = status_kib(pid, "VmHWM")?;
    let mib = |kib: f64| kib / 1024.0;
    Ok(Memory {
        idle_mib: mib(idle),
        one_mib: mib(peak_one - idle),
        two_mib: mib(peak_two - idle),
        job_peak_mib: number(&job, "peak_memory_bytes")? / (1u64 << 20) as f64,
        shared_mib: number(&job, "shared_weights_bytes").unwrap_or(0.0) / (1u64 << 20) as f64,
    })
}

/// The server, stopped when dropped.
struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn get(&self, path: &str) -> Result<String, String> {
        cmd::output(Command::new("curl").args(["-sf", &format!("{}{path}", self.base)]))
    }

    fn wait_healthy(&self) -> Result<(), String> {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(60) {
            if self.get("/healthz").is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err("the bench server did not become healthy in 60 s".into())
    }

    /// Submits `clip` with the plugin's defaults; returns the job id.
    fn submit(&self, clip: &Path) -> Result<String, String> {
        let body = cmd::output(Command::new("curl").args([
            "-sf",
            "-F",
            &format!("file=@{}", clip.display()),
            "-F",
            &format!("plugin={PLUGIN}"),
            &format!("{}/api/jobs", self.base),
        ]))?;
        string_field(&body, "id").ok_or_else(|| format!("no job id in {body}"))
    }

    /// Polls the job until it ends; returns its JSON when it completed.
    fn wait(&self, id: &str) -> Result<String, String> {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(600) {
            let job = self.get(&format!("/api/jobs/{id}"))?;
            match string_field(&job, "status").as_deref() {
                Some("completed") => return Ok(job),
                Some("failed" | "cancelled" | "timed_out" | "interrupted") => {
                    return Err(format!("bench job {id} did not complete: {job}"));
                }
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
        Err(format!("bench job {id} still running after 10 minutes"))
    }
}

/// The first `"key":"value"` string of a JSON text (no JSON dependency in xtask).
fn string_field(json: &str, key: &str) -> Option<String> {
    let needle = format!("\"{key}\":\"");
    let start = json.find(&needle)? + needle.len();
    let end = json[start..].find('"')?;
    Some(json[start..start + end].to_owned())
}

/// A `kB` line of `/proc/PID/status`.
fn status_kib(pid: u32, field: &str) -> Result<f64, String> {
    let path = PathBuf::from(format!("/proc/{pid}/status"));
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "cannot read {} (memory is measured on Linux): {e}",
            path.display()
        )
    })?;
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("no {field} in {}", path.display()))
}

/// Restarts the process's peak resident-set counter at its current size.
fn reset_peak(pid: u32) -> Result<(), String> {
    let path = format!("/proc/{pid}/clear_refs");
    std::fs::write(&path, "5").map_err(|e| format!("cannot write {path}: {e}"))
}
