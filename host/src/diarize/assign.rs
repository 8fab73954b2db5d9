//! Speakers onto a transcript: every segment (and word) gets the speaker of the turn
//! that overlaps it most, so a diarizer's turn edges need not match segment edges.

use super::{MAX_SPEAKERS, SpeakerTurn};
use crate::transcript::Transcript;

/// The longest speaker label kept.
const MAX_LABEL_CHARS: usize = 64;

/// Checks a diarizer's turns against the contract: in time order, not overlapping, each
/// with a start before its end inside the audio (plus a little slack for rounding), a
/// short printable label, and at most [`MAX_SPEAKERS`] distinct labels.
pub fn check_turns(turns: &[SpeakerTurn], duration_ms: u64) -> Result<(), String> {
    let slack_ms = 1_000;
    let mut labels: Vec<&str> = Vec::new();
    let mut previous_end = 0;
    for (i, turn) in turns.iter().enumerate() {
        if turn.end_ms <= turn.start_ms {
            return Err(format!(
                "turn {i} ends ({} ms) before it starts ({} ms)",
                turn.end_ms, turn.start_ms
            ));
        }
        if turn.start_ms < previous_end {
            return Err(format!(
                "turn {i} starts at {} ms, before the previous turn ends ({previous_end} ms): turns must be in time order and must not overlap",
                turn.start_ms
            ));
        }
        if turn.end_ms > duration_ms + slack_ms {
            return Err(format!(
                "turn {i} ends at {} ms, after the audio ({duration_ms} ms)",
                turn.end_ms
            ));
        }
        let label = turn.speaker.as_str();
        if label.trim().is_empty()
            || label.chars().count() > MAX_LABEL_CHARS
            || label.chars().any(char::is_control)
        {
            return Err(format!(
                "turn {i} has the speaker label {label:?}: labels are 1 to {MAX_LABEL_CHARS} printable characters"
            ));
        }
        if !labels.contains(&label) {
            labels.push(label);
        }
        if labels.len() > MAX_SPEAKERS as usize {
            return Err(format!("more than {MAX_SPEAKERS} distinct speakers"));
        }
        previous_end = turn.end_ms;
    }
    Ok(())
}

/// Sets `speaker` on every segment and word of `transcript` from checked `turns` and
/// returns the labels used, in order of first appearance. A segment no turn overlaps
/// takes the nearest turn's speaker; a word no turn overlaps takes its segment's.
pub fn assign_speakers(transcript: &mut Transcript, turns: &[SpeakerTurn]) -> Vec<String> {
    let mut order = Vec::new();
    if turns.is_empty() {
        return order;
    }
    for segment in &mut transcript.segments {
        segment.speaker = speaker_at(turns, segment.start_ms, segment.end_ms, true);
        for word in &mut segment.words {
            word.speaker = speaker_at(turns, word.start_ms, word.end_ms, false)
                .or_else(|| segment.speaker.clone());
        }
        if let Some(label) = &segment.speaker
            && !order.contains(label)
        {
            order.push(label.clone());
        }
    }
    order
}

/// The speaker of the turn overlapping `start..end` most (the earlier one on a tie);
/// with `nearest`, the closest turn's when none overlaps.
fn speaker_at(turns: &[SpeakerTurn], start: u64, end: u64, nearest: bool) -> Option<String> {
    let overlap = |t: &SpeakerTurn| t.end_ms.min(end).saturating_sub(t.start_ms.max(start));
    let best = turns
        .iter()
        .filter(|t| overlap(t) > 0)
        .fold(None::<&SpeakerTurn>, |best, t| match best {
            Some(b) if overlap(b) >= overlap(t) => Some(b),
            _ => Some(t),
        });
    if let Some(turn) = best {
        return Some(turn.speaker.clone());
    }
    if !nearest {
        return None;
    }
    let distance = |t: &SpeakerTurn| {
        if t.end_ms <= start {
            start - t.end_ms
        } else {
            t.start_ms.saturating_sub(end)
        }
    };
    turns
        .iter()
        .min_by_key(|t| distance(t))
        .map(|t| t.speaker.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transcript::{Segment, Word};

    fn turn(start_ms: u64, end_ms: u64, speaker: &str) -> SpeakerTurn {
        SpeakerTurn {
            start_ms,
            end_ms,
            speaker: speaker.into(),
            confidence: None,
        }
    }

    fn word(text: &str, start_ms: u64, end_ms: u64) -> Word {
        Word {
            text: text.into(),
            start_ms,
            end_ms,
            ..Word::default()
        }
    }

    #[test]
    fn each_segment_takes_the_turn_it_overlaps_most() {
        let mut transcript = Transcript {
            segments: vec![
                Segment::new(0, 1_000, "a"),
                Segment::new(1_000, 3_000, "b"),
                Segment::new(3_000, 4_000, "c"),
            ],
            ..Transcript::default()
        };
        let turns = [turn(0, 1_400, "SPEAKER_2"), turn(1_400, 4_000, "SPEAKER_1")];
        let order = assign_speakers(&mut transcript, &turns);
        let speakers: Vec<_> = transcript
            .segments
            .iter()
            .map(|s| s.speaker.as_deref())
            .collect();
        assert_eq!(
            speakers,
            [Some("SPEAKER_2"), Some("SPEAKER_1"), Some("SPEAKER_1")]
        );
        assert_eq!(order, ["SPEAKER_2", "SPEAKER_1"], "first appearance first");
    }

    #[test]
    fn words_take_their_own_turn_and_gaps_take_the_nearest() {
        let mut segment = Segment::new(0, 2_000, "one two");
        segment.words = vec![word("one", 0, 900), word("two", 1_100, 1_900)];
        let mut transcript = Transcript {
            segments: vec![segment, Segment::new(5_000, 6_000, "later")],
            ..Transcript::default()
        };
        let turns = [
            turn(0, 1_000, "A"),
            turn(1_000, 2_000, "B"),
            turn(4_000, 4_500, "C"),
        ];
        assign_speakers(&mut transcript, &turns);
        let words: Vec<_> = transcript.segments[0]
            .words
            .iter()
            .map(|w| w.speaker.as_deref())
            .collect();
        assert_eq!(words, [Some("A"), Some("B")]);
        assert_eq!(transcript.segments[1].speaker.as_deref(), Some("C"));
    }

    #[test]
    fn no_turns_leave_the_transcript_alone() {
        let mut transcript = Transcript {
            segments: vec![Segment::new(0, 1_000, "a")],
            ..Transcript::default()
        };
        assert!(assign_speakers(&mut transcript, &[]).is_empty());
        assert_eq!(transcript.segments[0].speaker, None);
    }

    #[test]
    fn turns_out_of_order_overlapping_or_outside_the_audio_are_refused() {
        assert!(check_turns(&[turn(0, 1_000, "A"), turn(1_000, 2_000, "B")], 2_000).is_ok());
        let overlapping = check_turns(&[turn(0, 1_500, "A"), turn(1_000, 2_000, "B")], 2_000);
        assert!(overlapping.unwrap_err().contains("must not overlap"));
        assert!(check_turns(&[turn(500, 500, "A")], 2_000).is_err());
        assert!(
            check_turns(&[turn(0, 9_000, "A")], 2_000)
                .unwrap_err()
                .contains("after the audio")
        );
        assert!(check_turns(&[turn(0, 100, "")], 2_000).is_err());
        assert!(check_turns(&[turn(0, 100, "a\nb")], 2_000).is_err());
        let many: Vec<_> = (0..40)
            .map(|i| turn(i * 10, i * 10 + 5, &format!("S{i}")))
            .collect();
        assert!(
            check_turns(&many, 2_000)
                .unwrap_err()
                .contains("distinct speakers")
        );
    }
}
