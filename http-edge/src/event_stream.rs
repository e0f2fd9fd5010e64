//! Relaying a `SubscribeMessages` stream as Server-Sent Events.
//!
//! Each `ChatEvent` becomes one SSE event: `id:` its cursor (what a
//! reconnecting `EventSource` sends back as `Last-Event-ID`), `event:` its
//! type and `data:` one line of JSON (see [`ChatEventData`]). If the gRPC
//! stream fails, the client gets one `event: error` whose data is
//! `{"errors": [...]}` as in the error envelope (the detail is logged, never
//! sent), and the response ends. It also ends when chat-service ends the
//! stream and when the edge shuts down; the gRPC call is dropped, and so
//! cancelled on chat-service, whenever the response ends, the client's
//! disconnection included.

use std::{
    convert::Infallible,
    time::{Duration, Instant},
};

use allmine_chat_proto::v1::ChatEvent;
use axum::{
    extract::FromRequestParts,
    http::{HeaderName, HeaderValue, request::Parts},
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
};
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tonic::Streaming;
use tracing::Instrument;

use crate::{dto::ChatEventData, error::ApiError};

/// How often an idle stream sends a `: keep-alive` comment, so that proxies
/// do not time it out and a vanished client is noticed.
pub const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(15);

/// Tells nginx (and proxies that copy it) not to buffer the response.
const X_ACCEL_BUFFERING: HeaderName = HeaderName::from_static("x-accel-buffering");

/// Cancelled when the edge starts shutting down: every open event stream then
/// ends, so that the graceful shutdown, which waits for responses to finish,
/// does not wait for clients that may never leave. Their `EventSource`
/// reconnects, with `Last-Event-ID`, to another instance.
#[derive(Debug, Clone, Default)]
pub struct Shutdown(CancellationToken);

impl Shutdown {
    pub fn new() -> Self {
        Self::default()
    }

    /// Ends every open event stream.
    pub fn trigger(&self) {
        self.0.cancel();
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Shutdown {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Self>()
            .cloned()
            .ok_or_else(|| ApiError::Internal("the shutdown extension is not installed".to_owned()))
    }
}

/// The 200 response that relays `events`: `text/event-stream`, not cached or
/// buffered by proxies, a keep-alive comment every [`KEEP_ALIVE_INTERVAL`].
///
/// Logs go to the current span (the request's), also after the handler has
/// returned, while the body streams.
pub fn respond(events: Streaming<ChatEvent>, shutdown: Shutdown) -> Response {
    let relay = Relay {
        events: Some(events),
        shutdown,
        span: tracing::Span::current(),
        started: Instant::now(),
        sent: 0,
        ended: Ended::ClientLeft,
    };
    let stream = futures::stream::unfold(relay, |mut relay| async move {
        let span = relay.span.clone();
        let event = relay.next_event().instrument(span).await?;
        Some((Ok::<_, Infallible>(event), relay))
    });
    let sse = Sse::new(stream).keep_alive(
        KeepAlive::new()
            .interval(KEEP_ALIVE_INTERVAL)
            .text("keep-alive"),
    );
    // `Sse` sets `Content-Type: text/event-stream` and `Cache-Control:
    // no-cache`.
    ([(X_ACCEL_BUFFERING, HeaderValue::from_static("no"))], sse).into_response()
}

/// Why a stream ended, for the log.
#[derive(Debug, Clone, Copy)]
enum Ended {
    /// The response was dropped before anything else ended it.
    ClientLeft,
    /// chat-service ended the stream (a gap, or its own shutdown).
    Completed,
    /// The gRPC stream failed, or sent an event that cannot be relayed.
    Failed,
    /// The edge is shutting down.
    Shutdown,
}

struct Relay {
    /// `None` once the stream has ended; dropping it cancels the call.
    events: Option<Streaming<ChatEvent>>,
    shutdown: Shutdown,
    span: tracing::Span,
    started: Instant,
    sent: u64,
    ended: Ended,
}

impl Relay {
    /// The next SSE event, or `None` when the response must end.
    async fn next_event(&mut self) -> Option<Event> {
        loop {
            let events = self.events.as_mut()?;
            let received = tokio::select! {
                received = events.message() => Some(received),
                () = self.shutdown.0.cancelled() => None,
            };
            let Some(received) = received else {
                self.end(Ended::Shutdown);
                return None;
            };
            let event = match received {
                Ok(Some(event)) => event,
                Ok(None) => {
                    self.end(Ended::Completed);
                    return None;
                }
                Err(status) => return Some(self.fail(ApiError::from(status))),
            };
            match sse_event(event) {
                Ok(Some(event)) => {
                    self.sent += 1;
                    return Some(event);
                }
                // An event type newer than this build: its client could not
                // read it either. Its cursor is not lost: the next event's
                // is later.
                Ok(None) => tracing::debug!("skipped an event of an unknown type"),
                Err(error) => return Some(self.fail(error)),
            }
        }
    }

    /// Ends the stream with an `error` event.
    fn fail(&mut self, error: ApiError) -> Event {
        error.log();
        self.end(Ended::Failed);
        error_event(&error)
    }

    fn end(&mut self, ended: Ended) {
        self.ended = ended;
        self.events = None;
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let duration_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.span.in_scope(|| {
            tracing::info!(
                ended = ?self.ended,
                events = self.sent,
                duration_ms,
                "event stream closed"
            );
        });
    }
}

/// One gRPC event as an SSE event; `None` for an event of an unknown type.
fn sse_event(event: ChatEvent) -> Result<Option<Event>, ApiError> {
    let ChatEvent { cursor, event } = event;
    let Some(event) = event else {
        return Ok(None);
    };
    // `Event::id` panics on line breaks and NUL, and an empty id would make
    // the client forget where to resume.
    if cursor.is_empty() || cursor.bytes().any(|byte| byte.is_ascii_control()) {
        return Err(ApiError::Internal(format!(
            "chat-service sent an event whose cursor cannot be an SSE id: {cursor:?}"
        )));
    }
    let data = ChatEventData::from(event);
    let json = one_line_json(&data)?;
    Ok(Some(
        Event::default()
            .id(cursor)
            .event(data.event_type())
            .data(json),
    ))
}

/// The `error` event: the envelope's `errors`, nothing else.
fn error_event(error: &ApiError) -> Event {
    #[derive(Serialize)]
    struct ErrorData<'a> {
        errors: Vec<&'a str>,
    }
    let data = one_line_json(&ErrorData {
        errors: error.client_errors(),
    })
    .unwrap_or_else(|_| r#"{"errors":["Internal server error"]}"#.to_owned());
    Event::default().event("error").data(data)
}

/// Compact JSON is one line: serde_json escapes line breaks inside strings.
fn one_line_json(value: &impl Serialize) -> Result<String, ApiError> {
    serde_json::to_string(value)
        .map_err(|error| ApiError::Internal(format!("cannot serialize an event: {error}")))
}

#[cfg(test)]
mod tests {
    use allmine_chat_proto::v1::{Gap, chat_event};

    use super::*;

    fn gap(cursor: &str) -> ChatEvent {
        ChatEvent {
            cursor: cursor.to_owned(),
            event: Some(chat_event::Event::Gap(Gap {
                reason: "line\nbreak".to_owned(),
            })),
        }
    }

    #[test]
    fn cursors_that_cannot_be_an_sse_id_are_refused() {
        for cursor in ["", "a\nb", "a\rb", "a\0b"] {
            assert!(sse_event(gap(cursor)).is_err(), "{cursor:?}");
        }
        assert!(matches!(sse_event(gap("AAAB-_x")), Ok(Some(_))));
    }

    #[test]
    fn an_event_without_a_type_is_skipped() {
        let event = ChatEvent {
            cursor: "c".to_owned(),
            event: None,
        };
        assert!(matches!(sse_event(event), Ok(None)));
    }

    #[test]
    fn json_data_stays_on_one_line() {
        let json = one_line_json(&ChatEventData::from(chat_event::Event::Gap(Gap {
            reason: "line\nbreak\r".to_owned(),
        })))
        .expect("serializable");
        assert!(!json.contains('\n') && !json.contains('\r'), "{json}");
    }

    #[test]
    fn an_error_event_shows_no_internals() {
        let event = error_event(&ApiError::Unavailable("tcp connect 10.0.0.7".to_owned()));
        let text = format!("{event:?}");
        assert!(!text.contains("10.0.0.7"), "{text}");
    }
}
