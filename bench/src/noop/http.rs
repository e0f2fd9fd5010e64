//! The HTTP baseline: axum, the send route's path, a JSON body parsed into a
//! struct, 201 and a canned message of the real reply's size. No middleware,
//! no gRPC call: the HTTP stack's ceiling. The reply is serialised by the
//! edge's own DTO.
//!
//! The events route is the SSE baseline: every send made while a follower is
//! connected is broadcast to all of them (see [`super::live`]), as one SSE
//! event with the edge's `id:`/`event:`/`data:` layout. The JSON is made once
//! per send, not once per follower.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use allmine_chat_proto::v1 as pb;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, Sse};
use axum::routing::{get, post};
use axum::serve::ListenerExt as _;
use axum::{Json, Router};
use serde::Deserialize;
use tokio::net::TcpListener;

use http_edge::dto::ChatMessageJson;

use super::live::{NoopLive, followed};
use crate::payload;

/// The send route, as http-edge serves it.
pub const SEND_PATH: &str = "/api/v1/live-stream/{streamId}/chat/messages";

/// The events route, as http-edge serves it.
pub const EVENTS_PATH: &str = "/api/v1/live-stream/{streamId}/chat/events";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendBody {
    #[allow(dead_code)]
    content: String,
}

/// A broadcast event: its cursor (the SSE id) and its JSON (the data).
struct Rendered {
    cursor: String,
    json: String,
}

struct Canned {
    /// The reply when nobody follows.
    json: ChatMessageJson,
    /// What a followed send starts from.
    message: pb::ChatMessage,
    live: NoopLive<Rendered>,
}

async fn send(
    State(canned): State<Arc<Canned>>,
    Path(_stream_id): Path<String>,
    Json(_body): Json<SendBody>,
) -> (StatusCode, Json<ChatMessageJson>) {
    let mut reply = None;
    canned.live.publish_if_followed(&canned.message, |message| {
        let json = ChatMessageJson::from(message.clone());
        let rendered = Rendered {
            cursor: message.cursor.clone(),
            json: serde_json::to_string(&json).unwrap_or_default(),
        };
        reply = Some(json);
        rendered
    });
    let reply = reply.unwrap_or_else(|| canned.json.clone());
    (StatusCode::CREATED, Json(reply))
}

async fn follow(
    State(canned): State<Arc<Canned>>,
    Path(_stream_id): Path<String>,
) -> Sse<impl futures::Stream<Item = Result<Event, Infallible>>> {
    Sse::new(followed(canned.live.follow(), |event: &Rendered| {
        Ok(Event::default()
            .id(&event.cursor)
            .event("message")
            .data(&event.json))
    }))
}

/// Serves the no-op routes on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let message = payload::canned_message(&allmine_test_support::random_object_id())?;
    let canned = Arc::new(Canned {
        json: ChatMessageJson::from(message.clone()),
        message,
        live: NoopLive::default(),
    });
    let router = Router::new()
        .route(SEND_PATH, post(send))
        .route(EVENTS_PATH, get(follow))
        .with_state(canned);
    // As http-edge: TCP_NODELAY on every connection.
    let listener = listener.tap_io(|connection| {
        let _ = connection.set_nodelay(true);
    });
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
