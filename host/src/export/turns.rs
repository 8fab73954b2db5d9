//! Splitting segments where the speaker changes, so that no cue or line of an export
//! puts two people's words under one name.
//!
//! A diarizer labels a segment with its main speaker and each word with its own; when
//! the words of one segment belong to several speakers, the segment becomes one piece per
//! run of words of the same speaker. The words are matched to the text as the cue timing
//! matches them ([`super::timing`]): by count, in order. When they do not match, the
//! segment stays whole under its own label, since guessing which text belongs to whom
//! would be worse than not splitting.

use std::ops::Range;

use super::layout;
use crate::transcript::{Segment, Word};

/// `segments` with every segment split at its words' speaker changes, in order.
pub fn split_at_speaker_changes(segments: &[Segment]) -> Vec<Segment> {
    segments.iter().flat_map(segment_turns).collect()
}

/// The pieces of one segment: itself when it has one speaker (or words that do not match
/// its text), else one per run of same-speaker words, inside the segment and in order.
fn segment_turns(segment: &Segment) -> Vec<Segment> {
    let text_words: Vec<&str> = layout::words(&segment.text).collect();
    let counts: Vec<usize> = segment
        .words
        .iter()
        .map(|word| layout::words(&word.text).count())
        .collect();
    if counts.iter().sum::<usize>() != text_words.len() {
        return vec![segment.clone()];
    }
    let runs = speaker_runs(segment);
    if runs.len() < 2 {
        return vec![segment.clone()];
    }
    let seg_start = segment.start_ms;
    let seg_end = segment.end_ms.max(seg_start);
    let last = runs.len() - 1;
    let mut pieces = Vec::with_capacity(runs.len());
    let mut first_text_word = 0;
    let mut previous_end = seg_start;
    for (index, run) in runs.into_iter().enumerate() {
        let text_count: usize = counts[run.clone()].iter().sum();
        let text = text_words[first_text_word..first_text_word + text_count].join(" ");
        first_text_word += text_count;
        let words = &segment.words[run];
        let (Some(first), Some(last_word)) = (words.first(), words.last()) else {
            continue;
        };
        let start = if index == 0 {
            seg_start
        } else {
            first.start_ms
        };
        let end = if index == last {
            seg_end
        } else {
            last_word.end_ms
        };
        // A bad word timing must not move a piece outside its segment or before the last.
        let start = start.clamp(seg_start, seg_end).max(previous_end);
        let end = end.clamp(seg_start, seg_end).max(start);
        previous_end = end;
        pieces.push(Segment {
            start_ms: start,
            end_ms: end,
            text,
            confidence: segment.confidence,
            words: words.to_vec(),
            speaker: speaker_of(segment, first).cloned(),
        });
    }
    pieces
}

/// A word's speaker, or its segment's when the word has none.
fn speaker_of<'a>(segment: &'a Segment, word: &'a Word) -> Option<&'a String> {
    word.speaker.as_ref().or(segment.speaker.as_ref())
}

/// Ranges of `segment.words` spoken by one speaker each.
fn speaker_runs(segment: &Segment) -> Vec<Range<usize>> {
    let mut runs: Vec<Range<usize>> = Vec::new();
    for (index, word) in segment.words.iter().enumerate() {
        match runs.last_mut() {
            Some(run)
                if speaker_of(segment, &segment.words[run.start]) == speaker_of(segment, word) =>
            {
                run.end = index + 1;
            }
            _ => runs.push(index..index + 1),
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(text: &str, start_ms: u64, end_ms: u64, speaker: Option<&str>) -> Word {
        Word {
            text: text.to_owned(),
            start_ms,
            end_ms,
            confidence: None,
            speaker: speaker.map(str::to_owned),
        }
    }

    fn mixed() -> Segment {
        Segment {
            words: vec![
                word("How", 100, 300, Some("SPEAKER_1")),
                word("are", 300, 500, Some("SPEAKER_1")),
                word("you?", 500, 900, None),
                word("Fine,", 1_200, 1_500, Some("SPEAKER_2")),
                word("thanks.", 1_500, 1_900, Some("SPEAKER_2")),
            ],
            speaker: Some("SPEAKER_1".to_owned()),
            ..Segment::new(0, 2_000, "How are you?\nFine, thanks.")
        }
    }

    fn summary(pieces: &[Segment]) -> Vec<(u64, u64, &str, Option<&str>)> {
        pieces
            .iter()
            .map(|p| (p.start_ms, p.end_ms, p.text.as_str(), p.speaker.as_deref()))
            .collect()
    }

    #[test]
    fn a_segment_of_two_speakers_becomes_two_pieces() {
        let pieces = split_at_speaker_changes(&[mixed()]);
        assert_eq!(
            summary(&pieces),
            [
                (0, 900, "How are you?", Some("SPEAKER_1")),
                (1_200, 2_000, "Fine, thanks.", Some("SPEAKER_2")),
            ]
        );
        assert_eq!(pieces[1].words.len(), 2);
    }

    #[test]
    fn one_speaker_leaves_the_segment_as_it_is() {
        let mut segment = mixed();
        for word in &mut segment.words {
            word.speaker = None;
        }
        assert_eq!(split_at_speaker_changes(&[segment.clone()]), [segment]);
    }

    #[test]
    fn words_that_do_not_match_the_text_leave_it_whole() {
        let mut segment = mixed();
        segment.text = "How are you? Fine thanks a lot.".to_owned();
        assert_eq!(split_at_speaker_changes(&[segment.clone()]), [segment]);
    }

    #[test]
    fn bad_word_timings_stay_inside_the_segment_and_in_order() {
        let mut segment = mixed();
        segment.words[3].start_ms = 50;
        segment.words[4].end_ms = 9_999;
        let pieces = split_at_speaker_changes(&[segment]);
        assert_eq!(
            summary(&pieces),
            [
                (0, 900, "How are you?", Some("SPEAKER_1")),
                (900, 2_000, "Fine, thanks.", Some("SPEAKER_2")),
            ]
        );
    }
}
