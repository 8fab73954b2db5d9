//! `stream=true`: the transcript as Server-Sent Events, in OpenAI's shapes.
//!
//! Each live segment becomes `{"type":"transcript.text.delta","delta":…}` (segments
//! joined by single spaces), and the end is one `{"type":"transcript.text.done",
//! "text":…}` whose text is exactly the concatenated deltas. If the final transcript goes
//! on past what the live segments said (live segments can be dropped under load), the
//! rest is sent as one more delta first. A job that fails ends the stream with an
//! `{"error": {…}}` event, which OpenAI's clients raise as an `APIError`.
//!
//! Every `data:` line is JSON and no event carries an `id:`: OpenAI's Python client
//! keeps the last event id between events, and would then read each heartbeat comment
//! as an event with empty (non-JSON) data.

use std::convert::Infallible;
use std::sync::Arc;

use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::Serialize;
use uuid::Uuid;

use super::disconnect::CancelOnDrop;
use super::error::OpenAiError;
use super::response::transcript_text;
use super::wait;
use crate::app::AppState;
use crate::jobs::EventKind;
use crate::storage::StoredResult;

/// The SSE response for a submitted job. `guard` cancels the job if the client goes
/// away before the end.
pub fn respond(state: Arc<AppState>, tenant: String, id: Uuid, guard: CancelOnDrop) -> Response {
    let heartbeat = state.heartbeat();
    let events = async_stream::stream! {
        let mut guard = guard;
        let mut text = StreamedText::default();
        if let Some(events) = wait::job_events(state.tracker.clone(), tenant.clone(), id).await {
            let mut events = std::pin::pin!(events);
            while let Some(event) = events.next().await {
                if let EventKind::Segment { segment, .. } = &event.kind {
                    if let Some(delta) = text.push_segment(&segment.text) {
                        yield Ok::<Event, Infallible>(delta_event(&delta));
                    }
                } else if let Some(outcome) = wait::outcome(&event.kind) {
                    guard.disarm();
                    for event in finish(&mut text, outcome) {
                        yield Ok(event);
                    }
                    return;
                }
            }
        }
        // The tracker no longer holds the job: its stored result is the whole story.
        guard.disarm();
        let outcome = wait::stored_result(&state, &tenant, id).await;
        for event in finish(&mut text, outcome) {
            yield Ok(event);
        }
    };
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(heartbeat).text("heartbeat"))
        .into_response()
}

/// The closing events: the rest of the text and `done`, or the error.
fn finish(text: &mut StreamedText, outcome: Result<Arc<StoredResult>, OpenAiError>) -> Vec<Event> {
    match outcome {
        Ok(result) => {
            let mut events = Vec::new();
            if let Some(rest) = text.finish(&transcript_text(&result.transcript)) {
                events.push(delta_event(&rest));
            }
            events.push(json_event(&TextEvent {
                kind: "transcript.text.done",
                delta: None,
                text: Some(&text.streamed),
            }));
            events
        }
        Err(error) => vec![Event::default().data(error.body_json())],
    }
}

/// `transcript.text.delta` and `transcript.text.done`, fields in OpenAI's order.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = TranscriptTextEvent)]
pub(super) struct TextEvent<'a> {
    /// `transcript.text.delta` or `transcript.text.done`.
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    delta: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
}

fn delta_event(delta: &str) -> Event {
    json_event(&TextEvent {
        kind: "transcript.text.delta",
        delta: Some(delta),
        text: None,
    })
}

fn json_event(event: &TextEvent<'_>) -> Event {
    Event::default().data(serde_json::to_string(event).unwrap_or_else(|_| "{}".to_owned()))
}

/// The text sent so far, so that `done` repeats exactly what the deltas said.
#[derive(Debug, Default)]
struct StreamedText {
    streamed: String,
}

impl StreamedText {
    /// The delta for a live segment: its trimmed text, after a space unless first.
    fn push_segment(&mut self, segment_text: &str) -> Option<String> {
        let piece = segment_text.trim();
        if piece.is_empty() {
            return None;
        }
        let delta = if self.streamed.is_empty() {
            piece.to_owned()
        } else {
            format!(" {piece}")
        };
        self.streamed.push_str(&delta);
        Some(delta)
    }

    /// The delta that completes the stream to the final text, if it is missing any.
    ///
    /// When the live segments said something the final transcript does not start with
    /// (a plugin whose result differs from what it showed live), deltas cannot be taken
    /// back: `done` then repeats what was streamed, and the stored result keeps the
    /// final text.
    fn finish(&mut self, final_text: &str) -> Option<String> {
        match final_text.strip_prefix(self.streamed.as_str()) {
            Some("") => None,
            Some(rest) => {
                self.streamed.push_str(rest);
                Some(rest.to_owned())
            }
            None => {
                tracing::warn!(
                    "live segments differ from the final transcript; the stream keeps what it sent"
                );
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_are_segments_joined_by_spaces() {
        let mut text = StreamedText::default();
        assert_eq!(text.push_segment(" Go forward"), Some("Go forward".into()));
        assert_eq!(text.push_segment("  "), None);
        assert_eq!(
            text.push_segment("ten meters. "),
            Some(" ten meters.".into())
        );
        assert_eq!(text.finish("Go forward ten meters."), None);
        assert_eq!(text.streamed, "Go forward ten meters.");
    }

    #[test]
    fn missing_end_of_the_final_text_is_one_more_delta() {
        let mut text = StreamedText::default();
        text.push_segment("one");
        assert_eq!(text.finish("one two three"), Some(" two three".into()));
        assert_eq!(text.streamed, "one two three");
        let mut silent = StreamedText::default();
        assert_eq!(silent.finish("all at once"), Some("all at once".into()));
    }

    #[test]
    fn done_repeats_the_deltas_when_the_final_text_disagrees() {
        let mut text = StreamedText::default();
        text.push_segment("live words");
        assert_eq!(text.finish("other words"), None);
        assert_eq!(text.streamed, "live words");
    }
}
