//! Building a C plugin folder (`*.c`): `sandscribe-cbuild`'s route, the one PocketSphinx
//! is built with, against the contract this binary serves.
//!
//! The bindings of the newest WIT version's `transcriber` world are generated from the
//! copy embedded here (so an author outside a checkout needs no WIT files) into
//! `<dir>/target/sandscribe-c/bindings/`; every `.c` file in the folder and in `src/` is
//! compiled (`-std=gnu23 -Wall -Wextra`, the folder and `include/` on the header path,
//! wasi-libc's mmap and process-clock emulations available), linked as a WASI reactor and
//! made a component. The compiler is `SANDSCRIBE_CLANG`, else Debian's `clang-19`, else
//! `clang`.

use std::path::{Path, PathBuf};

use sandscribe_cbuild::{
    CBuildError, CLANG_CANDIDATES, COMMON_FLAGS, Toolchain, Unit, WitSource, compile_units,
    digest_files, generate_bindings, link_component,
};

use super::build::BuildError;

/// The contract C plugins are built against: the newest served version's files.
pub(crate) const WIT_FILES: &[(&str, &str)] = &[
    ("plugin.wit", include_str!("../../../wit/v0.2.0/plugin.wit")),
    (
        "compute.wit",
        include_str!("../../../wit/v0.2.0/compute.wit"),
    ),
];
const WORLD: &str = "transcriber";

/// The plugin's own files: C23 (`#embed` for a schema kept as plain JSON), warnings on,
/// and wasi-libc's emulations of what WASI lacks, as PocketSphinx needs them.
const PLUGIN_FLAGS: &[&str] = &[
    "-std=gnu23",
    "-Wall",
    "-Wextra",
    "-D_WASI_EMULATED_MMAN",
    "-D_WASI_EMULATED_PROCESS_CLOCKS",
];

/// Builds the C plugin in `source` and returns the component's path
/// (`<source>/target/sandscribe-c/plugin.wasm`).
pub fn build(source: &Path) -> Result<PathBuf, BuildError> {
    let build = source.join("target/sandscribe-c");
    let from_env = std::env::var("SANDSCRIBE_CLANG").ok();
    let candidates: Vec<&str> = from_env
        .as_deref()
        .into_iter()
        .chain(CLANG_CANDIDATES.iter().copied())
        .collect();
    let toolchain = Toolchain::find(&candidates, &build)?;
    let bindings = generate_bindings(WitSource::Files(WIT_FILES), WORLD, &build.join("bindings"))?;
    let sources = c_sources(source)?;
    if sources.is_empty() {
        return Err(BuildError::Metadata(format!(
            "{} has no .c files to build",
            source.display()
        )));
    }

    let name = source
        .file_name()
        .map_or("plugin".into(), |n| n.to_string_lossy());
    let mut flags: Vec<String> = COMMON_FLAGS.iter().map(|s| (*s).to_owned()).collect();
    flags.extend([
        format!("-I{}", source.display()),
        format!("-I{}", source.join("include").display()),
        format!("-I{}", bindings.display()),
        // `__FILE__` names the plugin, not the folder it was built in.
        format!("-ffile-prefix-map={}={name}", source.display()),
        format!("-ffile-prefix-map={}=bindings", bindings.display()),
    ]);
    let mut plugin_flags = flags.clone();
    plugin_flags.extend(PLUGIN_FLAGS.iter().map(|s| (*s).to_owned()));
    // Headers, the embedded schema and anything else `#include`/`#embed` may read.
    let mut header_dirs = vec![source, bindings.as_path()];
    let include = source.join("include");
    if include.is_dir() {
        header_dirs.push(&include);
    }
    let headers = digest_files(&header_dirs, &["h", "json", "inc"])?;
    let mut units: Vec<Unit> = sources
        .into_iter()
        .map(|path| Unit {
            source: path,
            flags: plugin_flags.clone(),
            depends_on: headers.clone(),
        })
        .collect();
    // The generated C has unused parameters by design: compiled without warnings.
    let mut binding_flags = flags;
    binding_flags.push("-w".to_owned());
    units.push(Unit {
        source: bindings.join(format!("{WORLD}.c")),
        flags: binding_flags,
        depends_on: headers,
    });
    let mut objects = compile_units(&toolchain, &units, &build.join("obj"))?;
    objects.push(bindings.join(format!("{WORLD}_component_type.o")));
    Ok(link_component(&toolchain, &objects, &build)?)
}

/// The `.c` files directly in `dir` and anywhere under `dir/src/`, sorted.
fn c_sources(dir: &Path) -> Result<Vec<PathBuf>, BuildError> {
    fn walk(dir: &Path, deep: bool, out: &mut Vec<PathBuf>) -> Result<(), BuildError> {
        let entries = std::fs::read_dir(dir).map_err(|source| BuildError::Io {
            action: "read",
            path: dir.to_owned(),
            source,
        })?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                if deep {
                    walk(&path, true, out)?;
                }
            } else if path.extension().is_some_and(|e| e == "c") {
                out.push(path);
            }
        }
        Ok(())
    }
    let mut sources = Vec::new();
    walk(dir, false, &mut sources)?;
    let src = dir.join("src");
    if src.is_dir() {
        walk(&src, true, &mut sources)?;
    }
    sources.sort();
    Ok(sources)
}

impl From<CBuildError> for BuildError {
    fn from(error: CBuildError) -> Self {
        Self::C(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::WitVersion;

    #[test]
    fn c_plugins_build_against_a_served_contract() {
        // 0.2.0: C plugins are transcribers; the C template and PocketSphinx fill records
        // field by field, so moving them to 0.3.0 means setting its new `speaker` fields.
        let served = WitVersion::SUPPORTED.iter().any(|v| {
            WIT_FILES[0]
                .1
                .contains(&format!("package sandscribe:plugin@{v};"))
        });
        assert!(served, "the embedded WIT is not a version this host serves");
    }

    #[test]
    fn sources_are_the_folders_and_srcs_c_files() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        for file in ["plugin.c", "notes.txt", "src/a/util.c", "target/gen.c"] {
            let path = dir.path().join(file);
            std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
            std::fs::write(&path, "").expect("write");
        }
        let found: Vec<_> = c_sources(dir.path())
            .expect("sources")
            .into_iter()
            .map(|p| p.strip_prefix(dir.path()).expect("inside").to_owned())
            .collect();
        assert_eq!(
            found,
            [PathBuf::from("plugin.c"), PathBuf::from("src/a/util.c")]
        );
    }
}
