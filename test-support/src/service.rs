//! A real chat-service for one test, in process: started through the same
//! `Application` as production, on an ephemeral port, on the embedded store
//! or ScyllaDB, with typed helpers for the calls tests make over gRPC.
//!
//! The `spawn_service*` family differs only in where the store comes from;
//! each takes (or has a `_with` twin taking) a closure that adjusts the test
//! configuration before the service starts, zero-to-production style.

use std::net::SocketAddr;
use std::sync::Arc;

use allmine_chat_proto::v1 as pb;
use allmine_chat_proto::v1::chat_admin_service_client::ChatAdminServiceClient;
use allmine_chat_proto::v1::chat_service_client::ChatServiceClient;
use chat_service::domain::StreamId;
use chat_service::storage::SharedStore;
use chat_service::storage::embedded::EmbeddedStore;
use chat_service::{Application, Config, StartupError};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use tonic::{Status, Streaming};

use crate::backends::{Backend, StoreFixture};
use crate::grpc::{Admin, bearer, channel, into_inner};
use crate::{TEST_SECRET, TokenBuilder, random_object_id};

/// A running chat-service and clients connected to it. Dropping it stops the
/// service; [`TestService::finish`] also removes what its store fixture
/// created in a shared database.
pub struct TestService {
    pub addr: SocketAddr,
    /// ChatAdminService's own address, when the test configured one.
    pub admin_addr: Option<SocketAddr>,
    pub client: ChatServiceClient<Channel>,
    /// The generated admin client (its requests carry no token; see
    /// [`TestService::admin`] for one that does).
    pub admin: ChatAdminServiceClient<Channel>,
    /// The token admin calls present (HS256 `service` by default; tests that
    /// configure another algorithm replace it).
    pub service_token: String,
    /// The same store the service writes to, for checking what was stored.
    pub store: SharedStore,
    channel: Channel,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<Result<(), StartupError>>>,
    _data_dir: Option<TempDir>,
    fixture: Option<StoreFixture>,
}

/// The configuration every test service starts from: the test secret, any
/// free port, a short drain so that stopping is quick.
pub fn test_config() -> Config {
    let mut config = Config::with_secret(TEST_SECRET);
    config.grpc_addr = SocketAddr::from(([127, 0, 0, 1], 0));
    config.shutdown_grace_secs = 2;
    config
}

/// A service on an embedded store in a fresh temporary directory.
pub async fn spawn_service() -> TestService {
    spawn_service_with(|_| {}).await
}

/// As [`spawn_service`], after `adjust` has changed the configuration.
pub async fn spawn_service_with(adjust: impl FnOnce(&mut Config)) -> TestService {
    let data_dir = tempfile::tempdir().expect("a temporary directory");
    let store: SharedStore =
        Arc::new(EmbeddedStore::open(data_dir.path()).expect("the embedded store opens"));
    let mut service = spawn_service_on(store, adjust).await;
    service._data_dir = Some(data_dir);
    service
}

/// A service on a fresh store of `backend`. Call [`TestService::finish`] at
/// the end so that a ScyllaDB keyspace is dropped.
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

/// A service on a store the test opened (a damaged one, one on a full disk,
/// one shared with another instance). `adjust` may also pin the address
/// (`config.grpc_addr`), to restart a service where the edge expects it.
pub async fn spawn_service_on(store: SharedStore, adjust: impl FnOnce(&mut Config)) -> TestService {
    chat_service::telemetry::init();
    let mut config = test_config();
    adjust(&mut config);
    let application = Application::build_with_store(config, store.clone())
        .await
        .expect("chat-service starts");
    let addr = application.local_addr();
    let admin_addr = application.admin_addr();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(application.run_until_stopped(async {
        let _ = stopped.await;
    }));
    let channel = channel(addr).await;
    TestService {
        addr,
        admin_addr,
        client: ChatServiceClient::new(channel.clone()),
        admin: ChatAdminServiceClient::new(channel.clone()),
        channel,
        service_token: TokenBuilder::service().build(),
        store,
        stop: Some(stop),
        server: Some(server),
        _data_dir: None,
        fixture: None,
    }
}

impl TestService {
    /// The admin API with [`Self::service_token`].
    pub fn admin(&self) -> Admin {
        Admin::new(self.channel(), self.service_token.clone())
    }

    /// A new handle on the service's connection (cheap; for calls that need
    /// their own client, or a client moved into a task).
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// Registers a new stream (with a new owner) and returns its id and the
    /// owner's token builder.
    pub async fn open_stream_with_owner(&self) -> (String, TokenBuilder) {
        let stream_id = random_object_id();
        let owner = TokenBuilder::new();
        self.admin().register(&stream_id, &owner.user_id()).await;
        (stream_id, owner)
    }

    /// Registers a new stream and returns its id.
    pub async fn open_stream(&self) -> String {
        self.open_stream_with_owner().await.0
    }

    /// `SendMessage` of `content` to `stream_id` as the holder of `token`.
    pub async fn send(
        &self,
        token: &str,
        stream_id: &str,
        content: &str,
    ) -> Result<pb::ChatMessage, Status> {
        let request = bearer(
            pb::SendMessageRequest {
                stream_id: stream_id.into(),
                content: content.into(),
                idempotency_key: None,
            },
            token,
        );
        into_inner(self.client.clone().send_message(request).await)
    }

    /// [`Self::send`] as the user `sender` describes.
    pub async fn send_as(
        &self,
        sender: &TokenBuilder,
        stream_id: &str,
        content: &str,
    ) -> Result<pb::ChatMessage, Status> {
        self.send(&sender.build(), stream_id, content).await
    }

    /// [`Self::send`] with a fresh valid token.
    pub async fn send_as_anyone(
        &self,
        stream_id: &str,
        content: &str,
    ) -> Result<pb::ChatMessage, Status> {
        self.send_as(&TokenBuilder::new(), stream_id, content).await
    }

    /// `ListMessages` as a fresh viewer: one page of at most `page_size`
    /// (0: the default), before or after a cursor.
    pub async fn history(
        &self,
        stream_id: &str,
        page_size: u32,
        before: Option<&str>,
        after: Option<&str>,
    ) -> Result<pb::ListMessagesResponse, Status> {
        let request = bearer(
            pb::ListMessagesRequest {
                stream_id: stream_id.into(),
                page_size,
                before: before.map(Into::into),
                after: after.map(Into::into),
            },
            &TokenBuilder::new().build(),
        );
        into_inner(self.client.clone().list_messages(request).await)
    }

    /// `SubscribeMessages` as the holder of `token`, from `after` (or from
    /// now).
    pub async fn subscribe_as(
        &self,
        token: &str,
        stream_id: &str,
        after: Option<&str>,
    ) -> Result<Streaming<pb::ChatEvent>, Status> {
        let request = bearer(
            pb::SubscribeMessagesRequest {
                stream_id: stream_id.into(),
                after: after.map(Into::into),
            },
            token,
        );
        into_inner(self.client.clone().subscribe_messages(request).await)
    }

    /// [`Self::subscribe_as`] a fresh viewer, which must be accepted.
    pub async fn subscribe(
        &self,
        stream_id: &str,
        after: Option<&str>,
    ) -> Streaming<pb::ChatEvent> {
        self.subscribe_as(&TokenBuilder::new().build(), stream_id, after)
            .await
            .expect("subscribed")
    }

    /// `DeleteMessage` by `actor`.
    pub async fn delete_message(
        &self,
        actor: &TokenBuilder,
        stream_id: &str,
        message_id: &str,
    ) -> Result<(), Status> {
        let request = bearer(
            pb::DeleteMessageRequest {
                stream_id: stream_id.into(),
                message_id: message_id.into(),
            },
            &actor.build(),
        );
        into_inner(self.client.clone().delete_message(request).await).map(|_| ())
    }

    /// `BanUser` by `actor` (reason "spam"); no duration is a permanent ban.
    pub async fn ban(
        &self,
        actor: &TokenBuilder,
        stream_id: &str,
        target: &str,
        duration_seconds: Option<u32>,
    ) -> Result<pb::Ban, Status> {
        let request = bearer(
            pb::BanUserRequest {
                stream_id: stream_id.into(),
                user_id: target.into(),
                duration_seconds,
                reason: Some("spam".into()),
            },
            &actor.build(),
        );
        into_inner(self.client.clone().ban_user(request).await)
    }

    /// `UnbanUser` by `actor`.
    pub async fn unban(
        &self,
        actor: &TokenBuilder,
        stream_id: &str,
        target: &str,
    ) -> Result<(), Status> {
        let request = bearer(
            pb::UnbanUserRequest {
                stream_id: stream_id.into(),
                user_id: target.into(),
            },
            &actor.build(),
        );
        into_inner(self.client.clone().unban_user(request).await).map(|_| ())
    }

    /// `AddModerator` by `actor`.
    pub async fn add_moderator(
        &self,
        actor: &TokenBuilder,
        stream_id: &str,
        target: &str,
    ) -> Result<pb::Stream, Status> {
        let request = bearer(moderator_request(stream_id, target), &actor.build());
        into_inner(self.client.clone().add_moderator(request).await)
    }

    /// `RemoveModerator` by `actor`.
    pub async fn remove_moderator(
        &self,
        actor: &TokenBuilder,
        stream_id: &str,
        target: &str,
    ) -> Result<pb::Stream, Status> {
        let request = bearer(moderator_request(stream_id, target), &actor.build());
        into_inner(self.client.clone().remove_moderator(request).await)
    }

    /// What the store holds for `stream_id`, newest first.
    pub async fn stored(&self, stream_id: &str) -> Vec<chat_service::domain::ChatMessage> {
        let stream = StreamId::parse(stream_id).expect("a valid stream id");
        self.store
            .newest(&stream, 1000)
            .await
            .expect("the store reads")
    }

    /// How many messages the store holds for `stream_id`.
    pub async fn stored_count(&self, stream_id: &str) -> usize {
        self.stored(stream_id).await.len()
    }

    /// Stops the service and removes what its store fixture created.
    pub async fn finish(mut self) {
        let fixture = self.fixture.take();
        self.stop().await;
        if let Some(fixture) = fixture {
            fixture.cleanup().await;
        }
    }

    /// Stops the service and waits until it has drained, failing the test if
    /// it stopped with an error.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server
                .await
                .expect("the server task did not panic")
                .expect("the server stopped cleanly");
        }
    }
}

fn moderator_request(stream_id: &str, target: &str) -> pb::ModeratorRequest {
    pb::ModeratorRequest {
        stream_id: stream_id.into(),
        user_id: target.into(),
    }
}
