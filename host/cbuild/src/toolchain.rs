//! Finding a clang that builds a WASI reactor, and compiling one file with it.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::link::{LINK_FLAGS, LINK_LIBRARIES};
use crate::{CBuildError, io};

/// Compilers tried, in order (after `SANDSCRIBE_CLANG` when the caller passes it):
/// Debian's versioned clang first, whose builtins package is known to work.
pub const CLANG_CANDIDATES: &[&str] = &["clang-19", "clang"];

/// The Debian packages that bring the compiler, the linker, the wasm32 builtins and the
/// C library.
pub const APT_PACKAGES: &[&str] = &[
    "clang-19",
    "lld-19",
    "libclang-rt-19-dev-wasm32",
    "wasi-libc",
];

/// Names clang gives WASI preview 1, newest first: clang 19 knows both, and looks for
/// the C library in the folder of the name it was given.
const TARGETS: &[&str] = &["wasm32-wasip1", "wasm32-wasi"];

/// A small reactor that uses stdio, libm and the emulated mmap: what plugins need.
const PROBE: &str = "#include <math.h>\n#include <stdio.h>\n#include <sys/mman.h>\n\
    __attribute__((export_name(\"probe\"))) int probe(double x) {\n\
    \x20   void *p = mmap(0, 16, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);\n\
    \x20   return printf(\"%g\", sqrt(x)) + (p == MAP_FAILED);\n}\n";

/// The compiler, the target name its C library answers to, and where that library's
/// headers are.
#[derive(Debug, Clone)]
pub struct Toolchain {
    pub(crate) clang: PathBuf,
    pub(crate) target: &'static str,
    /// `clang --version`'s first line, part of every object's hash.
    pub(crate) version: String,
    /// Flags that make the C library's headers the only system headers: Debian's clang
    /// also searches `/usr/include` (glibc's headers) and `/usr/local/include`, which must
    /// not leak into a WebAssembly build.
    pub(crate) system_includes: Vec<String>,
}

impl Toolchain {
    /// The first of `candidates` (program names or paths) that builds a WASI reactor,
    /// probed in `scratch`; `NoToolchain` naming what was tried otherwise.
    pub fn find(candidates: &[&str], scratch: &Path) -> Result<Self, CBuildError> {
        std::fs::create_dir_all(scratch).map_err(io("create", scratch))?;
        candidates
            .iter()
            .find_map(|clang| Self::probe(Path::new(clang), scratch))
            .ok_or_else(|| CBuildError::NoToolchain {
                tried: candidates.join(", "),
            })
    }

    /// What it is, for logs: "clang version 19.1.7 (wasm32-wasip1)".
    pub fn describe(&self) -> String {
        format!("{} ({})", self.version, self.target)
    }

    fn probe(clang: &Path, scratch: &Path) -> Option<Self> {
        let output = Command::new(clang).arg("--version").output().ok()?;
        if !output.status.success() {
            return None;
        }
        let version = String::from_utf8_lossy(&output.stdout)
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned();
        let source = scratch.join("probe.c");
        std::fs::write(&source, PROBE).ok()?;
        TARGETS.iter().find_map(|target| {
            let system_includes = libc_include_flags(clang, target, &source)?;
            let status = Command::new(clang)
                .arg(format!("--target={target}"))
                .args(&system_includes)
                .arg("-D_WASI_EMULATED_MMAN")
                .args(LINK_FLAGS)
                .arg(&source)
                .args(LINK_LIBRARIES)
                .arg("-o")
                .arg(scratch.join("probe.wasm"))
                .output()
                .ok()?;
            status.status.success().then(|| Self {
                clang: clang.to_owned(),
                target,
                version: version.clone(),
                system_includes,
            })
        })
    }

    /// A `clang` command for this target with the C library's headers only.
    pub(crate) fn command(&self) -> Command {
        let mut command = Command::new(&self.clang);
        command
            .arg(format!("--target={}", self.target))
            .args(&self.system_includes);
        command
    }

    /// Compiles `source` with `flags` into `object` (written whole or not at all);
    /// warnings go to stderr.
    pub(crate) fn compile(
        &self,
        source: &Path,
        flags: &[String],
        object: &Path,
    ) -> Result<(), CBuildError> {
        let partial = object.with_extension("o.part");
        let output = self
            .command()
            .args(flags)
            .arg("-c")
            .arg(source)
            .arg("-o")
            .arg(&partial)
            .output()
            .map_err(io("run", &self.clang))?;
        let diagnostics = String::from_utf8_lossy(&output.stderr).into_owned();
        if !output.status.success() {
            return Err(CBuildError::Compile {
                compiler: self.clang.display().to_string(),
                file: source.to_owned(),
                diagnostics,
            });
        }
        if !diagnostics.trim().is_empty() {
            eprint!("{diagnostics}");
        }
        std::fs::rename(&partial, object).map_err(io("write", object))
    }
}

/// `-nostdlibinc` and an `-isystem` for each folder of clang's header search list that
/// belongs to WASI (`/usr/include/wasm32-wasi` on Debian); `None` when there is none, as
/// when `target` is a name the installed C library does not use.
fn libc_include_flags(clang: &Path, target: &str, source: &Path) -> Option<Vec<String>> {
    let output = Command::new(clang)
        .arg(format!("--target={target}"))
        .args(["-E", "-v", "-o", "-"])
        .arg(source)
        .output()
        .ok()?;
    let log = String::from_utf8_lossy(&output.stderr);
    let dirs: Vec<&str> = log
        .lines()
        .skip_while(|line| !line.starts_with("#include <...> search starts here"))
        .skip(1)
        .take_while(|line| !line.starts_with("End of search list"))
        .map(str::trim)
        .filter(|dir| dir.contains("wasi"))
        .collect();
    if dirs.is_empty() {
        return None;
    }
    let mut flags = vec!["-nostdlibinc".to_owned()];
    flags.extend(dirs.iter().map(|dir| format!("-isystem{dir}")));
    Some(flags)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_compiler_is_reported_with_the_install_command() {
        let scratch = tempfile::tempdir().expect("a temporary folder");
        let err = Toolchain::find(&["/nonexistent/clang-0"], scratch.path())
            .expect_err("no such compiler");
        let message = err.to_string();
        assert!(message.contains("/nonexistent/clang-0"), "{message}");
        assert!(message.contains("apt-get install clang-19"), "{message}");
    }
}
