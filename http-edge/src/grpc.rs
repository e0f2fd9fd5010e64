//! The client of chat-service: lazily connected HTTP/2 connections, one for
//! unary calls ([`crate::upstream`], without tonic's per-call hops), one for
//! health checks, a small pool for event streams.
//!
//! Isolation between clients (README "Limits"):
//! - event streams never share a connection with unary calls, and the SSE
//!   relay reads each stream as fast as chat-service sends (into a bounded
//!   per-client queue, see [`crate::event_stream`]), so no client's stalled
//!   reader can use up an HTTP/2 flow-control window that others need;
//! - unary calls in flight are bounded ([`Limits::max_in_flight`]): a call
//!   that cannot start within the queue timeout is shed with 503 and
//!   `Retry-After` instead of queueing without bound;
//! - a unary call runs to its end (or its deadline) in a task of its own,
//!   even if its HTTP client hangs up: cancelling it would reset its HTTP/2
//!   stream, and a flood of such resets is what makes an HTTP/2 server close
//!   the whole connection (`ENHANCE_YOUR_CALM`), cutting every other client.
//!
//! `connect_lazy` lets the edge start before chat-service and outlive it: the
//! channel dials on first use and redials after a failure, so while
//! chat-service is away calls fail fast with UNAVAILABLE (503) and succeed
//! again once it is back, without restarting the edge.
//!
//! Unary calls carry a deadline. `SubscribeMessages` does not: it lives as
//! long as its client; only the wait for its response headers is bounded.

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use allmine_chat_proto::{
    CHAT_SERVICE_NAME, IDEMPOTENT_REPLAYED_METADATA,
    v1::{
        AuthorizeSubscriptionRequest, AuthorizeSubscriptionResponse, Ban, BanUserRequest,
        ChatEvent, ChatMessage, DeleteMessageRequest, ListMessagesRequest, ListMessagesResponse,
        ModeratorRequest, SendMessageRequest, Stream, SubscribeMessagesRequest, UnbanUserRequest,
        chat_service_client::ChatServiceClient,
    },
};
use allmine_observability::admission::Admission;
use http::Uri;
use tokio::sync::OwnedSemaphorePermit;
use tonic::{
    Streaming,
    metadata::{AsciiMetadataValue, MetadataMap},
    transport::{Channel, Endpoint},
};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::{
    config::Limits,
    dto::{SEND_MESSAGE_REST_NAMES, history::LIST_MESSAGES_REST_NAMES},
    error::ApiError,
    extract::BearerToken,
    rate_limit::RateLimit,
    request_id::RequestId,
    upstream::{self, Unary},
};

// The unary methods' paths, as the generated stubs name them.
const SEND_MESSAGE: &str = "/allmine.chat.v1.ChatService/SendMessage";
const LIST_MESSAGES: &str = "/allmine.chat.v1.ChatService/ListMessages";
const DELETE_MESSAGE: &str = "/allmine.chat.v1.ChatService/DeleteMessage";
const BAN_USER: &str = "/allmine.chat.v1.ChatService/BanUser";
const UNBAN_USER: &str = "/allmine.chat.v1.ChatService/UnbanUser";
const ADD_MODERATOR: &str = "/allmine.chat.v1.ChatService/AddModerator";
const REMOVE_MODERATOR: &str = "/allmine.chat.v1.ChatService/RemoveModerator";
const AUTHORIZE_SUBSCRIPTION: &str = "/allmine.chat.v1.ChatEdgeService/AuthorizeSubscription";

/// What `SendMessage` answered: the message, and whether it is the replay of
/// an earlier send with the same idempotency key (chat-service's
/// `idempotent-replayed` response metadata).
#[derive(Debug)]
pub struct SentMessage {
    pub message: ChatMessage,
    pub replayed: bool,
    /// The caller's sending quota, when chat-service reports it.
    pub rate_limit: Option<RateLimit>,
}

/// How often the channel pings chat-service while calls are open, and how
/// long it waits for the answer. Subscriptions have no deadline, so without
/// this a chat-service that vanished without closing the connection (host
/// down, partition) would leave them waiting forever; with it the connection
/// is dropped, the streams fail, and their clients reconnect.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(30);
const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// HTTP/2 receive windows of the edge's connections to chat-service. The
/// relay drains event streams at once, so a window only has to cover what
/// arrives between two reads; the connection window is wide enough for many
/// streams to burst together.
const STREAM_WINDOW: u32 = 1024 * 1024;
const CONNECTION_WINDOW: u32 = 16 * 1024 * 1024;

/// How long a shed client is asked to wait.
const SHED_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Counts a shed call and makes its answer.
fn shed() -> ApiError {
    crate::metrics::shed(crate::metrics::Shed::InFlight);
    overloaded()
}

/// The answer to a call shed for want of a slot (here or in
/// [`crate::shed`]).
pub(crate) fn overloaded() -> ApiError {
    ApiError::Overloaded {
        reasons: vec!["The chat is handling too many requests; retry later".to_owned()],
        retry_after: SHED_RETRY_AFTER,
    }
}

/// A cheap-to-clone handle on chat-service (clones share the channels).
///
/// One `Arc`: axum clones the handle for every request (the router's state,
/// the shedding middleware's state), and cloning the stubs themselves costs
/// an allocation-free but long series of reference counts per channel.
#[derive(Debug, Clone)]
pub struct ChatClient(Arc<Clients>);

#[derive(Debug)]
struct Clients {
    /// Unary calls, the per-client check of the shared event streams
    /// (`crate::fanout`) included: one lean HTTP/2 connection
    /// ([`crate::upstream`]).
    unary: Arc<Unary>,
    /// Health checks (`/readyz`), on a tonic channel of their own.
    health: HealthClient<Channel>,
    /// Event streams, spread over their own connections.
    streams: Arc<[ChatServiceClient<Channel>]>,
    next_stream: Arc<AtomicUsize>,
    /// Slots for unary calls, and the bounded queue in front of them.
    admission: Arc<Admission>,
    timeout: Duration,
}

impl ChatClient {
    /// Prepares the channels without dialing. `timeout` is the deadline of
    /// every call and also bounds each connection attempt, so that a
    /// black-holed address cannot hold a request past its deadline.
    pub fn connect_lazy(url: Uri, timeout: Duration, limits: &Limits) -> Self {
        let channel = || {
            Endpoint::from(url.clone())
                .connect_timeout(timeout)
                // Enforced by the client itself, whatever the server does,
                // until the response headers arrive: it bounds a unary call,
                // and the start (not the life) of a subscription...
                .timeout(timeout)
                .http2_keep_alive_interval(KEEP_ALIVE_INTERVAL)
                .keep_alive_timeout(KEEP_ALIVE_TIMEOUT)
                .initial_stream_window_size(STREAM_WINDOW)
                .initial_connection_window_size(CONNECTION_WINDOW)
                .connect_lazy()
        };
        let streams = (0..limits.upstream_stream_connections.max(1))
            .map(|_| ChatServiceClient::new(channel()))
            .collect();
        let unary = Unary::new(
            url.clone(),
            upstream::Settings {
                timeout,
                stream_window: STREAM_WINDOW,
                connection_window: CONNECTION_WINDOW,
                keep_alive_interval: KEEP_ALIVE_INTERVAL,
                keep_alive_timeout: KEEP_ALIVE_TIMEOUT,
            },
        );
        Self(Arc::new(Clients {
            unary,
            health: HealthClient::new(channel()),
            streams,
            next_stream: Arc::new(AtomicUsize::new(0)),
            admission: Arc::new(Admission::new(
                usize::try_from(limits.max_in_flight).unwrap_or(usize::MAX),
                usize::try_from(limits.max_queued).unwrap_or(usize::MAX),
                limits.queue_timeout(),
            )),
            timeout,
        }))
    }

    /// Whether a unary call arriving now would be shed at once: every slot
    /// taken and the queue full (a look, not a reservation: see
    /// [`crate::shed`]).
    pub fn is_saturated(&self) -> bool {
        self.0.admission.is_saturated()
    }

    /// A slot for one unary call: at once if one is free, else, if fewer
    /// than `EDGE_MAX_QUEUED` calls are waiting, within the queue timeout;
    /// else the call is shed (503 with `Retry-After`).
    async fn admit(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        self.0.admission.admit().await.ok_or_else(shed)
    }

    /// Runs one unary call in a slot, in a task of its own, so that it
    /// finishes (within its deadline) even when the HTTP client leaves.
    async fn call<T, F>(&self, call: F) -> Result<T, ApiError>
    where
        F: Future<Output = Result<T, ApiError>> + Send + 'static,
        T: Send + 'static,
    {
        let permit = self.admit().await?;
        let task = tokio::spawn(async move {
            let result = call.await;
            drop(permit);
            result
        });
        task.await
            .map_err(|error| ApiError::Internal(format!("a gRPC call task failed: {error}")))?
    }

    /// The client for the next event stream (round robin over the pool).
    fn stream_client(&self) -> ChatServiceClient<Channel> {
        let index = self.0.next_stream.fetch_add(1, Ordering::Relaxed) % self.0.streams.len();
        self.0.streams[index].clone()
    }

    // Each call carries the caller's token and the request id as metadata,
    // and the deadline. The generated stub takes `&mut self`; cloning it only
    // clones the channel handle.

    /// Calls `SendMessage`. A violation on `idempotency_key` is reported as
    /// one on the `Idempotency-Key` header, which the client knows.
    pub async fn send_message(
        &self,
        request: SendMessageRequest,
        token: &BearerToken,
        request_id: &RequestId,
    ) -> Result<SentMessage, ApiError> {
        let request = self.authorized_request(request, token, request_id)?;
        let unary = Arc::clone(&self.0.unary);
        self.call(async move {
            let response = unary
                .call::<_, ChatMessage>(SEND_MESSAGE, request)
                .await
                .map_err(|status| ApiError::from_status(status, SEND_MESSAGE_REST_NAMES))?;
            let replayed = response
                .metadata()
                .get(IDEMPOTENT_REPLAYED_METADATA)
                .is_some_and(|value| value == "true");
            let rate_limit = RateLimit::from_metadata(response.metadata());
            Ok(SentMessage {
                message: response.into_inner(),
                replayed,
                rate_limit,
            })
        })
        .await
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
        let unary = Arc::clone(&self.0.unary);
        self.call(async move {
            let response = unary
                .call::<_, ListMessagesResponse>(LIST_MESSAGES, request)
                .await
                .map_err(|status| ApiError::from_status(status, LIST_MESSAGES_REST_NAMES))?;
            Ok(response.into_inner())
        })
        .await
    }

    /// Calls `DeleteMessage`.
    pub async fn delete_message(
        &self,
        request: DeleteMessageRequest,
        token: &BearerToken,
        request_id: &RequestId,
    ) -> Result<(), ApiError> {
        let request = self.authorized_request(request, token, request_id)?;
        let unary = Arc::clone(&self.0.unary);
        self.call(async move {
            unary.call::<_, ()>(DELETE_MESSAGE, request).await?;
            Ok(())
        })
        .await
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
        let response = self.stream_client().subscribe_messages(request).await?;
        Ok(response.into_inner())
    }

    /// Calls `ChatEdgeService.AuthorizeSubscription` for one SSE client of a
    /// shared feed, with its token: the refusals of `SubscribeMessages`, as
    /// [`ApiError`]s.
    pub async fn authorize_subscription(
        &self,
        stream_id: String,
        token: &BearerToken,
        request_id: &RequestId,
    ) -> Result<AuthorizeSubscriptionResponse, ApiError> {
        let request = self.authorized_request(
            AuthorizeSubscriptionRequest { stream_id },
            token,
            request_id,
        )?;
        let unary = Arc::clone(&self.0.unary);
        self.call(async move {
            Ok(unary
                .call::<_, AuthorizeSubscriptionResponse>(AUTHORIZE_SUBSCRIPTION, request)
                .await?
                .into_inner())
        })
        .await
    }

    /// Calls `BanUser`.
    pub async fn ban_user(
        &self,
        request: BanUserRequest,
        token: &BearerToken,
        request_id: &RequestId,
    ) -> Result<Ban, ApiError> {
        let request = self.authorized_request(request, token, request_id)?;
        let unary = Arc::clone(&self.0.unary);
        self.call(async move { Ok(unary.call::<_, Ban>(BAN_USER, request).await?.into_inner()) })
            .await
    }

    /// Calls `UnbanUser`.
    pub async fn unban_user(
        &self,
        request: UnbanUserRequest,
        token: &BearerToken,
        request_id: &RequestId,
    ) -> Result<(), ApiError> {
        let request = self.authorized_request(request, token, request_id)?;
        let unary = Arc::clone(&self.0.unary);
        self.call(async move {
            unary.call::<_, ()>(UNBAN_USER, request).await?;
            Ok(())
        })
        .await
    }

    /// Calls `AddModerator`.
    pub async fn add_moderator(
        &self,
        request: ModeratorRequest,
        token: &BearerToken,
        request_id: &RequestId,
    ) -> Result<Stream, ApiError> {
        let request = self.authorized_request(request, token, request_id)?;
        let unary = Arc::clone(&self.0.unary);
        self.call(async move {
            Ok(unary
                .call::<_, Stream>(ADD_MODERATOR, request)
                .await?
                .into_inner())
        })
        .await
    }

    /// Calls `RemoveModerator`.
    pub async fn remove_moderator(
        &self,
        request: ModeratorRequest,
        token: &BearerToken,
        request_id: &RequestId,
    ) -> Result<Stream, ApiError> {
        let request = self.authorized_request(request, token, request_id)?;
        let unary = Arc::clone(&self.0.unary);
        self.call(async move {
            Ok(unary
                .call::<_, Stream>(REMOVE_MODERATOR, request)
                .await?
                .into_inner())
        })
        .await
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
        let response = self
            .0
            .health
            .clone()
            .check(request)
            .await
            .map_err(|status| {
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
        request.set_timeout(self.0.timeout);
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
    let mut value = AsciiMetadataValue::try_from(request_id.as_str()).map_err(|_| {
        ApiError::Internal(format!("request id {request_id} is not valid metadata"))
    })?;
    // Not secret, but new on every call: adding it to HTTP/2's header
    // compression table (both ends) would only evict entries that repeat.
    value.set_sensitive(true);
    metadata.insert("x-request-id", value);
    // The request's trace continues in chat-service (W3C `traceparent`).
    allmine_observability::propagation::inject_current(metadata.as_mut());
    Ok(())
}
