//! A scripted chat-service: a real tonic server implementing `ChatService`
//! and `grpc.health.v1`, whose answer each test chooses, per RPC, and which
//! records every request it receives with its metadata.
//!
//! Each RPC answers, until told otherwise, with a plausible reply built from
//! its request (see the `echo_*` functions). [`FakeChatServer::reply`] and
//! [`FakeChatServer::fail`] script one RPC, named by a marker type of [`rpc`];
//! `reply_with`, `fail_with` and `received` are the `SendMessage` shorthands.
//!
//! `SubscribeMessages` is scripted the same way, with a [`Subscription`]: the
//! events (or errors) to stream, then whether to end the stream or keep it
//! open. [`FakeChatServer::open_subscriptions`] counts the streams the server
//! is still serving, so that a test can see the edge cancel one.

use std::{
    collections::VecDeque,
    net::SocketAddr,
    pin::Pin,
    sync::{Arc, Mutex, MutexGuard},
    task::{Context, Poll},
    time::Duration,
};

use allmine_chat_proto::v1::{
    Ban, BanUserRequest, ChatEvent, ChatMessage, ChatState, DeleteMessageRequest,
    ListMessagesRequest, ListMessagesResponse, ModeratorRequest, ProfilePhoto, SendMessageRequest,
    Sender, Stream, SubscribeMessagesRequest, UnbanUserRequest, chat_event,
    chat_service_server::{ChatService, ChatServiceServer},
};
use serde_json::{Value, json};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tonic::{
    Request, Response, Status,
    metadata::MetadataMap,
    transport::{Server, server::TcpIncoming},
};
use tonic_health::server::HealthReporter;

/// One call as the server saw it.
#[derive(Debug, Clone)]
pub struct Received<T = SendMessageRequest> {
    pub request: T,
    pub metadata: MetadataMap,
}

impl<T> Received<T> {
    pub fn metadata_str(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).and_then(|value| value.to_str().ok())
    }
}

/// One RPC's script and record.
pub struct Slot<Req, Rep> {
    /// The default answer, built from the request.
    echo: fn(&Req) -> Rep,
    /// A canned answer that replaces the echo.
    scripted: Option<Result<Rep, Status>>,
    received: Vec<Received<Req>>,
}

impl<Req, Rep> Slot<Req, Rep> {
    fn new(echo: fn(&Req) -> Rep) -> Self {
        Self {
            echo,
            scripted: None,
            received: Vec::new(),
        }
    }
}

/// What `SubscribeMessages` streams once it has accepted the call.
#[derive(Debug, Clone)]
pub struct Subscription {
    /// Sent in order; an `Err` fails the stream there (mid-stream), and what
    /// follows it is never sent.
    pub events: Vec<Result<ChatEvent, Status>>,
    /// After the events: end the stream (OK) or keep it open, silent, until
    /// the client cancels it.
    pub then: Then,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Then {
    End,
    StayOpen,
}

impl Subscription {
    /// These events, then the stream stays open.
    pub fn open(events: Vec<ChatEvent>) -> Self {
        Self {
            events: events.into_iter().map(Ok).collect(),
            then: Then::StayOpen,
        }
    }

    /// These events, then the stream ends.
    pub fn ending(events: Vec<ChatEvent>) -> Self {
        Self {
            events: events.into_iter().map(Ok).collect(),
            then: Then::End,
        }
    }
}

pub struct Script {
    send_message: Slot<SendMessageRequest, ChatMessage>,
    list_messages: Slot<ListMessagesRequest, ListMessagesResponse>,
    subscribe_messages: Slot<SubscribeMessagesRequest, Subscription>,
    delete_message: Slot<DeleteMessageRequest, ()>,
    ban_user: Slot<BanUserRequest, Ban>,
    unban_user: Slot<UnbanUserRequest, ()>,
    add_moderator: Slot<ModeratorRequest, Stream>,
    remove_moderator: Slot<ModeratorRequest, Stream>,
    /// Applies to every RPC.
    delay: Option<Duration>,
    /// Response metadata of every successful unary reply.
    reply_metadata: Vec<(&'static str, &'static str)>,
    /// Subscription streams not yet dropped by the server.
    open_subscriptions: usize,
}

impl Script {
    fn call_count(&self) -> usize {
        self.send_message.received.len()
            + self.list_messages.received.len()
            + self.subscribe_messages.received.len()
            + self.delete_message.received.len()
            + self.ban_user.received.len()
            + self.unban_user.received.len()
            + self.add_moderator.received.len()
            + self.remove_moderator.received.len()
    }
}

/// The RPCs of `ChatService`, as type-level names: `chat.fail::<rpc::BanUser>(...)`.
pub mod rpc {
    use super::{
        Ban, BanUserRequest, ChatMessage, DeleteMessageRequest, ListMessagesRequest,
        ListMessagesResponse, ModeratorRequest, Script, SendMessageRequest, Slot, Stream,
        SubscribeMessagesRequest, Subscription, UnbanUserRequest,
    };

    /// An RPC: its request and reply types and where its script lives.
    pub trait Rpc: 'static {
        type Request: Clone + Send + 'static;
        type Reply: Clone + Send + 'static;
        fn slot(script: &mut Script) -> &mut Slot<Self::Request, Self::Reply>;
    }

    macro_rules! rpcs {
        ($($name:ident: $request:ty => $reply:ty, $field:ident;)*) => {$(
            pub struct $name;
            impl Rpc for $name {
                type Request = $request;
                type Reply = $reply;
                fn slot(script: &mut Script) -> &mut Slot<$request, $reply> {
                    &mut script.$field
                }
            }
        )*};
    }

    rpcs! {
        SendMessage: SendMessageRequest => ChatMessage, send_message;
        ListMessages: ListMessagesRequest => ListMessagesResponse, list_messages;
        SubscribeMessages: SubscribeMessagesRequest => Subscription, subscribe_messages;
        DeleteMessage: DeleteMessageRequest => (), delete_message;
        BanUser: BanUserRequest => Ban, ban_user;
        UnbanUser: UnbanUserRequest => (), unban_user;
        AddModerator: ModeratorRequest => Stream, add_moderator;
        RemoveModerator: ModeratorRequest => Stream, remove_moderator;
    }
}

use rpc::Rpc;

#[derive(Clone)]
struct FakeChat {
    script: Arc<Mutex<Script>>,
}

impl FakeChat {
    /// Records the call, waits the scripted delay, answers as scripted.
    async fn answer<R: Rpc>(
        &self,
        request: Request<R::Request>,
    ) -> Result<Response<R::Reply>, Status> {
        let (metadata, _extensions, message) = request.into_parts();
        let (reply, delay, reply_metadata) = {
            let mut script = lock(&self.script);
            let delay = script.delay;
            let reply_metadata = script.reply_metadata.clone();
            let slot = R::slot(&mut script);
            let reply = slot
                .scripted
                .clone()
                .unwrap_or_else(|| Ok((slot.echo)(&message)));
            slot.received.push(Received {
                request: message,
                metadata,
            });
            (reply, delay, reply_metadata)
        };
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        reply.map(|reply| {
            let mut response = Response::new(reply);
            for (key, value) in reply_metadata {
                response
                    .metadata_mut()
                    .insert(key, tonic::metadata::MetadataValue::from_static(value));
            }
            response
        })
    }
}

#[tonic::async_trait]
impl ChatService for FakeChat {
    async fn send_message(
        &self,
        request: Request<SendMessageRequest>,
    ) -> Result<Response<ChatMessage>, Status> {
        self.answer::<rpc::SendMessage>(request).await
    }

    async fn list_messages(
        &self,
        request: Request<ListMessagesRequest>,
    ) -> Result<Response<ListMessagesResponse>, Status> {
        self.answer::<rpc::ListMessages>(request).await
    }

    type SubscribeMessagesStream = tonic::codegen::BoxStream<ChatEvent>;

    /// Answers as scripted: an error at call time, or the scripted stream.
    async fn subscribe_messages(
        &self,
        request: Request<SubscribeMessagesRequest>,
    ) -> Result<Response<Self::SubscribeMessagesStream>, Status> {
        let subscription = self
            .answer::<rpc::SubscribeMessages>(request)
            .await?
            .into_inner();
        lock(&self.script).open_subscriptions += 1;
        let stream = ScriptedEvents {
            events: subscription.events.into(),
            then: subscription.then,
            script: Arc::clone(&self.script),
        };
        Ok(Response::new(Box::pin(stream)))
    }

    async fn delete_message(
        &self,
        request: Request<DeleteMessageRequest>,
    ) -> Result<Response<()>, Status> {
        self.answer::<rpc::DeleteMessage>(request).await
    }

    async fn ban_user(&self, request: Request<BanUserRequest>) -> Result<Response<Ban>, Status> {
        self.answer::<rpc::BanUser>(request).await
    }

    async fn unban_user(&self, request: Request<UnbanUserRequest>) -> Result<Response<()>, Status> {
        self.answer::<rpc::UnbanUser>(request).await
    }

    async fn add_moderator(
        &self,
        request: Request<ModeratorRequest>,
    ) -> Result<Response<Stream>, Status> {
        self.answer::<rpc::AddModerator>(request).await
    }

    async fn remove_moderator(
        &self,
        request: Request<ModeratorRequest>,
    ) -> Result<Response<Stream>, Status> {
        self.answer::<rpc::RemoveModerator>(request).await
    }
}

/// A scripted subscription, as the server streams it; counted open until
/// the server drops it (the stream ended, or the client cancelled the call).
struct ScriptedEvents {
    events: VecDeque<Result<ChatEvent, Status>>,
    then: Then,
    script: Arc<Mutex<Script>>,
}

impl futures::Stream for ScriptedEvents {
    type Item = Result<ChatEvent, Status>;

    fn poll_next(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.events.pop_front() {
            Some(event) => Poll::Ready(Some(event)),
            None if self.then == Then::End => Poll::Ready(None),
            // Never woken: open until dropped.
            None => Poll::Pending,
        }
    }
}

impl Drop for ScriptedEvents {
    fn drop(&mut self) {
        lock(&self.script).open_subscriptions -= 1;
    }
}

fn lock(script: &Mutex<Script>) -> MutexGuard<'_, Script> {
    // A panicking test thread must not hide the other assertions.
    script
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A running fake; stops when dropped or through [`FakeChatServer::stop`].
pub struct FakeChatServer {
    pub addr: SocketAddr,
    script: Arc<Mutex<Script>>,
    health: HealthReporter,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<()>>,
}

impl FakeChatServer {
    /// Starts on a fresh port.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a port");
        Self::serve(listener).await
    }

    /// Starts on a given (previously reserved) address.
    pub async fn start_on(addr: SocketAddr) -> Self {
        let listener = TcpListener::bind(addr)
            .await
            .expect("bind the reserved port");
        Self::serve(listener).await
    }

    async fn serve(listener: TcpListener) -> Self {
        let addr = listener.local_addr().expect("local address");
        let script = Arc::new(Mutex::new(Script {
            send_message: Slot::new(echo_message),
            list_messages: Slot::new(echo_page),
            subscribe_messages: Slot::new(echo_subscription),
            delete_message: Slot::new(|_| ()),
            ban_user: Slot::new(echo_ban),
            unban_user: Slot::new(|_| ()),
            add_moderator: Slot::new(echo_added_moderator),
            remove_moderator: Slot::new(echo_removed_moderator),
            delay: None,
            reply_metadata: Vec::new(),
            open_subscriptions: 0,
        }));
        let (health, health_service) = tonic_health::server::health_reporter();
        health.set_serving::<ChatServiceServer<FakeChat>>().await;

        let chat = ChatServiceServer::new(FakeChat {
            script: Arc::clone(&script),
        });
        let (shutdown, shutdown_signal) = oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            Server::builder()
                .add_service(health_service)
                .add_service(chat)
                .serve_with_incoming_shutdown(TcpIncoming::from(listener), async {
                    let _ = shutdown_signal.await;
                })
                .await
                .expect("the fake chat-service runs");
        });
        Self {
            addr,
            script,
            health,
            shutdown: Some(shutdown),
            handle: Some(handle),
        }
    }

    /// Answers every call of `R` with this reply.
    pub fn reply<R: Rpc>(&self, reply: R::Reply) {
        R::slot(&mut lock(&self.script)).scripted = Some(Ok(reply));
    }

    /// Answers every call of `R` with this error.
    pub fn fail<R: Rpc>(&self, status: Status) {
        R::slot(&mut lock(&self.script)).scripted = Some(Err(status));
    }

    /// Every call of `R` received so far.
    pub fn calls<R: Rpc>(&self) -> Vec<Received<R::Request>> {
        R::slot(&mut lock(&self.script)).received.clone()
    }

    /// How many calls, of any RPC, were received so far.
    pub fn call_count(&self) -> usize {
        lock(&self.script).call_count()
    }

    /// Answers every `SendMessage` with this message.
    pub fn reply_with(&self, message: ChatMessage) {
        self.reply::<rpc::SendMessage>(message);
    }

    /// Answers every `SendMessage` with this error.
    pub fn fail_with(&self, status: Status) {
        self.fail::<rpc::SendMessage>(status);
    }

    /// Adds this metadata to every successful reply.
    pub fn reply_metadata(&self, key: &'static str, value: &'static str) {
        lock(&self.script).reply_metadata.push((key, value));
    }

    /// Sleeps this long before answering any call.
    pub fn delay(&self, delay: Duration) {
        lock(&self.script).delay = Some(delay);
    }

    /// Every `SendMessage` received so far.
    pub fn received(&self) -> Vec<Received> {
        self.calls::<rpc::SendMessage>()
    }

    /// How many subscription streams the server is still serving.
    pub fn open_subscriptions(&self) -> usize {
        lock(&self.script).open_subscriptions
    }

    pub async fn set_not_serving(&self) {
        self.health
            .set_not_serving::<ChatServiceServer<FakeChat>>()
            .await;
    }

    /// Stops the server and waits until it has closed its listener.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(handle) = self.handle.take() {
            handle.await.expect("the fake chat-service stops cleanly");
        }
    }
}

impl Drop for FakeChatServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// 2026-01-15T10:30:00Z.
pub const CREATED_SECONDS: i64 = 1_768_473_000;

pub fn timestamp(seconds: i64, millis: i32) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds,
        nanos: millis * 1_000_000,
    }
}

/// The message of the public API doc's example, with its full profile photo.
pub fn documented_message() -> ChatMessage {
    ChatMessage {
        id: "64d15f9e2e6c8f4d5a123456".to_owned(),
        stream_id: "64d15f9e2e6c8f4d5a123000".to_owned(),
        content: "Herkese selam!".to_owned(),
        sender: Some(Sender {
            id: "64d15f9e2e6c8f4d5a123456".to_owned(),
            username: Some("johndoe".to_owned()),
            name: Some("John".to_owned()),
            surname: Some("Doe".to_owned()),
            profile_photo: Some(ProfilePhoto {
                id: "507f1f77bcf86cd799439012".to_owned(),
                url: "https://example.com/uploads/images/profile.jpg".to_owned(),
                r#type: "image".to_owned(),
                variants: [
                    ("40", "https://cdn.example.com/profiles/user/40.webp"),
                    ("76", "https://cdn.example.com/profiles/user/76.webp"),
                ]
                .into_iter()
                .map(|(size, url)| (size.to_owned(), url.to_owned()))
                .collect(),
                // 2024-01-15T10:30:00Z and two hours later.
                created_at: Some(timestamp(1_705_314_600, 0)),
                updated_at: Some(timestamp(1_705_321_800, 0)),
            }),
            availability_status: Some("available".to_owned()),
        }),
        created_at: Some(timestamp(CREATED_SECONDS, 0)),
        updated_at: Some(timestamp(CREATED_SECONDS, 0)),
        // Never shown over REST: the tests check that it does not leak.
        cursor: DOCUMENTED_CURSOR.to_owned(),
    }
}

/// [`documented_message`] as REST shows it everywhere (sent, listed,
/// streamed): no cursor, every key, every type.
pub fn documented_message_json() -> Value {
    json!({
        "_id": "64d15f9e2e6c8f4d5a123456",
        "streamId": "64d15f9e2e6c8f4d5a123000",
        "content": "Herkese selam!",
        "sender": {
            "_id": "64d15f9e2e6c8f4d5a123456",
            "username": "johndoe",
            "name": "John",
            "surname": "Doe",
            "profilePhoto": {
                "_id": "507f1f77bcf86cd799439012",
                "url": "https://example.com/uploads/images/profile.jpg",
                "type": "image",
                "variants": {
                    "40": "https://cdn.example.com/profiles/user/40.webp",
                    "76": "https://cdn.example.com/profiles/user/76.webp"
                },
                "createdAt": "2024-01-15T10:30:00.000Z",
                "updatedAt": "2024-01-15T12:30:00.000Z"
            },
            "availabilityStatus": "available"
        },
        "createdAt": "2026-01-15T10:30:00.000Z",
        "updatedAt": "2026-01-15T10:30:00.000Z"
    })
}

/// The cursor of [`documented_message`].
pub const DOCUMENTED_CURSOR: &str = "AAABm8E4xYBk0V-eLm-PTVoSNFY";

fn echo_message(request: &SendMessageRequest) -> ChatMessage {
    ChatMessage {
        stream_id: request.stream_id.clone(),
        content: request.content.clone(),
        ..documented_message()
    }
}

/// One page of history as chat-service would answer `request`: the
/// documented message, of the requested stream, and no further page.
fn echo_page(request: &ListMessagesRequest) -> ListMessagesResponse {
    ListMessagesResponse {
        messages: vec![ChatMessage {
            stream_id: request.stream_id.clone(),
            ..documented_message()
        }],
        next_cursor: None,
    }
}

/// A live chat as chat-service would stream it for `request`: the
/// documented message, of the requested stream, then nothing until the
/// client leaves.
fn echo_subscription(request: &SubscribeMessagesRequest) -> Subscription {
    Subscription::open(vec![message_event(ChatMessage {
        stream_id: request.stream_id.clone(),
        ..documented_message()
    })])
}

/// A message as a live event: its cursor is the event's.
pub fn message_event(message: ChatMessage) -> ChatEvent {
    ChatEvent {
        cursor: message.cursor.clone(),
        event: Some(chat_event::Event::Message(message)),
    }
}

/// The stream's owner in [`documented_stream`].
pub const OWNER_ID: &str = "64d15f9e2e6c8f4d5a123111";
/// Its moderator, who bans in [`echo_ban`].
pub const MODERATOR_ID: &str = "64d15f9e2e6c8f4d5a123222";

/// A ban as chat-service would answer `request`, made by [`MODERATOR_ID`] at
/// [`CREATED_SECONDS`].
fn echo_ban(request: &BanUserRequest) -> Ban {
    Ban {
        stream_id: request.stream_id.clone(),
        user_id: request.user_id.clone(),
        expires_at: request
            .duration_seconds
            .map(|seconds| timestamp(CREATED_SECONDS + i64::from(seconds), 0)),
        reason: request.reason.clone(),
        banned_by: MODERATOR_ID.to_owned(),
        created_at: Some(timestamp(CREATED_SECONDS, 0)),
    }
}

/// An open stream owned by [`OWNER_ID`] with [`MODERATOR_ID`] as its one
/// moderator, created a day before [`CREATED_SECONDS`] and changed at it.
pub fn documented_stream() -> Stream {
    Stream {
        stream_id: "64d15f9e2e6c8f4d5a123000".to_owned(),
        owner_id: OWNER_ID.to_owned(),
        state: ChatState::Open.into(),
        slow_mode_seconds: 0,
        moderator_ids: vec![MODERATOR_ID.to_owned()],
        created_at: Some(timestamp(CREATED_SECONDS - 86_400, 0)),
        updated_at: Some(timestamp(CREATED_SECONDS, 0)),
    }
}

fn echo_added_moderator(request: &ModeratorRequest) -> Stream {
    let mut stream = documented_stream();
    stream.stream_id.clone_from(&request.stream_id);
    if !stream.moderator_ids.contains(&request.user_id) {
        stream.moderator_ids.push(request.user_id.clone());
    }
    stream
}

fn echo_removed_moderator(request: &ModeratorRequest) -> Stream {
    let mut stream = documented_stream();
    stream.stream_id.clone_from(&request.stream_id);
    stream.moderator_ids.retain(|id| *id != request.user_id);
    stream
}
