//! Property tests: whatever segments a plugin returns, the subtitle writers produce files
//! that keep the format's rules.
//!
//! Run longer with `PROPTEST_CASES=20000 cargo test --release -p sandscribe --lib properties`.

use proptest::prelude::*;

use super::{SubtitleOptions, srt, vtt};
use crate::transcript::Segment;

fn segments() -> impl Strategy<Value = Vec<Segment>> {
    proptest::collection::vec(
        (0u64..20_000_000, 0u64..100_000, ".{0,80}").prop_map(|(start_ms, len, text)| Segment {
            start_ms,
            end_ms: start_ms + len,
            text,
            confidence: None,
            words: Vec::new(),
            speaker: None,
        }),
        0..20,
    )
    .prop_map(|mut s| {
        s.sort_by_key(|seg| seg.start_ms);
        s
    })
}

fn options() -> impl Strategy<Value = SubtitleOptions> {
    (prop::option::of(1usize..60), prop::option::of(1usize..4)).prop_map(|(chars, lines)| {
        SubtitleOptions {
            max_chars_per_line: chars,
            max_lines_per_cue: lines,
            word_timestamps: false,
        }
    })
}

/// Parses `HH:MM:SS<sep>mmm` into milliseconds.
fn parse_time(text: &str, sep: char) -> Option<u64> {
    let (hms, ms) = text.rsplit_once(sep)?;
    let mut parts = hms.split(':');
    let h: u64 = parts.next()?.parse().ok()?;
    let m: u64 = parts.next()?.parse().ok()?;
    let s: u64 = parts.next()?.parse().ok()?;
    let ms: u64 = ms.parse().ok()?;
    (m < 60 && s < 60 && ms < 1000 && ms.to_string().len() <= 3)
        .then_some(((h * 60 + m) * 60 + s) * 1000 + ms)
}

proptest! {
    #[test]
    fn srt_cues_are_numbered_timed_and_separated(segments in segments(), options in options()) {
        let out = srt(&segments, &options);
        let bom = out.starts_with('\u{feff}');
        prop_assert!(!bom);
        let mut previous_start = 0;
        for (index, block) in out.split("\n\n").filter(|b| !b.trim().is_empty()).enumerate() {
            let mut lines = block.lines();
            let number = (index + 1).to_string();
            prop_assert_eq!(lines.next(), Some(number.as_str()), "numbering in {:?}", out);
            let timing = lines.next().unwrap_or_default();
            let (start, end) = timing.split_once(" --> ").expect("a timing line");
            let (start, end) = (parse_time(start, ',').expect("start"), parse_time(end, ',').expect("end"));
            prop_assert!(end > start, "{}", timing);
            prop_assert!(start >= previous_start);
            previous_start = start;
            let text: Vec<&str> = lines.collect();
            prop_assert!(!text.is_empty() && text.iter().all(|l| !l.trim().is_empty()), "{:?}", block);
        }
    }

    #[test]
    fn vtt_cues_are_escaped_and_ordered(segments in segments(), options in options()) {
        let out = vtt(&segments, &options);
        prop_assert!(out.starts_with("WEBVTT\n"));
        let mut previous_start = 0;
        let body = out["WEBVTT\n".len()..].trim_start_matches('\n');
        for block in body.split("\n\n").filter(|b| !b.trim().is_empty()) {
            let mut lines = block.lines();
            let timing = lines.next().unwrap_or_default();
            let (start, end) = timing.split_once(" --> ").expect("a timing line");
            let (start, end) = (parse_time(start, '.').expect("start"), parse_time(end, '.').expect("end"));
            prop_assert!(end > start);
            prop_assert!(start >= previous_start);
            previous_start = start;
            for line in lines {
                prop_assert!(!line.contains("-->") && !line.contains('<') && !line.trim().is_empty(), "{:?}", line);
            }
        }
    }
}
