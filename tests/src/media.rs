//! Real media for the tests: the speech clips and models `cargo xtask setup` installs,
//! encoded into other formats with the ffmpeg binary `cargo xtask test` unpacks.

use std::path::PathBuf;
use std::process::Command;

use crate::workspace_root;

/// The folder with the test speech (`goforward.wav`, `librivox-*.wav` and their `.txt`).
pub fn speech_dir() -> PathBuf {
    let dir = std::env::var_os("SANDSCRIBE_SPEECH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/speech"));
    assert!(
        dir.join("goforward.wav").is_file(),
        "the test speech is missing from {}; run `cargo xtask setup` first",
        dir.display()
    );
    dir
}

/// A plugins folder holding exactly `plugins`, linked from the installed example plugins
/// (`SANDSCRIBE_PLUGINS` or `plugins/`), each checked to be there.
///
/// A server loads (and, with its fresh data folder, compiles) every plugin in its folder
/// before it serves, so a test gets only those it names: compiling the Python Whisper
/// plugin's 18 MB component takes seconds that a test of the Rust plugin need not pay.
pub fn example_plugins_dir(plugins: &[&str]) -> PathBuf {
    let installed = std::env::var_os("SANDSCRIBE_PLUGINS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("plugins"));
    let installed = installed.canonicalize().unwrap_or(installed);
    for plugin in plugins {
        assert!(
            installed.join(plugin).join("plugin.wasm").is_file(),
            "the {plugin} plugin is missing from {}; run `cargo xtask setup --models base` first",
            installed.display()
        );
    }
    // One folder per installed folder and selection, shared by the tests that ask for it.
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    std::hash::Hash::hash(&(&installed, plugins), &mut hasher);
    let dir = std::env::temp_dir().join(format!(
        "sandscribe-e2e-plugins-{:016x}",
        std::hash::Hasher::finish(&hasher)
    ));
    std::fs::create_dir_all(&dir).expect("create the selected plugins folder");
    for plugin in plugins {
        let link = dir.join(plugin);
        if link.exists() {
            continue;
        }
        match std::os::unix::fs::symlink(installed.join(plugin), &link) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => panic!("cannot link {} into {}: {e}", plugin, dir.display()),
        }
    }
    dir
}

/// The ffmpeg binary (`SANDSCRIBE_FFMPEG`, or where `cargo xtask test` puts it).
pub fn ffmpeg() -> PathBuf {
    let path = std::env::var_os("SANDSCRIBE_FFMPEG")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/tools/ffmpeg"));
    assert!(
        path.is_file(),
        "ffmpeg is missing at {}; `cargo xtask test` installs it",
        path.display()
    );
    path
}

/// Runs ffmpeg with `args` (inputs, codec options) writing `output` into a fresh temporary
/// file, and returns the encoded bytes. `output` is the file name, whose extension picks
/// the container.
pub fn encode(args: &[&str], output: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let target = dir.path().join(output);
    let result = Command::new(ffmpeg())
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args(args)
        .arg(&target)
        .output()
        .expect("ffmpeg runs");
    assert!(
        result.status.success(),
        "ffmpeg {args:?} {output} failed: {}",
        String::from_utf8_lossy(&result.stderr)
    );
    std::fs::read(&target).expect("ffmpeg wrote its output")
}

/// A process's resident memory now and at its peak, in MiB, from /proc (Linux).
pub fn memory_mib(pid: u32) -> (u64, u64) {
    let (rss, peak) = memory_kib(pid);
    (rss / 1024, peak / 1024)
}

/// A process's resident memory now and at its peak (`VmRSS`, `VmHWM`), in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// A process's resident memory before something and at its peak during it, in KiB.
#[derive(Debug, Clone, Copy)]
pub struct PeakMemory {
    pub before_kib: u64,
    pub peak_kib: u64,
}

impl PeakMemory {
    /// Runs `f`, measuring process `pid`: the kernel's peak is reset to the current size
    /// first (`/proc/PID/clear_refs`, so an earlier peak, such as compiling the plugins
    /// at start, hides nothing), and `VmRSS` is also sampled every millisecond in case
    /// the reset is not allowed.
    pub fn during<T>(pid: u32, f: impl FnOnce() -> T) -> (T, Self) {
        let reset = std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok();
        let (before_kib, _) = memory_kib(pid);
        let done = std::sync::atomic::AtomicBool::new(false);
        let (value, sampled) = std::thread::scope(|scope| {
            let sampler = scope.spawn(|| {
                let mut peak = 0;
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    peak = peak.max(memory_kib(pid).0);
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                peak
            });
            let value = f();
            done.store(true, std::sync::atomic::Ordering::Relaxed);
            (value, sampler.join().expect("the sampling thread"))
        });
        let (_, hwm) = memory_kib(pid);
        let peak_kib = if reset { hwm.max(sampled) } else { sampled };
        (
            value,
            Self {
                before_kib,
                peak_kib,
            },
        )
    }

    /// How far the peak rose above where it started, in KiB.
    pub fn growth_kib(&self) -> u64 {
        self.peak_kib.saturating_sub(self.before_kib)
    }
}

/// The 16-bit samples of a PCM WAV file (its `data` chunk, whatever chunks come first),
/// e.g. a test clip to join with another into new test audio.
pub fn wav_samples(path: &std::path::Path) -> Vec<i16> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut at = 12;
    while at + 8 <= bytes.len() {
        let size = u32::from_le_bytes([bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]])
            as usize;
        if &bytes[at..at + 4] == b"data" {
            let end = (at + 8).saturating_add(size).min(bytes.len());
            return bytes[at + 8..end]
                .chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]]))
                .collect();
        }
        at = at.saturating_add(8 + size + (size & 1));
    }
    panic!("{} has no data chunk", path.display());
}
