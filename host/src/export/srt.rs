//! SubRip (`.srt`): numbered cues with `HH:MM:SS,mmm` timings.
//!
//! SRT has no escaping, so text goes out as it is; the only thing that could break a
//! file is a blank line inside a cue, and [`cues`] never produces one.
//!
//! SRT has no notion of speakers either: a diarized result's cue starts with
//! `Speaker 1: ` (the speaker's name) when the speaker changes, the first cue included,
//! but not on every cue of the same speaker. The prefix is not counted against
//! `max_chars_per_line`.

use super::cues::{Cue, SubtitleOptions, cues};
use super::timestamp::srt_timestamp;
use crate::transcript::Segment;

/// The segments as an SRT file: cues numbered from 1 without gaps, a blank line between
/// cues, `\n` line endings, no byte-order mark. No cues gives an empty file. As in WebVTT,
/// a zero-length cue is stretched to 1 ms so that players show it.
pub fn srt(segments: &[Segment], options: &SubtitleOptions) -> String {
    write(&cues(segments, options))
}

/// The cues as an SRT file, each speaker named where the speaker changes.
pub(super) fn write(cues: &[Cue]) -> String {
    let mut out = String::new();
    let mut previous_speaker = None;
    for (index, cue) in cues.iter().enumerate() {
        if index > 0 {
            out.push('\n');
        }
        out.push_str(&format!(
            "{}\n{} --> {}\n",
            index + 1,
            srt_timestamp(cue.start_ms),
            srt_timestamp(cue.shown_end_ms())
        ));
        let speaker = cue.speaker.as_deref();
        if let Some(name) = speaker
            && speaker != previous_speaker
        {
            out.push_str(name);
            out.push_str(": ");
        }
        previous_speaker = speaker;
        for line in &cue.lines {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cues_are_numbered_and_separated_by_one_blank_line() {
        let segments = [
            Segment::new(0, 1_001, "Hello."),
            Segment::new(1_500, 3_000, "World & <friends>"),
        ];
        assert_eq!(
            srt(&segments, &SubtitleOptions::default()),
            "1\n00:00:00,000 --> 00:00:01,001\nHello.\n\n\
             2\n00:00:01,500 --> 00:00:03,000\nWorld & <friends>\n"
        );
    }

    #[test]
    fn empty_segments_are_skipped_and_numbering_stays_contiguous() {
        let segments = [
            Segment::new(0, 1_000, "one"),
            Segment::new(1_000, 2_000, "   "),
            Segment::new(2_000, 3_000, ""),
            Segment::new(3_000, 4_000, "two"),
        ];
        assert_eq!(
            srt(&segments, &SubtitleOptions::default()),
            "1\n00:00:00,000 --> 00:00:01,000\none\n\n\
             2\n00:00:03,000 --> 00:00:04,000\ntwo\n"
        );
    }

    #[test]
    fn no_blank_line_inside_a_cue() {
        let segments = [Segment::new(0, 1_000, "first\n\n \nsecond")];
        assert_eq!(
            srt(&segments, &SubtitleOptions::default()),
            "1\n00:00:00,000 --> 00:00:01,000\nfirst\nsecond\n"
        );
    }

    #[test]
    fn split_segment_becomes_consecutive_numbered_cues() {
        let segments = [Segment::new(0, 2_000, "aaaa bbbb cccc dddd")];
        let options = SubtitleOptions {
            max_chars_per_line: Some(9),
            max_lines_per_cue: Some(1),
            ..SubtitleOptions::default()
        };
        assert_eq!(
            srt(&segments, &options),
            "1\n00:00:00,000 --> 00:00:01,000\naaaa bbbb\n\n\
             2\n00:00:01,000 --> 00:00:02,000\ncccc dddd\n"
        );
    }

    #[test]
    fn segments_past_100_hours_keep_counting_hours() {
        let segments = [Segment::new(359_999_999, 360_000_000, "late")];
        assert_eq!(
            srt(&segments, &SubtitleOptions::default()),
            "1\n99:59:59,999 --> 100:00:00,000\nlate\n"
        );
    }

    #[test]
    fn zero_length_segment_gets_a_positive_duration() {
        let segments = [Segment::new(5_000, 5_000, "blink")];
        assert_eq!(
            srt(&segments, &SubtitleOptions::default()),
            "1\n00:00:05,000 --> 00:00:05,001\nblink\n"
        );
    }

    #[test]
    fn no_segments_give_an_empty_file() {
        assert_eq!(srt(&[], &SubtitleOptions::default()), "");
    }

    #[test]
    fn output_has_no_byte_order_mark_or_carriage_return() {
        let segments = [Segment::new(0, 1_000, "\u{feff}text\r\nmore")];
        let out = srt(&segments, &SubtitleOptions::default());
        assert!(!out.contains('\u{feff}') && !out.contains('\r'));
        assert_eq!(out, "1\n00:00:00,000 --> 00:00:01,000\ntext\nmore\n");
    }
}
