//! WebVTT (`.vtt`): the `WEBVTT` header, then cues with `HH:MM:SS.mmm` timings.
//!
//! Cue text is escaped (`&`, `<`, `>`) so that a transcript can neither inject markup
//! into a browser's `<track>` nor end a cue early: with `>` escaped the text can never
//! hold `-->`, which a parser would take for a timing line.
//!
//! A diarized result's cues are voice spans: every cue starts with `<v Speaker 1>`
//! (the speaker's name), which players show and style per voice. The span covers the
//! whole cue, so it needs no `</v>`. The name is escaped too: WebVTT's annotation text
//! may not hold `&`, `>` or a line break raw (a `>` would end the tag and show the rest
//! of the name as text); `<` is escaped as well, so no raw markup character is ever
//! written. Names never hold line breaks ([`super::speakers::Speakers::name`]).

use super::cues::{Cue, SubtitleOptions, cues};
use super::timestamp::vtt_timestamp;
use crate::transcript::Segment;

/// The segments as a WebVTT file, UTF-8 without byte-order mark, `\n` line endings.
///
/// Every cue ends after it starts (a zero-length cue is stretched to 1 ms, since
/// parsers may drop it otherwise) and cue starts never decrease, as the format requires.
pub fn vtt(segments: &[Segment], options: &SubtitleOptions) -> String {
    write(&cues(segments, options))
}

/// The cues as a WebVTT file, each cue with a speaker in its voice span.
pub(super) fn write(cues: &[Cue]) -> String {
    let mut out = String::from("WEBVTT\n");
    for cue in cues {
        out.push_str(&format!(
            "\n{} --> {}\n",
            vtt_timestamp(cue.start_ms),
            vtt_timestamp(cue.shown_end_ms())
        ));
        if let Some(name) = &cue.speaker {
            out.push_str("<v ");
            out.push_str(&escape(name));
            out.push('>');
        }
        let mut timed = WordTags::new(cue);
        for line in &cue.lines {
            for (index, word) in line.split(' ').enumerate() {
                if index > 0 {
                    out.push(' ');
                }
                if let Some(at) = timed.next_word() {
                    out.push('<');
                    out.push_str(&vtt_timestamp(at));
                    out.push('>');
                }
                out.push_str(&escape(word));
            }
            out.push('\n');
        }
    }
    out
}

/// The timestamp tags of one cue's words: one before every word after the first whose
/// time lies strictly inside the cue and after the previous tag, as WebVTT requires
/// (a tag outside those bounds is left out, never moved).
struct WordTags<'a> {
    starts: std::slice::Iter<'a, u64>,
    after: u64,
    before: u64,
    first: bool,
}

impl<'a> WordTags<'a> {
    fn new(cue: &'a Cue) -> Self {
        let words: usize = cue.lines.iter().map(|line| line.split(' ').count()).sum();
        let starts = if cue.word_starts.len() == words {
            cue.word_starts.as_slice()
        } else {
            &[]
        };
        Self {
            starts: starts.iter(),
            after: cue.start_ms,
            before: cue.shown_end_ms(),
            first: true,
        }
    }

    /// The tag before the next word, if it gets one.
    fn next_word(&mut self) -> Option<u64> {
        let at = *self.starts.next()?;
        if std::mem::take(&mut self.first) || at <= self.after || at >= self.before {
            return None;
        }
        self.after = at;
        Some(at)
    }
}

/// Escapes the characters WebVTT cue text gives a meaning to; the same escapes make a
/// voice span's annotation safe.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            _ => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_timestamps_tag_each_word_after_the_first_inside_the_cue() {
        let mut segment = Segment::new(1_000, 3_000, "Go forward ten <meters>");
        segment.words = [
            ("Go", 1_000, 1_300),
            ("forward", 1_640, 2_000),
            ("ten", 2_000, 2_400),
            ("<meters>", 3_000, 3_000),
        ]
        .iter()
        .map(|&(text, start_ms, end_ms)| crate::transcript::Word {
            text: text.into(),
            start_ms,
            end_ms,
            ..Default::default()
        })
        .collect();
        let options = SubtitleOptions {
            word_timestamps: true,
            ..SubtitleOptions::default()
        };
        // "<meters>" starts at the cue's end, so it gets no tag (WebVTT wants tags inside
        // the cue); it is escaped all the same.
        assert_eq!(
            vtt(std::slice::from_ref(&segment), &options),
            "WEBVTT\n\n00:00:01.000 --> 00:00:03.000\n\
             Go <00:00:01.640>forward <00:00:02.000>ten &lt;meters&gt;\n"
        );
        // Not asked for, or timings that do not match the text: plain cues.
        let plain = "WEBVTT\n\n00:00:01.000 --> 00:00:03.000\nGo forward ten &lt;meters&gt;\n";
        assert_eq!(
            vtt(std::slice::from_ref(&segment), &SubtitleOptions::default()),
            plain
        );
        segment.words.pop();
        assert_eq!(vtt(&[segment], &options), plain);
    }

    #[test]
    fn header_then_blank_line_then_cues() {
        let segments = [
            Segment::new(0, 1_001, "Hello."),
            Segment::new(1_500, 3_000, "World."),
        ];
        assert_eq!(
            vtt(&segments, &SubtitleOptions::default()),
            "WEBVTT\n\n\
             00:00:00.000 --> 00:00:01.001\nHello.\n\n\
             00:00:01.500 --> 00:00:03.000\nWorld.\n"
        );
    }

    #[test]
    fn markup_and_ampersands_are_escaped() {
        let segments = [Segment::new(
            0,
            1_000,
            "<script>alert(1)</script> & <b>bold</b>",
        )];
        assert_eq!(
            vtt(&segments, &SubtitleOptions::default()),
            "WEBVTT\n\n00:00:00.000 --> 00:00:01.000\n\
             &lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;\n"
        );
    }

    #[test]
    fn text_never_contains_a_timing_arrow() {
        let segments = [
            Segment::new(0, 1_000, "a --> b"),
            Segment::new(1_000, 2_000, "-->"),
        ];
        let out = vtt(&segments, &SubtitleOptions::default());
        assert_eq!(
            out,
            "WEBVTT\n\n00:00:00.000 --> 00:00:01.000\na --&gt; b\n\n\
             00:00:01.000 --> 00:00:02.000\n--&gt;\n"
        );
        // Only the two timing lines hold an arrow.
        assert_eq!(out.matches("-->").count(), 2);
    }

    #[test]
    fn already_escaped_text_is_escaped_again() {
        let segments = [Segment::new(0, 1_000, "&amp;")];
        assert!(vtt(&segments, &SubtitleOptions::default()).ends_with("\n&amp;amp;\n"));
    }

    #[test]
    fn zero_length_segment_gets_a_positive_duration() {
        let segments = [Segment::new(5_000, 5_000, "blink")];
        assert_eq!(
            vtt(&segments, &SubtitleOptions::default()),
            "WEBVTT\n\n00:00:05.000 --> 00:00:05.001\nblink\n"
        );
    }

    #[test]
    fn empty_segments_are_skipped_and_no_blank_line_is_inside_a_cue() {
        let segments = [
            Segment::new(0, 1_000, " "),
            Segment::new(1_000, 2_000, "one\n\n\ntwo"),
            Segment::new(2_000, 3_000, ""),
        ];
        assert_eq!(
            vtt(&segments, &SubtitleOptions::default()),
            "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\none\ntwo\n"
        );
    }

    #[test]
    fn cue_starts_never_decrease() {
        let segments = [
            Segment::new(3_000, 4_000, "c"),
            Segment::new(1_000, 2_000, "a"),
            Segment::new(2_000, 3_000, "b"),
        ];
        assert_eq!(
            vtt(&segments, &SubtitleOptions::default()),
            "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\na\n\n\
             00:00:02.000 --> 00:00:03.000\nb\n\n\
             00:00:03.000 --> 00:00:04.000\nc\n"
        );
    }

    #[test]
    fn segments_over_an_hour_use_hours() {
        let segments = [Segment::new(3_723_004, 360_000_000, "long")];
        assert_eq!(
            vtt(&segments, &SubtitleOptions::default()),
            "WEBVTT\n\n01:02:03.004 --> 100:00:00.000\nlong\n"
        );
    }

    #[test]
    fn no_segments_give_just_the_header() {
        assert_eq!(vtt(&[], &SubtitleOptions::default()), "WEBVTT\n");
    }

    #[test]
    fn output_starts_with_the_header_not_a_byte_order_mark() {
        let segments = [Segment::new(0, 1_000, "\u{feff}text")];
        let out = vtt(&segments, &SubtitleOptions::default());
        assert!(out.starts_with("WEBVTT\n"));
        assert!(!out.contains('\u{feff}'));
    }
}
