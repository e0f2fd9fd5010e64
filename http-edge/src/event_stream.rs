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
//!
//! **One client never holds up another.** A task per stream (the *pump*)
//! reads the gRPC stream as fast as chat-service sends and queues each event
//! for its client, at most [`Limits::event_buffer`] of them. The gRPC read
//! never waits for the client: a client that falls that far behind gets,
//! after what is queued, a `gap` event whose id is the cursor of the last
//! event it was given (reconnecting with it as `Last-Event-ID` resumes with
//! no loss), and its stream ends. Without this, a client that stopped reading
//! would stop the relay reading its gRPC stream, and its unread events would
//! fill the HTTP/2 flow-control window of the connection to chat-service
//! that other clients' streams share.
//!
//! [`Limits::event_buffer`]: crate::config::Limits::event_buffer

use std::{
    convert::Infallible,
    sync::Arc,
    time::{Duration, Instant},
};

use allmine_chat_proto::v1::{ChatEvent, Gap, chat_event};
use axum::{
    extract::FromRequestParts,
    http::{HeaderName, HeaderValue, request::Parts},
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
};
use serde::Serialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tonic::Streaming;
use tracing::Instrument;

use crate::{dto::ChatEventData, error::ApiError};

/// How often an idle stream sends a `: keep-alive` comment, so that proxies
/// do not time it out and a vanished client is noticed; more often when the
/// edge's own idle timeout is shorter (half of it), so that a live stream is
/// never taken for an idle connection.
pub const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(15);

/// Tells nginx (and proxies that copy it) not to buffer the response.
const X_ACCEL_BUFFERING: HeaderName = HeaderName::from_static("x-accel-buffering");

/// How long a client refused for the stream cap is asked to wait.
const FULL_RETRY_AFTER: Duration = Duration::from_secs(5);

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

    /// Resolves once the edge starts shutting down.
    pub async fn cancelled(&self) {
        self.0.cancelled().await;
    }
}

/// The edge's event streams: how many may be open, how many events each
/// may have queued, and the signal that ends them all.
#[derive(Debug, Clone)]
pub struct EventStreams {
    shutdown: Shutdown,
    slots: Arc<Semaphore>,
    max_streams: usize,
    buffer: usize,
    keep_alive: Duration,
    /// The shared feeds, when the edge has them (an extension of its own,
    /// installed by `startup`; read by the extractor).
    fanout: Option<crate::fanout::Fanout>,
}

impl EventStreams {
    /// `idle_timeout` is the connection idle timeout the keep-alive comments
    /// must beat.
    pub fn new(
        shutdown: Shutdown,
        max_streams: usize,
        buffer: usize,
        idle_timeout: Duration,
    ) -> Self {
        Self {
            shutdown,
            slots: Arc::new(Semaphore::new(max_streams)),
            max_streams,
            buffer: buffer.max(1),
            keep_alive: KEEP_ALIVE_INTERVAL.min(idle_timeout / 2),
            fanout: None,
        }
    }

    /// The shared feeds, if the edge runs them (`EDGE_UPSTREAM_TOKEN`).
    pub fn fanout(&self) -> Option<&crate::fanout::Fanout> {
        self.fanout.as_ref()
    }

    /// A slot for one more stream, or the 503 that says the edge is full.
    pub fn open(&self) -> Result<StreamSlot, ApiError> {
        let permit = Arc::clone(&self.slots).try_acquire_owned().map_err(|_| {
            crate::metrics::shed(crate::metrics::Shed::EventStreams);
            ApiError::Overloaded {
                reasons: vec![format!(
                    "The edge already serves {} event streams; retry later",
                    self.max_streams
                )],
                retry_after: FULL_RETRY_AFTER,
            }
        })?;
        Ok(StreamSlot {
            _counted: crate::metrics::EventStreamGauge::open(),
            _permit: permit,
            user: None,
            buffer: self.buffer,
            keep_alive: self.keep_alive,
            shutdown: self.shutdown.clone(),
        })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for EventStreams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let mut streams = parts.extensions.get::<Self>().cloned().ok_or_else(|| {
            ApiError::Internal("the event streams extension is not installed".to_owned())
        })?;
        streams.fanout = parts.extensions.get::<crate::fanout::Fanout>().cloned();
        Ok(streams)
    }
}

/// One open event stream's place under the cap; freed when its response
/// ends.
#[derive(Debug)]
pub struct StreamSlot {
    /// In `edge_event_streams_open` while the stream lives.
    _counted: crate::metrics::EventStreamGauge,
    _permit: OwnedSemaphorePermit,
    /// The client's place among its user's streams (fan-out clients).
    user: Option<crate::fanout::users::UserSlot>,
    buffer: usize,
    keep_alive: Duration,
    shutdown: Shutdown,
}

impl StreamSlot {
    /// Keeps `user` (the client's place among its user's streams) for as
    /// long as the stream lives.
    pub fn hold(&mut self, user: crate::fanout::users::UserSlot) {
        self.user = Some(user);
    }

    /// Events a client may fall behind before it gets a `gap`.
    pub fn buffer(&self) -> usize {
        self.buffer
    }

    /// How long an idle stream waits before a keep-alive comment.
    pub fn keep_alive(&self) -> Duration {
        self.keep_alive
    }
}

/// The 200 response that relays `events`: `text/event-stream`, not cached or
/// buffered by proxies, a keep-alive comment every [`KEEP_ALIVE_INTERVAL`]
/// (or sooner, see there).
///
/// Logs go to the current span (the request's), also after the handler has
/// returned, while the body streams.
pub fn respond(events: Streaming<ChatEvent>, slot: StreamSlot) -> Response {
    let span = tracing::Span::current();
    let keep_alive = slot.keep_alive;
    let (queue, queued) = mpsc::channel(slot.buffer);
    let (last_word, last) = oneshot::channel();
    let pump = Pump {
        events,
        queue,
        last_word: Some(last_word),
        shutdown: slot.shutdown.clone(),
        started: Instant::now(),
        forwarded: 0,
        last_cursor: None,
    };
    tokio::spawn(pump.run().instrument(span));
    let delivery = Delivery {
        queued,
        last: Some(last),
        _slot: slot,
    };
    let stream = futures::stream::unfold(delivery, |mut delivery| async move {
        let event = delivery.next().await?;
        Some((Ok::<_, Infallible>(event), delivery))
    });
    let sse = Sse::new(stream).keep_alive(KeepAlive::new().interval(keep_alive).text("keep-alive"));
    // `Sse` sets `Content-Type: text/event-stream` and `Cache-Control:
    // no-cache`.
    ([(X_ACCEL_BUFFERING, HeaderValue::from_static("no"))], sse).into_response()
}

/// The client's side: the queued events, then the pump's last word (an
/// `error` or a `gap` event) if it had one.
struct Delivery {
    queued: mpsc::Receiver<Event>,
    last: Option<oneshot::Receiver<Event>>,
    _slot: StreamSlot,
}

impl Delivery {
    async fn next(&mut self) -> Option<Event> {
        if let Some(event) = self.queued.recv().await {
            return Some(event);
        }
        // The pump has stopped: its last word, if any, comes after
        // everything it queued.
        self.last.take()?.await.ok()
    }
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
    /// The client fell more than its buffer behind.
    FellBehind,
    /// The edge is shutting down.
    Shutdown,
}

/// Reads the gRPC stream into the client's queue; never waits for the
/// client.
struct Pump {
    events: Streaming<ChatEvent>,
    queue: mpsc::Sender<Event>,
    last_word: Option<oneshot::Sender<Event>>,
    shutdown: Shutdown,
    started: Instant,
    forwarded: u64,
    /// The cursor of the last event queued: where a client that falls
    /// behind resumes.
    last_cursor: Option<String>,
}

impl Pump {
    async fn run(mut self) {
        let ended = self.relay().await;
        let duration_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        tracing::info!(
            ?ended,
            events = self.forwarded,
            duration_ms,
            "event stream closed"
        );
    }

    async fn relay(&mut self) -> Ended {
        loop {
            let received = tokio::select! {
                received = self.events.message() => received,
                () = self.shutdown.0.cancelled() => return Ended::Shutdown,
                () = self.queue.closed() => return Ended::ClientLeft,
            };
            let event = match received {
                Ok(Some(event)) => event,
                Ok(None) => return Ended::Completed,
                Err(status) => return self.fail(ApiError::from(status)),
            };
            let cursor = event.cursor.clone();
            let event = match sse_event(event) {
                Ok(Some(event)) => event,
                // An event type newer than this build: its client could not
                // read it either. Its cursor is not lost: the next event's
                // is later.
                Ok(None) => {
                    tracing::debug!("skipped an event of an unknown type");
                    continue;
                }
                Err(error) => return self.fail(error),
            };
            match self.queue.try_send(event) {
                Ok(()) => {
                    self.forwarded += 1;
                    self.last_cursor = Some(cursor);
                }
                Err(mpsc::error::TrySendError::Full(_)) => return self.fell_behind(),
                Err(mpsc::error::TrySendError::Closed(_)) => return Ended::ClientLeft,
            }
        }
    }

    /// Ends the stream with an `error` event.
    fn fail(&mut self, error: ApiError) -> Ended {
        error.log();
        self.say_last(error_event(&error));
        Ended::Failed
    }

    /// Ends the stream with a `gap` event at the last cursor queued.
    fn fell_behind(&mut self) -> Ended {
        tracing::info!("event stream client fell behind; sending a gap");
        let gap = ChatEvent {
            cursor: self.last_cursor.clone().unwrap_or_default(),
            event: Some(chat_event::Event::Gap(Gap {
                reason: "this client fell behind the live chat: reconnect with the gap's id as Last-Event-ID".to_owned(),
            })),
        };
        match sse_event(gap) {
            Ok(Some(event)) => self.say_last(event),
            _ => self.say_last(error_event(&ApiError::Unavailable(
                "a client fell behind before its first event".to_owned(),
            ))),
        }
        Ended::FellBehind
    }

    fn say_last(&mut self, event: Event) {
        if let Some(last_word) = self.last_word.take() {
            let _ = last_word.send(event);
        }
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

/// The `data` of the `error` event: the envelope's `errors`, nothing else.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = ErrorEvent)]
pub struct ErrorEventData<'a> {
    /// The canonical phrase of the status, then the reasons, as in the
    /// error envelope.
    #[schema(value_type = Vec<String>, min_items = 1)]
    pub errors: Vec<&'a str>,
}

/// The `error` event.
fn error_event(error: &ApiError) -> Event {
    let data = one_line_json(&ErrorEventData {
        errors: error.client_errors(),
    })
    .unwrap_or_else(|_| r#"{"errors":["Internal server error"]}"#.to_owned());
    Event::default().event("error").data(data)
}

/// Compact JSON is one line: serde_json escapes line breaks inside strings.
pub(crate) fn one_line_json(value: &impl Serialize) -> Result<String, ApiError> {
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
