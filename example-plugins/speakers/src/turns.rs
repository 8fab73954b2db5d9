//! From labelled windows to speaker turns: each 10 ms of speech takes the label of the
//! window whose centre is nearest, runs of one label become turns, turns shorter than
//! the minimum are given to the longer neighbour, and what is left is merged into
//! non-overlapping turns in time order, named `SPEAKER_1`, `SPEAKER_2`, ... by first
//! appearance. A turn spans the silence up to the next turn of the same speaker.

use sandscribe_plugin_sdk::SpeakerTurn;

use crate::speech::Span;

/// The time step labels are assigned at.
const STEP_MS: u64 = 10;

/// A window's cluster and how sure the assignment is (0..=1).
#[derive(Clone, Copy, Debug)]
pub struct Labelled {
    pub span: Span,
    pub label: usize,
    pub confidence: f32,
}

/// One run of a label, with the sum of its steps' confidences.
#[derive(Clone, Debug)]
struct Run {
    start_ms: u64,
    end_ms: u64,
    label: usize,
    confidence_sum: f32,
    steps: u32,
}

/// Turns for `speech` from `windows` (in any order), dropping turns under `min_turn_ms`
/// into their neighbours.
pub fn build_turns(speech: &[Span], windows: &[Labelled], min_turn_ms: u64) -> Vec<SpeakerTurn> {
    if windows.is_empty() {
        return Vec::new();
    }
    let mut centres: Vec<(u64, usize)> = windows
        .iter()
        .enumerate()
        .map(|(i, w)| ((w.span.start_ms + w.span.end_ms) / 2, i))
        .collect();
    centres.sort_unstable();
    let mut runs: Vec<Run> = Vec::new();
    let mut next = 0usize; // index into centres, advanced as time goes on
    for s in speech {
        let mut t = s.start_ms;
        while t < s.end_ms {
            let end = (t + STEP_MS).min(s.end_ms);
            let mid = (t + end) / 2;
            while next + 1 < centres.len()
                && centres[next + 1].0.abs_diff(mid) <= centres[next].0.abs_diff(mid)
            {
                next += 1;
            }
            let w = &windows[centres[next].1];
            match runs.last_mut() {
                Some(r) if r.label == w.label => {
                    r.end_ms = end;
                    r.confidence_sum += w.confidence;
                    r.steps += 1;
                }
                _ => runs.push(Run {
                    start_ms: t,
                    end_ms: end,
                    label: w.label,
                    confidence_sum: w.confidence,
                    steps: 1,
                }),
            }
            t = end;
        }
    }
    absorb_short_runs(&mut runs, min_turn_ms);
    name_turns(&runs)
}

/// Repeatedly gives the shortest run under `min_ms` to its longer neighbour.
fn absorb_short_runs(runs: &mut Vec<Run>, min_ms: u64) {
    loop {
        let Some((i, _)) = runs
            .iter()
            .enumerate()
            .filter(|(_, r)| r.end_ms - r.start_ms < min_ms)
            .min_by_key(|(_, r)| r.end_ms - r.start_ms)
        else {
            return;
        };
        if runs.len() < 2 {
            return;
        }
        let len = |r: &Run| r.end_ms - r.start_ms;
        let target = match (i.checked_sub(1), runs.get(i + 1)) {
            (Some(p), Some(n)) if len(n) > len(&runs[p]) => i + 1,
            (Some(p), _) => p,
            (None, _) => i + 1,
        };
        runs[i].label = runs[target].label;
        // Merge every pair of neighbours that now share a label.
        let mut merged: Vec<Run> = Vec::with_capacity(runs.len());
        for r in runs.drain(..) {
            match merged.last_mut() {
                Some(m) if m.label == r.label => {
                    m.end_ms = r.end_ms;
                    m.confidence_sum += r.confidence_sum;
                    m.steps += r.steps;
                }
                _ => merged.push(r),
            }
        }
        *runs = merged;
    }
}

/// Non-overlapping turns named by first appearance; a turn runs on through the silence
/// until the next one of the same speaker.
fn name_turns(runs: &[Run]) -> Vec<SpeakerTurn> {
    let mut names: Vec<usize> = Vec::new();
    let mut turns: Vec<(SpeakerTurn, f32, u32)> = Vec::new();
    for r in runs {
        let number = match names.iter().position(|&l| l == r.label) {
            Some(p) => p + 1,
            None => {
                names.push(r.label);
                names.len()
            }
        };
        let speaker = format!("SPEAKER_{number}");
        match turns.last_mut() {
            Some((t, sum, steps)) if t.speaker == speaker => {
                t.end_ms = r.end_ms;
                *sum += r.confidence_sum;
                *steps += r.steps;
            }
            _ => turns.push((
                SpeakerTurn::new(r.start_ms, r.end_ms, speaker),
                r.confidence_sum,
                r.steps,
            )),
        }
    }
    turns
        .into_iter()
        .map(|(t, sum, steps)| t.with_confidence(sum / steps.max(1) as f32))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(start_ms: u64, end_ms: u64, label: usize) -> Labelled {
        Labelled {
            span: Span { start_ms, end_ms },
            label,
            confidence: 0.8,
        }
    }

    fn speech(start_ms: u64, end_ms: u64) -> Span {
        Span { start_ms, end_ms }
    }

    fn summary(turns: &[SpeakerTurn]) -> Vec<(u64, u64, &str)> {
        turns
            .iter()
            .map(|t| (t.start_ms, t.end_ms, t.speaker.as_str()))
            .collect()
    }

    #[test]
    fn the_change_falls_between_the_centres_of_differing_windows() {
        // Windows centred at 800, 1600, 2400, 3200; labels 5, 5, 2, 2.
        let w = [
            window(0, 1600, 5),
            window(800, 2400, 5),
            window(1600, 3200, 2),
            window(2400, 4000, 2),
        ];
        let turns = build_turns(&[speech(0, 4000)], &w, 500);
        assert_eq!(
            summary(&turns),
            [(0, 2000, "SPEAKER_1"), (2000, 4000, "SPEAKER_2")]
        );
        assert!((turns[0].confidence.unwrap() - 0.8).abs() < 1e-5);
    }

    #[test]
    fn a_short_turn_joins_its_longer_neighbour_and_silence_joins_a_speakers_turns() {
        let w = [
            window(0, 1600, 0),
            window(800, 2400, 0),
            window(1600, 3200, 1), // one window: a 400 ms blip after smoothing? see below
            window(2400, 4000, 0),
            window(3200, 4800, 0),
        ];
        // Speech 0..2800 and 3600..4800: the blip owns 2000..2800, 800 ms < 1000.
        let turns = build_turns(&[speech(0, 2800), speech(3600, 4800)], &w, 1000);
        assert_eq!(summary(&turns), [(0, 4800, "SPEAKER_1")]);
        // With a lower minimum the blip stays, named second.
        let turns = build_turns(&[speech(0, 2800), speech(3600, 4800)], &w, 500);
        assert_eq!(
            summary(&turns),
            [
                (0, 2000, "SPEAKER_1"),
                (2000, 2800, "SPEAKER_2"),
                (3600, 4800, "SPEAKER_1")
            ]
        );
    }

    #[test]
    fn no_windows_no_turns() {
        assert!(build_turns(&[speech(0, 1000)], &[], 500).is_empty());
    }
}
