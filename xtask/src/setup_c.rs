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
//! The route itself is `sandscribe-cbuild` (`host/cbuild/`), which `sandscribe plugin
//! build` uses for authors' C plugins too; this file holds what is PocketSphinx's own (its
//! sources, flags and model). Objects are cached by a hash of everything that made them,
//! so a second setup compiles nothing, and the same inputs give the same `plugin.wasm`
//! byte for byte (no debug info, source paths mapped to fixed names).

use std::path::{Path, PathBuf};

use sandscribe_cbuild::{
    APT_PACKAGES, CLANG_CANDIDATES, COMMON_FLAGS, Toolchain, Unit, WitSource, compile_units,
    digest_files, generate_bindings, link_component,
};

use crate::assets;
use crate::cmd;
use crate::setup::install_file;

/// The installed plugin's folder name (the id its `info()` reports).
pub const PLUGIN_ID: &str = "pocketsphinx-en-us";

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

/// Builds the plugin (compiling only what changed) and installs it with its model into
/// `plugins/pocketsphinx-en-us/`.
pub fn install_pocketsphinx(root: &Path, downloads: &Path, plugins: &Path) -> Result<(), String> {
    let plugin_src = root.join("example-plugins/pocketsphinx");
    let build = root.join("target/c-build/pocketsphinx");
    std::fs::create_dir_all(&build)
        .map_err(|e| format!("cannot create {}: {e}", build.display()))?;
    let archive = assets::download(&assets::POCKETSPHINX, downloads)?;
    let toolchain = find_or_install_toolchain(&build)?;
    let sdist = unpack_sources(&archive, &build)?;
    let bindings = generate_bindings(
        WitSource::Folder(&root.join(WIT_DIR)),
        WORLD,
        &build.join("bindings"),
    )
    .map_err(|e| e.to_string())?;
    let component = build_component(&toolchain, &plugin_src, &sdist, &bindings, &build)?;

    let dir = plugins.join(PLUGIN_ID);
    install_model(&archive, &dir.join("assets"))?;
    install_file(&component, &dir.join("plugin.wasm"))
}

/// A clang that builds a WASI reactor; installs the Debian packages when none does, then
/// tries again.
fn find_or_install_toolchain(build: &Path) -> Result<Toolchain, String> {
    if let Ok(found) = Toolchain::find(CLANG_CANDIDATES, build) {
        return Ok(found);
    }
    cmd::apt_install(
        APT_PACKAGES,
        "the PocketSphinx plugin is C, compiled to WebAssembly with clang",
    )?;
    Toolchain::find(CLANG_CANDIDATES, build).map_err(|e| e.to_string())
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
    // The pinned sdist's own headers are covered by its hash.
    let digest = |dirs: &[&Path], extensions: &[&str]| {
        digest_files(dirs, extensions)
            .map(|d| format!("{}{d}", assets::POCKETSPHINX.sha256))
            .map_err(|e| e.to_string())
    };
    let library_headers = digest(&[&plugin_src.join("wasm32")], &["h"])?;
    let plugin_headers = digest(&[plugin_src, bindings], &["h", "json"])?;
    let mut units: Vec<Unit> = LIBRARY_SOURCES
        .iter()
        .map(|file| Unit {
            source: sdist.join("src").join(file),
            flags: library_flags.clone(),
            depends_on: library_headers.clone(),
        })
        .collect();
    units.extend(PLUGIN_SOURCES.iter().map(|file| Unit {
        source: plugin_src.join(file),
        flags: plugin_flags.clone(),
        depends_on: plugin_headers.clone(),
    }));
    // The generated C has unused parameters by design: compiled as the library is.
    let mut binding_flags = library_flags.clone();
    binding_flags.push(path_flag("-I", bindings));
    units.push(Unit {
        source: bindings.join(format!("{WORLD}.c")),
        flags: binding_flags,
        depends_on: plugin_headers.clone(),
    });

    let mut objects =
        compile_units(toolchain, &units, &build.join("obj")).map_err(|e| e.to_string())?;
    objects.push(bindings.join(format!("{WORLD}_component_type.o")));
    eprintln!("xtask: linking the PocketSphinx component");
    link_component(toolchain, &objects, build).map_err(|e| e.to_string())
}
