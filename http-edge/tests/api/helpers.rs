//! Spawning the edge and talking to it: typed request helpers and the
//! envelope assertions every error test shares.

use std::{net::SocketAddr, sync::Once, time::Duration};

use http_edge::{Application, Config};
use reqwest::{Method, Response, header::HeaderMap};
use serde_json::Value;
use tokio::sync::oneshot;

use crate::fake_chat::FakeChatServer;

/// A well-formed stream id (chat-service would accept it).
pub const STREAM_ID: &str = "64d15f9e2e6c8f4d5a123000";
/// The edge never verifies tokens, so any opaque string will do.
pub const TOKEN: &str = "header.payload.signature";

/// Logs go to the test output only with `TEST_LOG=1` (and `RUST_LOG`).
fn init_logging() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            http_edge::telemetry::init("debug");
        }
    });
}

/// A running edge; it stops when dropped.
pub struct TestEdge {
    pub address: String,
    pub client: reqwest::Client,
    _shutdown: oneshot::Sender<()>,
}

/// The edge in front of a fresh fake chat-service.
pub struct TestApp {
    pub edge: TestEdge,
    pub chat: FakeChatServer,
}

pub async fn spawn_app() -> TestApp {
    let chat = FakeChatServer::start().await;
    let edge = spawn_edge(chat.addr).await;
    TestApp { edge, chat }
}

/// An edge pointed at `chat_service`, with the default deadline.
pub async fn spawn_edge(chat_service: SocketAddr) -> TestEdge {
    spawn_edge_with_timeout(chat_service, Duration::from_secs(5)).await
}

/// An edge pointed at `chat_service`, with this gRPC deadline.
pub async fn spawn_edge_with_timeout(chat_service: SocketAddr, grpc_timeout: Duration) -> TestEdge {
    spawn_edge_with(chat_service, |config| {
        config.grpc_timeout_ms = u64::try_from(grpc_timeout.as_millis()).expect("a small timeout");
    })
    .await
}

/// The edge in front of a fresh fake chat-service, configured by `adjust`.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
    let chat = FakeChatServer::start().await;
    let edge = spawn_edge_with(chat.addr, adjust).await;
    TestApp { edge, chat }
}

/// An edge pointed at `chat_service`, with the defaults changed by `adjust`.
pub async fn spawn_edge_with(
    chat_service: SocketAddr,
    adjust: impl FnOnce(&mut Config),
) -> TestEdge {
    init_logging();
    let mut config = Config::with_defaults(
        "127.0.0.1:0".parse().expect("a socket address"),
        format!("http://{chat_service}").parse().expect("a URL"),
    );
    adjust(&mut config);
    let application = Application::build(config).await.expect("the edge builds");
    let address = format!("http://{}", application.local_addr());
    let (shutdown, stopped) = oneshot::channel::<()>();
    tokio::spawn(application.run_until_stopped(async {
        let _ = stopped.await;
    }));
    TestEdge {
        address,
        client: reqwest::Client::new(),
        _shutdown: shutdown,
    }
}

/// A port that nothing listens on (until a test binds it again).
pub fn reserve_unused_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port");
    listener.local_addr().expect("local address")
}

pub fn message_path(stream_id: &str) -> String {
    format!("/api/v1/live-stream/{stream_id}/chat/messages")
}

/// One message: `DELETE` deletes it.
pub fn message_item_path(stream_id: &str, message_id: &str) -> String {
    format!("/api/v1/live-stream/{stream_id}/chat/messages/{message_id}")
}

/// The live chat, as Server-Sent Events; `query` without its `?`.
pub fn events_path(stream_id: &str, query: &str) -> String {
    let path = format!("/api/v1/live-stream/{stream_id}/chat/events");
    if query.is_empty() {
        path
    } else {
        format!("{path}?{query}")
    }
}

pub fn bans_path(stream_id: &str) -> String {
    format!("/api/v1/live-stream/{stream_id}/chat/bans")
}

pub fn ban_path(stream_id: &str, user_id: &str) -> String {
    format!("/api/v1/live-stream/{stream_id}/chat/bans/{user_id}")
}

pub fn moderator_path(stream_id: &str, user_id: &str) -> String {
    format!("/api/v1/live-stream/{stream_id}/chat/moderators/{user_id}")
}

impl TestEdge {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// `POST` a JSON body as a client would, with `Authorization: Bearer
    /// <token>` when a token is given.
    pub async fn post_message(
        &self,
        stream_id: &str,
        body: &Value,
        token: Option<&str>,
    ) -> Response {
        let mut request = self
            .client
            .post(self.url(&message_path(stream_id)))
            .json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("the edge answers")
    }

    /// `POST` exactly these bytes and headers to a path.
    pub async fn post_raw(
        &self,
        path: &str,
        body: impl Into<reqwest::Body>,
        headers: &[(&str, &str)],
    ) -> Response {
        let mut request = self.client.post(self.url(path)).body(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.expect("the edge answers")
    }

    /// Any method on a path, with `Authorization: Bearer <token>` when a token
    /// is given and a JSON body when one is given.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        token: Option<&str>,
    ) -> Response {
        let mut request = self.client.request(method, self.url(path));
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("the edge answers")
    }

    /// Any method on a path with exactly these bytes and headers.
    pub async fn call_raw(
        &self,
        method: Method,
        path: &str,
        body: impl Into<reqwest::Body>,
        headers: &[(&str, &str)],
    ) -> Response {
        let mut request = self.client.request(method, self.url(path)).body(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.expect("the edge answers")
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("the edge answers")
    }
}

/// An error response whose envelope passed every shape check.
#[derive(Debug)]
pub struct ErrorReply {
    pub headers: HeaderMap,
    pub errors: Vec<String>,
    pub body: String,
}

/// Asserts the status and the documented envelope (exactly its five keys,
/// `errors[0]` the canonical phrase) and the request id header.
pub async fn expect_error(response: Response, status: u16, phrase: &str) -> ErrorReply {
    assert_eq!(response.status().as_u16(), status, "status");
    let headers = response.headers().clone();
    assert!(
        headers.get("x-request-id").is_some(),
        "every response carries x-request-id"
    );
    let content_type = headers
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    assert!(
        content_type.starts_with("application/json"),
        "content type {content_type:?}"
    );

    let body = response.text().await.expect("a body");
    let json: Value = serde_json::from_str(&body).expect("a JSON body");
    let object = json.as_object().expect("an object");
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["data", "errors", "isSuccess", "statusCode", "timestamp"],
        "{body}"
    );
    assert_eq!(json["isSuccess"], Value::Bool(false));
    assert_eq!(json["statusCode"], Value::from(status));
    assert_eq!(json["data"], Value::Null);
    assert_rfc3339_millis_utc(json["timestamp"].as_str().expect("a timestamp string"));

    let errors: Vec<String> = json["errors"]
        .as_array()
        .expect("errors is an array")
        .iter()
        .map(|error| error.as_str().expect("each error is a string").to_owned())
        .collect();
    assert_eq!(errors.first().map(String::as_str), Some(phrase), "{body}");
    ErrorReply {
        headers,
        errors,
        body,
    }
}

/// `2026-01-15T10:30:00.000Z`: RFC 3339, UTC as `Z`, exactly milliseconds.
pub fn assert_rfc3339_millis_utc(text: &str) {
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|_| panic!("{text:?} is not RFC 3339"));
    let bytes = text.as_bytes();
    assert_eq!(bytes.len(), 24, "{text:?} has milliseconds and Z");
    assert_eq!(bytes[19], b'.', "{text:?} has milliseconds");
    assert!(text.ends_with('Z'), "{text:?} is in UTC");
}
