//! The one hash the server uses: hex sha256, for plugin pins and the compile cache,
//! API keys, and browser login tokens.

use sha2::{Digest, Sha256};

/// Lower-case hex sha256 of `bytes` (what `sha256sum` prints).
pub fn sha256_hex(bytes: impl AsRef<[u8]>) -> String {
    hex::encode(Sha256::digest(bytes.as_ref()))
}
