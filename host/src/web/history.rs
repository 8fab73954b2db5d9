//! History: every stored result, newest first, with full-text search, open, export and
//! delete (HTMX asks for confirmation and removes the row in place).

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::{PageMeta, Web, WebError, Wizard, is_htmx, parse_id, render, text};
use crate::app::ApiError;
use crate::storage::ResultQuery;

const PER_PAGE: u32 = 20;

pub struct HistoryItem {
    pub id: String,
    pub file_name: String,
    pub plugin_name: String,
    pub duration: String,
    pub date: String,
    pub preview: String,
}

pub struct HistoryList {
    pub q: String,
    pub items: Vec<HistoryItem>,
    pub total: u64,
    pub page: u32,
    pub prev: Option<u32>,
    pub next: Option<u32>,
}

#[derive(Template)]
#[template(path = "history.html")]
struct HistoryPage {
    page: PageMeta,
    list: HistoryList,
}

#[derive(Template)]
#[template(path = "partials/history_list_response.html")]
struct HistoryListResponse {
    list: HistoryList,
}

#[derive(Deserialize)]
pub struct HistoryQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    page: u32,
}

pub async fn page(
    State(web): State<Arc<Web>>,
    headers: HeaderMap,
    wizard: Wizard,
    Query(query): Query<HistoryQuery>,
) -> Result<Response, WebError> {
    let store = web.app.store.clone();
    let q = query.q.trim().to_owned();
    let request = ResultQuery {
        tenant: wizard.tenant().to_owned(),
        text: (!q.is_empty()).then(|| q.clone()),
        page: query.page,
        per_page: PER_PAGE,
    };
    let found = tokio::task::spawn_blocking(move || store.list(&request))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(ApiError::from)?;
    let pages = found.total.div_ceil(u64::from(PER_PAGE));
    let list = HistoryList {
        q,
        items: found
            .items
            .into_iter()
            .map(|item| HistoryItem {
                id: item.id.to_string(),
                file_name: item.file_name,
                plugin_name: item.plugin_name,
                duration: text::duration(item.duration_ms),
                date: text::date(item.finished_at),
                preview: item.preview,
            })
            .collect(),
        total: found.total,
        page: found.page,
        prev: found.page.checked_sub(1),
        next: (u64::from(found.page) + 1 < pages).then_some(found.page + 1),
    };
    if is_htmx(&headers) {
        return render(&HistoryListResponse { list });
    }
    render(&HistoryPage {
        page: PageMeta::new("History", "history", 0),
        list,
    })
}

/// `POST /history/{id}/delete`: removes the result and its kept audio.
pub async fn delete(
    State(web): State<Arc<Web>>,
    headers: HeaderMap,
    wizard: Wizard,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let id = parse_id(&id, "result")?;
    let store = web.app.store.clone();
    let tenant = wizard.tenant().to_owned();
    let deleted = tokio::task::spawn_blocking(move || store.delete(&tenant, id))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(ApiError::from)?;
    if !deleted {
        return Err(WebError::not_found("result"));
    }
    if let Some(path) = crate::jobs::kept_audio(&web.app.config.audio_dir(), id)
        && let Err(e) = std::fs::remove_file(&path)
    {
        tracing::warn!(path = %path.display(), error = %e, "could not remove kept audio");
    }
    if is_htmx(&headers) {
        // The row is replaced by nothing.
        return Ok(().into_response());
    }
    Ok(Redirect::to("/history").into_response())
}
