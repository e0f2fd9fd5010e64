//! A real http-edge for one test, in process: started through the same
//! `Application` as production, on an ephemeral port, in front of any
//! chat-service address (the real one, a scripted fake, or a port where
//! nothing listens), with typed helpers for the REST calls tests make.
//!
//! This module needs no chat-service: the edge's own suite runs it against a
//! fake.

use std::net::SocketAddr;
use std::sync::Once;
use std::time::Duration;

use http_edge::{Application, Config};
use reqwest::{Method, RequestBuilder, Response};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::rest::{
    ban_path, bans_path, events_path, message_item_path, message_path, moderator_path, with_query,
};

/// Bounds every call of the test client: a hang fails the test instead of
/// stalling the suite (generous: no test waits anywhere near this long).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(20);

/// The bound on an event stream instead: it is meant to stay open, and the
/// reader bounds each wait for an event on its own.
const EVENTS_TIMEOUT: Duration = Duration::from_secs(300);

/// A running edge; it stops when dropped.
pub struct TestEdge {
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    pub client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

/// An edge in front of chat-service at `chat_service`, with the defaults.
pub async fn spawn_edge(chat_service: SocketAddr) -> TestEdge {
    spawn_edge_with(chat_service, |_| {}).await
}

/// An edge in front of `chat_service`, with the defaults changed by `adjust`
/// (which may also point it at another URL).
pub async fn spawn_edge_with(
    chat_service: SocketAddr,
    adjust: impl FnOnce(&mut Config),
) -> TestEdge {
    init_logging();
    let mut config = Config::with_defaults(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        format!("http://{chat_service}")
            .parse()
            .expect("a chat-service URL"),
    );
    adjust(&mut config);
    let application = Application::build(config).await.expect("the edge builds");
    let address = format!("http://{}", application.local_addr());
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(application.run_until_stopped(async {
        let _ = stopped.await;
    }));
    TestEdge {
        address,
        client: http_client(),
        stop: Some(stop),
        server: Some(server),
    }
}

/// The HTTP client tests use, with the hang bound.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(CLIENT_TIMEOUT)
        .build()
        .expect("an HTTP client")
}

/// The edge's logs go to the test output only with `TEST_LOG=1` (and
/// `RUST_LOG`): a test of the logs installs its own subscriber.
fn init_logging() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            http_edge::telemetry::init("debug");
        }
    });
}

impl TestEdge {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// A request to `path` with `Authorization: Bearer <token>` when a token
    /// is given, for anything the typed helpers do not cover.
    pub fn request(&self, method: Method, path: &str, token: Option<&str>) -> RequestBuilder {
        let request = self.client.request(method, self.url(path));
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Any method on a path, with a bearer token and a JSON body when given.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        token: Option<&str>,
    ) -> Response {
        let mut request = self.request(method, path, token);
        if let Some(body) = body {
            request = request.json(body);
        }
        send(request).await
    }

    /// Any method on a path with exactly these bytes and headers.
    pub async fn call_raw(
        &self,
        method: Method,
        path: &str,
        body: impl Into<reqwest::Body>,
        headers: &[(&str, &str)],
    ) -> Response {
        let request = self.request(method, path, None).body(body);
        send(with_headers(request, headers)).await
    }

    /// `POST` exactly these bytes and headers to a path.
    pub async fn post_raw(
        &self,
        path: &str,
        body: impl Into<reqwest::Body>,
        headers: &[(&str, &str)],
    ) -> Response {
        self.call_raw(Method::POST, path, body, headers).await
    }

    /// `GET` a path without a token (`/healthz`, `/readyz`, unknown paths).
    pub async fn get(&self, path: &str) -> Response {
        self.call(Method::GET, path, None, None).await
    }

    /// `POST .../chat/messages` with a JSON body.
    pub async fn post_message(
        &self,
        stream_id: &str,
        body: &Value,
        token: Option<&str>,
    ) -> Response {
        self.call(Method::POST, &message_path(stream_id), Some(body), token)
            .await
    }

    /// Sends `content` as the holder of `token`.
    pub async fn send(&self, stream_id: &str, token: &str, content: &str) -> Response {
        self.post_message(stream_id, &json!({ "content": content }), Some(token))
            .await
    }

    /// `GET .../chat/messages?<query>` (the history).
    pub async fn history(&self, stream_id: &str, query: &str, token: Option<&str>) -> Response {
        let path = with_query(message_path(stream_id), query);
        self.call(Method::GET, &path, None, token).await
    }

    /// `DELETE .../chat/messages/{messageId}`.
    pub async fn delete_message(&self, stream_id: &str, token: &str, message_id: &str) -> Response {
        let path = message_item_path(stream_id, message_id);
        self.call(Method::DELETE, &path, None, Some(token)).await
    }

    /// `GET .../chat/events?<query>` with these headers (the event stream).
    pub async fn events(&self, stream_id: &str, query: &str, headers: &[(&str, &str)]) -> Response {
        let request = self
            .request(Method::GET, &events_path(stream_id, query), None)
            .timeout(EVENTS_TIMEOUT);
        send(with_headers(request, headers)).await
    }

    /// `POST .../chat/bans` with `body`.
    pub async fn ban(&self, stream_id: &str, token: &str, body: &Value) -> Response {
        self.call(Method::POST, &bans_path(stream_id), Some(body), Some(token))
            .await
    }

    /// `DELETE .../chat/bans/{userId}`.
    pub async fn unban(&self, stream_id: &str, token: &str, user_id: &str) -> Response {
        self.call(
            Method::DELETE,
            &ban_path(stream_id, user_id),
            None,
            Some(token),
        )
        .await
    }

    /// `PUT .../chat/moderators/{userId}`.
    pub async fn add_moderator(&self, stream_id: &str, token: &str, user_id: &str) -> Response {
        let path = moderator_path(stream_id, user_id);
        self.call(Method::PUT, &path, None, Some(token)).await
    }

    /// `DELETE .../chat/moderators/{userId}`.
    pub async fn remove_moderator(&self, stream_id: &str, token: &str, user_id: &str) -> Response {
        let path = moderator_path(stream_id, user_id);
        self.call(Method::DELETE, &path, None, Some(token)).await
    }

    /// Tells the edge to stop and returns its server task, which ends once
    /// the edge has drained (tests bound the wait themselves).
    pub fn shut_down(mut self) -> JoinHandle<std::io::Result<()>> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.server
            .take()
            .expect("the server task is held until now")
    }
}

fn with_headers(mut request: RequestBuilder, headers: &[(&str, &str)]) -> RequestBuilder {
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request
}

async fn send(request: RequestBuilder) -> Response {
    request.send().await.expect("the edge answers")
}
