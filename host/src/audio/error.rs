//! Everything that can go wrong turning an upload into samples.
//!
//! Messages are shown to the person who uploaded the file, so they say what was wrong
//! with the file rather than which library call failed.

use std::fmt;

/// Why an upload could not be turned into audio a plugin can use.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    /// The file could not be read from disk.
    #[error("the audio file could not be read: {0}")]
    Io(#[from] std::io::Error),

    /// No known container format was recognised in the bytes.
    #[error(
        "the file could not be read as audio: {0}. Supported formats are WAV, MP3, FLAC, \
         Ogg Vorbis, AAC/M4A, and the audio track of MP4 or MKV files"
    )]
    UnsupportedFormat(String),

    /// The container was recognised but holds no track in a codec we can decode.
    #[error(
        "the file has no audio track that can be decoded. Supported codecs are PCM, MP3, \
         FLAC, Vorbis, AAC-LC, ALAC and ADPCM"
    )]
    NoAudioTrack,

    /// The audio track is corrupt or uses a feature the decoder does not support.
    #[error("the audio could not be decoded: {0}")]
    Undecodable(String),

    /// The file decoded cleanly but holds no samples at all.
    #[error("the file contains no audio")]
    Empty,

    /// The file is bigger than the configured upload limit.
    #[error(
        "the file is {} ({actual_bytes} bytes), more than the limit of {} ({limit_bytes} bytes)",
        Bytes(*actual_bytes),
        Bytes(*limit_bytes)
    )]
    TooLarge { limit_bytes: u64, actual_bytes: u64 },

    /// The audio is longer than the configured limit.
    ///
    /// Decoding stops as soon as the limit is passed, so `actual_ms` is a lower bound:
    /// the length the container declares when it declares one, otherwise how much was
    /// decoded before stopping.
    #[error(
        "the audio is at least {} long, more than the limit of {}",
        Millis(*actual_ms),
        Millis(*limit_ms)
    )]
    TooLong { limit_ms: u64, actual_ms: u64 },

    /// The resampler rejected the rates or failed while running.
    #[error("the audio could not be resampled: {0}")]
    Resample(String),
}

/// Shows a duration as `h:mm:ss.mmm`, which reads better than raw milliseconds.
struct Millis(u64);

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0 % 1000;
        let secs = self.0 / 1000;
        write!(
            f,
            "{}:{:02}:{:02}.{ms:03}",
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        )
    }
}

/// Shows a byte count in MiB with one decimal, which reads better than raw bytes.
struct Bytes(u64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Tenths of a MiB in integers, so huge values do not lose precision in a float.
        let tenths = u128::from(self.0) * 10 / (1024 * 1024);
        write!(f, "{}.{} MiB", tenths / 10, tenths % 10)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_long_message_shows_both_durations_readably() {
        let err = AudioError::TooLong {
            limit_ms: 4 * 3_600_000,
            actual_ms: 4 * 3_600_000 + 61_005,
        };
        assert_eq!(
            err.to_string(),
            "the audio is at least 4:01:01.005 long, more than the limit of 4:00:00.000"
        );
    }

    #[test]
    fn too_large_message_shows_both_sizes() {
        let err = AudioError::TooLarge {
            limit_bytes: 500 * 1024 * 1024,
            actual_bytes: 600 * 1024 * 1024 + 1,
        };
        assert_eq!(
            err.to_string(),
            "the file is 600.0 MiB (629145601 bytes), more than the limit of 500.0 MiB (524288000 bytes)"
        );
    }
}
