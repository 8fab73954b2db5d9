//! Settings: the user's auto-save choice, and (read-only) what the operator configured —
//! media folders, limits, the queue.

use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::{PageMeta, Web, WebError, Wizard, render, text};

pub struct Row {
    pub label: &'static str,
    pub value: String,
}

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    page: PageMeta,
    auto_save: bool,
    saved: bool,
    media_folders: Vec<String>,
    limits: Vec<Row>,
}

#[derive(Deserialize)]
pub struct SettingsQuery {
    #[serde(default)]
    saved: bool,
}

pub async fn page(
    State(web): State<Arc<Web>>,
    wizard: Wizard,
    Query(query): Query<SettingsQuery>,
) -> Result<Response, WebError> {
    let settings = web.store.settings(wizard.tenant()).await?;
    let config = &web.app.config;
    let limits = &config.limits;
    let seconds = |s: u64| text::duration(s.saturating_mul(1000));
    render(&SettingsPage {
        page: PageMeta::new("Settings", "settings", 0),
        auto_save: settings.auto_save,
        saved: query.saved,
        media_folders: web
            .app
            .media_folders_for(wizard.tenant())
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
        limits: vec![
            Row {
                label: "Largest upload",
                value: text::bytes(limits.upload_bytes),
            },
            Row {
                label: "Longest audio",
                value: seconds(limits.audio_seconds),
            },
            Row {
                label: "Time per job",
                value: seconds(limits.job_seconds),
            },
            Row {
                label: "Memory per job",
                value: text::bytes(limits.memory_bytes),
            },
            Row {
                label: "Transcript text per job",
                value: text::bytes(limits.output_bytes),
            },
            Row {
                label: "Jobs running at once",
                value: config.jobs.running_slots().to_string(),
            },
            Row {
                label: "Jobs waiting at most",
                value: config.jobs.max_queued.to_string(),
            },
        ],
    })
}

#[derive(Deserialize)]
pub struct SettingsForm {
    auto_save: Option<String>,
}

pub async fn save(
    State(web): State<Arc<Web>>,
    wizard: Wizard,
    Form(form): Form<SettingsForm>,
) -> Result<Response, WebError> {
    let tenant = wizard.tenant().to_owned();
    let tenant = tenant.as_str();
    let mut settings = web.store.settings(tenant).await?;
    settings.auto_save = form.auto_save.is_some();
    web.store.save_settings(tenant, &settings).await?;
    Ok(Redirect::to("/settings?saved=true").into_response())
}
