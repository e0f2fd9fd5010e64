//! The router: the documented routes, the envelope for unknown paths (404) and
//! methods (405), the body limit and the request-id middleware.

pub mod health;
pub mod messages;

use axum::{
    Router,
    extract::DefaultBodyLimit,
    http::{Method, Uri},
    middleware,
    routing::{get, post},
};

use crate::{error::ApiError, extract::MAX_BODY_BYTES, grpc::ChatClient, request_id};

/// The path of "send message", as the public API documents it.
pub const SEND_MESSAGE_PATH: &str = "/api/v1/live-stream/{streamId}/chat/messages";

/// Builds the whole HTTP surface around a chat-service client.
pub fn router(chat: ChatClient) -> Router {
    Router::new()
        .route(SEND_MESSAGE_PATH, post(messages::send_message))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        // Outermost, so that every response, fallbacks included, carries the
        // request id and is logged in the request's span.
        .layer(middleware::from_fn(request_id::request_context))
        .with_state(chat)
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::NotFound(vec![format!("No route for {method} {}", uri.path())])
}

// axum still adds the `Allow` header to what this returns.
async fn method_not_allowed(method: Method) -> ApiError {
    ApiError::MethodNotAllowed(vec![format!("Method {method} is not allowed on this path")])
}
