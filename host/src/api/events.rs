//! `GET /api/jobs/{id}/events`: Server-Sent Events with resumption.
//!
//! A subscriber first gets the job's event log after `Last-Event-ID` (or all of it),
//! then live events; ids are the events' sequence numbers, so a reconnect gets exactly
//! what it missed. The stream ends after the terminal event; a comment heartbeat keeps
//! idle connections open. The job keeps running when subscribers go away.

use std::convert::Infallible;
use std::sync::Arc;

use crate::app::extract::ApiQuery;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use serde::Deserialize;

use super::jobs::parse_id;
use super::{ApiError, Caller};
use crate::app::AppState;
use crate::app::lookup::find_job;
use crate::jobs::{EventKind, JobEvent};

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Same as the `Last-Event-ID` header, for clients that cannot set headers.
    after: Option<u64>,
}

/// The `Last-Event-ID` header: the id of an event this stream sent, if given. Anything
/// else is a 400, as a bad `?after=` is, rather than a silent replay from the start (an
/// empty one too: browsers send the header only when they have an id).
fn last_event_id(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(value) = headers.get("last-event-id") else {
        return Ok(None);
    };
    let text = value.to_str().map(str::trim).unwrap_or("?");
    text.parse::<u64>().map(Some).map_err(|_| {
        ApiError::bad_request(format!(
            "Last-Event-ID {text:?} is not the id of an event (a number this stream sent)"
        ))
    })
}

fn to_sse(event: &JobEvent) -> Event {
    let data = serde_json::to_string(event).unwrap_or_else(|_| "{}".into());
    Event::default()
        .id(event.seq.to_string())
        .event(event.kind.name())
        .data(data)
}

#[utoipa::path(
    get, path = "/api/jobs/{id}/events", operation_id = "follow_job_events", tag = "jobs",
    params(
        ("id" = String, Path, format = Uuid, description = "The job id (a malformed one is simply not found)"),
        EventsQuery,
        ("last-event-id" = Option<u64>, Header, description = "Resume after this event (the `id` of the last one received)"),
    ),
    responses(
        (status = 200, description = crate::api::openapi::EVENTS_DESCRIPTION,
            content((crate::api::openapi::JobEventMessage = "text/event-stream"))),
        (status = 400, description = "`after` or `Last-Event-ID` is not an event id (`invalid_query`, `bad_request`)", body = crate::app::ApiErrorEnvelope),
        (status = 404, description = "No such job for this tenant", body = crate::app::ApiErrorEnvelope),
    )
)]
pub async fn stream(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<EventsQuery>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let id = parse_id(&id)?;
    let after = last_event_id(&headers)?.or(query.after).unwrap_or(0);
    let tenant = caller.tenant;
    let events = state.tracker.follow(&tenant, id, after).await;
    // A job the tracker no longer holds (e.g. after a restart) but storage does: its
    // whole story is one `done` event.
    let stored = match events {
        Some(_) => None,
        None => {
            let snapshot = find_job(&state, id, &tenant).await?;
            snapshot.result.map(|result| JobEvent {
                seq: 1,
                kind: EventKind::Done {
                    result,
                    usage: Default::default(),
                },
            })
        }
    };
    let open = state.tracker.metrics().sse_stream();
    let stream = async_stream::stream! {
        let _open = open;
        match events {
            Some(events) => {
                let mut events = std::pin::pin!(events);
                while let Some(event) = events.next().await {
                    yield Ok(to_sse(&event));
                }
            }
            None => {
                if let Some(event) = stored.filter(|e| e.seq > after) {
                    yield Ok(to_sse(&event));
                }
            }
        }
    };
    Ok(Sse::new(stream).keep_alive(
        KeepAlive::new()
            .interval(state.heartbeat())
            .text("heartbeat"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("last-event-id", value.parse().expect("a header value"));
        headers
    }

    #[test]
    fn last_event_id_is_an_event_number_if_given() {
        assert_eq!(last_event_id(&HeaderMap::new()).ok(), Some(None));
        assert_eq!(last_event_id(&with(" 7 ")).ok(), Some(Some(7)));
        for bad in ["9tHV", "", "null", "-1"] {
            let refused = last_event_id(&with(bad)).expect_err("not an id");
            assert_eq!(
                refused.status,
                axum::http::StatusCode::BAD_REQUEST,
                "{bad:?}"
            );
        }
    }
}
