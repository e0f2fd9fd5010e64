//! The router: the documented routes, the envelope for unknown paths (404) and
//! methods (405), the body limit and the request-id middleware.

pub mod bans;
pub mod events;
pub mod health;
pub mod messages;
pub mod moderators;

use axum::{
    Extension, Router,
    extract::DefaultBodyLimit,
    http::{Method, Uri},
    middleware,
    routing::{delete, get, post, put},
};
use serde::Deserialize;

use crate::{
    config::Limits,
    error::ApiError,
    event_stream::{EventStreams, Shutdown},
    extract::MAX_BODY_BYTES,
    grpc::ChatClient,
    limits::{self, BodyReadTimeout},
    request_id,
};

/// A stream's messages: `POST` sends one, `GET` reads the history (the
/// "send message" path, as the public API documents it).
pub const MESSAGES_PATH: &str = "/api/v1/live-stream/{streamId}/chat/messages";
/// One message: `DELETE` deletes it.
pub const MESSAGE_PATH: &str = "/api/v1/live-stream/{streamId}/chat/messages/{messageId}";
/// A stream's chat, live: `GET` is a stream of Server-Sent Events.
pub const EVENTS_PATH: &str = "/api/v1/live-stream/{streamId}/chat/events";
/// A stream's bans: `POST` bans a user.
pub const BANS_PATH: &str = "/api/v1/live-stream/{streamId}/chat/bans";
/// One user's ban: `DELETE` lifts it.
pub const BAN_PATH: &str = "/api/v1/live-stream/{streamId}/chat/bans/{userId}";
/// One moderator: `PUT` appoints, `DELETE` removes.
pub const MODERATOR_PATH: &str = "/api/v1/live-stream/{streamId}/chat/moderators/{userId}";

/// Builds the whole HTTP surface around a chat-service client; `shutdown`
/// ends the open event streams when the edge stops; `limits` bound what one
/// request may hold.
pub fn router(chat: ChatClient, shutdown: Shutdown, limits: &Limits) -> Router {
    let streams = EventStreams::new(
        shutdown,
        usize::try_from(limits.max_event_streams).unwrap_or(usize::MAX),
        usize::try_from(limits.event_buffer).unwrap_or(usize::MAX),
        limits.idle_timeout(),
    );
    Router::new()
        .route(
            MESSAGES_PATH,
            get(messages::list_messages).post(messages::send_message),
        )
        .route(MESSAGE_PATH, delete(messages::delete_message))
        .route(EVENTS_PATH, get(events::follow_chat))
        .route(BANS_PATH, post(bans::ban_user))
        .route(BAN_PATH, delete(bans::unban_user))
        .route(
            MODERATOR_PATH,
            put(moderators::add_moderator).delete(moderators::remove_moderator),
        )
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(Extension(streams))
        .layer(Extension(BodyReadTimeout(limits.body_read_timeout())))
        // Oversized targets and headers are refused before anything reads
        // them (inside the request-id layer, so the refusal carries an id).
        .layer(middleware::from_fn(limits::check_request_head))
        // Outermost, so that every response, fallbacks included, carries the
        // request id and is logged in the request's span.
        .layer(middleware::from_fn(request_id::request_context))
        .layer(middleware::from_fn(crate::metrics::record_request))
        .with_state(chat)
}

/// The path parameters `{streamId}` and `{userId}`, passed to chat-service
/// as-is: it validates both.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamUserPath {
    pub stream_id: String,
    pub user_id: String,
}

/// Names the stream and the user acted on in the request's span (see
/// `request_id`), so that every line logged for the request, its final status
/// included, names them.
fn record_target(stream_id: &str, user_id: &str) {
    let span = tracing::Span::current();
    span.record("stream_id", stream_id);
    span.record("target_user_id", user_id);
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::NotFound(vec![format!("No route for {method} {}", uri.path())])
}

// axum still adds the `Allow` header to what this returns.
async fn method_not_allowed(method: Method) -> ApiError {
    ApiError::MethodNotAllowed(vec![format!("Method {method} is not allowed on this path")])
}
