//! Helpers for the native bench and tests: reading 16-bit PCM clips, and scoring text by
//! word error rate (the SDK's, re-exported). Not used by the component itself.

use std::path::Path;

pub use sandscribe_plugin_sdk::accuracy::{normalize, word_error_rate};

/// Reads a 16 kHz mono 16-bit clip: a `.wav` (PCM) or headerless little-endian `.raw`.
pub fn read_pcm16(path: &Path) -> Result<Vec<f32>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let data = if bytes.starts_with(b"RIFF") && bytes.get(8..12) == Some(b"WAVE") {
        wav_data(&bytes).map_err(|e| format!("{}: {e}", path.display()))?
    } else {
        &bytes[..]
    };
    Ok(data
        .chunks_exact(2)
        .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0)
        .collect())
}

/// The samples of a 16 kHz mono 16-bit PCM WAV file.
fn wav_data(bytes: &[u8]) -> Result<&[u8], String> {
    let mut pos = 12;
    let mut format_ok = false;
    while pos + 8 <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let size = u32::from_le_bytes([
            bytes[pos + 4],
            bytes[pos + 5],
            bytes[pos + 6],
            bytes[pos + 7],
        ]) as usize;
        let body = &bytes[pos + 8..(pos + 8 + size).min(bytes.len())];
        match id {
            b"fmt " if body.len() >= 16 => {
                let channels = u16::from_le_bytes([body[2], body[3]]);
                let rate = u32::from_le_bytes([body[4], body[5], body[6], body[7]]);
                let bits = u16::from_le_bytes([body[14], body[15]]);
                if (channels, rate, bits) != (1, 16_000, 16) {
                    return Err(format!(
                        "need 16 kHz mono 16-bit PCM, got {rate} Hz, {channels} channels, {bits} bits"
                    ));
                }
                format_ok = true;
            }
            b"data" if format_ok => return Ok(body),
            _ => {}
        }
        pos += 8 + size + (size & 1);
    }
    Err("no PCM data chunk".into())
}
