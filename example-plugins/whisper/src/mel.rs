//! Whisper's log-mel spectrogram, single-threaded.
//!
//! candle's `whisper::audio::pcm_to_mel` spawns threads, which a `wasm32-wasip2`
//! component cannot do, so this is a plain loop that matches openai-whisper's
//! `log_mel_spectrogram`: a centred STFT (reflect padding, periodic Hann window,
//! n_fft 400, hop 160), power spectrum without the last frame, Slaney mel filters
//! (computed here as librosa does, not downloaded), `log10(max(x, 1e-10))`, clamped to
//! 8 below the maximum, then `(x + 4) / 4`.

use std::f64::consts::PI;

use crate::audio::AudioSource;

/// Samples per second Whisper expects.
pub const SAMPLE_RATE: usize = 16_000;
/// FFT size (25 ms).
pub const N_FFT: usize = 400;
/// Samples between frames (10 ms).
pub const HOP_LENGTH: usize = 160;
/// Frames in one 30-second window.
pub const N_FRAMES: usize = 3000;
/// Samples in one 30-second window.
pub const N_SAMPLES: usize = N_FRAMES * HOP_LENGTH;

/// Slaney-style mel filter bank, `n_mels × (N_FFT / 2 + 1)`, as `librosa.filters.mel`
/// with `sr = 16000, n_fft = 400, htk = False, norm = "slaney"`.
pub struct MelFilters {
    n_mels: usize,
    /// Per band: the first FFT bin with a non-zero weight and the weights from there.
    bands: Vec<(usize, Vec<f32>)>,
}

impl MelFilters {
    pub fn new(n_mels: usize) -> Self {
        let n_bins = N_FFT / 2 + 1;
        let fmax = SAMPLE_RATE as f64 / 2.0;
        let bin_freqs: Vec<f64> = (0..n_bins)
            .map(|k| k as f64 * fmax / (n_bins - 1) as f64)
            .collect();
        let (min_mel, max_mel) = (hz_to_mel(0.0), hz_to_mel(fmax));
        let mel_freqs: Vec<f64> = (0..n_mels + 2)
            .map(|i| mel_to_hz(min_mel + (max_mel - min_mel) * i as f64 / (n_mels + 1) as f64))
            .collect();
        let bands = (0..n_mels)
            .map(|m| {
                let (lo, mid, hi) = (mel_freqs[m], mel_freqs[m + 1], mel_freqs[m + 2]);
                let norm = 2.0 / (hi - lo);
                let weights: Vec<f32> = bin_freqs
                    .iter()
                    .map(|&f| {
                        let lower = (f - lo) / (mid - lo);
                        let upper = (hi - f) / (hi - mid);
                        (lower.min(upper).max(0.0) * norm) as f32
                    })
                    .collect();
                let first = weights.iter().position(|&w| w > 0.0).unwrap_or(0);
                let last = weights.iter().rposition(|&w| w > 0.0).unwrap_or(0);
                let kept = if last >= first {
                    weights[first..=last].to_vec()
                } else {
                    Vec::new()
                };
                (first, kept)
            })
            .collect();
        Self { n_mels, bands }
    }

    /// The weight of FFT bin `bin` in mel band `band`.
    pub fn weight(&self, band: usize, bin: usize) -> f32 {
        let (first, weights) = &self.bands[band];
        bin.checked_sub(*first)
            .and_then(|i| weights.get(i))
            .copied()
            .unwrap_or(0.0)
    }
}

fn hz_to_mel(f: f64) -> f64 {
    const F_SP: f64 = 200.0 / 3.0;
    const MIN_LOG_HZ: f64 = 1000.0;
    let logstep = 6.4f64.ln() / 27.0;
    if f >= MIN_LOG_HZ {
        MIN_LOG_HZ / F_SP + (f / MIN_LOG_HZ).ln() / logstep
    } else {
        f / F_SP
    }
}

fn mel_to_hz(m: f64) -> f64 {
    const F_SP: f64 = 200.0 / 3.0;
    const MIN_LOG_HZ: f64 = 1000.0;
    let min_log_mel = MIN_LOG_HZ / F_SP;
    let logstep = 6.4f64.ln() / 27.0;
    if m >= min_log_mel {
        MIN_LOG_HZ * (logstep * (m - min_log_mel)).exp()
    } else {
        F_SP * m
    }
}

/// Computes log-mel frames of an [`AudioSource`] that is followed by `N_SAMPLES` of
/// silence (openai-whisper pads the whole file so the last window is complete).
///
/// Frame `f` covers samples `f·160 − 200 .. f·160 + 200` of the padded signal
/// (reflected at its two ends), so any range of frames can be computed from the samples
/// around it: the engine never holds the whole file or its whole spectrogram.
pub struct MelSpectrogram {
    filters: MelFilters,
    fft: Fft,
    window: Vec<f32>,
}

impl MelSpectrogram {
    pub fn new(n_mels: usize) -> Self {
        Self {
            filters: MelFilters::new(n_mels),
            fft: Fft::new(N_FFT),
            window: (0..N_FFT)
                .map(|n| (0.5 - 0.5 * (2.0 * PI * n as f64 / N_FFT as f64).cos()) as f32)
                .collect(),
        }
    }

    pub fn n_mels(&self) -> usize {
        self.filters.n_mels
    }

    /// `log10(max(mel, 1e-10))` of frames `start..start + count`, band-major
    /// (`out[band * count + i]`).
    pub fn log_frames<A: AudioSource + ?Sized>(
        &self,
        audio: &A,
        start: usize,
        count: usize,
    ) -> Vec<f32> {
        let len = audio.len();
        let total = (len + N_SAMPLES) as isize;
        let half = (N_FFT / 2) as isize;
        // The samples these frames touch (plus the first 200 for the reflection at 0).
        let lo = (start * HOP_LENGTH).saturating_sub(N_FFT / 2).min(len);
        let mut hi = ((start + count) * HOP_LENGTH + N_FFT / 2 + 1).min(len);
        if start * HOP_LENGTH < N_FFT / 2 {
            hi = hi.max((N_FFT / 2 + 1).min(len));
        }
        let chunk = audio.read(lo, hi.saturating_sub(lo));
        let at = |i: isize| -> f32 {
            let j = if i < 0 {
                -i
            } else if i >= total {
                2 * (total - 1) - i
            } else {
                i
            };
            let j = j.clamp(0, total - 1) as usize;
            if j >= lo && j < lo + chunk.len() {
                chunk[j - lo]
            } else {
                0.0
            }
        };
        let n_mels = self.filters.n_mels;
        let mut out = vec![0f32; n_mels * count];
        let mut buf = vec![Complex::default(); N_FFT];
        let mut power = vec![0f32; N_FFT / 2 + 1];
        for i in 0..count {
            let first = ((start + i) * HOP_LENGTH) as isize - half;
            for (n, slot) in buf.iter_mut().enumerate() {
                *slot = Complex {
                    re: at(first + n as isize) * self.window[n],
                    im: 0.0,
                };
            }
            self.fft.transform(&mut buf);
            for (p, c) in power.iter_mut().zip(&buf) {
                *p = c.re * c.re + c.im * c.im;
            }
            for (band, (first_bin, weights)) in self.filters.bands.iter().enumerate() {
                let energy: f32 = weights
                    .iter()
                    .zip(&power[*first_bin..])
                    .map(|(w, p)| w * p)
                    .sum();
                out[band * count + i] = energy.max(1e-10).log10();
            }
        }
        out
    }

    /// The largest log-mel value of the whole padded file (openai-whisper clamps every
    /// value to 8 below it). Reads the audio once, a window at a time.
    pub fn global_max<A: AudioSource + ?Sized>(&self, audio: &A) -> f32 {
        self.loudness(audio).max
    }

    /// [`MelSpectrogram::global_max`], keeping the frames of the first window: most
    /// clips are one window, whose frames would otherwise be computed twice.
    pub fn loudness<A: AudioSource + ?Sized>(&self, audio: &A) -> Loudness {
        // Frames past this one see only the zero padding, whose value is the floor −10.
        let last = ((audio.len() + N_FFT) / HOP_LENGTH + 1).min(frame_count(audio.len()));
        let mut loudness = Loudness {
            max: -10.0,
            first: None,
        };
        let mut start = 0;
        while start < last {
            let count = N_FRAMES.min(last - start);
            let frames = self.log_frames(audio, start, count);
            loudness.max = frames.iter().copied().fold(loudness.max, f32::max);
            if start == 0 {
                loudness.first = Some((frames, count));
            }
            start += count;
        }
        loudness
    }

    /// [`MelSpectrogram::window`] with the global maximum of `loudness`, taking its kept
    /// frames when this is the first window.
    pub fn window_after<A: AudioSource + ?Sized>(
        &self,
        audio: &A,
        loudness: &mut Loudness,
        seek: usize,
        count: usize,
    ) -> Vec<f32> {
        let count = count.min(N_FRAMES);
        match loudness.first.take() {
            Some((frames, stride)) if seek == 0 && count <= stride => {
                self.normalise(&frames, stride, count, loudness.max)
            }
            _ => self.window(audio, loudness.max, seek, count),
        }
    }

    /// The model input for the window starting at frame `seek`: `count` normalised
    /// frames (`(max(x, global_max − 8) + 4) / 4`), zero-padded to `N_FRAMES` as
    /// openai-whisper's `pad_or_trim` does, `[n_mels, N_FRAMES]` row-major.
    pub fn window<A: AudioSource + ?Sized>(
        &self,
        audio: &A,
        global_max: f32,
        seek: usize,
        count: usize,
    ) -> Vec<f32> {
        let count = count.min(N_FRAMES);
        let frames = self.log_frames(audio, seek, count);
        self.normalise(&frames, count, count, global_max)
    }

    /// The first `count` of band-major `frames` (`stride` per band), normalised and
    /// zero-padded to `[n_mels, N_FRAMES]`.
    fn normalise(&self, frames: &[f32], stride: usize, count: usize, global_max: f32) -> Vec<f32> {
        let mut out = vec![0f32; self.filters.n_mels * N_FRAMES];
        for band in 0..self.filters.n_mels {
            for i in 0..count {
                let v = frames[band * stride + i];
                out[band * N_FRAMES + i] = (v.max(global_max - 8.0) + 4.0) / 4.0;
            }
        }
        out
    }
}

/// What the loudness pass over a file found (see [`MelSpectrogram::loudness`]).
pub struct Loudness {
    /// The global maximum log-mel value.
    pub max: f32,
    /// The first window's log-mel frames (band-major) and their count, until used.
    first: Option<(Vec<f32>, usize)>,
}

/// Frames of a file of `samples` samples once padded with `N_SAMPLES` of silence.
pub fn frame_count(samples: usize) -> usize {
    (samples + N_SAMPLES) / HOP_LENGTH
}

#[derive(Clone, Copy, Default, Debug)]
struct Complex {
    re: f32,
    im: f32,
}

impl Complex {
    fn mul(self, o: Complex) -> Complex {
        Complex {
            re: self.re * o.re - self.im * o.im,
            im: self.re * o.im + self.im * o.re,
        }
    }

    fn add(self, o: Complex) -> Complex {
        Complex {
            re: self.re + o.re,
            im: self.im + o.im,
        }
    }
}

/// A mixed-radix Cooley–Tukey FFT for one fixed size (400 = 4·4·5·5).
struct Fft {
    n: usize,
    factors: Vec<usize>,
    /// `exp(-2πik/n)` for k in 0..n.
    twiddles: Vec<Complex>,
    scratch: std::cell::RefCell<Vec<Complex>>,
}

impl Fft {
    fn new(n: usize) -> Self {
        let mut factors = Vec::new();
        let mut rest = n;
        for p in [4, 2, 3, 5] {
            while rest.is_multiple_of(p) {
                factors.push(p);
                rest /= p;
            }
        }
        let mut p = 7;
        while rest > 1 {
            while rest.is_multiple_of(p) {
                factors.push(p);
                rest /= p;
            }
            p += 2;
        }
        let twiddles = (0..n)
            .map(|k| {
                let a = -2.0 * PI * k as f64 / n as f64;
                Complex {
                    re: a.cos() as f32,
                    im: a.sin() as f32,
                }
            })
            .collect();
        Self {
            n,
            factors,
            twiddles,
            scratch: std::cell::RefCell::new(vec![Complex::default(); n]),
        }
    }

    /// Replaces `data` by its discrete Fourier transform.
    fn transform(&self, data: &mut [Complex]) {
        let mut out = self.scratch.borrow_mut();
        self.step(data, 0, 1, self.n, &mut out, 1, &self.factors);
        data.copy_from_slice(&out);
    }

    /// Transforms the `n` inputs `input[start + j * stride]` into `out[..n]`.
    #[allow(clippy::too_many_arguments)]
    fn step(
        &self,
        input: &[Complex],
        start: usize,
        stride: usize,
        n: usize,
        out: &mut [Complex],
        tw_stride: usize,
        factors: &[usize],
    ) {
        if n == 1 {
            out[0] = input[start];
            return;
        }
        let p = factors[0];
        let m = n / p;
        for r in 0..p {
            self.step(
                input,
                start + r * stride,
                stride * p,
                m,
                &mut out[r * m..(r + 1) * m],
                tw_stride * p,
                &factors[1..],
            );
        }
        // X[k + q·m] = Σ_r W_n^{r(k + q·m)} · Y_r[k], with W_n = exp(-2πi/n).
        let mut y = [Complex::default(); 8];
        let mut ys = vec![Complex::default(); if p > 8 { p } else { 0 }];
        let y: &mut [Complex] = if p <= 8 { &mut y[..p] } else { &mut ys };
        for k in 0..m {
            for (r, yr) in y.iter_mut().enumerate() {
                *yr = out[r * m + k];
            }
            for q in 0..p {
                let idx = k + q * m;
                let mut acc = Complex::default();
                for (r, yr) in y.iter().enumerate() {
                    let w = self.twiddles[(r * idx * tw_stride) % self.n];
                    acc = acc.add(yr.mul(w));
                }
                out[idx] = acc;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fft_matches_a_naive_dft() {
        let n = N_FFT;
        let input: Vec<Complex> = (0..n)
            .map(|i| Complex {
                re: ((i * 7919) % 101) as f32 / 50.0 - 1.0,
                im: 0.0,
            })
            .collect();
        let mut fast = input.clone();
        Fft::new(n).transform(&mut fast);
        for k in [0, 1, 17, 200, 399] {
            let (mut re, mut im) = (0f64, 0f64);
            for (j, x) in input.iter().enumerate() {
                let a = -2.0 * PI * (j * k) as f64 / n as f64;
                re += x.re as f64 * a.cos();
                im += x.re as f64 * a.sin();
            }
            assert!((fast[k].re as f64 - re).abs() < 1e-3, "bin {k}");
            assert!((fast[k].im as f64 - im).abs() < 1e-3, "bin {k}");
        }
    }

    #[test]
    fn slaney_filters_match_librosa_values() {
        // Reference values from openai-whisper's assets/mel_filters.npz (mel_80), which
        // is librosa.filters.mel(sr=16000, n_fft=400, n_mels=80).
        let f = MelFilters::new(80);
        for (band, bin, expected) in [
            (0, 1, 0.024_862_595),
            (40, 43, 0.014_735_566),
            (79, 195, 0.002_243_795),
            (79, 196, 0.001_795_036),
            (79, 192, 0.003_164_712),
        ] {
            let got = f.weight(band, bin);
            assert!((got - expected).abs() < 1e-6, "[{band}][{bin}] = {got}");
        }
        assert_eq!(f.weight(0, 3), 0.0);
    }

    #[test]
    fn silence_gives_the_floor_value() {
        let mel = MelSpectrogram::new(80);
        let audio = vec![0.0; 16_000];
        assert_eq!(mel.global_max(&audio), -10.0);
        let input = mel.window(&audio, -10.0, 0, 100);
        assert_eq!(input.len(), 80 * N_FRAMES);
        assert!(
            input[..100]
                .iter()
                .all(|&v| (v - (-10.0 + 4.0) / 4.0).abs() < 1e-6)
        );
        // Past the audio the window is zero-padded, not the log-mel of silence.
        assert!(input[100..N_FRAMES].iter().all(|&v| v == 0.0));
    }

    #[test]
    fn a_range_of_frames_equals_the_same_frames_computed_whole() {
        let audio: Vec<f32> = (0..40_000)
            .map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5)
            .collect();
        let mel = MelSpectrogram::new(80);
        let whole = mel.log_frames(&audio, 0, 260);
        let part = mel.log_frames(&audio, 240, 20);
        for band in [0, 40, 79] {
            for i in 0..20 {
                assert_eq!(part[band * 20 + i], whole[band * 260 + 240 + i]);
            }
        }
    }

    #[test]
    fn a_window_after_the_loudness_pass_equals_one_computed_afresh() {
        let audio: Vec<f32> = (0..50_000)
            .map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5)
            .collect();
        let mel = MelSpectrogram::new(80);
        let mut loudness = mel.loudness(&audio);
        assert_eq!(loudness.max, mel.global_max(&audio));
        let fresh = mel.window(&audio, loudness.max, 0, 250);
        assert_eq!(mel.window_after(&audio, &mut loudness, 0, 250), fresh);
        // Later windows (and the first one asked again) are computed afresh.
        let later = mel.window(&audio, loudness.max, 100, 150);
        assert_eq!(mel.window_after(&audio, &mut loudness, 100, 150), later);
        assert_eq!(mel.window_after(&audio, &mut loudness, 0, 250), fresh);
    }

    #[test]
    fn a_tone_lights_up_the_matching_band() {
        let tone: Vec<f32> = (0..16_000)
            .map(|i| (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / 16_000.0).sin() * 0.5)
            .collect();
        let mel = MelSpectrogram::new(80);
        let frame = mel.log_frames(&tone, 50, 1);
        let loudest = (0..80)
            .max_by(|&a, &b| frame[a].total_cmp(&frame[b]))
            .unwrap();
        // 1 kHz is mel 15, i.e. band ≈ 15 / (mel(8 kHz) / 81) − 1 ≈ 26.
        assert!((25..=27).contains(&loudest), "loudest band {loudest}");
    }
}
