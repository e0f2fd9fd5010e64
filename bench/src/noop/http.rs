//! The HTTP baseline: axum, the send route's path, a JSON body parsed into a
//! struct, 201 and a canned message of the real reply's size. No middleware,
//! no gRPC call: the HTTP stack's ceiling. The reply is serialised by the
//! edge's own DTO.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use tokio::net::TcpListener;

use http_edge::dto::ChatMessageJson;

use crate::payload;

/// The send route, as http-edge serves it.
pub const SEND_PATH: &str = "/api/v1/live-stream/{streamId}/chat/messages";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendBody {
    #[allow(dead_code)]
    content: String,
}

async fn send(
    State(reply): State<Arc<ChatMessageJson>>,
    Path(_stream_id): Path<String>,
    Json(_body): Json<SendBody>,
) -> (StatusCode, Json<ChatMessageJson>) {
    (StatusCode::CREATED, Json(ChatMessageJson::clone(&reply)))
}

/// Serves the no-op route on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let reply = Arc::new(payload::canned_json(
        &allmine_test_support::random_object_id(),
    )?);
    let router = Router::new().route(SEND_PATH, post(send)).with_state(reply);
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

/// Binds `addr` and serves until SIGTERM.
pub async fn run(addr: SocketAddr) -> anyhow::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    serve(listener, super::terminated()).await
}
