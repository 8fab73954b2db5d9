//! Turning uploaded media into the samples a speech plugin consumes.
//!
//! Every plugin receives the same thing: mono `f32` PCM at the sample rate it asked for.
//! Getting there takes two steps, kept in separate files:
//!
//! - [`decode_file`] / [`decode_bytes`] (in `decode.rs`) use symphonia to read any
//!   supported container (WAV, MP3, FLAC, Ogg Vorbis, AAC/M4A, the audio track of
//!   MP4/MKV), downmix to mono by averaging channels, and keep the file's native rate.
//!   Uploads are untrusted, so both the file size and the decoded duration are capped by
//!   [`DecodeLimits`]; decoding stops the moment the duration cap is passed, so a small
//!   file that expands to days of audio cannot exhaust memory. [`scan_file`] makes the
//!   same checks without keeping samples, for refusing bad uploads before queueing.
//! - [`resample`] (in `resample.rs`) converts to a plugin's rate with rubato's FFT
//!   resampler, trimming the filter delay so timestamps computed on the output line up
//!   with the original.
//!
//! The decoded [`Audio`] holds its samples in an `Arc<[f32]>` so that one decode can be
//! shared by several jobs, and resampling to the rate the audio already has is free.

mod decode;
mod error;
#[cfg(test)]
mod properties;
mod resample;

use std::sync::Arc;

pub use decode::{AudioScan, DecodeLimits, decode_bytes, decode_file, decode_file_at, scan_file};
pub use error::AudioError;
pub use resample::resample;

/// Decoded audio held by the host: mono f32 samples at `sample_rate`.
#[derive(Debug, Clone)]
pub struct Audio {
    /// Mono samples, nominally in `-1.0..=1.0`.
    pub samples: Arc<[f32]>,
    /// Samples per second.
    pub sample_rate: u32,
}

impl Audio {
    /// Length in whole milliseconds, rounded down.
    ///
    /// Integer arithmetic so the same audio always reports the same length, whichever
    /// path computed it. A zero sample rate reports zero rather than panicking.
    pub fn duration_ms(&self) -> u64 {
        frames_to_ms(self.frames(), self.sample_rate)
    }

    /// Number of samples (one channel, so frames and samples are the same).
    pub fn frames(&self) -> u64 {
        self.samples.len() as u64
    }
}

/// `frames` at `sample_rate` in whole milliseconds; shared so the duration limit and
/// [`Audio::duration_ms`] can never disagree.
fn frames_to_ms(frames: u64, sample_rate: u32) -> u64 {
    if sample_rate == 0 {
        return 0;
    }
    let ms = u128::from(frames) * 1000 / u128::from(sample_rate);
    u64::try_from(ms).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_is_whole_milliseconds_rounded_down() {
        let audio = Audio {
            samples: vec![0.0; 16_015].into(),
            sample_rate: 16_000,
        };
        assert_eq!(audio.frames(), 16_015);
        assert_eq!(audio.duration_ms(), 1000);

        let audio = Audio {
            samples: vec![0.0; 44_100 * 3 + 44].into(),
            sample_rate: 44_100,
        };
        assert_eq!(audio.duration_ms(), 3000);
    }

    #[test]
    fn zero_sample_rate_reports_zero_duration() {
        let audio = Audio {
            samples: vec![0.0; 10].into(),
            sample_rate: 0,
        };
        assert_eq!(audio.duration_ms(), 0);
    }
}
