//! Naming a result's speakers, for the JSON API (`PUT /api/results/{id}/speakers`) and
//! the results page's form alike, so both accept and refuse the same names.
//!
//! A rename is a partial update: each submitted label gets the submitted name (trimmed),
//! an empty name removes the label's name (back to "Speaker N"), and labels not
//! submitted keep theirs. Names are for people to read in exports and on the page, so
//! they are short and printable; they are escaped wherever they are written.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use thiserror::Error;
use uuid::Uuid;

use crate::app::lookup::{blocking, load_result};
use crate::app::{ApiError, AppState};
use crate::storage::{Diarization, DiarizationState, StoredResult};

/// The longest name, in characters.
pub const MAX_NAME_CHARS: usize = 64;

/// Why a rename was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NameError {
    #[error(
        "this result has no speakers to name: its job named no diarizer, or speaker \
         detection failed; run the file again with a diarizer"
    )]
    NotDiarized,
    #[error("{given} names were given but this result has only {speakers} speakers")]
    TooMany { given: usize, speakers: usize },
    #[error("this result has no speaker {label:?}; its speakers are {known}")]
    UnknownSpeaker { label: String, known: String },
    #[error("the name for {label} {problem}")]
    InvalidName { label: String, problem: String },
}

impl NameError {
    /// The stable code the API answers with.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotDiarized => "not_diarized",
            Self::TooMany { .. } => "too_many_names",
            Self::UnknownSpeaker { .. } => "unknown_speaker",
            Self::InvalidName { .. } => "invalid_speaker_name",
        }
    }

    /// The HTTP status to answer with: 409 when there is nothing to name, else 400.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::NotDiarized => StatusCode::CONFLICT,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

impl From<NameError> for ApiError {
    fn from(error: NameError) -> Self {
        ApiError::new(error.status(), error.code(), error.to_string())
    }
}

/// Why [`rename`] did not rename: the names were refused (the form shows why beside
/// them), or the result could not be read or written.
#[derive(Debug, Clone, Error)]
pub enum RenameError {
    #[error(transparent)]
    Refused(#[from] NameError),
    #[error(transparent)]
    Failed(#[from] ApiError),
}

impl From<RenameError> for ApiError {
    fn from(error: RenameError) -> Self {
        match error {
            RenameError::Refused(error) => error.into(),
            RenameError::Failed(error) => error,
        }
    }
}

/// The names `diarization` has after applying `submitted` (label → name), or why
/// `submitted` is refused. Nothing is applied unless every entry is valid.
pub fn apply_names(
    diarization: Option<&Diarization>,
    submitted: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, NameError> {
    let diarization = diarization
        .filter(|d| d.state == DiarizationState::Done && !d.speakers.is_empty())
        .ok_or(NameError::NotDiarized)?;
    if submitted.len() > diarization.speakers.len() {
        return Err(NameError::TooMany {
            given: submitted.len(),
            speakers: diarization.speakers.len(),
        });
    }
    let mut names = diarization.names.clone();
    for (label, name) in submitted {
        if !diarization.speakers.contains(label) {
            return Err(NameError::UnknownSpeaker {
                label: label.clone(),
                known: diarization.speakers.join(", "),
            });
        }
        let name = name.trim();
        if name.is_empty() {
            names.remove(label);
            continue;
        }
        check_name(label, name)?;
        names.insert(label.clone(), name.to_owned());
    }
    Ok(names)
}

fn check_name(label: &str, name: &str) -> Result<(), NameError> {
    let invalid = |problem: String| NameError::InvalidName {
        label: label.to_owned(),
        problem,
    };
    let chars = name.chars().count();
    if chars > MAX_NAME_CHARS {
        return Err(invalid(format!(
            "is {chars} characters long; at most {MAX_NAME_CHARS} fit"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(invalid(
            "holds a control character (a line break, tab, ...); use plain text".to_owned(),
        ));
    }
    Ok(())
}

/// Applies `submitted` to the tenant's result `id` and returns the updated result:
/// 404 for a result the tenant does not have, the [`NameError`]s otherwise.
pub async fn rename(
    state: &AppState,
    tenant: &str,
    id: Uuid,
    submitted: &BTreeMap<String, String>,
) -> Result<StoredResult, RenameError> {
    let mut result = load_result(state, id, tenant).await?;
    let names = apply_names(result.diarization.as_ref(), submitted)?;
    let store = state.store.clone();
    let owner = tenant.to_owned();
    let stored_names = names.clone();
    let updated = blocking(move || store.set_speaker_names(&owner, id, &stored_names)).await?;
    if !updated {
        // Deleted between the read and the write.
        return Err(ApiError::not_found("result").into());
    }
    if let Some(diarization) = result.diarization.as_mut() {
        diarization.names = names;
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diarized(names: &[(&str, &str)]) -> Diarization {
        Diarization {
            diarizer: "fakespeakers".to_owned(),
            state: DiarizationState::Done,
            error: None,
            speakers: vec!["SPEAKER_1".to_owned(), "SPEAKER_2".to_owned()],
            names: pairs(names),
            wall_ms: 0,
        }
    }

    fn pairs(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
        entries
            .iter()
            .map(|(label, name)| ((*label).to_owned(), (*name).to_owned()))
            .collect()
    }

    #[test]
    fn names_are_trimmed_merged_and_emptied_away() {
        let d = diarized(&[("SPEAKER_1", "Host"), ("SPEAKER_2", "Guest")]);
        let names = apply_names(
            Some(&d),
            &pairs(&[("SPEAKER_1", "  Interviewer "), ("SPEAKER_2", " ")]),
        )
        .unwrap();
        assert_eq!(names, pairs(&[("SPEAKER_1", "Interviewer")]));
        // Labels not submitted keep their names.
        let names = apply_names(Some(&d), &pairs(&[("SPEAKER_2", "Ada")])).unwrap();
        assert_eq!(names, pairs(&[("SPEAKER_1", "Host"), ("SPEAKER_2", "Ada")]));
    }

    #[test]
    fn an_unknown_label_is_refused_by_name() {
        let error = apply_names(Some(&diarized(&[])), &pairs(&[("SPEAKER_9", "X")])).unwrap_err();
        assert_eq!(error.code(), "unknown_speaker");
        assert_eq!(
            error.to_string(),
            "this result has no speaker \"SPEAKER_9\"; its speakers are SPEAKER_1, SPEAKER_2"
        );
    }

    #[test]
    fn long_names_and_control_characters_are_refused() {
        let d = diarized(&[]);
        let long = "é".repeat(MAX_NAME_CHARS + 1);
        let fits = "é".repeat(MAX_NAME_CHARS);
        let error = apply_names(Some(&d), &pairs(&[("SPEAKER_1", &long)])).unwrap_err();
        assert_eq!(error.code(), "invalid_speaker_name");
        assert!(apply_names(Some(&d), &pairs(&[("SPEAKER_1", &fits)])).is_ok());
        for bad in [
            "a\nb",
            "tab\there",
            "nul\u{0}",
            "esc\u{1b}[31m",
            "c1\u{85}x",
        ] {
            let error = apply_names(Some(&d), &pairs(&[("SPEAKER_1", bad)])).unwrap_err();
            assert_eq!(error.code(), "invalid_speaker_name", "{bad:?}");
        }
    }

    #[test]
    fn nothing_is_applied_when_one_entry_is_bad() {
        let d = diarized(&[]);
        let error = apply_names(
            Some(&d),
            &pairs(&[("SPEAKER_1", "Fine"), ("SPEAKER_2", "bad\u{7}")]),
        )
        .unwrap_err();
        assert_eq!(error.code(), "invalid_speaker_name");
    }

    #[test]
    fn more_names_than_speakers_are_refused() {
        let d = diarized(&[]);
        let error = apply_names(
            Some(&d),
            &pairs(&[("SPEAKER_1", "a"), ("SPEAKER_2", "b"), ("SPEAKER_3", "c")]),
        )
        .unwrap_err();
        assert_eq!(error.code(), "too_many_names");
    }

    #[test]
    fn without_a_finished_diarization_there_is_nothing_to_name() {
        let submitted = pairs(&[("SPEAKER_1", "a")]);
        assert_eq!(apply_names(None, &submitted), Err(NameError::NotDiarized));
        let failed = Diarization {
            state: DiarizationState::Failed,
            error: Some("crashed".to_owned()),
            speakers: Vec::new(),
            ..diarized(&[])
        };
        let error = apply_names(Some(&failed), &submitted).unwrap_err();
        assert_eq!(error.code(), "not_diarized");
        assert_eq!(ApiError::from(error).status, StatusCode::CONFLICT);
    }
}
