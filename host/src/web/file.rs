//! Step 2: the file — uploaded from the browser, or chosen from the server's media folders.
//!
//! An upload is streamed into the tenant's staging folder (`data/web/staged/<hash>/`)
//! with the same limits as the API and decoded once, so a file that is not audio is
//! refused here, before anything is queued. It stays staged (across restarts) until the
//! job starts. A media file is only referenced; [`super::media`] keeps every path inside
//! its folder. Both are served back (preview, playback) as the type their bytes name.

use std::sync::Arc;

use askama::Template;
use axum::Json;
use axum::extract::{Multipart, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, body::Body};
use serde::Deserialize;

use super::media::{self, MediaError};
use super::media_type::Container;
use super::state_store::{ChosenFile, FileSource, Step};
use super::{PageMeta, Web, WebError, Wizard, is_htmx, render, text};
use crate::app::ApiError;
use crate::app::upload;

/// Media files per page of the list.
const MEDIA_PER_PAGE: usize = 20;

pub struct ChosenView {
    pub name: String,
    pub size: String,
    pub duration: String,
    pub origin: &'static str,
}

pub struct MediaItem {
    pub folder: usize,
    pub path: String,
    pub size: String,
    pub date: String,
}

/// One page of the media list.
pub struct MediaList {
    pub q: String,
    pub items: Vec<MediaItem>,
    pub total: usize,
    pub page: usize,
    pub pages: usize,
    pub prev: Option<usize>,
    pub next: Option<usize>,
}

#[derive(Template)]
#[template(path = "file.html")]
struct FilePage {
    page: PageMeta,
    plugin_name: String,
    chosen: Option<ChosenView>,
    upload_limit: String,
    error: Option<String>,
    /// None when no media folders are configured.
    media: Option<MediaList>,
}

#[derive(Template)]
#[template(path = "partials/media_list_response.html")]
struct MediaListResponse {
    media: MediaList,
}

#[derive(Deserialize, Default)]
pub struct MediaQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    page: usize,
}

/// Where all uploads wait for their job to start (in the shared folder when nodes share
/// one, so Start on any node finds what was uploaded through another).
pub fn staged_root(web: &Web) -> std::path::PathBuf {
    web.app.config.staging_dir()
}

/// Where `tenant`'s uploads wait: a folder of its own (named by a hash, since tenant
/// names are free text), so a staged file is only ever usable by the tenant that sent it.
pub fn staged_dir(web: &Web, tenant: &str) -> std::path::PathBuf {
    let digest = crate::digest::sha256_hex(tenant);
    staged_root(web).join(&digest[..32])
}

fn build_media_list(web: &Web, tenant: &str, query: &MediaQuery) -> MediaList {
    let all = media::list(web.app.media_folders_for(tenant), &query.q);
    let total = all.len();
    let pages = total.div_ceil(MEDIA_PER_PAGE).max(1);
    let page = query.page.min(pages - 1);
    let items = all
        .into_iter()
        .skip(page * MEDIA_PER_PAGE)
        .take(MEDIA_PER_PAGE)
        .map(|f| MediaItem {
            folder: f.folder,
            size: text::bytes(f.bytes),
            date: f.modified.map(text::date).unwrap_or_default(),
            path: f.path,
        })
        .collect();
    MediaList {
        q: query.q.clone(),
        items,
        total,
        page,
        pages,
        prev: page.checked_sub(1),
        next: (page + 1 < pages).then_some(page + 1),
    }
}

fn chosen_view(file: &ChosenFile) -> ChosenView {
    ChosenView {
        name: file.name.clone(),
        size: text::bytes(file.bytes),
        duration: text::duration(file.duration_ms),
        origin: match file.source {
            FileSource::Staged { .. } => "uploaded",
            FileSource::Media { .. } => "from a media folder",
        },
    }
}

/// The file page, with an error beside the upload when there is one.
async fn file_page(
    web: &Web,
    wizard: &mut Wizard,
    query: &MediaQuery,
    error: Option<String>,
) -> Result<Response, WebError> {
    let plugin_name = wizard.plugin(web).map(|p| p.meta.name.clone());
    let Some(plugin_name) = plugin_name else {
        return Ok(Redirect::to("/plugins").into_response());
    };
    if wizard.state.step != Step::File {
        wizard.state.step = Step::File;
        wizard.save(web).await?;
    }
    let tenant = wizard.tenant().to_owned();
    let media = (!web.app.media_folders_for(&tenant).is_empty())
        .then(|| build_media_list(web, &tenant, query));
    render(&FilePage {
        page: PageMeta::new("Choose a file", "new", 2),
        plugin_name,
        chosen: wizard.file(web).map(chosen_view),
        upload_limit: text::bytes(web.app.config.limits.upload_bytes),
        error,
        media,
    })
}

pub async fn page(
    State(web): State<Arc<Web>>,
    mut wizard: Wizard,
    Query(query): Query<MediaQuery>,
) -> Result<Response, WebError> {
    file_page(&web, &mut wizard, &query, None).await
}

/// `GET /file/media`: the media list alone (search and paging through HTMX); the page
/// otherwise.
pub async fn media_list(
    State(web): State<Arc<Web>>,
    headers: HeaderMap,
    mut wizard: Wizard,
    Query(query): Query<MediaQuery>,
) -> Result<Response, WebError> {
    if is_htmx(&headers) {
        return render(&MediaListResponse {
            media: build_media_list(&web, wizard.tenant(), &query),
        });
    }
    file_page(&web, &mut wizard, &query, None).await
}

/// Removes a staged upload that is no longer wanted (only ever inside the staging folder).
pub fn discard_staged(web: &Web, file: Option<&ChosenFile>) {
    if let Some(ChosenFile {
        source: FileSource::Staged { path },
        ..
    }) = file
        && path.starts_with(staged_root(web))
    {
        let _ = std::fs::remove_file(path);
    }
}

/// Receives and checks an upload into `tenant`'s staging folder; the chosen file on
/// success.
async fn receive(web: &Web, tenant: &str, form: Multipart) -> Result<ChosenFile, ApiError> {
    let staged = upload::receive(
        form,
        "file",
        &staged_dir(web, tenant),
        web.app.config.limits.upload_bytes,
    )
    .await?;
    let audio = upload::probe(&staged.path, &web.app.audio_limits()).await?;
    let duration_ms = audio.duration_ms();
    // Keep the file: it waits here for Start.
    let staged = staged.into_job_file();
    Ok(ChosenFile {
        source: FileSource::Staged { path: staged.path },
        name: staged.file_name,
        bytes: staged.bytes,
        duration_ms,
    })
}

/// `POST /file/upload`: JSON for the page script (which shows upload progress), a
/// redirect or the page with the error for a plain form.
pub async fn upload(
    State(web): State<Arc<Web>>,
    headers: HeaderMap,
    mut wizard: Wizard,
    form: Multipart,
) -> Result<Response, WebError> {
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    match receive(&web, wizard.tenant(), form).await {
        Ok(chosen) => {
            discard_staged(&web, wizard.state.file.as_ref());
            wizard.state.file = Some(chosen);
            wizard.state.step = Step::Confirm;
            wizard.save(&web).await?;
            if wants_json {
                Ok(Json(serde_json::json!({ "next": "/confirm" })).into_response())
            } else {
                Ok(Redirect::to("/confirm").into_response())
            }
        }
        Err(error) => {
            let message = upload_message(&error);
            if wants_json {
                return Ok((
                    error.status,
                    Json(serde_json::json!({ "error": message, "code": error.code })),
                )
                    .into_response());
            }
            let mut response =
                file_page(&web, &mut wizard, &MediaQuery::default(), Some(message)).await?;
            *response.status_mut() = error.status;
            Ok(response)
        }
    }
}

/// What to tell the person whose upload was refused.
fn upload_message(error: &ApiError) -> String {
    match error.code {
        "undecodable_audio" => format!(
            "This file cannot be transcribed: {}",
            text::sentence(&error.message)
        ),
        "too_large" => format!("This file is too large. {}", text::sentence(&error.message)),
        _ => text::sentence(&error.message),
    }
}

#[derive(Deserialize)]
pub struct MediaChoice {
    folder: usize,
    path: String,
}

/// `POST /file/media`: chooses a file from a media folder (checked and decoded once).
pub async fn choose_media(
    State(web): State<Arc<Web>>,
    mut wizard: Wizard,
    Form(choice): Form<MediaChoice>,
) -> Result<Response, WebError> {
    let folders = web.app.media_folders_for(wizard.tenant()).to_vec();
    let real = match media::resolve(&folders, choice.folder, &choice.path) {
        Ok(real) => real,
        Err(e) => {
            let mut response = file_page(
                &web,
                &mut wizard,
                &MediaQuery::default(),
                Some(text::sentence(&e.to_string())),
            )
            .await?;
            *response.status_mut() = StatusCode::BAD_REQUEST;
            return Ok(response);
        }
    };
    let audio = match upload::probe(&real, &web.app.audio_limits()).await {
        Ok(audio) => audio,
        Err(error) => {
            let mut response = file_page(
                &web,
                &mut wizard,
                &MediaQuery::default(),
                Some(upload_message(&error)),
            )
            .await?;
            *response.status_mut() = error.status;
            return Ok(response);
        }
    };
    let name = choice
        .path
        .rsplit('/')
        .next()
        .unwrap_or(&choice.path)
        .to_owned();
    discard_staged(&web, wizard.state.file.as_ref());
    wizard.state.file = Some(ChosenFile {
        source: FileSource::Media {
            folder: choice.folder,
            path: choice.path,
        },
        name,
        bytes: std::fs::metadata(&real).map_or(0, |m| m.len()),
        duration_ms: audio.duration_ms(),
    });
    wizard.state.step = Step::Confirm;
    wizard.save(&web).await?;
    Ok(Redirect::to("/confirm").into_response())
}

/// `GET /media/{folder}/{*path}`: a media file for the preview player (with ranges).
pub async fn preview(
    State(web): State<Arc<Web>>,
    wizard: Wizard,
    Path((folder, path)): Path<(usize, String)>,
    request: Request,
) -> Result<Response, WebError> {
    let real =
        media::resolve(web.app.media_folders_for(wizard.tenant()), folder, &path).map_err(|e| {
            match e {
                MediaError::BadPath | MediaError::Outside => {
                    WebError::new(StatusCode::FORBIDDEN, text::sentence(&e.to_string()))
                }
                _ => WebError::not_found("media file"),
            }
        })?;
    serve_media(&real, request).await
}

/// Serves an audio or video file with `Range` support (the audio element seeks with
/// ranges), as the media type its bytes name ([`Container`]), never the one its name
/// suggests. A file that is no known container is `application/octet-stream` and a
/// download; `nosniff` and the sandbox policy (added to every response) keep either from
/// being read as anything else.
pub async fn serve_media(path: &std::path::Path, request: Request) -> Result<Response, WebError> {
    let sniffed = {
        let path = path.to_owned();
        tokio::task::spawn_blocking(move || Container::of_file(&path))
            .await
            .map_err(|e| WebError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    };
    let mut response = tower_http::services::ServeFile::new(path)
        .try_call(request)
        .await
        .map_err(|e| {
            WebError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("The file could not be read: {e}"),
            )
        })?
        .map(Body::new);
    let headers = response.headers_mut();
    let content_type = sniffed.map_or("application/octet-stream", Container::content_type);
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if sniffed.is_none() {
        headers.insert(
            header::CONTENT_DISPOSITION,
            HeaderValue::from_static("attachment"),
        );
    }
    Ok(response)
}
