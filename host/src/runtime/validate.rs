//! Checks on what a plugin returns: a plugin is untrusted, so its output is validated
//! before the host accepts it.

use crate::transcript::{Segment, Transcript, Word};

/// How far past the end of the audio a timestamp may point before it is an error.
/// Engines round to their own frame grid, so a little slack is normal; within it,
/// times are clamped to the end.
pub const END_SLACK_MS: u64 = 2_000;

/// Longest text of a single segment, in bytes.
pub const MAX_SEGMENT_TEXT: usize = 64 * 1024;

/// Why a plugin's output was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidOutput {
    #[error("segment {index} ends ({end_ms} ms) before it starts ({start_ms} ms)")]
    EndBeforeStart {
        index: usize,
        start_ms: u64,
        end_ms: u64,
    },
    #[error("segment {index} starts at {start_ms} ms, before the previous one ({previous_ms} ms)")]
    OutOfOrder {
        index: usize,
        start_ms: u64,
        previous_ms: u64,
    },
    #[error("segment {index} ends at {end_ms} ms, after the end of the audio ({audio_ms} ms)")]
    PastEnd {
        index: usize,
        end_ms: u64,
        audio_ms: u64,
    },
    #[error("segment {index} has {bytes} bytes of text, more than {limit}")]
    SegmentTooLong {
        index: usize,
        bytes: usize,
        limit: usize,
    },
    #[error("the transcript has {bytes} bytes of text, more than the limit of {limit}")]
    TooMuchText { bytes: u64, limit: u64 },
    #[error("the plugin tried to hand the host more data in one call than wasmtime allows")]
    TooMuchData,
    #[error("a word in segment {index} has bad times ({start_ms}..{end_ms} ms)")]
    BadWord {
        index: usize,
        start_ms: u64,
        end_ms: u64,
    },
    /// A diarizer's turns break the contract (see [`crate::diarize::check_turns`]).
    #[error("the speaker turns are not valid: {0}")]
    BadTurns(String),
}

/// Checks a live segment on its own (order is checked on the final transcript).
pub fn live_segment(segment: Segment, audio_ms: u64) -> Result<Segment, InvalidOutput> {
    check_segment(0, tidy_segment(segment), audio_ms)
}

/// Checks and tidies the final transcript (text trimmed, confidences clamped).
pub fn transcript(
    transcript: Transcript,
    audio_ms: u64,
    max_text_bytes: u64,
) -> Result<Transcript, InvalidOutput> {
    let text_bytes = transcript.text.len() as u64
        + transcript
            .segments
            .iter()
            .map(|s| s.text.len() as u64)
            .sum::<u64>();
    if text_bytes > max_text_bytes {
        return Err(InvalidOutput::TooMuchText {
            bytes: text_bytes,
            limit: max_text_bytes,
        });
    }
    let mut segments = Vec::with_capacity(transcript.segments.len());
    let mut previous_start = 0;
    for (index, segment) in transcript.segments.into_iter().enumerate() {
        let segment = check_segment(index, tidy_segment(segment), audio_ms)?;
        if segment.start_ms < previous_start {
            return Err(InvalidOutput::OutOfOrder {
                index,
                start_ms: segment.start_ms,
                previous_ms: previous_start,
            });
        }
        previous_start = segment.start_ms;
        segments.push(segment);
    }
    Ok(Transcript {
        text: transcript.text.trim().to_owned(),
        language: transcript
            .language
            .map(|l| truncate_chars(l.trim(), 16).to_owned())
            .filter(|l| !l.is_empty()),
        segments,
    })
}

fn check_segment(
    index: usize,
    mut segment: Segment,
    audio_ms: u64,
) -> Result<Segment, InvalidOutput> {
    if segment.end_ms < segment.start_ms {
        return Err(InvalidOutput::EndBeforeStart {
            index,
            start_ms: segment.start_ms,
            end_ms: segment.end_ms,
        });
    }
    if segment.end_ms > audio_ms + END_SLACK_MS {
        return Err(InvalidOutput::PastEnd {
            index,
            end_ms: segment.end_ms,
            audio_ms,
        });
    }
    if segment.text.len() > MAX_SEGMENT_TEXT {
        return Err(InvalidOutput::SegmentTooLong {
            index,
            bytes: segment.text.len(),
            limit: MAX_SEGMENT_TEXT,
        });
    }
    segment.start_ms = segment.start_ms.min(audio_ms);
    segment.end_ms = segment.end_ms.min(audio_ms);
    for word in &mut segment.words {
        if word.end_ms < word.start_ms || word.end_ms > audio_ms + END_SLACK_MS {
            return Err(InvalidOutput::BadWord {
                index,
                start_ms: word.start_ms,
                end_ms: word.end_ms,
            });
        }
        word.start_ms = word.start_ms.min(audio_ms);
        word.end_ms = word.end_ms.min(audio_ms);
    }
    segment.confidence = segment
        .confidence
        .filter(|c| c.is_finite())
        .map(|c| c.clamp(0.0, 1.0));
    Ok(segment)
}

fn tidy_segment(segment: Segment) -> Segment {
    Segment {
        text: segment.text.trim().to_owned(),
        words: segment
            .words
            .into_iter()
            .map(|w| Word {
                text: w.text.trim().to_owned(),
                confidence: w
                    .confidence
                    .filter(|c| c.is_finite())
                    .map(|c| c.clamp(0.0, 1.0)),
                ..w
            })
            .collect(),
        ..segment
    }
}

/// The first `max` characters of `text`, cut at a character boundary.
pub fn truncate_chars(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((cut, _)) => &text[..cut],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(start_ms: u64, end_ms: u64, text: &str) -> Segment {
        Segment::new(start_ms, end_ms, text)
    }

    fn transcript_of(segments: Vec<Segment>) -> Transcript {
        Transcript {
            text: "t".into(),
            language: None,
            segments,
        }
    }

    #[test]
    fn accepts_ordered_segments_and_clamps_small_overshoot() {
        let t = transcript(
            transcript_of(vec![seg(0, 500, " a "), seg(500, 1100, "b")]),
            1000,
            100,
        )
        .expect("valid");
        assert_eq!(t.segments[0].text, "a");
        assert_eq!(t.segments[1].end_ms, 1000);
    }

    #[test]
    fn refuses_out_of_order_segments() {
        let err = transcript(
            transcript_of(vec![seg(500, 600, "a"), seg(100, 200, "b")]),
            1000,
            100,
        )
        .expect_err("out of order");
        assert!(matches!(err, InvalidOutput::OutOfOrder { index: 1, .. }));
    }

    #[test]
    fn refuses_times_far_past_the_end_and_reversed() {
        let err =
            transcript(transcript_of(vec![seg(0, 10_000, "a")]), 1000, 100).expect_err("past");
        assert!(matches!(err, InvalidOutput::PastEnd { .. }));
        let err = transcript(transcript_of(vec![seg(300, 200, "a")]), 1000, 100).expect_err("rev");
        assert!(matches!(err, InvalidOutput::EndBeforeStart { .. }));
    }

    #[test]
    fn refuses_gigantic_text() {
        let big = "x".repeat(200);
        let err = transcript(transcript_of(vec![seg(0, 10, &big)]), 1000, 100).expect_err("big");
        assert!(matches!(err, InvalidOutput::TooMuchText { .. }));
    }

    #[test]
    fn truncates_at_char_boundaries() {
        assert_eq!(truncate_chars("héllo", 2), "hé");
        assert_eq!(truncate_chars("hi", 5), "hi");
    }
}
