//! The gRPC services. Each RPC lives in its own file; handlers are thin:
//! parse the request into domain types, do the work, map the result.
//!
//! - `ChatService` (public, every caller with a valid token): send, history, ban,
//!   unban, moderators.
//! - `ChatAdminService` (internal, tokens with the `service` role): streams
//!   and profiles, in [`admin`].
//!
//! `SubscribeMessages` is served through [`chat_server`], with events
//! encoded once for all subscribers.
//!
//! Around them: the interceptor that authenticates every call, [`convert`]
//! (domain ↔ protobuf), `request` (what several handlers parse alike, and
//! their span fields) and [`status`] (the one mapping of errors to `Status`).
//! Each handler's span comes from `#[tracing::instrument]`: named after the
//! method, with the caller's `x-request-id`, the stream and the user.

pub mod admin;
mod authorize_subscription;
mod ban_user;
pub mod chat_server;
pub mod convert;
mod delete_message;
mod event_codec;
mod interceptor;
mod list_messages;
mod moderators;
mod request;
mod send_message;
pub mod status;
mod subscribe_messages;
mod unban_user;

use std::sync::Arc;
use std::time::Duration;

use allmine_chat_proto::v1 as pb;
use futures::StreamExt;
use pb::chat_service_server::ChatService;
use tonic::{Request, Response, Status};

use crate::live::Hub;
use crate::live::limits::{SubscriptionCaps, SubscriptionLimits};
use crate::rules::{BurstSettings, SendPolicy, SharedPolicy};
use crate::storage::SharedStore;

/// `SubscribeMessages` events as messages (the generated route's type).
pub type DecodedEvents =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<pb::ChatEvent, Status>> + Send>>;

/// What the handlers share.
#[derive(Clone)]
pub struct ChatServiceImpl {
    store: SharedStore,
    policy: SharedPolicy,
    hub: Arc<Hub>,
    subscriptions: Arc<SubscriptionLimits>,
    /// How long an idempotency key holds its message.
    idempotency_window: Duration,
}

impl ChatServiceImpl {
    pub fn new(
        hub: Arc<Hub>,
        burst: BurstSettings,
        subscriptions: SubscriptionCaps,
        idempotency_window: Duration,
    ) -> Self {
        let store = hub.store().clone();
        Self {
            policy: Arc::new(SendPolicy::new(store.clone(), burst)),
            store,
            hub,
            subscriptions: SubscriptionLimits::new(subscriptions),
            idempotency_window,
        }
    }
}

/// Each handler returns `Result<_, ChatError>`; here, and only here, the
/// error becomes a `Status` (see [`status`]).
#[tonic::async_trait]
impl ChatService for ChatServiceImpl {
    async fn send_message(
        &self,
        request: Request<pb::SendMessageRequest>,
    ) -> Result<Response<pb::ChatMessage>, Status> {
        send_message::handle(self, request)
            .await
            .map_err(Status::from)
    }

    async fn list_messages(
        &self,
        request: Request<pb::ListMessagesRequest>,
    ) -> Result<Response<pb::ListMessagesResponse>, Status> {
        list_messages::handle(self, request)
            .await
            .map_err(Status::from)
    }

    type SubscribeMessagesStream = DecodedEvents;

    /// Served by [`chat_server`] with events encoded once; this generated
    /// route is bypassed there and stays correct for any other wiring (it
    /// decodes the shared bytes again).
    async fn subscribe_messages(
        &self,
        request: Request<pb::SubscribeMessagesRequest>,
    ) -> Result<Response<Self::SubscribeMessagesStream>, Status> {
        let events = subscribe_messages::handle(self, request)
            .await
            .map_err(Status::from)?;
        Ok(events.map(|events| {
            Box::pin(events.map(|item| {
                item.and_then(|event| {
                    event
                        .into_event()
                        .map_err(|error| Status::internal(error.to_string()))
                })
            })) as DecodedEvents
        }))
    }

    async fn delete_message(
        &self,
        request: Request<pb::DeleteMessageRequest>,
    ) -> Result<Response<()>, Status> {
        delete_message::handle(self, request)
            .await
            .map_err(Status::from)
    }

    async fn ban_user(
        &self,
        request: Request<pb::BanUserRequest>,
    ) -> Result<Response<pb::Ban>, Status> {
        ban_user::handle(self, request).await.map_err(Status::from)
    }

    async fn unban_user(
        &self,
        request: Request<pb::UnbanUserRequest>,
    ) -> Result<Response<()>, Status> {
        unban_user::handle(self, request)
            .await
            .map_err(Status::from)
    }

    async fn add_moderator(
        &self,
        request: Request<pb::ModeratorRequest>,
    ) -> Result<Response<pb::Stream>, Status> {
        moderators::add(self, request).await.map_err(Status::from)
    }

    async fn remove_moderator(
        &self,
        request: Request<pb::ModeratorRequest>,
    ) -> Result<Response<pb::Stream>, Status> {
        moderators::remove(self, request)
            .await
            .map_err(Status::from)
    }
}
