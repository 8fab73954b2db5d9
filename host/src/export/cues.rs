//! Turning segments into subtitle cues, shared by SRT and WebVTT so both split identically.

use serde::{Deserialize, Serialize};

use super::layout::{self, Line};
use super::speakers::Speakers;
use super::timing::{self, PieceSize};
use crate::transcript::Segment;

/// How subtitle cues are laid out.
///
/// The default has no limits: one cue per segment, showing the segment's text as the
/// plugin broke it into lines (normally one). Deserializable so that an API can take it
/// straight from a query string (`?max_chars_per_line=42&max_lines_per_cue=2`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SubtitleOptions {
    /// Longest line, in characters; longer text is wrapped at word boundaries.
    /// A single word longer than this gets a line of its own.
    pub max_chars_per_line: Option<usize>,
    /// Most lines one cue shows; a segment with more lines becomes several cues.
    /// Zero is treated as one.
    pub max_lines_per_cue: Option<usize>,
    /// WebVTT: a `<00:00:01.250>` timestamp tag before each word after a cue's first,
    /// from the segment's word timings (karaoke-style highlighting in players). Segments
    /// whose timings do not match their text word for word get none. Other formats
    /// ignore it.
    #[serde(default)]
    pub word_timestamps: bool,
}

/// One subtitle cue: what is shown, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cue {
    /// When the cue appears, in milliseconds from the start of the audio.
    pub start_ms: u64,
    /// Never before `start_ms`.
    pub end_ms: u64,
    /// At least one line; no line is empty or contains a line break.
    pub lines: Vec<String>,
    /// The name of who speaks, when the result is diarized ([`Speakers::name`]).
    pub speaker: Option<String>,
    /// With [`SubtitleOptions::word_timestamps`]: when each word of `lines` starts, in
    /// order; empty when not asked for or not known.
    pub word_starts: Vec<u64>,
}

impl Cue {
    /// The end to write out: at least 1 ms after the start, because players and parsers
    /// drop zero-length cues (WebVTT requires end > start) and a segment's words would
    /// silently vanish with them.
    pub fn shown_end_ms(&self) -> u64 {
        self.end_ms.max(self.start_ms.saturating_add(1))
    }
}

/// Cues after splitting, shared by SRT and VTT so both split identically.
///
/// Segments without visible text give no cue. Cues come out ordered by start time (ties
/// keep segment order) because WebVTT requires it and SRT players expect it, even if a
/// plugin returned its segments out of order.
pub fn cues(segments: &[Segment], options: &SubtitleOptions) -> Vec<Cue> {
    speaker_cues(segments, &Speakers::NONE, options)
}

/// [`cues`] with speakers: segments are first split where the speaker changes
/// ([`Speakers::turns`]), so one cue never holds two speakers, and each cue carries its
/// speaker's name.
pub fn speaker_cues(
    segments: &[Segment],
    speakers: &Speakers<'_>,
    options: &SubtitleOptions,
) -> Vec<Cue> {
    let mut cues: Vec<Cue> = speakers
        .turns(segments)
        .iter()
        .flat_map(|segment| segment_cues(segment, speakers.name(segment), options))
        .collect();
    cues.sort_by_key(|cue| cue.start_ms);
    cues
}

/// The cues of one segment, in order, all inside the segment.
fn segment_cues(segment: &Segment, speaker: Option<String>, options: &SubtitleOptions) -> Vec<Cue> {
    let lines = layout::lines(&segment.text, options.max_chars_per_line);
    if lines.is_empty() {
        return Vec::new();
    }
    let lines_per_cue = options
        .max_lines_per_cue
        .map_or(lines.len(), |max_lines| max_lines.max(1));
    let pieces: Vec<&[Line<'_>]> = lines.chunks(lines_per_cue).collect();
    let sizes: Vec<PieceSize> = pieces.iter().map(|piece| piece_size(piece)).collect();
    let total_words = sizes.iter().map(|size| size.words).sum();
    let word_times = options
        .word_timestamps
        .then(|| timing::word_times(segment, total_words))
        .flatten()
        .unwrap_or_default();
    let mut words_before = 0;
    timing::piece_spans(segment, &sizes)
        .into_iter()
        .zip(pieces.into_iter().zip(&sizes))
        .map(|((start_ms, end_ms), (piece, size))| {
            let word_starts = word_times
                .get(words_before..words_before + size.words)
                .map(|times| times.iter().map(|time| time.0).collect())
                .unwrap_or_default();
            words_before += size.words;
            Cue {
                start_ms,
                end_ms,
                lines: piece.iter().map(|line| line.join(" ")).collect(),
                speaker: speaker.clone(),
                word_starts,
            }
        })
        .collect()
}

fn piece_size(piece: &[Line<'_>]) -> PieceSize {
    PieceSize {
        words: piece.iter().map(Vec::len).sum(),
        chars: piece.iter().map(|line| layout::line_chars(line)).sum(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transcript::Word;

    fn cue(start_ms: u64, end_ms: u64, lines: &[&str]) -> Cue {
        Cue {
            start_ms,
            end_ms,
            lines: lines.iter().map(|line| (*line).to_owned()).collect(),
            speaker: None,
            word_starts: Vec::new(),
        }
    }

    fn limits(max_chars: usize, max_lines: usize) -> SubtitleOptions {
        SubtitleOptions {
            max_chars_per_line: Some(max_chars),
            max_lines_per_cue: Some(max_lines),
            ..SubtitleOptions::default()
        }
    }

    #[test]
    fn default_options_give_one_single_line_cue_per_segment() {
        let segments = [
            Segment::new(0, 1_000, " Hello there. "),
            Segment::new(1_000, 2_500, "General Kenobi!"),
        ];
        assert_eq!(
            cues(&segments, &SubtitleOptions::default()),
            vec![
                cue(0, 1_000, &["Hello there."]),
                cue(1_000, 2_500, &["General Kenobi!"]),
            ]
        );
    }

    #[test]
    fn segments_without_visible_text_give_no_cue() {
        let segments = [
            Segment::new(0, 1_000, ""),
            Segment::new(1_000, 2_000, " \n\t "),
            Segment::new(2_000, 3_000, "kept"),
        ];
        assert_eq!(
            cues(&segments, &limits(10, 2)),
            vec![cue(2_000, 3_000, &["kept"])]
        );
    }

    #[test]
    fn blank_lines_inside_a_segment_are_collapsed() {
        let segments = [Segment::new(0, 1_000, "first\n\n\nsecond\r\n")];
        assert_eq!(
            cues(&segments, &SubtitleOptions::default()),
            vec![cue(0, 1_000, &["first", "second"])]
        );
    }

    #[test]
    fn long_segment_without_word_timings_splits_by_characters() {
        // 6 lines of at most 12 characters, 2 lines per cue: cues of 18, 22 and 12
        // characters share the 5 s as 1730 ms, 2116 ms and 1154 ms.
        let segments = [Segment::new(
            10_000,
            15_000,
            "the quick brown fox jumps over the lazy dog and runs away",
        )];
        assert_eq!(
            cues(&segments, &limits(12, 2)),
            vec![
                cue(10_000, 11_730, &["the quick", "brown fox"]),
                cue(11_730, 13_846, &["jumps over", "the lazy dog"]),
                cue(13_846, 15_000, &["and runs", "away"]),
            ]
        );
    }

    #[test]
    fn long_segment_with_word_timings_splits_at_the_words() {
        let texts = ["one", "two", "three", "four", "five", "six"];
        let mut seg = Segment::new(0, 7_000, texts.join(" "));
        seg.words = texts
            .iter()
            .zip(0u64..)
            .map(|(text, index)| Word {
                text: (*text).to_owned(),
                start_ms: 500 + index * 1_000,
                end_ms: 1_200 + index * 1_000,
                confidence: None,
                speaker: None,
            })
            .collect();
        assert_eq!(
            cues(&[seg], &limits(9, 1)),
            vec![
                cue(0, 2_200, &["one two"]),
                cue(2_500, 3_200, &["three"]),
                cue(3_500, 5_200, &["four five"]),
                cue(5_500, 7_000, &["six"]),
            ]
        );
    }

    #[test]
    fn max_lines_alone_splits_the_segments_own_lines() {
        let segments = [Segment::new(0, 900, "a\nb\nc")];
        let options = SubtitleOptions {
            max_chars_per_line: None,
            max_lines_per_cue: Some(2),
            ..SubtitleOptions::default()
        };
        assert_eq!(
            cues(&segments, &options),
            vec![cue(0, 600, &["a", "b"]), cue(600, 900, &["c"])]
        );
    }

    #[test]
    fn max_chars_alone_wraps_into_one_cue() {
        let segments = [Segment::new(0, 900, "aaa bbb ccc")];
        let options = SubtitleOptions {
            max_chars_per_line: Some(7),
            max_lines_per_cue: None,
            ..SubtitleOptions::default()
        };
        assert_eq!(
            cues(&segments, &options),
            vec![cue(0, 900, &["aaa bbb", "ccc"])]
        );
    }

    #[test]
    fn zero_max_lines_means_one_line_per_cue() {
        let segments = [Segment::new(0, 200, "a b")];
        assert_eq!(
            cues(&segments, &limits(1, 0)),
            vec![cue(0, 100, &["a"]), cue(100, 200, &["b"])]
        );
    }

    #[test]
    fn cues_are_ordered_by_start_even_if_segments_are_not() {
        let segments = [
            Segment::new(5_000, 6_000, "later"),
            Segment::new(0, 1_000, "earlier"),
        ];
        assert_eq!(
            cues(&segments, &SubtitleOptions::default()),
            vec![cue(0, 1_000, &["earlier"]), cue(5_000, 6_000, &["later"])]
        );
    }

    #[test]
    fn split_pieces_stay_in_order_inside_the_segment() {
        let segments = [Segment::new(1_000, 1_002, "a b c d e")];
        let result = cues(&segments, &limits(1, 1));
        assert_eq!(result.len(), 5);
        let mut previous_end = 1_000;
        for cue in &result {
            assert!(cue.start_ms >= previous_end && cue.end_ms >= cue.start_ms);
            assert!(cue.end_ms <= 1_002);
            previous_end = cue.end_ms;
        }
    }

    #[test]
    fn shown_end_is_at_least_one_millisecond_after_the_start() {
        assert_eq!(cue(5, 5, &["x"]).shown_end_ms(), 6);
        assert_eq!(cue(5, 9, &["x"]).shown_end_ms(), 9);
        assert_eq!(cue(u64::MAX, u64::MAX, &["x"]).shown_end_ms(), u64::MAX);
    }

    #[test]
    fn options_deserialize_with_missing_fields_as_no_limit() {
        let options: SubtitleOptions =
            serde_json::from_str(r#"{"max_chars_per_line": 42}"#).unwrap();
        assert_eq!(options.max_chars_per_line, Some(42));
        assert_eq!(options.max_lines_per_cue, None);
    }
}
