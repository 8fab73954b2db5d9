//! Step 5: the transcript with timed segments, playback from any segment, copy, exports,
//! naming the speakers, and "transcribe another file".
//!
//! In a diarized result each segment shows its speaker's name, in a colour of a small
//! palette picked by the speaker's place in `diarization.speakers` (the name is the
//! text, the colour only helps), and a form renames the speakers: a plain POST that
//! works without JavaScript, validated as the API is ([`crate::speakers`]), refused
//! names shown on the page again with what was typed.

use std::collections::BTreeMap;
use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Redirect, Response};
use uuid::Uuid;

use super::file::{discard_staged, serve_media};
use super::state_store::Step;
use super::{PageMeta, Web, WebError, Wizard, parse_id, render, text};
use crate::speakers::{MAX_NAME_CHARS, RenameError};
use crate::storage::{DiarizationState, StoredResult, default_speaker_name};

/// How many speaker colours the stylesheet has (`.speaker-c0` ...); speakers past it
/// reuse them, which is why the name is always shown too.
const PALETTE: usize = 8;

/// Prefix of a speaker's input in the rename form, before its label.
const FIELD_PREFIX: &str = "speaker.";

pub struct SegmentView {
    pub start_ms: u64,
    pub start: String,
    pub end: String,
    pub text: String,
    /// Who speaks it, by display name, with the speaker's colour class.
    pub speaker: Option<SpeakerTag>,
    /// Its timed words, when the plugin gave them: shown one by one, so the page can
    /// mark the word being spoken and seek to any word.
    pub words: Vec<WordView>,
}

pub struct WordView {
    pub start_ms: u64,
    pub end_ms: u64,
    pub text: String,
}

pub struct SpeakerTag {
    pub name: String,
    pub colour: String,
}

/// One row of the speakers form.
pub struct SpeakerView {
    pub label: String,
    /// "Speaker 1": what the speaker is called without a name.
    pub default_name: String,
    /// The input's value: the given name, or what was just typed when it was refused.
    pub value: String,
    pub colour: String,
    pub input_id: String,
}

#[derive(Template)]
#[template(path = "results.html")]
struct ResultsPage {
    page: PageMeta,
    id: String,
    file_name: String,
    plugin_name: String,
    plugin_version: String,
    language: Option<String>,
    duration: String,
    finished: String,
    text: String,
    segments: Vec<SegmentView>,
    has_audio: bool,
    /// What the job used in the sandbox, when the server still knows it.
    usage: Option<String>,
    /// The speakers form's rows; empty when the result is not diarized.
    speakers: Vec<SpeakerView>,
    max_name_chars: usize,
    /// Why the last rename was refused.
    speaker_error: Option<String>,
    /// Why speaker detection failed, when it did.
    diarization_error: Option<String>,
}

/// A rename the page shows again because it was refused.
struct Refused {
    submitted: BTreeMap<String, String>,
    error: String,
}

pub async fn page(
    State(web): State<Arc<Web>>,
    mut wizard: Wizard,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let id = parse_id(&id, "result")?;
    let result = crate::app::lookup::load_result(&web.app, id, wizard.tenant()).await?;
    if wizard.state.job == Some(id) && wizard.state.step != Step::Results {
        wizard.state.step = Step::Results;
        wizard.save(&web).await?;
    }
    render(&results_page(&web, &wizard, id, &result, None))
}

/// `POST /results/{id}/speakers`: the speakers form. Saved names lead back to the page;
/// refused ones show it again (400, or 409 when there is nothing to name) with the
/// reason and what was typed.
pub async fn rename_speakers(
    State(web): State<Arc<Web>>,
    wizard: Wizard,
    Path(id): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let id = parse_id(&id, "result")?;
    let submitted: BTreeMap<String, String> = fields
        .into_iter()
        .filter_map(|(field, value)| {
            field
                .strip_prefix(FIELD_PREFIX)
                .map(|label| (label.to_owned(), value))
        })
        .collect();
    match crate::speakers::rename(&web.app, wizard.tenant(), id, &submitted).await {
        Ok(_) => Ok(Redirect::to(&format!("/results/{id}")).into_response()),
        Err(RenameError::Refused(error)) => {
            let status = error.status();
            let result = crate::app::lookup::load_result(&web.app, id, wizard.tenant()).await?;
            let refused = Refused {
                submitted,
                error: text::sentence(&error.to_string()),
            };
            let mut response = render(&results_page(&web, &wizard, id, &result, Some(refused)))?;
            *response.status_mut() = status;
            Ok(response)
        }
        Err(RenameError::Failed(error)) => Err(error.into()),
    }
}

fn results_page(
    web: &Web,
    wizard: &Wizard,
    id: Uuid,
    result: &StoredResult,
    refused: Option<Refused>,
) -> ResultsPage {
    let has_audio = crate::jobs::kept_audio(&web.app.config.audio_dir(), id).is_some();
    let usage = web
        .app
        .tracker
        .get(wizard.tenant(), id)
        .or_else(|| {
            web.app
                .tracker
                .recorded(wizard.tenant(), id)
                .map(|(s, _)| s)
        })
        .and_then(|job| job.usage)
        .map(|u| {
            let fuel = u
                .fuel_consumed
                .map(|fuel| format!(" · {} units of fuel", text::count(fuel)))
                .unwrap_or_default();
            format!(
                "ran {:.1} s in the sandbox · peak memory {} MiB · {} KiB of text{fuel}",
                u.wall_ms as f64 / 1000.0,
                u.peak_memory_bytes >> 20,
                u.output_bytes.div_ceil(1024)
            )
        });
    let diarization = result.diarization.as_ref();
    let colour_of = |label: &str| {
        let index = diarization
            .and_then(|d| d.speakers.iter().position(|s| s == label))
            .unwrap_or(0);
        format!("speaker-c{}", index % PALETTE)
    };
    let speakers = diarization
        .filter(|d| d.state == DiarizationState::Done)
        .map(|d| {
            d.speakers
                .iter()
                .enumerate()
                .map(|(index, label)| SpeakerView {
                    label: label.clone(),
                    default_name: default_speaker_name(label),
                    value: refused
                        .as_ref()
                        .and_then(|r| r.submitted.get(label))
                        .or_else(|| d.names.get(label))
                        .cloned()
                        .unwrap_or_default(),
                    colour: colour_of(label),
                    input_id: format!("speaker-name-{index}"),
                })
                .collect()
        })
        .unwrap_or_default();
    let speakers_of = crate::export::Speakers::of(result);
    ResultsPage {
        page: PageMeta::new(format!("Transcript of {}", result.file_name), "new", 5),
        id: id.to_string(),
        file_name: result.file_name.clone(),
        plugin_name: result.plugin_name.clone(),
        plugin_version: result.plugin_version.clone(),
        language: result.transcript.language.clone(),
        duration: text::duration(result.duration_ms),
        finished: text::date(result.finished_at),
        text: result.transcript.text.trim().to_owned(),
        segments: result
            .transcript
            .segments
            .iter()
            .map(|s| SegmentView {
                start_ms: s.start_ms,
                start: text::clock(s.start_ms),
                end: text::clock(s.end_ms),
                text: s.text.trim().to_owned(),
                speaker: speakers_of.name(s).map(|name| SpeakerTag {
                    name,
                    colour: colour_of(s.speaker.as_deref().unwrap_or_default()),
                }),
                words: s
                    .words
                    .iter()
                    .filter(|w| !w.text.trim().is_empty())
                    .map(|w| WordView {
                        start_ms: w.start_ms,
                        end_ms: w.end_ms.max(w.start_ms),
                        text: w.text.trim().to_owned(),
                    })
                    .collect(),
            })
            .collect(),
        has_audio,
        usage,
        speakers,
        max_name_chars: MAX_NAME_CHARS,
        speaker_error: refused.map(|r| r.error),
        diarization_error: diarization
            .filter(|d| d.state == DiarizationState::Failed)
            .map(|d| {
                d.error
                    .clone()
                    .unwrap_or_else(|| "the diarizer gave no reason".to_owned())
            }),
    }
}

/// `GET /results/{id}/audio`: the job's kept audio, with ranges for seeking, as the type
/// its container names.
pub async fn audio(
    State(web): State<Arc<Web>>,
    wizard: Wizard,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, WebError> {
    let id = parse_id(&id, "result")?;
    // Only the owner's results have audio to play.
    crate::app::lookup::load_result(&web.app, id, wizard.tenant()).await?;
    let path = crate::jobs::kept_audio(&web.app.config.audio_dir(), id)
        .ok_or_else(|| WebError::not_found("audio"))?;
    serve_media(&path, request).await
}

/// `POST /another`: keeps the plugin and settings, forgets the file and the job.
pub async fn another(
    State(web): State<Arc<Web>>,
    mut wizard: Wizard,
) -> Result<Response, WebError> {
    discard_staged(&web, wizard.state.file.as_ref());
    wizard.state.file = None;
    wizard.state.job = None;
    wizard.state.step = if wizard.state.plugin.is_some() {
        Step::File
    } else {
        Step::Plugin
    };
    wizard.save(&web).await?;
    let to = if wizard.state.step == Step::File {
        "/file"
    } else {
        "/plugins"
    };
    Ok(Redirect::to(to).into_response())
}
