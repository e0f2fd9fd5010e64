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
    chat_service::telemetry::init();
    let mut config = chat_service::Config::with_secret(TEST_SECRET);
    config.grpc_addr = addr;
    config.shutdown_grace_secs = 2;
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
    let config = http_edge::Config {
        http_addr: "127.0.0.1:0".parse().unwrap(),
        chat_service_url: format!("http://{chat_service}").parse().unwrap(),
        grpc_timeout_ms: 5_000,
    };
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
    let fixture = StoreFixture::new(backend);
    let store = fixture.open().await;
    let service = start_service(store.clone(), "127.0.0.1:0".parse().unwrap()).await;
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

    pub async fn post_message(&self, stream_id: &str, body: &Value, token: &str) -> Response {
        post_message(&self.client, &self.base, stream_id, body, token).await
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
        let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        Self {
            client: ChatAdminServiceClient::new(channel),
            token: TokenBuilder::service().build(),
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
        let request = self.request(pb::RegisterStreamRequest {
            stream_id: stream_id.into(),
            owner_id: owner_id.into(),
        });
        self.client
            .register_stream(request)
            .await
            .unwrap()
            .into_inner()
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
