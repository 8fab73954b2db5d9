//! Step 3: the plugin, its settings and the file, summarised; Start creates the job.
//!
//! Start goes through [`crate::app::submit::submit_upload`], like the JSON API: the file is
//! linked (or copied) into the uploads folder the job then owns, the configuration is
//! validated once more, and a full queue is refused with the reason.

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::Value;
use uuid::Uuid;

use super::file::{discard_staged, staged_dir};
use super::state_store::{ChosenFile, FileSource, Step};
use super::{PageMeta, Web, WebError, Wizard, media, render, text};
use crate::app::upload::{Upload, UploadGuard};
use crate::runtime::LoadedPlugin;

pub struct Setting {
    pub label: String,
    pub value: String,
}

/// A diarizer the person may add as the job's second stage.
pub struct DiarizerOption {
    pub id: String,
    pub name: String,
    pub selected: bool,
}

/// The choices of the Start form: who spoke when (`diarizer`, `none` or empty for no
/// diarizer) and how many speakers to expect.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct StartForm {
    diarizer: Option<String>,
    speakers: Option<String>,
}

/// The diarizers `tenant` may use, the plugin's default (`[plugins.<id>] diarizer`)
/// selected.
fn diarizer_options(web: &Web, tenant: &str, plugin: &LoadedPlugin) -> Vec<DiarizerOption> {
    let default =
        crate::app::submit::DiarizerAsk::default_for(&web.app, &plugin.meta.id).map(|ask| ask.id);
    web.app
        .plugins
        .plugins_of(crate::runtime::PluginKind::Diarizer)
        .iter()
        .filter(|p| web.app.plugin_allowed(tenant, &p.meta.id))
        .map(|p| DiarizerOption {
            id: p.meta.id.clone(),
            name: p.meta.name.clone(),
            selected: default.as_deref() == Some(p.meta.id.as_str()),
        })
        .collect()
}
#[derive(Template)]
#[template(path = "confirm.html")]
struct ConfirmPage {
    page: PageMeta,
    plugin_name: String,
    plugin_version: String,
    settings: Vec<Setting>,
    file_name: String,
    file_size: String,
    file_duration: String,
    file_origin: &'static str,
    /// Diarizers to choose from (none: the choice is not shown).
    diarizers: Vec<DiarizerOption>,
    error: Option<String>,
}

/// The settings a job would run with, labelled with the schema's titles.
fn settings_summary(
    plugin: &LoadedPlugin,
    config: &serde_json::Map<String, Value>,
) -> Vec<Setting> {
    let resolved = plugin
        .resolve_config(&Value::Object(config.clone()))
        .unwrap_or_else(|_| Value::Object(config.clone()));
    let schema = &plugin.meta.config_schema;
    resolved
        .as_object()
        .map(|object| {
            object
                .iter()
                .map(|(name, value)| Setting {
                    label: schema
                        .pointer(&format!(
                            "/properties/{}/title",
                            name.replace('~', "~0").replace('/', "~1")
                        ))
                        .and_then(Value::as_str)
                        .unwrap_or(name)
                        .to_owned(),
                    value: match value {
                        Value::String(s) if s.is_empty() => "(empty)".to_owned(),
                        Value::String(s) => s.clone(),
                        Value::Bool(true) => "on".to_owned(),
                        Value::Bool(false) => "off".to_owned(),
                        other => other.to_string(),
                    },
                })
                .collect()
        })
        .unwrap_or_default()
}

/// What the confirmation needs, or where to go to complete it. Both are checked against
/// the tenant again: the plugin against its allow-list, a staged file against its
/// staging folder.
fn ready(web: &Web, wizard: &Wizard) -> Result<(Arc<LoadedPlugin>, ChosenFile), &'static str> {
    let plugin = wizard.plugin(web).ok_or("/plugins")?;
    let file = wizard.file(web).cloned().ok_or("/file")?;
    Ok((plugin, file))
}

async fn confirm_page(
    web: &Web,
    wizard: &mut Wizard,
    error: Option<String>,
) -> Result<Response, WebError> {
    let (plugin, file) = match ready(web, wizard) {
        Ok(ready) => ready,
        Err(to) => return Ok(Redirect::to(to).into_response()),
    };
    if wizard.state.step != Step::Confirm {
        wizard.state.step = Step::Confirm;
        wizard.save(web).await?;
    }
    render(&ConfirmPage {
        page: PageMeta::new("Confirm", "new", 3),
        plugin_name: plugin.meta.name.clone(),
        plugin_version: plugin.meta.version.clone(),
        settings: settings_summary(&plugin, &wizard.state.config),
        file_name: file.name.clone(),
        file_size: text::bytes(file.bytes),
        file_duration: text::duration(file.duration_ms),
        file_origin: match file.source {
            FileSource::Staged { .. } => "uploaded",
            FileSource::Media { .. } => "from a media folder",
        },
        diarizers: diarizer_options(web, wizard.tenant(), &plugin),
        error,
    })
}

pub async fn page(State(web): State<Arc<Web>>, mut wizard: Wizard) -> Result<Response, WebError> {
    confirm_page(&web, &mut wizard, None).await
}

/// Puts the chosen file into the uploads folder, where the job owns it, under a name of
/// the server's own (as every upload: no extension of the user's, which the kept audio
/// would carry on).
async fn materialize(web: &Web, tenant: &str, file: &ChosenFile) -> Result<UploadGuard, WebError> {
    let source = match &file.source {
        FileSource::Staged { path } if path.starts_with(staged_dir(web, tenant)) => path.clone(),
        FileSource::Staged { .. } => return Err(WebError::not_found("uploaded file")),
        FileSource::Media { folder, path } => {
            media::resolve(web.app.media_folders_for(tenant), *folder, path).map_err(|e| {
                WebError::new(StatusCode::BAD_REQUEST, text::sentence(&e.to_string()))
            })?
        }
    };
    let dir = web.app.config.uploads_dir();
    let target = dir.join(Uuid::new_v4().to_string());
    let link_target = target.clone();
    tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&dir)?;
        std::fs::hard_link(&source, &link_target)
            .or_else(|_| std::fs::copy(&source, &link_target).map(|_| ()))
    })
    .await
    .map_err(|e| WebError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    .map_err(|e| {
        WebError::new(
            StatusCode::GONE,
            format!("The chosen file can no longer be read ({e}); please choose it again."),
        )
    })?;
    Ok(UploadGuard::new(Upload {
        path: target,
        file_name: file.name.clone(),
        bytes: file.bytes,
        fields: HashMap::new(),
    }))
}

/// `POST /start`: creates the job and goes to its progress page.
pub async fn start(
    State(web): State<Arc<Web>>,
    mut wizard: Wizard,
    axum::Form(form): axum::Form<StartForm>,
) -> Result<Response, WebError> {
    let (plugin, file) = match ready(&web, &wizard) {
        Ok(ready) => ready,
        Err(to) => return Ok(Redirect::to(to).into_response()),
    };
    let speakers = match crate::diarize::SpeakerCount::parse(form.speakers.as_deref().unwrap_or(""))
    {
        Ok(speakers) => speakers,
        Err(e) => {
            let message = text::sentence(&e.to_string());
            return confirm_error(&web, &mut wizard, StatusCode::BAD_REQUEST, message).await;
        }
    };
    let diarizer = form
        .diarizer
        .filter(|id| !id.is_empty() && id != "none")
        .map(|id| crate::app::submit::DiarizerAsk {
            id,
            speakers,
            config: serde_json::json!({}),
        });
    let guard = match materialize(&web, wizard.tenant(), &file).await {
        Ok(guard) => guard,
        Err(e) => return confirm_error(&web, &mut wizard, e.status, e.message).await,
    };
    let config = Value::Object(wizard.state.config.clone());
    let submitted = crate::app::submit::submit_upload(
        &web.app,
        guard,
        plugin,
        config,
        wizard.tenant(),
        None,
        diarizer,
    )
    .await;
    let snapshot = match submitted {
        Ok(snapshot) => snapshot,
        Err(e) => {
            let message = match e.code {
                "queue_full" => format!(
                    "The server is busy: {} Your choices are kept; try Start again in a moment.",
                    text::sentence(&e.message)
                ),
                _ => text::sentence(&e.message),
            };
            return confirm_error(&web, &mut wizard, e.status, message).await;
        }
    };
    discard_staged(&web, Some(&file));
    wizard.state.file = None;
    wizard.state.job = Some(snapshot.id);
    wizard.state.step = Step::Progress;
    wizard.save(&web).await?;
    Ok(Redirect::to(&format!("/jobs/{}", snapshot.id)).into_response())
}

async fn confirm_error(
    web: &Web,
    wizard: &mut Wizard,
    status: StatusCode,
    message: String,
) -> Result<Response, WebError> {
    let mut response = confirm_page(web, wizard, Some(message)).await?;
    *response.status_mut() = status;
    Ok(response)
}
