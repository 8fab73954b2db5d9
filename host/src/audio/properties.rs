//! Property tests: no input makes the decoder panic or run away.
//!
//! Run longer with `PROPTEST_CASES=20000 cargo test --release -p sandscribe --lib properties`.

use proptest::prelude::*;

use super::resample::StreamResampler;
use super::{DecodeLimits, decode_bytes, resample};

/// A valid 16-bit mono WAV of `samples`.
fn wav(samples: &[i16], rate: u32) -> Vec<u8> {
    super::decode::tests::wav_16bit(1, rate, samples)
}

fn limits() -> DecodeLimits {
    DecodeLimits {
        max_bytes: 1 << 20,
        max_duration_ms: 60_000,
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096), hint in prop::option::of("wav|mp3|flac|ogg|m4a|mp4|mkv")) {
        let _ = decode_bytes(bytes, hint.as_deref(), &limits());
    }

    #[test]
    fn corrupted_wavs_never_panic_and_stay_within_limits(
        samples in proptest::collection::vec(any::<i16>(), 1..2000),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..16),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = wav(&samples, 16_000);
        for (index, value) in flips {
            let at = index.index(bytes.len());
            bytes[at] = value;
        }
        bytes.truncate(cut.index(bytes.len() + 1));
        if let Ok(audio) = decode_bytes(bytes, Some("wav"), &limits()) {
            prop_assert!(audio.duration_ms() <= limits().max_duration_ms);
            prop_assert!(audio.samples.iter().all(|s| s.is_finite()));
        }
    }

    #[test]
    fn valid_wavs_decode_exactly(samples in proptest::collection::vec(any::<i16>(), 1..4000)) {
        let audio = decode_bytes(wav(&samples, 16_000), Some("wav"), &limits()).expect("a valid WAV decodes");
        prop_assert_eq!(audio.samples.len(), samples.len());
        for (decoded, original) in audio.samples.iter().zip(&samples) {
            prop_assert!((decoded - f32::from(*original) / 32768.0).abs() < 1e-4);
        }
    }

    #[test]
    fn resampling_keeps_the_duration(len in 1usize..20_000, from in prop::sample::select(vec![8_000u32, 11_025, 22_050, 44_100, 48_000])) {
        let audio = super::Audio { samples: vec![0.1f32; len].into(), sample_rate: from };
        let out = resample(&audio, 16_000).expect("resample");
        let expected = (len as u64 * 16_000).div_ceil(u64::from(from));
        prop_assert!(out.frames().abs_diff(expected) <= 2, "{} vs {}", out.frames(), expected);
    }

    #[test]
    fn resampling_in_pieces_equals_resampling_at_once(
        samples in proptest::collection::vec(-1.0f32..1.0, 0..6_000),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
        from in prop::sample::select(vec![8_000u32, 22_050, 44_100, 48_000]),
    ) {
        let whole = resample(&super::Audio { samples: samples.clone().into(), sample_rate: from }, 16_000).expect("resample");
        let mut at: Vec<usize> = cuts.iter().map(|c| c.index(samples.len() + 1)).collect();
        at.sort_unstable();
        let mut stream = StreamResampler::new(from, 16_000).expect("resampler");
        let mut start = 0;
        for end in at.into_iter().chain([samples.len()]) {
            stream.push(&samples[start..end]).expect("push");
            start = end;
        }
        prop_assert_eq!(&stream.finish().expect("finish")[..], &whole.samples[..]);
    }
}
