//! When each piece of a split segment is shown.
//!
//! Split points come from the segment's word timings when those can be matched to the
//! text, otherwise from the characters each piece holds. Either way the pieces together
//! start with the segment and end with it, stay inside it, do not overlap and never end
//! before they start, so a bad word timing cannot produce a cue a player rejects.

use super::layout;
use crate::transcript::Segment;

/// How much of a segment's text one piece holds. Both counts are at least 1.
#[derive(Debug, Clone, Copy)]
pub struct PieceSize {
    pub words: usize,
    pub chars: usize,
}

/// `(start_ms, end_ms)` of each piece of `segment`, in order.
pub fn piece_spans(segment: &Segment, pieces: &[PieceSize]) -> Vec<(u64, u64)> {
    let start = segment.start_ms;
    // The transcript type promises end >= start; do not rely on it for output.
    let end = segment.end_ms.max(start);
    let total_words = pieces.iter().map(|piece| piece.words).sum();
    let spans = match word_times(segment, total_words) {
        Some(times) => from_word_times(start, end, &times, pieces),
        None => by_characters(start, end, pieces),
    };
    confine(start, end, spans)
}

/// `(start_ms, end_ms)` for every word of the segment's text, if the word timings match
/// the text word for word.
///
/// Matching is by count, in order: a timed word whose text holds several words (`"New
/// York"`) stands for each of them. When the counts differ the timings describe some
/// other tokenisation, and guessing an alignment would be worse than splitting by length.
pub(super) fn word_times(segment: &Segment, text_words: usize) -> Option<Vec<(u64, u64)>> {
    let times: Vec<(u64, u64)> = segment
        .words
        .iter()
        .flat_map(|word| layout::words(&word.text).map(|_| (word.start_ms, word.end_ms)))
        .collect();
    (!times.is_empty() && times.len() == text_words).then_some(times)
}

/// Each piece runs from its first word's start to its last word's end; the first piece
/// starts with the segment and the last ends with it, as an unsplit cue would.
fn from_word_times(
    start: u64,
    end: u64,
    times: &[(u64, u64)],
    pieces: &[PieceSize],
) -> Vec<(u64, u64)> {
    let last_piece = pieces.len().saturating_sub(1);
    let mut first_word = 0;
    let mut spans = Vec::with_capacity(pieces.len());
    for (index, piece) in pieces.iter().enumerate() {
        let last_word = first_word + piece.words.saturating_sub(1);
        let piece_start = if index == 0 {
            start
        } else {
            times.get(first_word).map_or(start, |time| time.0)
        };
        let piece_end = if index == last_piece {
            end
        } else {
            times.get(last_word).map_or(end, |time| time.1)
        };
        spans.push((piece_start, piece_end));
        first_word += piece.words;
    }
    spans
}

/// The segment's duration shared out in proportion to each piece's characters, back to
/// back with no gaps.
fn by_characters(start: u64, end: u64, pieces: &[PieceSize]) -> Vec<(u64, u64)> {
    let total_chars: usize = pieces.iter().map(|piece| piece.chars).sum();
    let duration = u128::from(end - start);
    let total = u128::try_from(total_chars.max(1)).unwrap_or(u128::MAX);
    // Rounds down, so the result never passes `end`.
    let at = |chars_before: usize| {
        let chars_before = u128::try_from(chars_before).unwrap_or(u128::MAX);
        let offset = duration * chars_before / total;
        start + u64::try_from(offset).unwrap_or(end - start)
    };
    let mut chars_before = 0;
    let mut spans = Vec::with_capacity(pieces.len());
    for piece in pieces {
        let piece_start = at(chars_before);
        chars_before += piece.chars;
        spans.push((piece_start, at(chars_before)));
    }
    spans
}

/// Clamps spans into the segment, in order and without overlap.
fn confine(start: u64, end: u64, spans: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    let mut previous_end = start;
    spans
        .into_iter()
        .map(|(piece_start, piece_end)| {
            let piece_start = piece_start.clamp(start, end).max(previous_end);
            let piece_end = piece_end.clamp(start, end).max(piece_start);
            previous_end = piece_end;
            (piece_start, piece_end)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transcript::Word;

    fn word(text: &str, start_ms: u64, end_ms: u64) -> Word {
        Word {
            text: text.to_owned(),
            start_ms,
            end_ms,
            confidence: None,
            speaker: None,
        }
    }

    fn size(words: usize, chars: usize) -> PieceSize {
        PieceSize { words, chars }
    }

    #[test]
    fn one_piece_spans_the_whole_segment() {
        assert_eq!(
            piece_spans(&Segment::new(100, 900, "a b"), &[size(2, 3)]),
            vec![(100, 900)]
        );
    }

    #[test]
    fn without_word_timings_duration_follows_characters() {
        assert_eq!(
            piece_spans(&Segment::new(0, 3_000, ""), &[size(1, 10), size(1, 20)]),
            vec![(0, 1_000), (1_000, 3_000)]
        );
    }

    #[test]
    fn character_split_rounds_down_to_whole_milliseconds() {
        assert_eq!(
            piece_spans(
                &Segment::new(0, 10, ""),
                &[size(1, 1), size(1, 1), size(1, 1)]
            ),
            vec![(0, 3), (3, 6), (6, 10)]
        );
    }

    #[test]
    fn word_timings_set_the_split_points() {
        let mut seg = Segment::new(0, 5_000, "one two three four");
        seg.words = vec![
            word("one", 200, 600),
            word(" two", 700, 1_100),
            word("three", 2_000, 2_500),
            word("four", 2_600, 4_000),
        ];
        assert_eq!(
            piece_spans(&seg, &[size(2, 7), size(2, 10)]),
            vec![(0, 1_100), (2_000, 5_000)]
        );
    }

    #[test]
    fn timed_word_holding_several_words_covers_each() {
        let mut seg = Segment::new(0, 3_000, "in New York today");
        seg.words = vec![
            word("in", 0, 200),
            word("New York", 300, 1_000),
            word("today", 1_500, 3_000),
        ];
        assert_eq!(
            piece_spans(&seg, &[size(2, 6), size(2, 10)]),
            // "York" starts inside the first piece, so the second piece waits for it to end.
            vec![(0, 1_000), (1_000, 3_000)]
        );
    }

    #[test]
    fn mismatched_word_count_falls_back_to_characters() {
        let mut seg = Segment::new(0, 2_000, "one two three four");
        seg.words = vec![word("one", 0, 100), word("two", 100, 200)];
        assert_eq!(
            piece_spans(&seg, &[size(2, 7), size(2, 10)]),
            vec![(0, 823), (823, 2_000)]
        );
    }

    #[test]
    fn word_timings_outside_the_segment_are_clamped() {
        let mut seg = Segment::new(1_000, 2_000, "a b c d");
        seg.words = vec![
            word("a", 0, 5_000),
            word("b", 0, 5_000),
            word("c", 500, 800),
            word("d", 9_000, 9_500),
        ];
        assert_eq!(
            piece_spans(&seg, &[size(2, 3), size(2, 3)]),
            vec![(1_000, 2_000), (2_000, 2_000)]
        );
    }

    #[test]
    fn segment_ending_before_it_starts_is_treated_as_zero_length() {
        assert_eq!(
            piece_spans(&Segment::new(500, 100, ""), &[size(1, 1), size(1, 1)]),
            vec![(500, 500), (500, 500)]
        );
    }
}
