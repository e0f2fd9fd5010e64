//! gRPC plumbing every harness shares: a channel to a test server, bearer
//! metadata, and [`Admin`], chat-service's admin API as another Allmine
//! service calls it.
//!
//! Nothing here starts a server, so it needs neither chat-service nor the
//! edge: the process harness ([`crate::service_process`]) uses it too.

use std::net::SocketAddr;

use allmine_chat_proto::v1 as pb;
use allmine_chat_proto::v1::chat_admin_service_client::ChatAdminServiceClient;
use tonic::transport::Channel;
use tonic::{Request, Status};

use crate::TokenBuilder;

/// A channel to a test server that is already listening.
pub async fn channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .expect("a valid URI")
        .connect()
        .await
        .expect("connects to the test server")
}

/// `message` with `authorization` metadata set to exactly `value` (any
/// scheme, or garbage: auth tests need both).
pub fn authorized<T>(message: T, value: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        value.parse().expect("ASCII authorization metadata"),
    );
    request
}

/// `message` with `authorization: Bearer <token>`.
pub fn bearer<T>(message: T, token: &str) -> Request<T> {
    authorized(message, &format!("Bearer {token}"))
}

/// ChatAdminService with the token it presents (a `service` token unless the
/// test wants to see another one refused).
///
/// `try_*` methods return chat-service's answer; the others panic on a
/// refusal, for tests where the admin call is set-up, not the subject.
#[derive(Clone)]
pub struct Admin {
    client: ChatAdminServiceClient<Channel>,
    token: String,
}

impl Admin {
    /// An admin client on `channel` presenting `token`.
    pub fn new(channel: Channel, token: String) -> Self {
        Self {
            client: ChatAdminServiceClient::new(channel),
            token,
        }
    }

    /// Connects to `addr` with a fresh `service` token.
    pub async fn connect(addr: SocketAddr) -> Self {
        Self::connect_as(addr, TokenBuilder::service().build()).await
    }

    /// Connects to `addr` presenting `token` (to check who may call the
    /// admin service).
    pub async fn connect_as(addr: SocketAddr, token: String) -> Self {
        Self::new(channel(addr).await, token)
    }

    /// `message` with this client's token.
    pub fn request<T>(&self, message: T) -> Request<T> {
        bearer(message, &self.token)
    }

    /// The generated client, for calls without a typed helper (its requests
    /// carry no token: use [`Self::request`]).
    pub fn raw(&self) -> ChatAdminServiceClient<Channel> {
        self.client.clone()
    }

    pub async fn try_register(
        &self,
        stream_id: &str,
        owner_id: &str,
    ) -> Result<pb::Stream, Status> {
        let request = self.request(pb::RegisterStreamRequest {
            stream_id: stream_id.into(),
            owner_id: owner_id.into(),
        });
        into_inner(self.raw().register_stream(request).await)
    }

    pub async fn register(&self, stream_id: &str, owner_id: &str) -> pb::Stream {
        self.try_register(stream_id, owner_id)
            .await
            .expect("stream registered")
    }

    pub async fn try_set_open(&self, stream_id: &str, open: bool) -> Result<pb::Stream, Status> {
        let request = self.request(pb::SetChatOpenRequest {
            stream_id: stream_id.into(),
            open,
        });
        into_inner(self.raw().set_chat_open(request).await)
    }

    pub async fn set_open(&self, stream_id: &str, open: bool) -> pb::Stream {
        self.try_set_open(stream_id, open)
            .await
            .expect("chat opened or closed")
    }

    pub async fn try_end(&self, stream_id: &str) -> Result<pb::Stream, Status> {
        let request = self.request(pb::EndStreamRequest {
            stream_id: stream_id.into(),
        });
        into_inner(self.raw().end_stream(request).await)
    }

    pub async fn end(&self, stream_id: &str) -> pb::Stream {
        self.try_end(stream_id).await.expect("stream ended")
    }

    pub async fn try_slow_mode(&self, stream_id: &str, seconds: u32) -> Result<pb::Stream, Status> {
        let request = self.request(pb::UpdateStreamSettingsRequest {
            stream_id: stream_id.into(),
            slow_mode_seconds: Some(seconds),
        });
        into_inner(self.raw().update_stream_settings(request).await)
    }

    pub async fn slow_mode(&self, stream_id: &str, seconds: u32) -> pb::Stream {
        self.try_slow_mode(stream_id, seconds)
            .await
            .expect("slow mode set")
    }

    pub async fn try_upsert_profile(
        &self,
        profile: pb::UserProfile,
    ) -> Result<pb::UserProfile, Status> {
        let request = self.request(profile);
        into_inner(self.raw().upsert_user_profile(request).await)
    }

    pub async fn upsert_profile(&self, profile: pb::UserProfile) -> pb::UserProfile {
        self.try_upsert_profile(profile)
            .await
            .expect("profile stored")
    }
}

/// The message of a unary answer, or its status.
pub fn into_inner<T>(answer: Result<tonic::Response<T>, Status>) -> Result<T, Status> {
    answer.map(tonic::Response::into_inner)
}
