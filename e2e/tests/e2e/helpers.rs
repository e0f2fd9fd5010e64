//! The whole stack for one test: a store, chat-service on it, the edge in
//! front, and an HTTP client.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use allmine_chat_proto::v1 as pb;
use allmine_chat_proto::v1::chat_admin_service_client::ChatAdminServiceClient;
use allmine_test_support::backends::{Backend, StoreFixture};
use allmine_test_support::{TEST_SECRET, TokenBuilder, random_object_id};
use chat_service::domain::{ChatMessage, StreamId};
use chat_service::storage::SharedStore;
use reqwest::Response;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running chat-service; [`RunningService::stop`] ends it.
pub struct RunningService {
    pub addr: SocketAddr,
    stop: oneshot::Sender<()>,
    server: JoinHandle<Result<(), chat_service::StartupError>>,
}

impl RunningService {
    pub async fn stop(self) {
        let _ = self.stop.send(());
        self.server.await.unwrap().unwrap();
    }
}

/// Starts chat-service on `store`, listening on `addr` (port 0 for any).
pub async fn start_service(store: SharedStore, addr: SocketAddr) -> RunningService {
    start_service_with(store, addr, |_| {}).await
}

/// As [`start_service`], with the test configuration adjusted by `configure`
/// (a small burst limit, say).
pub async fn start_service_with(
    store: SharedStore,
    addr: SocketAddr,
    configure: impl FnOnce(&mut chat_service::Config),
) -> RunningService {
    chat_service::telemetry::init();
    let mut config = chat_service::Config::with_secret(TEST_SECRET);
    config.grpc_addr = addr;
    config.shutdown_grace_secs = 2;
    configure(&mut config);
    let application = chat_service::Application::build_with_store(config, store)
        .await
        .expect("chat-service starts");
    let addr = application.local_addr();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(application.run_until_stopped(async {
        let _ = stopped.await;
    }));
    RunningService { addr, stop, server }
}

/// Starts the edge in front of `chat_service`; it stops when the sender drops.
pub async fn start_edge(chat_service: SocketAddr) -> (String, oneshot::Sender<()>) {
    let config = http_edge::Config::with_defaults(
        "127.0.0.1:0".parse().unwrap(),
        format!("http://{chat_service}").parse().unwrap(),
    );
    let application = http_edge::Application::build(config)
        .await
        .expect("edge starts");
    let base = format!("http://{}", application.local_addr());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(application.run_until_stopped(async {
        let _ = stopped.await;
    }));
    (base, stop)
}

/// Edge + chat-service + a fresh store of one backend.
pub struct Stack {
    pub base: String,
    pub client: reqwest::Client,
    pub store: SharedStore,
    service: RunningService,
    _edge: oneshot::Sender<()>,
    fixture: StoreFixture,
}

pub async fn spawn_stack(backend: Backend) -> Stack {
    spawn_stack_with(backend, |_| {}).await
}

/// As [`spawn_stack`], with chat-service's configuration adjusted by
/// `configure` before it starts.
pub async fn spawn_stack_with(
    backend: Backend,
    configure: impl FnOnce(&mut chat_service::Config),
) -> Stack {
    let fixture = StoreFixture::new(backend);
    let store = fixture.open().await;
    let service =
        start_service_with(store.clone(), "127.0.0.1:0".parse().unwrap(), configure).await;
    let (base, edge) = start_edge(service.addr).await;
    Stack {
        base,
        client: http_client(),
        store,
        service,
        _edge: edge,
        fixture,
    }
}

pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        // Bounds every call: a hang fails the test instead of stalling it.
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

impl Stack {
    /// A chat-service admin client, as another Allmine service would hold.
    pub async fn admin(&self) -> Admin {
        Admin::connect(self.service.addr).await
    }

    /// Registers a new stream with a new owner; returns its id and the owner.
    pub async fn open_stream(&self) -> (String, TokenBuilder) {
        let owner = TokenBuilder::new();
        let stream_id = random_object_id();
        self.admin()
            .await
            .register(&stream_id, &owner.user_id())
            .await;
        (stream_id, owner)
    }

    /// chat-service's gRPC address (for calls the edge does not expose).
    pub fn service_addr(&self) -> SocketAddr {
        self.service.addr
    }

    pub async fn post_message(&self, stream_id: &str, body: &Value, token: &str) -> Response {
        post_message(&self.client, &self.base, stream_id, body, token).await
    }

    /// Sends `content` as the holder of `token`.
    pub async fn send(&self, stream_id: &str, token: &str, content: &str) -> Response {
        self.post_message(stream_id, &serde_json::json!({ "content": content }), token)
            .await
    }

    /// `POST /api/v1/live-stream/{streamId}/chat/bans` with `body`.
    pub async fn ban(&self, stream_id: &str, token: &str, body: &Value) -> Response {
        self.client
            .post(format!(
                "{}/api/v1/live-stream/{stream_id}/chat/bans",
                self.base
            ))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("the edge answers")
    }

    /// `DELETE /api/v1/live-stream/{streamId}/chat/bans/{userId}`.
    pub async fn unban(&self, stream_id: &str, token: &str, user_id: &str) -> Response {
        self.client
            .delete(format!(
                "{}/api/v1/live-stream/{stream_id}/chat/bans/{user_id}",
                self.base
            ))
            .bearer_auth(token)
            .send()
            .await
            .expect("the edge answers")
    }

    /// `PUT /api/v1/live-stream/{streamId}/chat/moderators/{userId}`.
    pub async fn add_moderator(&self, stream_id: &str, token: &str, user_id: &str) -> Response {
        self.client
            .put(format!(
                "{}/api/v1/live-stream/{stream_id}/chat/moderators/{user_id}",
                self.base
            ))
            .bearer_auth(token)
            .send()
            .await
            .expect("the edge answers")
    }

    /// `DELETE /api/v1/live-stream/{streamId}/chat/moderators/{userId}`.
    pub async fn remove_moderator(&self, stream_id: &str, token: &str, user_id: &str) -> Response {
        self.client
            .delete(format!(
                "{}/api/v1/live-stream/{stream_id}/chat/moderators/{user_id}",
                self.base
            ))
            .bearer_auth(token)
            .send()
            .await
            .expect("the edge answers")
    }

    pub async fn stored(&self, stream_id: &str) -> Vec<ChatMessage> {
        let stream = StreamId::parse(stream_id).unwrap();
        self.store.newest(&stream, 1000).await.unwrap()
    }

    pub async fn finish(self) {
        self.service.stop().await;
        drop(self.store);
        self.fixture.cleanup().await;
    }
}

pub async fn post_message(
    client: &reqwest::Client,
    base: &str,
    stream_id: &str,
    body: &Value,
    token: &str,
) -> Response {
    client
        .post(format!(
            "{base}/api/v1/live-stream/{stream_id}/chat/messages"
        ))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("the edge answers")
}

/// Asserts the documented error envelope and returns its `errors`.
pub async fn expect_envelope(response: Response, status: u16) -> Vec<String> {
    assert_eq!(response.status().as_u16(), status);
    let body: Value = response.json().await.expect("a JSON body");
    assert_eq!(body["isSuccess"], Value::Bool(false));
    assert_eq!(body["statusCode"], Value::from(status));
    assert_eq!(body["data"], Value::Null);
    assert!(body["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
    body["errors"]
        .as_array()
        .expect("errors[]")
        .iter()
        .map(|error| error.as_str().expect("a string").to_owned())
        .collect()
}

/// ChatAdminService over gRPC with a `service` token.
pub struct Admin {
    client: ChatAdminServiceClient<tonic::transport::Channel>,
    token: String,
}

impl Admin {
    pub async fn connect(addr: SocketAddr) -> Self {
        Self::connect_as(addr, TokenBuilder::service().build()).await
    }

    /// An admin client presenting `token` (to check who may call the admin
    /// service).
    pub async fn connect_as(addr: SocketAddr, token: String) -> Self {
        let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        Self {
            client: ChatAdminServiceClient::new(channel),
            token,
        }
    }

    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {}", self.token).parse().unwrap(),
        );
        request
    }

    pub async fn register(&mut self, stream_id: &str, owner_id: &str) -> pb::Stream {
        self.try_register(stream_id, owner_id).await.unwrap()
    }

    /// `RegisterStream`, returning chat-service's refusal instead of
    /// panicking on it.
    pub async fn try_register(
        &mut self,
        stream_id: &str,
        owner_id: &str,
    ) -> Result<pb::Stream, tonic::Status> {
        let request = self.request(pb::RegisterStreamRequest {
            stream_id: stream_id.into(),
            owner_id: owner_id.into(),
        });
        self.client
            .register_stream(request)
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn set_open(&mut self, stream_id: &str, open: bool) -> pb::Stream {
        let request = self.request(pb::SetChatOpenRequest {
            stream_id: stream_id.into(),
            open,
        });
        self.client
            .set_chat_open(request)
            .await
            .unwrap()
            .into_inner()
    }

    pub async fn end(&mut self, stream_id: &str) -> pb::Stream {
        let request = self.request(pb::EndStreamRequest {
            stream_id: stream_id.into(),
        });
        self.client.end_stream(request).await.unwrap().into_inner()
    }

    pub async fn slow_mode(&mut self, stream_id: &str, seconds: u32) -> pb::Stream {
        let request = self.request(pb::UpdateStreamSettingsRequest {
            stream_id: stream_id.into(),
            slow_mode_seconds: Some(seconds),
        });
        self.client
            .update_stream_settings(request)
            .await
            .unwrap()
            .into_inner()
    }

    pub async fn upsert_profile(&mut self, profile: pb::UserProfile) -> pb::UserProfile {
        let request = self.request(profile);
        self.client
            .upsert_user_profile(request)
            .await
            .unwrap()
            .into_inner()
    }
}

/// The `Retry-After` header of a response, in whole seconds.
pub fn retry_after_secs(response: &Response) -> u64 {
    response
        .headers()
        .get("retry-after")
        .expect("a Retry-After header")
        .to_str()
        .expect("an ASCII Retry-After")
        .parse()
        .expect("Retry-After in whole seconds")
}

/// Milliseconds since the epoch of an API time (`2026-01-15T10:30:00.123Z`,
/// RFC 3339 in UTC with exactly three fraction digits); `None` for any other
/// shape.
pub fn parse_api_time(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    let shape_ok = bytes.len() == 24
        && bytes.iter().enumerate().all(|(index, &byte)| match index {
            4 | 7 => byte == b'-',
            10 => byte == b'T',
            13 | 16 => byte == b':',
            19 => byte == b'.',
            23 => byte == b'Z',
            _ => byte.is_ascii_digit(),
        });
    if !shape_ok {
        return None;
    }
    let number = |range: std::ops::Range<usize>| text[range].parse::<i64>().ok();
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second, millis) = (
        number(11..13)?,
        number(14..16)?,
        number(17..19)?,
        number(20..23)?,
    );
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    // Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
    // days_from_civil).
    let shifted_year = if month <= 2 { year - 1 } else { year };
    let era = shifted_year.div_euclid(400);
    let year_of_era = shifted_year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    Some(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + millis)
}
