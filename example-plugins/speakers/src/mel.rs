//! The speaker encoder's input: 40-band mel power spectrogram frames, as Resemblyzer
//! computes them with `librosa.feature.melspectrogram(sr=16000, n_fft=400,
//! hop_length=160, n_mels=40)`: a periodic Hann window of 25 ms every 10 ms, frames
//! centred on their sample (reflect-padded by half a window at both ends), power (not
//! log, not dB), Slaney-style mel filters with area normalisation, 0 to 8 kHz.

use std::sync::Arc;

use realfft::{RealFftPlanner, RealToComplex};

pub const SAMPLE_RATE: u32 = 16_000;
/// 25 ms.
pub const WINDOW: usize = 400;
/// 10 ms: one frame per this many samples.
pub const HOP: usize = 160;
pub const BANDS: usize = 40;

/// Computes mel frames; holds the FFT plan, window and filters.
pub struct MelSpectrogram {
    fft: Arc<dyn RealToComplex<f32>>,
    window: Vec<f32>,
    /// `[BANDS][WINDOW / 2 + 1]`.
    filters: Vec<Vec<f32>>,
}

impl Default for MelSpectrogram {
    fn default() -> Self {
        Self::new()
    }
}

impl MelSpectrogram {
    pub fn new() -> Self {
        let window = (0..WINDOW)
            .map(|i| {
                let phase = 2.0 * std::f64::consts::PI * i as f64 / WINDOW as f64;
                (0.5 - 0.5 * phase.cos()) as f32
            })
            .collect();
        Self {
            fft: RealFftPlanner::<f32>::new().plan_fft_forward(WINDOW),
            window,
            filters: mel_filters(SAMPLE_RATE as f64, WINDOW, BANDS),
        }
    }

    /// Frames `[n][BANDS]` for `samples`, one per [`HOP`] samples plus one
    /// (`1 + len / HOP`), frame `i` centred on sample `i * HOP`.
    pub fn frames(&self, samples: &[f32]) -> Vec<[f32; BANDS]> {
        if samples.is_empty() {
            return Vec::new();
        }
        let half = WINDOW / 2;
        let n = 1 + samples.len() / HOP;
        let mut input = self.fft.make_input_vec();
        let mut spectrum = self.fft.make_output_vec();
        let mut scratch = self.fft.make_scratch_vec();
        let mut power = vec![0f32; spectrum.len()];
        let mut out = Vec::with_capacity(n);
        for frame in 0..n {
            for (k, slot) in input.iter_mut().enumerate() {
                let at = (frame * HOP + k) as isize - half as isize;
                *slot = reflect(samples, at) * self.window[k];
            }
            // The lengths come from the plan itself, so this cannot fail.
            if self
                .fft
                .process_with_scratch(&mut input, &mut spectrum, &mut scratch)
                .is_err()
            {
                unreachable!("buffers made by the plan have the plan's lengths");
            }
            for (p, c) in power.iter_mut().zip(&spectrum) {
                *p = c.norm_sqr();
            }
            let mut bands = [0f32; BANDS];
            for (band, filter) in bands.iter_mut().zip(&self.filters) {
                *band = filter.iter().zip(&power).map(|(w, p)| w * p).sum();
            }
            out.push(bands);
        }
        out
    }
}

/// `samples[at]` with numpy's `reflect` padding (the edge sample is not repeated).
fn reflect(samples: &[f32], at: isize) -> f32 {
    let n = samples.len() as isize;
    if n == 1 {
        return samples[0];
    }
    let period = 2 * (n - 1);
    let mut i = at.rem_euclid(period);
    if i >= n {
        i = period - i;
    }
    samples[i as usize]
}

/// Slaney's mel scale: linear below 1 kHz, logarithmic above (librosa's `htk=False`).
fn hz_to_mel(hz: f64) -> f64 {
    let (f_sp, min_log_hz) = (200.0 / 3.0, 1000.0);
    let min_log_mel = min_log_hz / f_sp;
    let logstep = 6.4f64.ln() / 27.0;
    if hz >= min_log_hz {
        min_log_mel + (hz / min_log_hz).ln() / logstep
    } else {
        hz / f_sp
    }
}

fn mel_to_hz(mel: f64) -> f64 {
    let (f_sp, min_log_hz) = (200.0 / 3.0, 1000.0);
    let min_log_mel = min_log_hz / f_sp;
    let logstep = 6.4f64.ln() / 27.0;
    if mel >= min_log_mel {
        min_log_hz * (logstep * (mel - min_log_mel)).exp()
    } else {
        mel * f_sp
    }
}

/// Triangular filters between `bands + 2` points evenly spaced in mel from 0 to
/// `rate / 2`, each scaled to unit area (librosa's `norm="slaney"`).
fn mel_filters(rate: f64, n_fft: usize, bands: usize) -> Vec<Vec<f32>> {
    let bins = n_fft / 2 + 1;
    let top = hz_to_mel(rate / 2.0);
    let points: Vec<f64> = (0..bands + 2)
        .map(|i| mel_to_hz(top * i as f64 / (bands + 1) as f64))
        .collect();
    (0..bands)
        .map(|b| {
            let (lo, mid, hi) = (points[b], points[b + 1], points[b + 2]);
            let norm = 2.0 / (hi - lo);
            (0..bins)
                .map(|k| {
                    let f = k as f64 * rate / n_fft as f64;
                    let rising = (f - lo) / (mid - lo);
                    let falling = (hi - f) / (hi - mid);
                    (rising.min(falling).max(0.0) * norm) as f32
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mel_scale_is_linear_to_1khz_and_round_trips() {
        assert!((hz_to_mel(1000.0) - 15.0).abs() < 1e-12);
        assert!((hz_to_mel(500.0) - 7.5).abs() < 1e-12);
        for hz in [0.0, 300.0, 999.0, 1000.0, 4321.0, 8000.0] {
            assert!((mel_to_hz(hz_to_mel(hz)) - hz).abs() < 1e-6, "{hz}");
        }
    }

    #[test]
    fn filters_match_librosa_at_known_points() {
        // librosa.filters.mel(sr=16000, n_fft=400, n_mels=40): band 0 peaks at bin 1 with
        // 2 / (mel_to_hz(2 * 8000 mel / 41) - 0) of area normalisation.
        let filters = mel_filters(16_000.0, 400, 40);
        assert_eq!(filters.len(), 40);
        assert_eq!(filters[0].len(), 201);
        let top = hz_to_mel(8000.0);
        let (p1, p2) = (mel_to_hz(top / 41.0), mel_to_hz(2.0 * top / 41.0));
        let bin1 = 40.0; // Hz of FFT bin 1
        let expected = (bin1 / p1).min((p2 - bin1) / (p2 - p1)) * 2.0 / p2;
        assert!((f64::from(filters[0][1]) - expected).abs() < 1e-6);
        assert_eq!(filters[0][0], 0.0);
        // Every band covers some bin and no bin above Nyquist gets weight from band 0.
        assert!(filters.iter().all(|f| f.iter().any(|&w| w > 0.0)));
        assert!(filters[0][10..].iter().all(|&w| w == 0.0));
    }

    #[test]
    fn a_tone_lights_the_band_that_holds_its_frequency() {
        let tone: Vec<f32> = (0..16_000)
            .map(|i| (2.0 * std::f32::consts::PI * 2_000.0 * i as f32 / 16_000.0).sin() * 0.5)
            .collect();
        let mel = MelSpectrogram::new();
        let frames = mel.frames(&tone);
        assert_eq!(frames.len(), 1 + 16_000 / HOP);
        let middle = frames[50];
        let loudest = (0..BANDS)
            .max_by(|&a, &b| middle[a].total_cmp(&middle[b]))
            .unwrap();
        let filters = mel_filters(16_000.0, 400, 40);
        // 2 kHz is FFT bin 50: the loudest band is the one whose filter is largest there.
        let best = (0..BANDS)
            .max_by(|&a, &b| filters[a][50].total_cmp(&filters[b][50]))
            .unwrap();
        assert_eq!(loudest, best);
        // Power of a 0.5-amplitude sine under a Hann window: (0.5 * 200 / 2)^2 at the
        // peak bin, spread by the filter; the band is far above silence.
        assert!(middle[loudest] > 1.0, "{}", middle[loudest]);
        assert!(mel.frames(&[]).is_empty());
    }

    #[test]
    fn reflect_padding_mirrors_without_repeating_the_edge() {
        let s = [1.0, 2.0, 3.0];
        let got: Vec<f32> = (-3..6).map(|i| reflect(&s, i)).collect();
        assert_eq!(got, [2.0, 3.0, 2.0, 1.0, 2.0, 3.0, 2.0, 1.0, 2.0]);
    }
}
