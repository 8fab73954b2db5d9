//! Converting decoded audio to the sample rate a plugin asks for.
//!
//! The ratio is fixed, which is the case rubato's synchronous FFT resampler is made for:
//! it band-limits properly (no aliasing when going down to 16 kHz) and is much faster
//! than sinc interpolation. [`StreamResampler`] feeds it in chunks as audio is decoded,
//! flushes the tail with silence and drops the filter delay, so the output has
//! `ceil(len * out / in)` samples and a sound at time t in the input is at time t in the
//! output.

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Indexing, Resampler};

use super::{Audio, AudioError};

/// The highest rate accepted on either side.
///
/// FFT sizes grow with the rates divided by their common divisor, so an absurd rate
/// would mean an absurd allocation. 768 kHz is beyond any real use.
const MAX_SAMPLE_RATE: u32 = 768_000;

/// Frames per resampler call: large enough to amortise the per-call overhead, small
/// enough that the FFT buffers stay in cache. rubato rounds it to fit the ratio.
const CHUNK_FRAMES: usize = 1024;

/// Resample to `rate` (returns a clone of the Arc when rates match).
pub fn resample(audio: &Audio, rate: u32) -> Result<Audio, AudioError> {
    if audio.sample_rate == rate {
        return Ok(audio.clone());
    }
    let mut stream = StreamResampler::new(audio.sample_rate, rate)?;
    stream.push(&audio.samples)?;
    Ok(Audio {
        samples: stream.finish()?.into(),
        sample_rate: rate,
    })
}

/// Resamples mono audio pushed in pieces of any size, keeping only the output.
///
/// Decoding feeds it packet by packet, so a job holds its audio once, at the plugin's
/// rate, instead of at the file's rate and then again resampled (for 48 kHz input to
/// a 16 kHz plugin: a third of the memory, not four thirds). The filter delay is
/// dropped from the front and the tail flushed with silence, so the output has
/// `ceil(len * to / from)` samples and a sound at time t stays at time t.
pub(super) struct StreamResampler {
    resampler: Fft<f32>,
    from: u32,
    to: u32,
    /// Input not yet resampled (less than one chunk between calls).
    pending: Vec<f32>,
    /// One chunk of output, before it is appended.
    scratch: Vec<f32>,
    output: Vec<f32>,
    /// Output frames still to drop from the front: the filter's delay.
    delay: usize,
    input_frames: u64,
}

impl StreamResampler {
    pub(super) fn new(from: u32, to: u32) -> Result<Self, AudioError> {
        for (side, value) in [("input", from), ("requested", to)] {
            if value == 0 || value > MAX_SAMPLE_RATE {
                return Err(AudioError::Resample(format!(
                    "the {side} sample rate of {value} Hz is outside the supported range of 1 to \
                     {MAX_SAMPLE_RATE} Hz"
                )));
            }
        }
        let resampler =
            Fft::<f32>::new(from as usize, to as usize, CHUNK_FRAMES, 1, FixedSync::Both)
                .map_err(|err| AudioError::Resample(err.to_string()))?;
        Ok(Self {
            delay: resampler.output_delay(),
            scratch: vec![0.0; resampler.output_frames_max()],
            resampler,
            from,
            to,
            pending: Vec::new(),
            output: Vec::new(),
            input_frames: 0,
        })
    }

    /// Adds input; resamples every whole chunk of it.
    pub(super) fn push(&mut self, samples: &[f32]) -> Result<(), AudioError> {
        self.input_frames += samples.len() as u64;
        self.pending.extend_from_slice(samples);
        let chunk = self.resampler.input_frames_next();
        let mut used = 0;
        while self.pending.len() - used >= chunk {
            self.run(used, None)?;
            used += chunk;
        }
        self.pending.drain(..used);
        Ok(())
    }

    /// Resamples what is left and flushes the filter; returns the whole output.
    pub(super) fn finish(mut self) -> Result<Vec<f32>, AudioError> {
        let expected = u128::from(self.input_frames) * u128::from(self.to);
        let expected = usize::try_from(expected.div_ceil(u128::from(self.from)))
            .map_err(|_| AudioError::Resample("the audio is too long to resample".into()))?;
        let chunk = self.resampler.input_frames_next();
        let left = self.pending.len();
        self.pending.resize(chunk, 0.0);
        if left > 0 {
            self.run(0, Some(left))?;
        }
        // Silence pushes the last real samples out through the filter's delay.
        while self.output.len() < expected {
            if self.run(0, Some(0))? == 0 {
                break;
            }
        }
        self.output.truncate(expected);
        Ok(self.output)
    }

    /// Resamples one chunk of `pending` from `offset` (`partial`: that many real frames,
    /// the rest silence) and appends the output past the delay; returns the frames made.
    fn run(&mut self, offset: usize, partial: Option<usize>) -> Result<usize, AudioError> {
        let failed = |err: &dyn std::fmt::Display| AudioError::Resample(err.to_string());
        let input = InterleavedSlice::new(&self.pending[offset..], 1, self.pending.len() - offset)
            .map_err(|e| failed(&e))?;
        let frames = self.scratch.len();
        let mut output =
            InterleavedSlice::new_mut(&mut self.scratch[..], 1, frames).map_err(|e| failed(&e))?;
        let indexing = Indexing {
            partial_len: partial,
            ..Indexing::default()
        };
        let (_, produced) = self
            .resampler
            .process_into_buffer(&input, &mut output, Some(&indexing))
            .map_err(|e| failed(&e))?;
        let dropped = produced.min(self.delay);
        self.delay -= dropped;
        self.output
            .extend_from_slice(&self.scratch[dropped..produced]);
        Ok(produced)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn sine(freq: f32, rate: u32, frames: usize) -> Audio {
        let samples: Vec<f32> = (0..frames)
            .map(|i| (2.0 * std::f32::consts::PI * freq * i as f32 / rate as f32).sin() * 0.5)
            .collect();
        Audio {
            samples: samples.into(),
            sample_rate: rate,
        }
    }

    /// Sign changes from negative to non-negative, i.e. one per period of a sine.
    fn rising_zero_crossings(samples: &[f32]) -> usize {
        samples
            .windows(2)
            .filter(|w| w[0] < 0.0 && w[1] >= 0.0)
            .count()
    }

    /// Output length must be `ceil(len * out / in)`, and the tone must keep its pitch:
    /// a 440 Hz sine has 440 rising zero crossings per second at any rate.
    fn assert_resamples_sine(from: u32, to: u32) {
        let input = sine(440.0, from, from as usize * 2);
        let output = resample(&input, to).expect("resample");
        assert_eq!(output.sample_rate, to);

        let expected = (input.samples.len() as u64 * u64::from(to)).div_ceil(u64::from(from));
        assert!(
            output.frames().abs_diff(expected) <= 2,
            "{from}->{to}: got {} frames, expected {expected}",
            output.frames()
        );
        assert_eq!(output.duration_ms(), 2000);

        let crossings = rising_zero_crossings(&output.samples);
        assert!(
            (878..=881).contains(&crossings),
            "{from}->{to}: {crossings} crossings in 2 s"
        );
    }

    #[test]
    fn downsampling_44100_to_16000_keeps_length_and_pitch() {
        assert_resamples_sine(44_100, 16_000);
    }

    #[test]
    fn downsampling_48000_to_16000_keeps_length_and_pitch() {
        assert_resamples_sine(48_000, 16_000);
    }

    #[test]
    fn upsampling_8000_to_16000_keeps_length_and_pitch() {
        assert_resamples_sine(8_000, 16_000);
    }

    #[test]
    fn resampling_does_not_shift_timing() {
        // A click one second in must come out one second in at the new rate.
        let mut samples = vec![0.0f32; 44_100 * 2];
        samples[44_100] = 1.0;
        let input = Audio {
            samples: samples.into(),
            sample_rate: 44_100,
        };
        let output = resample(&input, 16_000).expect("resample");

        let peak = output
            .samples
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
            .map(|(i, _)| i)
            .expect("non-empty output");
        assert!(peak.abs_diff(16_000) <= 1, "click moved to sample {peak}");
    }

    #[test]
    fn end_of_signal_is_not_lost() {
        // A tone that only starts in the last 50 ms must survive the flush.
        let rate = 48_000;
        let mut samples = vec![0.0f32; rate];
        let tail = sine(1000.0, 48_000, 2_400);
        samples[rate - 2_400..].copy_from_slice(&tail.samples);
        let input = Audio {
            samples: samples.into(),
            sample_rate: 48_000,
        };
        let output = resample(&input, 16_000).expect("resample");

        assert_eq!(output.frames(), 16_000);
        let tail_energy: f32 = output.samples[16_000 - 800..].iter().map(|s| s * s).sum();
        // 800 samples of a 0.5-amplitude sine carry 800 * 0.125 = 100.
        assert!(
            (90.0..110.0).contains(&tail_energy),
            "tail energy {tail_energy}"
        );
    }

    #[test]
    fn equal_rates_share_the_samples() {
        let input = sine(440.0, 16_000, 1_000);
        let output = resample(&input, 16_000).expect("resample");
        assert!(Arc::ptr_eq(&input.samples, &output.samples));
        assert_eq!(output.sample_rate, 16_000);
    }

    #[test]
    fn empty_audio_resamples_to_empty() {
        let input = Audio {
            samples: Arc::from([]),
            sample_rate: 44_100,
        };
        let output = resample(&input, 16_000).expect("resample");
        assert_eq!(output.frames(), 0);
        assert_eq!(output.sample_rate, 16_000);
    }

    #[test]
    fn zero_rate_is_an_error_not_a_panic() {
        let input = sine(440.0, 16_000, 100);
        assert!(matches!(resample(&input, 0), Err(AudioError::Resample(_))));
        let bad_input = Audio {
            samples: input.samples.clone(),
            sample_rate: 0,
        };
        assert!(matches!(
            resample(&bad_input, 16_000),
            Err(AudioError::Resample(_))
        ));
    }

    #[test]
    fn very_short_clips_resample() {
        let input = sine(440.0, 44_100, 10);
        let output = resample(&input, 16_000).expect("resample");
        assert_eq!(output.frames(), 4);
    }
}
