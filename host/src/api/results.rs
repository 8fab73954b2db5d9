//! `GET /api/results`, `GET|DELETE /api/results/{id}`, `GET /api/results/{id}/export`,
//! `PUT /api/results/{id}/speakers`.

use std::sync::Arc;

use crate::app::extract::ApiQuery;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use std::collections::BTreeMap;

use serde::Deserialize;
use uuid::Uuid;

use super::{ApiError, Caller};
use crate::app::AppState;
use crate::app::lookup::{blocking, load_result};
use crate::export::{self, ExportFormat, SubtitleOptions};
use crate::storage::{ResultPage, ResultQuery, StoredResult};

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Full-text search over the transcripts' text and file names.
    q: Option<String>,
    /// Zero-based page number.
    #[serde(default)]
    #[param(format = Int64, maximum = 4294967295_u32)]
    page: u32,
    /// Results per page: 20 by default, at most 200 (more asks for 200).
    #[param(format = Int64, maximum = 4294967295_u32)]
    per_page: Option<u32>,
}

fn parse_id(id: &str) -> Result<Uuid, ApiError> {
    crate::app::extract::parse_id(id).ok_or_else(|| ApiError::not_found("result"))
}

#[utoipa::path(
    get, path = "/api/results", operation_id = "list_results", tag = "results",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of the tenant's stored results, newest first", body = ResultPage),
        (status = 400, description = "A query parameter that is not what it should be (`invalid_query`)", body = crate::app::ApiErrorEnvelope),
    )
)]
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

#[utoipa::path(
    get, path = "/api/results/{id}", operation_id = "get_result", tag = "results",
    params(("id" = String, Path, format = Uuid, description = "The result id, which is its job's (a malformed one is simply not found)")),
    responses(
        (status = 200, description = "The stored result with its transcript", body = StoredResult),
        (status = 404, description = "No such result for this tenant", body = crate::app::ApiErrorEnvelope),
    )
)]
pub async fn get_one(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<StoredResult>, ApiError> {
    Ok(Json(
        load_result(&state, parse_id(&id)?, &caller.tenant).await?,
    ))
}

#[utoipa::path(
    delete, path = "/api/results/{id}", operation_id = "delete_result", tag = "results",
    params(("id" = String, Path, format = Uuid, description = "The result id, which is its job's (a malformed one is simply not found)")),
    responses(
        (status = 204, description = "Deleted, with its kept audio"),
        (status = 404, description = "No such result for this tenant", body = crate::app::ApiErrorEnvelope),
    )
)]
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

/// `PUT /api/results/{id}/speakers`: names for the result's speaker labels.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SpeakerNames {
    /// Label (one of the result's `diarization.speakers`) → name: trimmed, 1 to 64
    /// characters without control characters; an empty name removes the label's name.
    /// Labels left out keep their names.
    #[schema(example = json!({"SPEAKER_1": "Interviewer"}))]
    names: BTreeMap<String, String>,
}

#[utoipa::path(
    put, path = "/api/results/{id}/speakers", operation_id = "rename_speakers", tag = "results",
    params(("id" = String, Path, format = Uuid, description = "The result id, which is its job's (a malformed one is simply not found)")),
    request_body = SpeakerNames,
    responses(
        (status = 200, description = "The result with the new names; every export uses them", body = StoredResult),
        (status = 400, description = "A label the result does not have (`unknown_speaker`), a name too long or with control characters (`invalid_speaker_name`), more names than speakers (`too_many_names`), or a body that is not `{\"names\": {...}}` (`invalid_body`)", body = crate::app::ApiErrorEnvelope),
        (status = 404, description = "No such result for this tenant", body = crate::app::ApiErrorEnvelope),
        (status = 409, description = "The result has no speakers to name (`not_diarized`): no diarizer ran, or it failed", body = crate::app::ApiErrorEnvelope),
    )
)]
pub async fn rename_speakers(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<Json<SpeakerNames>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<StoredResult>, ApiError> {
    let id = parse_id(&id)?;
    let Json(body) = body.map_err(|rejection| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            rejection.body_text(),
        )
    })?;
    let result = crate::speakers::rename(&state, &caller.tenant, id, &body.names).await?;
    Ok(Json(result))
}

/// The export's query string. The subtitle options are spelled out rather than
/// `#[serde(flatten)]`ed: flattening makes every query value a string, so a number
/// such as `max_chars_per_line=42` would be refused.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// `txt` (the default), `srt`, `vtt` or `json`.
    #[param(value_type = Option<crate::api::openapi::ExportFormatName>)]
    format: Option<String>,
    /// Subtitles: split cues so no line is longer (at word boundaries).
    #[param(format = Int64, maximum = 4294967295_u32)]
    max_chars_per_line: Option<u32>,
    /// Subtitles: at most this many lines per cue.
    #[param(format = Int64, maximum = 4294967295_u32)]
    max_lines_per_cue: Option<u32>,
    /// WebVTT: a timestamp tag before each word, from the word timings (Whisper's
    /// `words`, for instance), for players that highlight the word being spoken.
    word_timestamps: Option<bool>,
}

#[utoipa::path(
    get, path = "/api/results/{id}/export", operation_id = "export_result", tag = "results",
    params(("id" = String, Path, format = Uuid, description = "The result id, which is its job's (a malformed one is simply not found)"), ExportQuery),
    responses(
        (status = 200, description = "The export, as an attachment (`Content-Disposition`)",
            content(
                (String = "text/plain"),
                (String = "application/x-subrip"),
                (String = "text/vtt"),
                (StoredResult = "application/json"),
            )),
        (status = 400, description = "An unknown `format`, or a query parameter that is not what it should be", body = crate::app::ApiErrorEnvelope),
        (status = 404, description = "No such result for this tenant", body = crate::app::ApiErrorEnvelope),
    )
)]
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
        max_chars_per_line: query.max_chars_per_line.map(widen),
        max_lines_per_cue: query.max_lines_per_cue.map(widen),
        word_timestamps: query.word_timestamps.unwrap_or(false),
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

/// A query number as a count (a `u32` always fits on the platforms we build for).
fn widen(n: u32) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
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
