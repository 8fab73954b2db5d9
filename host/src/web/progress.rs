//! Step 4: a job's progress, fed live by the API's SSE stream.
//!
//! The page is rendered from the tracker's snapshot; the script then replays the job's
//! event log from the start (segments so far, progress) and follows it live. The browser's
//! `EventSource` resumes with `Last-Event-ID` after a dropped connection; a reload simply
//! renders the page again and replays. Cancel stops the job at once (the host's epoch
//! deadline), then the page shows the cancelled job with ways to go on.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};

use super::state_store::Step;
use super::{PageMeta, Web, WebError, Wizard, parse_id, render, text};
use crate::jobs::JobStatus;

#[derive(Template)]
#[template(path = "progress.html")]
struct ProgressPage {
    page: PageMeta,
    id: String,
    file_name: String,
    plugin_name: String,
    status: &'static str,
    /// 0..=100.
    percent: u32,
    stage: String,
    queue_position: Option<usize>,
    /// Unix milliseconds the job started running (or was created, while queued).
    since_ms: i128,
    finished: bool,
    /// For a failed job: what it means, then the details.
    failure: Option<(String, String)>,
}

fn unix_ms(at: time::OffsetDateTime) -> i128 {
    at.unix_timestamp_nanos() / 1_000_000
}

pub async fn page(
    State(web): State<Arc<Web>>,
    mut wizard: Wizard,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let id = parse_id(&id, "job")?;
    let snapshot = crate::app::lookup::find_job(&web.app, id, wizard.tenant()).await?;
    if snapshot.status == JobStatus::Completed {
        return Ok(Redirect::to(&format!("/results/{id}")).into_response());
    }
    if wizard.state.job == Some(id) && wizard.state.step != Step::Progress {
        wizard.state.step = Step::Progress;
        wizard.save(&web).await?;
    }
    let failure = snapshot.error.as_ref().map(text::failure);
    render(&ProgressPage {
        page: PageMeta::new(format!("Transcribing {}", snapshot.file_name), "new", 4),
        id: id.to_string(),
        file_name: snapshot.file_name.clone(),
        plugin_name: snapshot.plugin.name.clone(),
        status: snapshot.status.as_str(),
        percent: (snapshot.progress.clamp(0.0, 1.0) * 100.0).round() as u32,
        stage: snapshot.stage.clone(),
        queue_position: snapshot.queue_position,
        since_ms: unix_ms(snapshot.started_at.unwrap_or(snapshot.created_at)),
        finished: snapshot.status.is_finished(),
        failure,
    })
}

/// `POST /jobs/{id}/cancel`: stops the job, then shows it.
pub async fn cancel(
    State(web): State<Arc<Web>>,
    wizard: Wizard,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let id = parse_id(&id, "job")?;
    // A job that already finished just shows how it ended.
    let _ = web.app.tracker.cancel(wizard.tenant(), id).await;
    Ok(Redirect::to(&format!("/jobs/{id}")).into_response())
}
