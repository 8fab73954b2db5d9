//! Plain text: the transcript for reading, without timings.
//!
//! In a diarized result a line starts with `Speaker 1: ` (the speaker's name) where the
//! speaker changes, the first line included, as a script would; the lines that follow
//! by the same speaker carry no prefix.

use super::layout;
use super::speakers::Speakers;
use crate::transcript::{Segment, Transcript};

/// One line per segment (its words, trimmed and with line breaks folded into spaces),
/// `\n` after every line.
///
/// When no segment has text, the transcript's own `text` is used instead, with its line
/// breaks kept, so an engine that reports no segments still exports something.
pub fn txt(transcript: &Transcript) -> String {
    write(&transcript.segments, &Speakers::NONE, &transcript.text)
}

/// [`txt`] of `segments` (or, when none has text, of `text`), split and prefixed by
/// speaker as `speakers` says.
pub(super) fn write(segments: &[Segment], speakers: &Speakers<'_>, text: &str) -> String {
    let mut out = String::new();
    let mut previous_speaker = None;
    for segment in speakers.turns(segments) {
        let line = layout::words(&segment.text).collect::<Vec<_>>().join(" ");
        if line.is_empty() {
            continue;
        }
        let speaker = speakers.name(&segment);
        if let Some(name) = &speaker
            && speaker != previous_speaker
        {
            out.push_str(name);
            out.push_str(": ");
        }
        previous_speaker = speaker;
        out.push_str(&line);
        out.push('\n');
    }
    if out.is_empty() {
        let text = text.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
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
