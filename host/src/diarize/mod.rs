//! Who spoke when: a job's optional second stage. After the transcription plugin has
//! finished, a diarizer plugin (WIT 0.3.0's `diarizer` world) reads the same audio and
//! the transcript's segments and returns speaker turns; [`assign`] puts a speaker on every
//! segment and word. A failed stage never costs the transcript.

mod assign;

pub use assign::{assign_speakers, check_turns};

use serde::{Deserialize, Serialize};

/// The most speakers a person may ask for (and a diarizer may report).
pub const MAX_SPEAKERS: u32 = 32;

/// How many speakers the person expects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SpeakerCount {
    /// Unknown: the diarizer estimates it.
    #[default]
    Auto,
    /// Exactly this many.
    Exact(u32),
    /// At least `min` and at most `max`.
    Between { min: u32, max: u32 },
}

/// Why a `speakers` hint was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`speakers` must be \"auto\", a number of speakers (\"2\") or a range (\"2-4\") within 1..={MAX_SPEAKERS}; got {0:?}"
)]
pub struct BadSpeakerCount(pub String);

impl SpeakerCount {
    /// Reads the form of a `speakers` field: `auto` (or empty), `N`, or `MIN-MAX`.
    pub fn parse(text: &str) -> Result<Self, BadSpeakerCount> {
        let text = text.trim();
        let bad = || BadSpeakerCount(text.to_owned());
        let number = |s: &str| {
            s.trim()
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=MAX_SPEAKERS).contains(n))
                .ok_or_else(bad)
        };
        if text.is_empty() || text.eq_ignore_ascii_case("auto") {
            return Ok(Self::Auto);
        }
        match text.split_once('-') {
            None => Ok(Self::Exact(number(text)?)),
            Some((min, max)) => {
                let (min, max) = (number(min)?, number(max)?);
                if min > max {
                    return Err(bad());
                }
                Ok(if min == max {
                    Self::Exact(min)
                } else {
                    Self::Between { min, max }
                })
            }
        }
    }
}

impl std::fmt::Display for SpeakerCount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::Exact(n) => write!(f, "{n}"),
            Self::Between { min, max } => write!(f, "{min}-{max}"),
        }
    }
}

/// A stretch of audio in which one speaker talks, as a diarizer returned it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpeakerTurn {
    pub start_ms: u64,
    pub end_ms: u64,
    /// The diarizer's label ("SPEAKER_1").
    pub speaker: String,
    pub confidence: Option<f32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speaker_hints_parse_auto_exact_and_ranges() {
        assert_eq!(SpeakerCount::parse("auto"), Ok(SpeakerCount::Auto));
        assert_eq!(SpeakerCount::parse(" "), Ok(SpeakerCount::Auto));
        assert_eq!(SpeakerCount::parse("3"), Ok(SpeakerCount::Exact(3)));
        assert_eq!(
            SpeakerCount::parse("2-4"),
            Ok(SpeakerCount::Between { min: 2, max: 4 })
        );
        assert_eq!(SpeakerCount::parse("2-2"), Ok(SpeakerCount::Exact(2)));
        for bad in ["0", "33", "4-2", "two", "-1", "1-", "1-99"] {
            assert!(SpeakerCount::parse(bad).is_err(), "{bad:?} was accepted");
        }
        assert_eq!(SpeakerCount::Between { min: 2, max: 4 }.to_string(), "2-4");
    }
}
