//! Compiling C files into cached objects, on every core.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::{CBuildError, Toolchain, hash, io};

/// One C file to compile.
#[derive(Debug, Clone)]
pub struct Unit {
    pub source: PathBuf,
    pub flags: Vec<String>,
    /// What else the object depends on: a digest of the headers it may include (see
    /// [`crate::digest_files`]) and of any pinned inputs the caller knows of.
    pub depends_on: String,
}

/// Compiles every unit whose object is not cached in `objects_dir` and returns the
/// objects in the order of `units`; stops at the first failure.
pub fn compile_units(
    toolchain: &Toolchain,
    units: &[Unit],
    objects_dir: &Path,
) -> Result<Vec<PathBuf>, CBuildError> {
    std::fs::create_dir_all(objects_dir).map_err(io("create", objects_dir))?;
    let mut objects = Vec::new();
    let mut pending = Vec::new();
    for unit in units {
        let source = std::fs::read(&unit.source).map_err(io("read", &unit.source))?;
        let key = hash(&[
            toolchain.version.as_bytes(),
            toolchain.target.as_bytes(),
            unit.flags.join("\0").as_bytes(),
            unit.depends_on.as_bytes(),
            &source,
        ]);
        let stem = unit
            .source
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("unit");
        let object = objects_dir.join(format!("{stem}-{}.o", &key[..16]));
        if !object.is_file() {
            pending.push((unit, object.clone()));
        }
        objects.push(object);
    }
    compile_all(toolchain, &pending)?;
    Ok(objects)
}

fn compile_all(toolchain: &Toolchain, pending: &[(&Unit, PathBuf)]) -> Result<(), CBuildError> {
    if pending.is_empty() {
        return Ok(());
    }
    eprintln!(
        "compiling {} C file(s) with {}",
        pending.len(),
        toolchain.describe()
    );
    let next = AtomicUsize::new(0);
    let failure: Mutex<Option<CBuildError>> = Mutex::new(None);
    let workers = std::thread::available_parallelism().map_or(1, usize::from);
    std::thread::scope(|scope| {
        for _ in 0..workers.min(pending.len()) {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some((unit, object)) = pending.get(index) else {
                        break;
                    };
                    if failure.lock().is_ok_and(|f| f.is_some()) {
                        break;
                    }
                    if let Err(e) = toolchain.compile(&unit.source, &unit.flags, object)
                        && let Ok(mut slot) = failure.lock()
                    {
                        slot.get_or_insert(e);
                    }
                }
            });
        }
    });
    match failure.into_inner() {
        Ok(None) => Ok(()),
        Ok(Some(e)) => Err(e),
        // A compiler thread only panics on a bug here; report it as a compile failure.
        Err(_) => Err(CBuildError::Compile {
            compiler: toolchain.describe(),
            file: PathBuf::from("(a compiler thread panicked)"),
            diagnostics: String::new(),
        }),
    }
}
