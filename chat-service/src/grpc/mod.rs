//! The gRPC services. Each RPC lives in its own file; handlers are thin:
//! parse the request into domain types, do the work, map the result.
//!
//! - `ChatService` (public, every caller with a valid token): send, history, ban,
//!   unban, moderators.
//! - `ChatAdminService` (internal, tokens with the `service` role): streams
//!   and profiles, in [`admin`].

pub mod admin;
mod ban_user;
mod delete_message;
mod list_messages;
mod moderators;
mod send_message;
mod subscribe_messages;
mod unban_user;

use std::sync::Arc;
use std::time::Duration;

use allmine_chat_proto::v1 as pb;
use pb::chat_service_server::ChatService;
use tonic::{Request, Response, Status};

use crate::domain::ObjectIdError;
use crate::error::ChatError;
use crate::live::Hub;
use crate::live::limits::{SubscriptionCaps, SubscriptionLimits};
use crate::live::subscription::EventStream;
use crate::rules::{BurstSettings, SendPolicy, SharedPolicy};
use crate::storage::SharedStore;

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

#[tonic::async_trait]
impl ChatService for ChatServiceImpl {
    async fn send_message(
        &self,
        request: Request<pb::SendMessageRequest>,
    ) -> Result<Response<pb::ChatMessage>, Status> {
        send_message::handle(self, request).await
    }

    async fn list_messages(
        &self,
        request: Request<pb::ListMessagesRequest>,
    ) -> Result<Response<pb::ListMessagesResponse>, Status> {
        list_messages::handle(self, request).await
    }

    type SubscribeMessagesStream = EventStream;

    async fn subscribe_messages(
        &self,
        request: Request<pb::SubscribeMessagesRequest>,
    ) -> Result<Response<Self::SubscribeMessagesStream>, Status> {
        subscribe_messages::handle(self, request).await
    }

    async fn delete_message(
        &self,
        request: Request<pb::DeleteMessageRequest>,
    ) -> Result<Response<()>, Status> {
        delete_message::handle(self, request).await
    }

    async fn ban_user(
        &self,
        request: Request<pb::BanUserRequest>,
    ) -> Result<Response<pb::Ban>, Status> {
        ban_user::handle(self, request).await
    }

    async fn unban_user(
        &self,
        request: Request<pb::UnbanUserRequest>,
    ) -> Result<Response<()>, Status> {
        unban_user::handle(self, request).await
    }

    async fn add_moderator(
        &self,
        request: Request<pb::ModeratorRequest>,
    ) -> Result<Response<pb::Stream>, Status> {
        moderators::add(self, request).await
    }

    async fn remove_moderator(
        &self,
        request: Request<pb::ModeratorRequest>,
    ) -> Result<Response<pb::Stream>, Status> {
        moderators::remove(self, request).await
    }
}

/// The caller's `x-request-id` (set by http-edge), for log correlation.
fn request_id<T>(request: &Request<T>) -> String {
    request
        .metadata()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("-")
        .chars()
        .take(128)
        .collect()
}

/// Parses an id field, naming it in the violation.
fn parse_id<T>(
    field: &'static str,
    text: &str,
    parse: impl Fn(&str) -> Result<T, ObjectIdError>,
) -> Result<T, ChatError> {
    parse(text).map_err(|error| ChatError::invalid(field, error))
}

/// An id field of a request: its name, its text, and how to parse it.
type IdField<'a, T> = (&'static str, &'a str, fn(&str) -> Result<T, ObjectIdError>);

/// Parses two id fields, reporting every invalid one at once.
fn parse_ids<A, B>(first: IdField<'_, A>, second: IdField<'_, B>) -> Result<(A, B), ChatError> {
    match (
        parse_id(first.0, first.1, first.2),
        parse_id(second.0, second.1, second.2),
    ) {
        (Ok(a), Ok(b)) => Ok((a, b)),
        (a, b) => {
            let violations = [a.err(), b.err()]
                .into_iter()
                .flatten()
                .flat_map(|error| match error {
                    ChatError::InvalidArgument(found) => found,
                    _ => Vec::new(),
                })
                .collect();
            Err(ChatError::InvalidArgument(violations))
        }
    }
}
