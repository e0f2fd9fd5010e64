//! Starting a real chat-service for a test, and typed helpers to call it.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use allmine_chat_proto::v1::chat_admin_service_client::ChatAdminServiceClient;
use allmine_chat_proto::v1::chat_service_client::ChatServiceClient;
use allmine_chat_proto::v1::{ChatMessage, RegisterStreamRequest, SendMessageRequest};
use allmine_test_support::{TEST_SECRET, TokenBuilder};
use chat_service::domain::StreamId;
use chat_service::storage::SharedStore;
use chat_service::storage::embedded::EmbeddedStore;
use chat_service::{Application, Config};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use tonic::{Request, Status};

use allmine_test_support::backends::{Backend, StoreFixture};

/// A running chat-service and a client connected to it.
pub struct TestService {
    pub addr: SocketAddr,
    /// ChatAdminService's own address, when the test configured one.
    pub admin_addr: Option<SocketAddr>,
    pub client: ChatServiceClient<Channel>,
    pub admin: ChatAdminServiceClient<Channel>,
    /// The token `open_stream` registers streams with (HS256 by default;
    /// tests that configure another algorithm replace it).
    pub service_token: String,
    /// The same store the service writes to, for checking what was stored.
    pub store: SharedStore,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<Result<(), chat_service::StartupError>>>,
    _data_dir: Option<Arc<TempDir>>,
    fixture: Option<StoreFixture>,
}

/// Starts a service on an embedded store in a fresh temporary directory.
pub async fn spawn_service() -> TestService {
    spawn_service_with(|_| {}).await
}

/// As [`spawn_service`], after `adjust` has changed the configuration.
pub async fn spawn_service_with(adjust: impl FnOnce(&mut Config)) -> TestService {
    let data_dir = Arc::new(tempfile::tempdir().unwrap());
    let store: SharedStore = Arc::new(EmbeddedStore::open(data_dir.path()).unwrap());
    let mut service = spawn_service_on(store, adjust).await;
    service._data_dir = Some(data_dir);
    service
}

/// Starts a service on a fresh store of `backend`. Call
/// [`TestService::finish`] at the end so the store is cleaned up.
pub async fn spawn_service_for(backend: Backend) -> TestService {
    spawn_service_for_with(backend, |_| {}).await
}

/// As [`spawn_service_for`], after `adjust` has changed the configuration.
pub async fn spawn_service_for_with(
    backend: Backend,
    adjust: impl FnOnce(&mut Config),
) -> TestService {
    let fixture = StoreFixture::new(backend);
    let store = fixture.open().await;
    let mut service = spawn_service_on(store, adjust).await;
    service.fixture = Some(fixture);
    service
}

/// Starts a service on a store the test opened.
pub async fn spawn_service_on(store: SharedStore, adjust: impl FnOnce(&mut Config)) -> TestService {
    chat_service::telemetry::init();
    let mut config = test_config();
    adjust(&mut config);
    let application = Application::build_with_store(config, store.clone())
        .await
        .expect("service starts");
    let addr = application.local_addr();
    let admin_addr = application.admin_addr();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(application.run_until_stopped(async {
        let _ = stopped.await;
    }));
    let channel = channel(addr).await;
    let client = ChatServiceClient::new(channel.clone());
    let admin = ChatAdminServiceClient::new(channel);
    TestService {
        addr,
        admin_addr,
        client,
        admin,
        service_token: TokenBuilder::service().build(),
        store,
        stop: Some(stop),
        server: Some(server),
        _data_dir: None,
        fixture: None,
    }
}

pub fn test_config() -> Config {
    let mut config = Config::with_secret(TEST_SECRET);
    config.grpc_addr = "127.0.0.1:0".parse().unwrap();
    config.shutdown_grace_secs = 2;
    config
}

pub async fn channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .expect("connects to the test service")
}

impl TestService {
    /// Sends `content` to `stream_id` as the holder of `token`.
    pub async fn send(
        &mut self,
        token: &str,
        stream_id: &str,
        content: &str,
    ) -> Result<ChatMessage, Status> {
        let request = authorized(
            SendMessageRequest {
                stream_id: stream_id.into(),
                content: content.into(),
                idempotency_key: None,
            },
            &format!("Bearer {token}"),
        );
        self.client
            .send_message(request)
            .await
            .map(tonic::Response::into_inner)
    }

    /// Sends with a fresh valid token.
    pub async fn send_as_anyone(
        &mut self,
        stream_id: &str,
        content: &str,
    ) -> Result<ChatMessage, Status> {
        let token = TokenBuilder::new().build();
        self.send(&token, stream_id, content).await
    }

    /// Registers a new stream (with a new owner) and returns its id and the
    /// owner's token builder.
    pub async fn open_stream_with_owner(&mut self) -> (String, TokenBuilder) {
        let stream_id = allmine_test_support::random_object_id();
        let owner = TokenBuilder::new();
        let request = authorized(
            RegisterStreamRequest {
                stream_id: stream_id.clone(),
                owner_id: owner.user_id(),
            },
            &format!("Bearer {}", self.service_token),
        );
        self.admin
            .register_stream(request)
            .await
            .expect("stream registered");
        (stream_id, owner)
    }

    /// Registers a new stream and returns its id.
    pub async fn open_stream(&mut self) -> String {
        self.open_stream_with_owner().await.0
    }

    /// What the store holds for `stream_id`, newest first.
    pub async fn stored(&self, stream_id: &str) -> Vec<chat_service::domain::ChatMessage> {
        let stream = StreamId::parse(stream_id).unwrap();
        self.store.newest(&stream, 1000).await.unwrap()
    }

    /// Stops the service and removes what its store fixture created.
    pub async fn finish(mut self) {
        let fixture = self.fixture.take();
        self.stop().await;
        if let Some(fixture) = fixture {
            fixture.cleanup().await;
        }
    }

    /// Stops the service and waits for it to finish.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
    }
}

/// `message` with `authorization` metadata set to `value`.
pub fn authorized<T>(message: T, value: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", value.parse().unwrap());
    request
}
