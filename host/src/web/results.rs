//! Step 5: the transcript with timed segments, playback from any segment, copy, exports,
//! and "transcribe another file".

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Redirect, Response};

use super::file::{discard_staged, serve_media};
use super::state_store::Step;
use super::{PageMeta, Web, WebError, Wizard, parse_id, render, text};

pub struct SegmentView {
    pub start_ms: u64,
    pub start: String,
    pub end: String,
    pub text: String,
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
    render(&ResultsPage {
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
            })
            .collect(),
        has_audio,
        usage,
    })
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
