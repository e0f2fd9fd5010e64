//! The router: the documented routes, the envelope for unknown paths (404) and
//! methods (405), the body limit, CORS (when configured) and the request-id
//! middleware.

pub mod bans;
pub mod events;
pub mod health;
pub mod messages;
pub mod moderators;

use axum::{
    Extension, Router,
    extract::{DefaultBodyLimit, Request, State},
    http::{Method, Uri},
    middleware::{self, Next},
    response::Response,
    routing::{delete, get, post, put},
};
use serde::Deserialize;
use tower::ServiceBuilder;
use tower_http::cors::CorsLayer;

use crate::{
    config::Limits,
    error::ApiError,
    event_stream::{EventStreams, Shutdown},
    extract::MAX_BODY_BYTES,
    fanout::Fanout,
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

/// Every route of [`router`], as (method, path template). The contract test
/// (`tests/api/contract`) checks this list against the router (each path's
/// `Allow`) and against the proto's `google.api.http` rules, both ways.
pub fn routes() -> Vec<(Method, &'static str)> {
    vec![
        (Method::GET, MESSAGES_PATH),
        (Method::POST, MESSAGES_PATH),
        (Method::DELETE, MESSAGE_PATH),
        (Method::GET, EVENTS_PATH),
        (Method::POST, BANS_PATH),
        (Method::DELETE, BAN_PATH),
        (Method::PUT, MODERATOR_PATH),
        (Method::DELETE, MODERATOR_PATH),
        (Method::GET, "/healthz"),
        (Method::GET, "/readyz"),
    ]
}

/// Builds the whole HTTP surface around a chat-service client; `shutdown`
/// ends the open event streams when the edge stops; `limits` bound what one
/// request may hold; `cors`, when set, lets browser apps of other origins in;
/// `fanout`, when set, shares one upstream subscription per stream among the
/// event streams (`crate::fanout`).
pub fn router(
    chat: ChatClient,
    shutdown: Shutdown,
    limits: &Limits,
    cors: Option<CorsLayer>,
    fanout: Option<Fanout>,
) -> Router {
    let streams = EventStreams::new(
        shutdown,
        usize::try_from(limits.max_event_streams).unwrap_or(usize::MAX),
        usize::try_from(limits.event_buffer).unwrap_or(usize::MAX),
        limits.idle_timeout(),
    );
    let router = Router::new()
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
        .merge(crate::web::router())
        .merge(crate::openapi::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    // Every middleware in one `layer` call, outermost first. `Router::layer`
    // wraps each route (and the fallbacks) in a boxed, cloned-per-request
    // service: one call per middleware nested them, and each request cloned
    // every level of that nest again at each level (a third of the edge's
    // instructions per send, BENCHMARKS.md "Lean send path: the edge").
    let layers = ServiceBuilder::new()
        .layer(middleware::from_fn_with_state(chat.clone(), edge_request))
        // Outside every refusal of the router (401, 404, 405, 413, 431, ...),
        // so that a browser can read those too, and so that a preflight is
        // answered before any of them could refuse it; inside the request id,
        // so that a preflight answer carries one.
        .option_layer(cors)
        // Oversized targets and headers are refused before anything reads
        // them (inside the request-id layer, so the refusal carries an id).
        .layer(middleware::from_fn(limits::check_request_head))
        .layer(Extension(BodyReadTimeout(limits.body_read_timeout())))
        .layer(Extension(streams))
        .option_layer(fanout.map(Extension))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES));
    router.layer(layers.into_inner()).with_state(chat)
}

/// The outer steps of every request, in one middleware (each `from_fn`
/// layer boxes a future and clones the whole stack below it per request):
/// 1. shedding, outside everything, the span and the access log included:
///    under overload a refusal must cost far less than a request
///    ([`crate::shed`]);
/// 2. the request-duration histogram ([`crate::metrics::RequestTimer`]);
/// 3. the request id, span and access-log line, so that every response,
///    fallbacks included, carries the id and is logged in the request's span
///    ([`request_id::request_context`]).
async fn edge_request(State(chat): State<ChatClient>, request: Request, next: Next) -> Response {
    if let Some(refusal) = crate::shed::refusal(&chat, &request) {
        return refusal;
    }
    let timer = crate::metrics::RequestTimer::start(&request);
    let response = request_id::request_context(request, next).await;
    timer.record(&response);
    response
}

/// The path parameters `{streamId}` and `{userId}`, passed to chat-service
/// as-is: it validates both.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Path)]
pub struct StreamUserPath {
    #[param(pattern = "^[0-9a-fA-F]{24}$", example = "64d15f9e2e6c8f4d5a123000")]
    pub stream_id: String,
    #[param(pattern = "^[0-9a-fA-F]{24}$", example = "64d15f9e2e6c8f4d5a1230b2")]
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
