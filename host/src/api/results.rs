//! `GET /api/results`, `GET|DELETE /api/results/{id}`, `GET /api/results/{id}/export`.

use std::sync::Arc;

use crate::app::extract::ApiQuery;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Deserialize;
use uuid::Uuid;

use super::{ApiError, Caller};
use crate::app::AppState;
use crate::app::lookup::{blocking, load_result};
use crate::export::{self, ExportFormat, SubtitleOptions};
use crate::storage::{ResultPage, ResultQuery, StoredResult};

#[derive(Deserialize)]
pub struct ListQuery {
    q: Option<String>,
    #[serde(default)]
    page: u32,
    per_page: Option<u32>,
}

fn parse_id(id: &str) -> Result<Uuid, ApiError> {
    crate::app::extract::parse_id(id).ok_or_else(|| ApiError::not_found("result"))
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<ResultPage>, ApiError> {
    let store = state.store.clone();
    let query = ResultQuery {
        tenant: caller.tenant.clone(),
        text: query.q,
        page: query.page,
        per_page: query.per_page.unwrap_or(20),
    };
    Ok(Json(blocking(move || store.list(&query)).await?))
}

pub async fn get_one(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<StoredResult>, ApiError> {
    Ok(Json(
        load_result(&state, parse_id(&id)?, &caller.tenant).await?,
    ))
}

pub async fn delete(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id(&id)?;
    let store = state.store.clone();
    let tenant = caller.tenant.clone();
    let deleted = blocking(move || store.delete(&tenant, id)).await?;
    if !deleted {
        return Err(ApiError::not_found("result"));
    }
    remove_kept_audio(&state, id);
    Ok(StatusCode::NO_CONTENT)
}

/// Completed jobs keep their upload for playback; deleting the result removes it.
fn remove_kept_audio(state: &AppState, id: Uuid) {
    if let Some(path) = crate::jobs::kept_audio(&state.config.audio_dir(), id)
        && let Err(e) = std::fs::remove_file(&path)
    {
        tracing::warn!(path = %path.display(), error = %e, "could not remove kept audio");
    }
}

/// The export's query string. The subtitle options are spelled out rather than
/// `#[serde(flatten)]`ed: flattening makes every query value a string, so a number
/// such as `max_chars_per_line=42` would be refused.
#[derive(Deserialize)]
pub struct ExportQuery {
    format: Option<String>,
    max_chars_per_line: Option<usize>,
    max_lines_per_cue: Option<usize>,
}

pub async fn export(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<ExportQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let format: ExportFormat = query
        .format
        .as_deref()
        .unwrap_or("txt")
        .parse()
        .map_err(|e: export::ExportError| ApiError::bad_request(e.to_string()))?;
    let result = load_result(&state, parse_id(&id)?, &caller.tenant).await?;
    let options = SubtitleOptions {
        max_chars_per_line: query.max_chars_per_line,
        max_lines_per_cue: query.max_lines_per_cue,
    };
    let body = export::render(&result, format, &options);
    let stem = std::path::Path::new(&result.file_name)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("transcript");
    let safe: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let disposition = format!("attachment; filename=\"{safe}.{}\"", format.extension());
    Ok((
        [
            (header::CONTENT_TYPE, format.content_type().to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_query_takes_numeric_subtitle_options() {
        let uri: axum::http::Uri = "/export?format=srt&max_chars_per_line=42&max_lines_per_cue=2"
            .parse()
            .unwrap();
        let axum::extract::Query(query) =
            axum::extract::Query::<ExportQuery>::try_from_uri(&uri).unwrap();
        assert_eq!(query.format.as_deref(), Some("srt"));
        assert_eq!(query.max_chars_per_line, Some(42));
        assert_eq!(query.max_lines_per_cue, Some(2));
    }
}
