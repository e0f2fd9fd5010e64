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
//! - With `EDGE_UPSTREAM_TOKEN` set, the client is served from the stream's
//!   shared feed ([`crate::fanout`]) after chat-service has authorised it
//!   alone (`AuthorizeSubscription`, same refusals); otherwise it is a
//!   `SubscribeMessages` call of its own.

use allmine_chat_proto::v1::SubscribeMessagesRequest;
use axum::{extract::State, response::Response};

use crate::{
    dto::SubscribeQuery,
    error::ApiError,
    event_stream::{self, EventStreams},
    extract::{ApiPath, ApiQuery, EventSourceToken, LastEventId},
    fanout::Follow,
    grpc::ChatClient,
    openapi::StreamPath,
    request_id::RequestId,
};

/// Parses, calls `SubscribeMessages`, relays its events.
///
/// The 200 answer's events are described in [`crate::openapi::events`].
#[utoipa::path(
    get,
    path = super::EVENTS_PATH,
    operation_id = "followChat",
    description = "The stream's chat, live. A refusal is the error envelope with its status, never a stream; an accepted subscription is 200 and events until chat-service ends it, the edge stops or the client leaves. Resumes after `Last-Event-ID` (what `EventSource` sends when reconnecting), else after `after`, else from now on.",
    tag = "live",
    summary = "Follow the chat live, as Server-Sent Events",
    params(
        StreamPath,
        ("after" = Option<String>, Query, min_length = 1,
         description = "A cursor (a history item's `cursor`): start right after it. `Last-Event-ID` wins."),
        ("access_token" = Option<String>, Query,
         description = "The bearer token, for `EventSource` (which cannot send headers); \
                        on this route only. The `Authorization` header wins."),
        ("Last-Event-ID" = Option<String>, Header, nullable = false,
         description = "The `id` of the last event received: resume right after it (what `EventSource` sends when it reconnects)."),
    ),
    responses((
        status = 200,
        description = "The stream of events, until chat-service ends it, the edge stops or the client leaves.",
        content((crate::openapi::events::EventStream = "text/event-stream")),
    )),
    security(("bearer" = []), ("accessToken" = [])),
)]
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
    let after = last_event_id.or(query.after);
    // The slot is taken before chat-service is asked, so that a full edge
    // costs chat-service nothing.
    let slot = streams.open()?;
    if let Some(fanout) = streams.fanout() {
        let follow = Follow {
            stream_id,
            after,
            token,
            request_id,
        };
        return fanout.follow(follow, slot).await;
    }
    let request = SubscribeMessagesRequest { stream_id, after };
    let events = chat
        .subscribe_messages(request, &token, &request_id)
        .await?;
    Ok(event_stream::respond(events, slot))
}
