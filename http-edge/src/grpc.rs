//! The client of chat-service: one lazily connected channel shared by the
//! `ChatService` and `grpc.health.v1` stubs.
//!
//! `connect_lazy` lets the edge start before chat-service and outlive it: the
//! channel dials on first use and redials after a failure, so while
//! chat-service is away calls fail fast with UNAVAILABLE (503) and succeed
//! again once it is back, without restarting the edge.
//!
//! Unary calls carry a deadline. `SubscribeMessages` does not: it lives as
//! long as its client; only the wait for its response headers is bounded.

use std::time::Duration;

use allmine_chat_proto::{
    CHAT_SERVICE_NAME,
    v1::{
        Ban, BanUserRequest, ChatEvent, ChatMessage, DeleteMessageRequest, ListMessagesRequest,
        ListMessagesResponse, ModeratorRequest, SendMessageRequest, Stream,
        SubscribeMessagesRequest, UnbanUserRequest, chat_service_client::ChatServiceClient,
    },
};
use http::Uri;
use tonic::{
    Streaming,
    metadata::{AsciiMetadataValue, MetadataMap},
    transport::{Channel, Endpoint},
};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::{
    dto::history::LIST_MESSAGES_REST_NAMES, error::ApiError, extract::BearerToken,
    request_id::RequestId,
};

/// How often the channel pings chat-service while calls are open, and how
/// long it waits for the answer. Subscriptions have no deadline, so without
/// this a chat-service that vanished without closing the connection (host
/// down, partition) would leave them waiting forever; with it the connection
/// is dropped, the streams fail, and their clients reconnect.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(30);
const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// A cheap-to-clone handle on chat-service (clones share one channel).
#[derive(Debug, Clone)]
pub struct ChatClient {
    chat: ChatServiceClient<Channel>,
    health: HealthClient<Channel>,
    timeout: Duration,
}

impl ChatClient {
    /// Prepares the channel without dialing. `timeout` is the deadline of every
    /// call and also bounds each connection attempt, so that a black-holed
    /// address cannot hold a request past its deadline.
    pub fn connect_lazy(url: Uri, timeout: Duration) -> Self {
        let channel = Endpoint::from(url)
            .connect_timeout(timeout)
            // Enforced by the client itself, whatever the server does, until
            // the response headers arrive: it bounds a unary call, and the
            // start (not the life) of a subscription...
            .timeout(timeout)
            .http2_keep_alive_interval(KEEP_ALIVE_INTERVAL)
            .keep_alive_timeout(KEEP_ALIVE_TIMEOUT)
            .connect_lazy();
        Self {
            chat: ChatServiceClient::new(channel.clone()),
            health: HealthClient::new(channel),
            timeout,
        }
    }

    // Each call carries the caller's token and the request id as metadata,
    // and the deadline. The generated stub takes `&mut self`; cloning it only
    // clones the channel handle.

    /// Calls `SendMessage`.
    pub async fn send_message(
        &self,
        request: SendMessageRequest,
        token: &BearerToken,
        request_id: &RequestId,
    ) -> Result<ChatMessage, ApiError> {
        let request = self.authorized_request(request, token, request_id)?;
        let response = self.chat.clone().send_message(request).await?;
        Ok(response.into_inner())
    }

    /// Calls `ListMessages`. A violation on `page_size` is reported as one on
    /// `limit`, the query parameter the client knows.
    pub async fn list_messages(
        &self,
        request: ListMessagesRequest,
        token: &BearerToken,
        request_id: &RequestId,
    ) -> Result<ListMessagesResponse, ApiError> {
        let request = self.authorized_request(request, token, request_id)?;
        let response = self
            .chat
            .clone()
            .list_messages(request)
            .await
            .map_err(|status| ApiError::from_status(status, LIST_MESSAGES_REST_NAMES))?;
        Ok(response.into_inner())
    }

    /// Calls `DeleteMessage`.
    pub async fn delete_message(
        &self,
        request: DeleteMessageRequest,
        token: &BearerToken,
        request_id: &RequestId,
    ) -> Result<(), ApiError> {
        let request = self.authorized_request(request, token, request_id)?;
        self.chat.clone().delete_message(request).await?;
        Ok(())
    }

    /// Calls `SubscribeMessages` and waits for chat-service to accept or
    /// refuse it (its response headers): a refusal is an [`ApiError`] like
    /// any other, an acceptance the stream of events.
    ///
    /// The call has no deadline (no `grpc-timeout`): it lasts as long as the
    /// caller keeps the stream, and dropping the stream cancels it on
    /// chat-service. Only the wait for the headers is bounded, by the
    /// channel's timeout (504).
    pub async fn subscribe_messages(
        &self,
        request: SubscribeMessagesRequest,
        token: &BearerToken,
        request_id: &RequestId,
    ) -> Result<Streaming<ChatEvent>, ApiError> {
        let mut request = tonic::Request::new(request);
        insert_request_id(request.metadata_mut(), request_id)?;
        insert_authorization(request.metadata_mut(), token)?;
        let response = self.chat.clone().subscribe_messages(request).await?;
        Ok(response.into_inner())
    }

    /// Calls `BanUser`.
    pub async fn ban_user(
        &self,
        request: BanUserRequest,
        token: &BearerToken,
        request_id: &RequestId,
    ) -> Result<Ban, ApiError> {
        let request = self.authorized_request(request, token, request_id)?;
        let response = self.chat.clone().ban_user(request).await?;
        Ok(response.into_inner())
    }

    /// Calls `UnbanUser`.
    pub async fn unban_user(
        &self,
        request: UnbanUserRequest,
        token: &BearerToken,
        request_id: &RequestId,
    ) -> Result<(), ApiError> {
        let request = self.authorized_request(request, token, request_id)?;
        self.chat.clone().unban_user(request).await?;
        Ok(())
    }

    /// Calls `AddModerator`.
    pub async fn add_moderator(
        &self,
        request: ModeratorRequest,
        token: &BearerToken,
        request_id: &RequestId,
    ) -> Result<Stream, ApiError> {
        let request = self.authorized_request(request, token, request_id)?;
        let response = self.chat.clone().add_moderator(request).await?;
        Ok(response.into_inner())
    }

    /// Calls `RemoveModerator`.
    pub async fn remove_moderator(
        &self,
        request: ModeratorRequest,
        token: &BearerToken,
        request_id: &RequestId,
    ) -> Result<Stream, ApiError> {
        let request = self.authorized_request(request, token, request_id)?;
        let response = self.chat.clone().remove_moderator(request).await?;
        Ok(response.into_inner())
    }

    /// Ready means chat-service answers its health check for
    /// `allmine.chat.v1.ChatService` with SERVING. Any failure, whatever its
    /// gRPC code, makes the edge not ready (503).
    pub async fn check_ready(&self, request_id: &RequestId) -> Result<(), ApiError> {
        let request = self.request(
            HealthCheckRequest {
                service: CHAT_SERVICE_NAME.to_owned(),
            },
            request_id,
        )?;
        let response = self.health.clone().check(request).await.map_err(|status| {
            ApiError::Unavailable(format!(
                "health check failed: {:?}: {}",
                status.code(),
                status.message()
            ))
        })?;
        match response.into_inner().status() {
            ServingStatus::Serving => Ok(()),
            other => Err(ApiError::Unavailable(format!(
                "chat-service reports {}",
                other.as_str_name()
            ))),
        }
    }

    /// A request with the deadline and the request id set.
    fn request<T>(
        &self,
        message: T,
        request_id: &RequestId,
    ) -> Result<tonic::Request<T>, ApiError> {
        let mut request = tonic::Request::new(message);
        // ...and this tells the server the deadline (`grpc-timeout`), so that
        // it can stop working on a request nobody waits for.
        request.set_timeout(self.timeout);
        insert_request_id(request.metadata_mut(), request_id)?;
        Ok(request)
    }

    /// A request with the deadline, the request id and the caller's token.
    fn authorized_request<T>(
        &self,
        message: T,
        token: &BearerToken,
        request_id: &RequestId,
    ) -> Result<tonic::Request<T>, ApiError> {
        let mut request = self.request(message, request_id)?;
        insert_authorization(request.metadata_mut(), token)?;
        Ok(request)
    }
}

fn insert_authorization(metadata: &mut MetadataMap, token: &BearerToken) -> Result<(), ApiError> {
    let mut authorization =
        AsciiMetadataValue::try_from(token.authorization_value()).map_err(|_| {
            ApiError::Unauthenticated(vec![
                "Authorization header must be 'Bearer <token>'".to_owned(),
            ])
        })?;
    // Sensitive values are never added to HTTP/2's header compression table.
    authorization.set_sensitive(true);
    metadata.insert("authorization", authorization);
    Ok(())
}

fn insert_request_id(metadata: &mut MetadataMap, request_id: &RequestId) -> Result<(), ApiError> {
    let value = AsciiMetadataValue::try_from(request_id.as_str()).map_err(|_| {
        ApiError::Internal(format!("request id {request_id} is not valid metadata"))
    })?;
    metadata.insert("x-request-id", value);
    Ok(())
}
