//! Where the speech is and which windows of it get an embedding.
//!
//! Speech comes from the transcript's segments when there are any; otherwise from a
//! simple energy detector (30 ms frames louder than both -50 dBFS and 30 dB under the
//! 95th-percentile frame, gaps under 300 ms closed, pieces under 200 ms dropped). Windows
//! are `window` long with 50 % overlap, laid over each stretch of speech; a stretch
//! shorter than a window gets one window centred on it (borrowing audio around it).

/// A stretch of time in milliseconds, `start < end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub start_ms: u64,
    pub end_ms: u64,
}

impl Span {
    pub fn len_ms(&self) -> u64 {
        self.end_ms - self.start_ms
    }
}

/// Sorted, merged, non-empty spans clipped to `0..duration_ms`.
pub fn merge_spans(mut spans: Vec<Span>, duration_ms: u64) -> Vec<Span> {
    spans.iter_mut().for_each(|s| {
        s.start_ms = s.start_ms.min(duration_ms);
        s.end_ms = s.end_ms.min(duration_ms);
    });
    spans.retain(|s| s.end_ms > s.start_ms);
    spans.sort_by_key(|s| s.start_ms);
    let mut out: Vec<Span> = Vec::with_capacity(spans.len());
    for s in spans {
        match out.last_mut() {
            Some(last) if s.start_ms <= last.end_ms => last.end_ms = last.end_ms.max(s.end_ms),
            _ => out.push(s),
        }
    }
    out
}

const ENERGY_FRAME_MS: u64 = 30;
const ENERGY_FLOOR_DB: f32 = -50.0;
const ENERGY_BELOW_LOUD_DB: f32 = 30.0;
const ENERGY_MAX_GAP_MS: u64 = 300;
const ENERGY_MIN_SPEECH_MS: u64 = 200;

/// Samples per loudness frame at `rate` Hz (read the audio in multiples of it).
pub fn energy_frame(rate: u32) -> usize {
    (rate as u64 * ENERGY_FRAME_MS / 1000).max(1) as usize
}

/// The loudness (dBFS) of each [`energy_frame`] of `samples`.
pub fn frame_db(samples: &[f32], rate: u32) -> impl Iterator<Item = f32> + '_ {
    samples.chunks(energy_frame(rate)).map(|c| {
        let power = c.iter().map(|s| s * s).sum::<f32>() / c.len() as f32;
        10.0 * power.max(1e-12).log10()
    })
}

/// Speech found by loudness in `samples` at `rate` Hz.
#[cfg(test)]
pub fn energy_speech(samples: &[f32], rate: u32) -> Vec<Span> {
    let duration_ms = samples.len() as u64 * 1000 / u64::from(rate.max(1));
    speech_from_db(&frame_db(samples, rate).collect::<Vec<_>>(), duration_ms)
}

/// Speech from the loudness of successive [`energy_frame`]s.
pub fn speech_from_db(db: &[f32], duration_ms: u64) -> Vec<Span> {
    if db.is_empty() {
        return Vec::new();
    }
    let mut sorted = db.to_vec();
    sorted.sort_by(f32::total_cmp);
    let loud = sorted[(sorted.len() - 1) * 95 / 100];
    let threshold = ENERGY_FLOOR_DB.max(loud - ENERGY_BELOW_LOUD_DB);
    let mut spans: Vec<Span> = Vec::new();
    for (i, &d) in db.iter().enumerate() {
        if d < threshold {
            continue;
        }
        let (start_ms, end_ms) = (i as u64 * ENERGY_FRAME_MS, (i as u64 + 1) * ENERGY_FRAME_MS);
        match spans.last_mut() {
            Some(last) if start_ms <= last.end_ms + ENERGY_MAX_GAP_MS => last.end_ms = end_ms,
            _ => spans.push(Span { start_ms, end_ms }),
        }
    }
    spans.retain(|s| s.len_ms() >= ENERGY_MIN_SPEECH_MS);
    merge_spans(spans, duration_ms)
}

/// Window spans over `speech`: `window_ms` long every `window_ms / 2`, the last one of a
/// stretch ending at its end; a stretch shorter than a window (but at least
/// `min_speech_ms`) gets one centred on it, kept inside `0..duration_ms` where it fits.
pub fn windows(speech: &[Span], window_ms: u64, min_speech_ms: u64, duration_ms: u64) -> Vec<Span> {
    let hop = (window_ms / 2).max(10);
    let mut out = Vec::new();
    for s in speech {
        if s.len_ms() < min_speech_ms {
            continue;
        }
        if s.len_ms() <= window_ms {
            let centre = (s.start_ms + s.end_ms) / 2;
            let start = centre
                .saturating_sub(window_ms / 2)
                .min(duration_ms.saturating_sub(window_ms));
            out.push(Span {
                start_ms: start,
                end_ms: start + window_ms,
            });
            continue;
        }
        let mut start = s.start_ms;
        while start + window_ms <= s.end_ms {
            out.push(Span {
                start_ms: start,
                end_ms: start + window_ms,
            });
            start += hop;
        }
        let last_end = start - hop + window_ms;
        if last_end + hop / 2 < s.end_ms {
            out.push(Span {
                start_ms: s.end_ms - window_ms,
                end_ms: s.end_ms,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(start_ms: u64, end_ms: u64) -> Span {
        Span { start_ms, end_ms }
    }

    #[test]
    fn spans_are_sorted_merged_and_clipped() {
        let merged = merge_spans(
            vec![
                span(500, 900),
                span(0, 300),
                span(250, 400),
                span(2000, 3000),
                span(5, 5),
            ],
            2500,
        );
        assert_eq!(merged, [span(0, 400), span(500, 900), span(2000, 2500)]);
    }

    #[test]
    fn energy_finds_a_burst_between_silences() {
        let rate = 16_000;
        let mut samples = vec![0.0001f32; rate as usize]; // 1 s near-silence
        samples.extend((0..rate as usize).map(|i| ((i as f32) * 0.05).sin() * 0.3)); // 1 s tone
        samples.extend(vec![0.0001f32; rate as usize]);
        let speech = energy_speech(&samples, rate);
        assert_eq!(speech.len(), 1, "{speech:?}");
        assert!(speech[0].start_ms.abs_diff(1000) <= 30, "{speech:?}");
        assert!(speech[0].end_ms.abs_diff(2000) <= 30, "{speech:?}");
        assert!(energy_speech(&[], rate).is_empty());
    }

    #[test]
    fn windows_overlap_by_half_and_cover_the_end_of_each_stretch() {
        let w = windows(&[span(0, 4000)], 1600, 300, 10_000);
        assert_eq!(
            w,
            [
                span(0, 1600),
                span(800, 2400),
                span(1600, 3200),
                span(2400, 4000)
            ]
        );
        // 3000 ms: windows at 0 and 800; the remainder past 2400 ms gets one ending at 3000.
        let w = windows(&[span(0, 3000)], 1600, 300, 10_000);
        assert_eq!(w, [span(0, 1600), span(800, 2400), span(1400, 3000)]);
        // Short stretches: one centred window, kept inside the file; too short: none.
        let w = windows(
            &[span(100, 600), span(9800, 9900), span(5000, 5100)],
            1600,
            300,
            10_000,
        );
        assert_eq!(w, [span(0, 1600)]);
        let w = windows(&[span(9500, 9900)], 1600, 300, 10_000);
        assert_eq!(w, [span(8400, 10_000)]);
    }
}
