//! Plain text: the transcript for reading, without timings.

use super::layout;
use crate::transcript::Transcript;

/// One line per segment (its words, trimmed and with line breaks folded into spaces),
/// `\n` after every line.
///
/// When no segment has text, the transcript's own `text` is used instead, with its line
/// breaks kept, so an engine that reports no segments still exports something.
pub fn txt(transcript: &Transcript) -> String {
    let mut out = String::new();
    for segment in &transcript.segments {
        let line = layout::words(&segment.text).collect::<Vec<_>>().join(" ");
        if !line.is_empty() {
            out.push_str(&line);
            out.push('\n');
        }
    }
    if out.is_empty() {
        let text = transcript
            .text
            .trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
        for line in text.lines() {
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transcript::Segment;

    fn transcript(text: &str, segment_texts: &[&str]) -> Transcript {
        Transcript {
            text: text.to_owned(),
            language: None,
            segments: segment_texts
                .iter()
                .map(|text| Segment::new(0, 0, *text))
                .collect(),
        }
    }

    #[test]
    fn one_trimmed_line_per_segment() {
        let t = transcript("ignored", &[" Hello there. ", "General\nKenobi! "]);
        assert_eq!(txt(&t), "Hello there.\nGeneral Kenobi!\n");
    }

    #[test]
    fn empty_segments_are_skipped() {
        let t = transcript("ignored", &["one", "  ", "", "two"]);
        assert_eq!(txt(&t), "one\ntwo\n");
    }

    #[test]
    fn without_segments_the_transcript_text_is_used() {
        let t = transcript("\u{feff} First paragraph.\r\n\r\nSecond. \n", &[]);
        assert_eq!(txt(&t), "First paragraph.\n\nSecond.\n");
    }

    #[test]
    fn nothing_at_all_gives_an_empty_file() {
        assert_eq!(txt(&transcript(" ", &[" "])), "");
    }
}
