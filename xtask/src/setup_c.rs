//! `cargo xtask setup`, the C part: PocketSphinx 5 as a plugin component built from C
//! (`example-plugins/pocketsphinx/`), installed as `plugins/pocketsphinx-en-us/`.
//!
//! The route, every piece from a package registry:
//! - Debian's clang 19 and wasm-ld compile for WASI preview 1 (`wasm32-wasi`, or
//!   `wasm32-wasip1` where the installed wasi-libc is laid out under that name) against
//!   Debian's `wasi-libc`, with compiler-rt's wasm32 builtins. apt-get installs them when
//!   a probe program does not build.
//! - The C bindings of the WIT world come from `wit-bindgen-c`, the generator
//!   `wit-bindgen-cli` wraps, used here as a library at the version the Rust plugins use.
//! - `wit-component` turns the core module into a component, adapting its WASI preview 1
//!   imports with the adapter of the wasmtime the host runs
//!   (`wasi-preview1-component-adapter-provider`, pinned to the host's wasmtime version).
//! - The C sources and the en-us model come from the pocketsphinx sdist on PyPI (the
//!   package the test speech comes from), pinned by sha256.
//!
//! The libraries are compiled into xtask, so a fresh clone needs no CLI installed and the
//! versions live in `Cargo.lock`. Each object file is named by a hash of everything that
//! made it (compiler, flags, source, headers), so a second setup compiles nothing, and the
//! same inputs give the same `plugin.wasm` byte for byte (no debug info, source paths
//! mapped to fixed names).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use sha2::{Digest, Sha256};

use crate::assets;
use crate::cmd;
use crate::setup::install_file;

/// The installed plugin's folder name (the id its `info()` reports).
pub const PLUGIN_ID: &str = "pocketsphinx-en-us";

/// The compiler, and the Debian packages that bring it, the C library and the builtins.
const CLANG: &str = "clang-19";
const APT_PACKAGES: &[&str] = &[
    "clang-19",
    "lld-19",
    "libclang-rt-19-dev-wasm32",
    "wasi-libc",
];

/// Names clang gives WASI preview 1, newest first: clang 19 knows both, and looks for
/// the C library in the folder of the name it was given.
const TARGETS: &[&str] = &["wasm32-wasip1", "wasm32-wasi"];

/// The top folder inside the sdist.
const SDIST_ROOT: &str = "pocketsphinx-5.1.1";

/// The WIT package the plugin is built against, and its world.
const WIT_DIR: &str = "wit/v0.2.0";
const WORLD: &str = "transcriber";

/// PocketSphinx's library, as `src/CMakeLists.txt` of 5.1.1 lists it (relative to `src/`).
const LIBRARY_SOURCES: &[&str] = &[
    "acmod.c",
    "allphone_search.c",
    "bin_mdef.c",
    "common_audio/vad/vad_gmm.c",
    "common_audio/vad/webrtc_vad.c",
    "common_audio/vad/vad_filterbank.c",
    "common_audio/vad/vad_core.c",
    "common_audio/vad/vad_sp.c",
    "common_audio/signal_processing/division_operations.c",
    "common_audio/signal_processing/resample_48khz.c",
    "common_audio/signal_processing/resample.c",
    "common_audio/signal_processing/resample_fractional.c",
    "common_audio/signal_processing/downsample_fast.c",
    "common_audio/signal_processing/min_max_operations.c",
    "common_audio/signal_processing/cross_correlation.c",
    "common_audio/signal_processing/vector_scaling_operations.c",
    "common_audio/signal_processing/resample_by_2_internal.c",
    "common_audio/signal_processing/energy.c",
    "common_audio/signal_processing/spl_inl.c",
    "common_audio/signal_processing/get_scaling_square.c",
    "dict2pid.c",
    "dict.c",
    "fe/fe_sigproc.c",
    "fe/fixlog.c",
    "fe/fe_warp_inverse_linear.c",
    "fe/fe_noise.c",
    "fe/fe_warp.c",
    "fe/fe_interface.c",
    "fe/fe_warp_affine.c",
    "fe/yin.c",
    "fe/fe_warp_piecewise_linear.c",
    "feat/cmn.c",
    "feat/agc.c",
    "feat/cmn_live.c",
    "feat/feat.c",
    "feat/lda.c",
    "fsg_history.c",
    "fsg_lextree.c",
    "fsg_search.c",
    "hmm.c",
    "kws_detections.c",
    "kws_search.c",
    "lm/lm_trie_quant.c",
    "lm/ngram_model_trie.c",
    "lm/fsg_model.c",
    "lm/jsgf.c",
    "lm/ngram_model_set.c",
    "lm/ngrams_raw.c",
    "lm/jsgf_scanner.c",
    "lm/bitarr.c",
    "lm/ngram_model.c",
    "lm/lm_trie.c",
    "lm/jsgf_parser.c",
    "mdef.c",
    "ms_gauden.c",
    "ms_mgau.c",
    "ms_senone.c",
    "ngram_search.c",
    "ngram_search_fwdflat.c",
    "ngram_search_fwdtree.c",
    "phone_loop_search.c",
    "pocketsphinx.c",
    "ps_alignment.c",
    "ps_config.c",
    "ps_endpointer.c",
    "ps_lattice.c",
    "ps_mllr.c",
    "ps_vad.c",
    "ptm_mgau.c",
    "s2_semi_mgau.c",
    "state_align_search.c",
    "tmat.c",
    "util/strfuncs.c",
    "util/dtoa.c",
    "util/case.c",
    "util/filename.c",
    "util/slamch.c",
    "util/cmd_ln.c",
    "util/blas_lite.c",
    "util/blkarray_list.c",
    "util/vector.c",
    "util/mmio.c",
    "util/hash_table.c",
    "util/err.c",
    "util/ckd_alloc.c",
    "util/slapack_lite.c",
    "util/matrix.c",
    "util/bio.c",
    "util/heap.c",
    "util/priority_queue.c",
    "util/bitvec.c",
    "util/profile.c",
    "util/errno.c",
    "util/logmath.c",
    "util/glist.c",
    "util/f2c_lite.c",
    "util/listelem_alloc.c",
    "util/pio.c",
    "util/genrand.c",
    "util/soundfiles.c",
];

/// The plugin's own C files (relative to `example-plugins/pocketsphinx/`).
const PLUGIN_SOURCES: &[&str] = &["plugin.c", "plugin_config.c", "utterances.c", "json.c"];

/// Flags for every file: optimised, no debug info (reproducible, and a smaller module),
/// wasm SIMD for the auto-vectoriser (wasmtime enables it by default).
const COMMON_FLAGS: &[&str] = &["-O2", "-g0", "-msimd128"];

/// PocketSphinx's own build defines (`HAVE_CONFIG_H` reads `wasm32/config.h`, the
/// configure results for this target). wasi-libc emulates what WASI lacks: `mmap` with
/// reads, and `getrusage` (PocketSphinx's timers) with the wall clock.
const LIBRARY_FLAGS: &[&str] = &[
    "-std=gnu17",
    "-w",
    "-DHAVE_CONFIG_H",
    "-D_WASI_EMULATED_MMAN",
    "-D_WASI_EMULATED_PROCESS_CLOCKS",
    "-DPOCKETSPHINX_EXPORTS",
    "-DSPHINXBASE_EXPORTS",
];

/// The plugin's code: C23 for `#embed` (the schema stays a plain JSON file).
const PLUGIN_FLAGS: &[&str] = &["-std=gnu23", "-Wall", "-Wextra"];

/// A reactor (no `main`; `_initialize` runs once, called by the component), a 1 MiB
/// shadow stack (wasm-ld's default is 64 KiB), and wasi-libc's emulations.
const LINK_FLAGS: &[&str] = &[
    "-mexec-model=reactor",
    "-Wl,-z,stack-size=1048576",
    "-Wl,--strip-debug",
];
const LINK_LIBRARIES: &[&str] = &[
    "-lwasi-emulated-mman",
    "-lwasi-emulated-process-clocks",
    "-lm",
];

/// Builds the plugin (compiling only what changed) and installs it with its model into
/// `plugins/pocketsphinx-en-us/`.
pub fn install_pocketsphinx(root: &Path, downloads: &Path, plugins: &Path) -> Result<(), String> {
    let plugin_src = root.join("example-plugins/pocketsphinx");
    let build = root.join("target/c-build/pocketsphinx");
    std::fs::create_dir_all(&build)
        .map_err(|e| format!("cannot create {}: {e}", build.display()))?;
    let archive = assets::download(&assets::POCKETSPHINX, downloads)?;
    let toolchain = Toolchain::find_or_install(&build)?;
    let sdist = unpack_sources(&archive, &build)?;
    let bindings = generate_bindings(&root.join(WIT_DIR), &build.join("bindings"))?;
    let component = build_component(&toolchain, &plugin_src, &sdist, &bindings, &build)?;

    let dir = plugins.join(PLUGIN_ID);
    install_model(&archive, &dir.join("assets"))?;
    install_file(&component, &dir.join("plugin.wasm"))
}

/// The compiler, the target name its C library answers to, and where that library's
/// headers are.
struct Toolchain {
    clang: PathBuf,
    target: &'static str,
    /// `clang --version`'s first line, part of every object's hash.
    version: String,
    /// Flags that make the C library's headers the only system headers: Debian's clang
    /// also searches `/usr/include` (glibc's headers) and `/usr/local/include`, which must
    /// not leak into a WebAssembly build.
    system_includes: Vec<String>,
}

impl Toolchain {
    /// Finds a clang that builds a WASI reactor; installs the Debian packages when none
    /// does, then tries again.
    fn find_or_install(build: &Path) -> Result<Self, String> {
        if let Some(found) = Self::probe(build) {
            return Ok(found);
        }
        cmd::apt_install(
            APT_PACKAGES,
            "the PocketSphinx plugin is C, compiled to WebAssembly with clang",
        )?;
        Self::probe(build).ok_or_else(|| {
            format!(
                "{CLANG} cannot build a wasm32-wasi program even after installing {}; \
                 try by hand: {CLANG} --target=wasm32-wasi -mexec-model=reactor {}",
                APT_PACKAGES.join(" "),
                build.join("probe.c").display()
            )
        })
    }

    /// Builds a small reactor that uses stdio, libm and the emulated mmap, for each
    /// target name; the first that links is the one.
    fn probe(build: &Path) -> Option<Self> {
        const PROBE: &str = "#include <math.h>\n#include <stdio.h>\n#include <sys/mman.h>\n\
            __attribute__((export_name(\"probe\"))) int probe(double x) {\n\
            \x20   void *p = mmap(0, 16, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);\n\
            \x20   return printf(\"%g\", sqrt(x)) + (p == MAP_FAILED);\n}\n";
        let clang = PathBuf::from(CLANG);
        let version = cmd::output(Command::new(&clang).arg("--version")).ok()?;
        let source = build.join("probe.c");
        std::fs::write(&source, PROBE).ok()?;
        TARGETS.iter().find_map(|target| {
            let system_includes = libc_include_flags(&clang, target, &source)?;
            let mut command = Command::new(&clang);
            command
                .arg(format!("--target={target}"))
                .args(&system_includes)
                .arg("-D_WASI_EMULATED_MMAN")
                .args(LINK_FLAGS)
                .arg(&source)
                .args(LINK_LIBRARIES)
                .arg("-o")
                .arg(build.join("probe.wasm"));
            cmd::output(&mut command).ok().map(|_| Self {
                clang: clang.clone(),
                target,
                version: version.lines().next().unwrap_or_default().to_owned(),
                system_includes,
            })
        })
    }

    fn compile(&self, source: &Path, flags: &[String], object: &Path) -> Result<(), String> {
        let partial = object.with_extension("o.part");
        let mut command = Command::new(&self.clang);
        command
            .arg(format!("--target={}", self.target))
            .args(&self.system_includes)
            .args(flags)
            .arg("-c")
            .arg(source)
            .arg("-o")
            .arg(&partial);
        let output = command
            .output()
            .map_err(|e| format!("cannot start {CLANG}: {e}"))?;
        let diagnostics = String::from_utf8_lossy(&output.stderr);
        if !output.status.success() {
            return Err(format!(
                "{CLANG} failed on {}:\n{diagnostics}",
                source.display()
            ));
        }
        // Warnings (the plugin's own files are compiled with -Wall -Wextra).
        if !diagnostics.trim().is_empty() {
            eprint!("{diagnostics}");
        }
        std::fs::rename(&partial, object).map_err(|e| e.to_string())
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

/// Unpacks the library's sources and headers (once per sdist) and returns the folder
/// that holds `src/` and `include/`.
fn unpack_sources(archive: &Path, build: &Path) -> Result<PathBuf, String> {
    let dir = build.join(SDIST_ROOT);
    let marker = dir.join(".installed");
    if std::fs::read_to_string(&marker).is_ok_and(|s| s == assets::POCKETSPHINX.sha256) {
        return Ok(dir);
    }
    for folder in ["src", "include"] {
        assets::extract_tree(
            archive,
            &format!("{SDIST_ROOT}/{folder}"),
            &dir.join(folder),
        )?;
    }
    std::fs::write(&marker, assets::POCKETSPHINX.sha256).map_err(|e| e.to_string())?;
    Ok(dir)
}

/// Installs the en-us model (acoustic model `en-us/`, `en-us.lm.bin`, the CMU
/// dictionary) and PocketSphinx's licence into `assets` (once).
fn install_model(archive: &Path, assets_dir: &Path) -> Result<(), String> {
    let marker = assets_dir.join(".installed");
    if std::fs::read_to_string(&marker).is_ok_and(|s| s == assets::POCKETSPHINX.sha256) {
        return Ok(());
    }
    assets::extract_tree(archive, &format!("{SDIST_ROOT}/model/en-us"), assets_dir)?;
    assets::extract(&[(
        archive.to_path_buf(),
        format!("{SDIST_ROOT}/LICENSE"),
        assets_dir.join("LICENSE"),
    )])?;
    std::fs::write(&marker, assets::POCKETSPHINX.sha256).map_err(|e| e.to_string())
}

/// Writes the C bindings of the world (`transcriber.h`, `transcriber.c` and the object
/// holding the component type) into `dir`, rewriting only files whose bytes change.
fn generate_bindings(wit: &Path, dir: &Path) -> Result<PathBuf, String> {
    let mut resolve = wit_parser::Resolve::default();
    let (package, _) = resolve
        .push_path(wit)
        .map_err(|e| format!("cannot read the WIT in {}: {e:#}", wit.display()))?;
    let world = resolve
        .select_world(&[package], Some(WORLD))
        .map_err(|e| format!("{}: {e:#}", wit.display()))?;
    let options = wit_bindgen_c::Opts {
        // The host lends the audio for the call; the bindings give the borrow back when
        // `transcribe` returns, as the component model requires.
        autodrop_borrows: wit_bindgen_c::Enabled::Yes,
        ..Default::default()
    };
    let mut files = wit_bindgen_core::Files::default();
    options
        .build()
        .generate(&mut resolve, world, &mut files)
        .map_err(|e| format!("wit-bindgen-c: {e:#}"))?;
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    for (name, bytes) in files.iter() {
        let path = dir.join(name);
        if std::fs::read(&path).is_ok_and(|existing| existing == bytes) {
            continue;
        }
        std::fs::write(&path, bytes)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(dir.to_path_buf())
}

/// One C file to compile, with its flags and a hash of the headers it may include
/// beyond the pinned sdist's.
struct Unit {
    source: PathBuf,
    flags: Vec<String>,
    headers: String,
}

/// Compiles what changed, links the core module and makes the component; returns the
/// component's path.
fn build_component(
    toolchain: &Toolchain,
    plugin_src: &Path,
    sdist: &Path,
    bindings: &Path,
    build: &Path,
) -> Result<PathBuf, String> {
    let path_flag = |flag: &str, path: &Path| format!("{flag}{}", path.display());
    let includes = [
        path_flag("-I", &plugin_src.join("wasm32")),
        path_flag("-I", &sdist.join("include")),
        path_flag("-I", &sdist.join("src")),
    ];
    // Source paths reach the module only through `__FILE__` (PocketSphinx's log lines):
    // fixed names keep the bytes the same wherever the clone is.
    let prefix_maps = [
        format!("-ffile-prefix-map={}={SDIST_ROOT}", sdist.display()),
        format!(
            "-ffile-prefix-map={}=pocketsphinx-plugin",
            plugin_src.display()
        ),
        format!("-ffile-prefix-map={}=bindings", bindings.display()),
    ];
    let flags = |own: &[&str], extra: &[String]| -> Vec<String> {
        COMMON_FLAGS
            .iter()
            .chain(own)
            .map(|s| (*s).to_owned())
            .chain(includes.iter().cloned())
            .chain(prefix_maps.iter().cloned())
            .chain(extra.iter().cloned())
            .collect()
    };
    let library_flags = flags(LIBRARY_FLAGS, &[]);
    let plugin_flags = flags(PLUGIN_FLAGS, &[path_flag("-I", bindings)]);
    // The library sees only the configure headers; the plugin also its own and the
    // bindings' (and the schema it embeds).
    let library_headers = digest_files(&[&plugin_src.join("wasm32")], &["h"])?;
    let plugin_headers = digest_files(&[plugin_src, bindings], &["h", "json"])?;
    let mut units: Vec<Unit> = LIBRARY_SOURCES
        .iter()
        .map(|file| Unit {
            source: sdist.join("src").join(file),
            flags: library_flags.clone(),
            headers: library_headers.clone(),
        })
        .collect();
    units.extend(PLUGIN_SOURCES.iter().map(|file| Unit {
        source: plugin_src.join(file),
        flags: plugin_flags.clone(),
        headers: plugin_headers.clone(),
    }));
    // The generated C has unused parameters by design: compiled as the library is.
    let mut binding_flags = library_flags.clone();
    binding_flags.push(path_flag("-I", bindings));
    units.push(Unit {
        source: bindings.join(format!("{WORLD}.c")),
        flags: binding_flags,
        headers: plugin_headers.clone(),
    });

    let objects_dir = build.join("obj");
    std::fs::create_dir_all(&objects_dir).map_err(|e| e.to_string())?;
    let mut objects = Vec::new();
    let mut pending = Vec::new();
    for unit in &units {
        let source = std::fs::read(&unit.source)
            .map_err(|e| format!("cannot read {}: {e}", unit.source.display()))?;
        let key = hash(&[
            toolchain.version.as_bytes(),
            toolchain.target.as_bytes(),
            unit.flags.join("\0").as_bytes(),
            assets::POCKETSPHINX.sha256.as_bytes(),
            unit.headers.as_bytes(),
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
    objects.push(bindings.join(format!("{WORLD}_component_type.o")));

    let link_key = {
        let mut parts: Vec<Vec<u8>> = objects
            .iter()
            .map(|o| std::fs::read(o).map_err(|e| format!("cannot read {}: {e}", o.display())))
            .collect::<Result<_, _>>()?;
        parts.push(LINK_FLAGS.join("\0").into_bytes());
        parts.push(LINK_LIBRARIES.join("\0").into_bytes());
        parts.push(
            wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER
                .to_vec(),
        );
        hash(&parts.iter().map(Vec::as_slice).collect::<Vec<_>>())
    };
    let component = build.join("plugin.wasm");
    let stamp = build.join("plugin.wasm.key");
    if component.is_file() && std::fs::read_to_string(&stamp).is_ok_and(|s| s == link_key) {
        return Ok(component);
    }
    let core = build.join("plugin.core.wasm");
    eprintln!("xtask: linking {}", core.display());
    let mut link = Command::new(&toolchain.clang);
    link.arg(format!("--target={}", toolchain.target))
        .args(LINK_FLAGS)
        .args(&objects)
        .args(LINK_LIBRARIES)
        .arg("-o")
        .arg(&core);
    cmd::output(&mut link)?;
    let module = std::fs::read(&core).map_err(|e| e.to_string())?;
    let bytes = componentize(&module)?;
    std::fs::write(&component, bytes).map_err(|e| e.to_string())?;
    std::fs::write(&stamp, link_key).map_err(|e| e.to_string())?;
    Ok(component)
}

/// Compiles `pending` on every core, stopping at the first failure.
fn compile_all(toolchain: &Toolchain, pending: &[(&Unit, PathBuf)]) -> Result<(), String> {
    if pending.is_empty() {
        return Ok(());
    }
    eprintln!(
        "xtask: compiling {} C files for {} with {CLANG}",
        pending.len(),
        toolchain.target
    );
    let next = AtomicUsize::new(0);
    let failure: Mutex<Option<String>> = Mutex::new(None);
    let workers = std::thread::available_parallelism().map_or(1, usize::from);
    std::thread::scope(|scope| {
        for _ in 0..workers {
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
        Err(_) => Err("a compiler thread panicked".to_owned()),
    }
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
        .map_err(|e| format!("cannot make the PocketSphinx component: {e:#}"))
}

/// A hash of every file with one of `extensions` under `dirs`, names included.
fn digest_files(dirs: &[&Path], extensions: &[&str]) -> Result<String, String> {
    let mut files = Vec::new();
    for dir in dirs {
        collect_files(dir, extensions, &mut files)?;
    }
    files.sort();
    let mut parts = Vec::new();
    for file in &files {
        parts.push(file.to_string_lossy().into_owned().into_bytes());
        parts.push(std::fs::read(file).map_err(|e| e.to_string())?);
    }
    Ok(hash(&parts.iter().map(Vec::as_slice).collect::<Vec<_>>()))
}

fn collect_files(dir: &Path, extensions: &[&str], out: &mut Vec<PathBuf>) -> Result<(), String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_files(&path, extensions, out)?;
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| extensions.contains(&e))
        {
            out.push(path);
        }
    }
    Ok(())
}

/// The hex sha256 of `parts`, each prefixed by its length (so the split is part of it).
fn hash(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    format!("{:x}", hasher.finalize())
}
