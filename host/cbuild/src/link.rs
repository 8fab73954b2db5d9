//! Linking the objects into a core module and making it a component.

use std::path::{Path, PathBuf};

use crate::{CBuildError, Toolchain, hash, io};

/// A reactor (no `main`; `_initialize` runs once, called by the component), a 1 MiB
/// shadow stack (wasm-ld's default is 64 KiB), no debug sections.
pub(crate) const LINK_FLAGS: &[&str] = &[
    "-mexec-model=reactor",
    "-Wl,-z,stack-size=1048576",
    "-Wl,--strip-debug",
];

/// wasi-libc emulates what WASI lacks: `mmap` with reads, `getrusage`/`clock` with the
/// wall clock (define `_WASI_EMULATED_MMAN` / `_WASI_EMULATED_PROCESS_CLOCKS` to use them).
pub(crate) const LINK_LIBRARIES: &[&str] = &[
    "-lwasi-emulated-mman",
    "-lwasi-emulated-process-clocks",
    "-lm",
];

/// Links `objects` into `<build>/plugin.core.wasm` and makes `<build>/plugin.wasm`, the
/// component; skipped when neither the objects nor the adapter changed since the last
/// link. Returns the component's path.
pub fn link_component(
    toolchain: &Toolchain,
    objects: &[PathBuf],
    build: &Path,
) -> Result<PathBuf, CBuildError> {
    use wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER as ADAPTER;
    let mut parts: Vec<Vec<u8>> = objects
        .iter()
        .map(|o| std::fs::read(o).map_err(io("read", o)))
        .collect::<Result<_, _>>()?;
    parts.push(LINK_FLAGS.join("\0").into_bytes());
    parts.push(LINK_LIBRARIES.join("\0").into_bytes());
    parts.push(ADAPTER.to_vec());
    let key = hash(&parts.iter().map(Vec::as_slice).collect::<Vec<_>>());

    let component = build.join("plugin.wasm");
    let stamp = build.join("plugin.wasm.key");
    if component.is_file() && std::fs::read_to_string(&stamp).is_ok_and(|s| s == key) {
        return Ok(component);
    }
    let core = build.join("plugin.core.wasm");
    let output = toolchain
        .command()
        .args(LINK_FLAGS)
        .args(objects)
        .args(LINK_LIBRARIES)
        .arg("-o")
        .arg(&core)
        .output()
        .map_err(io("run", &toolchain.clang))?;
    if !output.status.success() {
        return Err(CBuildError::Link {
            module: core,
            diagnostics: String::from_utf8_lossy(&output.stderr).into_owned(),
        });
    }
    let module = std::fs::read(&core).map_err(io("read", &core))?;
    let bytes = componentize(&module).map_err(|message| CBuildError::Componentize {
        module: core.clone(),
        message,
    })?;
    std::fs::write(&component, bytes).map_err(io("write", &component))?;
    std::fs::write(&stamp, key).map_err(io("write", &stamp))?;
    Ok(component)
}

/// The core module as a component: its WASI preview 1 imports adapted to preview 2 with
/// the adapter of the wasmtime the host runs, its exports typed by the WIT world the
/// bindings embedded.
fn componentize(module: &[u8]) -> Result<Vec<u8>, String> {
    use wasi_preview1_component_adapter_provider::{
        WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
    };
    wit_component::ComponentEncoder::default()
        .validate(true)
        .module(module)
        .and_then(|encoder| {
            encoder.adapter(
                WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME,
                WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
            )
        })
        .and_then(|encoder| encoder.encode())
        .map_err(|e| format!("{e:#}"))
}
