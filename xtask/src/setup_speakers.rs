//! The `speakers` diarizer: Resemblyzer's speaker encoder weights (`pretrained.pt`, from
//! the `resemblyzer` 0.1.4 wheel on PyPI, Apache-2.0), pinned by the wheel's sha256 and
//! unpacked once into `plugins/speakers/assets/`, beside the plugin's component.

use std::path::Path;

use crate::assets::{self, Package};
use crate::setup::install_file;

const RESEMBLYZER: Package = Package {
    requirement: "resemblyzer==0.1.4",
    file: "Resemblyzer-0.1.4-py3-none-any.whl",
    sha256: "8f12eb2f1a9982d32e8db7856de754709b59c93a77bcf0ff536584b619a9dd1f",
    source: false,
};

/// The weights' member in the wheel and its name under `assets/`.
const MODEL_MEMBER: &str = "resemblyzer/pretrained.pt";
const MODEL_FILE: &str = "pretrained.pt";

/// Installs `plugins/speakers/{plugin.wasm, assets/pretrained.pt}`; the component is
/// `speakers.wasm` from the wasm32-wasip2 build in `wasm_dir`.
pub fn install(downloads: &Path, plugins: &Path, wasm_dir: &Path) -> Result<(), String> {
    let dir = plugins.join("speakers");
    let assets_dir = dir.join("assets");
    // The marker holds the wheel's hash: a new pin unpacks again.
    let marker = assets_dir.join(".installed");
    let unpacked = assets_dir.join(MODEL_FILE).is_file()
        && std::fs::read_to_string(&marker).is_ok_and(|s| s == RESEMBLYZER.sha256);
    if !unpacked {
        let wheel = assets::download(&RESEMBLYZER, downloads)?;
        assets::extract(&[(wheel, MODEL_MEMBER.to_owned(), assets_dir.join(MODEL_FILE))])?;
        std::fs::write(&marker, RESEMBLYZER.sha256)
            .map_err(|e| format!("cannot write {}: {e}", marker.display()))?;
    }
    install_file(&wasm_dir.join("speakers.wasm"), &dir.join("plugin.wasm"))
}

/// Where the encoder weights are once installed (`SANDSCRIBE_SPEAKERS_ASSETS` for the
/// plugin's own tests).
pub fn assets_dir(plugins: &Path) -> std::path::PathBuf {
    plugins.join("speakers").join("assets")
}
