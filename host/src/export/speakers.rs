//! Who speaks each piece of an export, by the name a person reads.
//!
//! Every format asks [`Speakers`] the same two questions, so all of them agree: which
//! pieces the transcript falls into ([`Speakers::turns`]: segments split where the
//! speaker changes) and what to call each piece's speaker ([`Speakers::name`]). Names
//! come only from the result's diarization record; a result without one exports as it
//! did before speakers existed, whatever labels its segments carry.

use super::turns;
use crate::storage::{Diarization, StoredResult};
use crate::transcript::Segment;

/// The speaker names of one result, for its exports.
#[derive(Debug, Clone, Copy, Default)]
pub struct Speakers<'a> {
    diarization: Option<&'a Diarization>,
}

impl<'a> Speakers<'a> {
    /// No speakers: every piece is anonymous and no segment is split.
    pub const NONE: Speakers<'static> = Speakers { diarization: None };

    /// The speakers of `result`, as its diarization names them.
    pub fn of(result: &'a StoredResult) -> Self {
        Self::from_diarization(result.diarization.as_ref())
    }

    pub fn from_diarization(diarization: Option<&'a Diarization>) -> Self {
        Self { diarization }
    }

    /// The name to show for the speaker of `segment`, if the result is diarized and the
    /// segment has a speaker. Never empty and never holds a line break or control
    /// character (a label comes from a plugin), so every format can write it on one line.
    pub fn name(&self, segment: &Segment) -> Option<String> {
        let diarization = self.diarization?;
        let label = segment.speaker.as_deref()?;
        let name = one_line(&diarization.display_name(label));
        (!name.is_empty()).then_some(name)
    }

    /// The pieces to export: with speakers, the segments split where their words'
    /// speakers change (so no cue or line mixes two speakers); without, the segments as
    /// they are.
    pub fn turns(&self, segments: &[Segment]) -> Vec<Segment> {
        if self.diarization.is_some() {
            turns::split_at_speaker_changes(segments)
        } else {
            segments.to_vec()
        }
    }
}

/// `text` with runs of whitespace and control characters folded into single spaces.
fn one_line(text: &str) -> String {
    text.split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::storage::DiarizationState;

    fn diarization(names: &[(&str, &str)]) -> Diarization {
        Diarization {
            diarizer: "fakespeakers".to_owned(),
            state: DiarizationState::Done,
            error: None,
            speakers: vec!["SPEAKER_1".to_owned(), "SPEAKER_2".to_owned()],
            wall_ms: 0,
            names: names
                .iter()
                .map(|(label, name)| ((*label).to_owned(), (*name).to_owned()))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    fn spoken_by(label: &str) -> Segment {
        Segment {
            speaker: Some(label.to_owned()),
            ..Segment::new(0, 1_000, "hi")
        }
    }

    #[test]
    fn given_names_win_over_the_default_speaker_n() {
        let d = diarization(&[("SPEAKER_2", "Interviewer")]);
        let speakers = Speakers::from_diarization(Some(&d));
        assert_eq!(
            speakers.name(&spoken_by("SPEAKER_1")).as_deref(),
            Some("Speaker 1")
        );
        assert_eq!(
            speakers.name(&spoken_by("SPEAKER_2")).as_deref(),
            Some("Interviewer")
        );
        assert_eq!(speakers.name(&Segment::new(0, 1, "x")), None);
    }

    #[test]
    fn without_diarization_labels_are_ignored() {
        assert_eq!(Speakers::NONE.name(&spoken_by("SPEAKER_1")), None);
    }

    #[test]
    fn a_plugins_label_cannot_break_a_line() {
        let d = diarization(&[]);
        let speakers = Speakers::from_diarization(Some(&d));
        assert_eq!(
            speakers.name(&spoken_by("A\n\nB\u{0}C ")).as_deref(),
            Some("A B C")
        );
        assert_eq!(speakers.name(&spoken_by(" \n")), None);
    }
}
