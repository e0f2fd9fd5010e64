//! `GET /api/v1/live-stream/{streamId}/chat/events`: a stream's chat, live,
//! as Server-Sent Events (`SubscribeMessages`).
//!
//! - The token: the `Authorization: Bearer` header, or, for browsers
//!   (`EventSource` sends no headers), an `access_token` query parameter.
//! - Where to start: the `Last-Event-ID` header (what `EventSource` sends when
//!   it reconnects), else an `after` query parameter (a first connection from
//!   a cursor), else from now on.
//! - chat-service is called first and its answer awaited: a refusal is the
//!   usual error envelope with its status (401, 403, 404, 503, ...), not a
//!   stream. Only an accepted subscription is answered 200 and streamed (see
//!   [`crate::event_stream`]).
//! - At most `EDGE_MAX_EVENT_STREAMS` streams are open at once; past that a
//!   new one is answered 503 with `Retry-After`.

use allmine_chat_proto::v1::SubscribeMessagesRequest;
use axum::{extract::State, response::Response};

use crate::{
    dto::SubscribeQuery,
    error::ApiError,
    event_stream::{self, EventStreams},
    extract::{ApiPath, ApiQuery, EventSourceToken, LastEventId},
    grpc::ChatClient,
    request_id::RequestId,
};

/// Parses, calls `SubscribeMessages`, relays its events.
///
/// The token is extracted first, so that a request without one is a 401
/// whatever its query. The stream id and the cursor are passed as-is:
/// chat-service validates them.
pub async fn follow_chat(
    State(chat): State<ChatClient>,
    request_id: RequestId,
    streams: EventStreams,
    EventSourceToken(token): EventSourceToken,
    ApiPath(stream_id): ApiPath<String>,
    ApiQuery(query): ApiQuery<SubscribeQuery>,
    LastEventId(last_event_id): LastEventId,
) -> Result<Response, ApiError> {
    tracing::Span::current().record("stream_id", stream_id.as_str());
    let request = SubscribeMessagesRequest {
        stream_id,
        after: last_event_id.or(query.after),
    };
    // The slot is taken before chat-service is asked, so that a full edge
    // costs chat-service nothing.
    let slot = streams.open()?;
    let events = chat
        .subscribe_messages(request, &token, &request_id)
        .await?;
    Ok(event_stream::respond(events, slot))
}
