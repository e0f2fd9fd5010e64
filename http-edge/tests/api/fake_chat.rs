//! A scripted chat-service: a real tonic server implementing `ChatService`
//! and `grpc.health.v1`, whose answer each test chooses and which records
//! every request it receives.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use allmine_chat_proto::v1::{
    ChatMessage, ProfilePhoto, SendMessageRequest, Sender,
    chat_service_server::{ChatService, ChatServiceServer},
};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tonic::{
    Request, Response, Status,
    metadata::MetadataMap,
    transport::{Server, server::TcpIncoming},
};
use tonic_health::server::HealthReporter;

/// What `SendMessage` answers.
#[derive(Clone)]
enum Reply {
    /// A plausible message built from the request (its stream id and content).
    Echo,
    /// This message (boxed: it dwarfs the other variants).
    Message(Box<ChatMessage>),
    /// This error.
    Error(Status),
}

/// One `SendMessage` call as the server saw it.
#[derive(Debug, Clone)]
pub struct Received {
    pub request: SendMessageRequest,
    pub metadata: MetadataMap,
}

impl Received {
    pub fn metadata_str(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).and_then(|value| value.to_str().ok())
    }
}

struct Script {
    reply: Reply,
    delay: Option<Duration>,
    received: Vec<Received>,
}

#[derive(Clone)]
struct FakeChat {
    script: Arc<Mutex<Script>>,
}

#[tonic::async_trait]
impl ChatService for FakeChat {
    async fn send_message(
        &self,
        request: Request<SendMessageRequest>,
    ) -> Result<Response<ChatMessage>, Status> {
        let (metadata, _extensions, message) = request.into_parts();
        let (reply, delay) = {
            let mut script = lock(&self.script);
            script.received.push(Received {
                request: message.clone(),
                metadata,
            });
            (script.reply.clone(), script.delay)
        };
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        match reply {
            Reply::Echo => Ok(Response::new(echo(message))),
            Reply::Message(chat_message) => Ok(Response::new(*chat_message)),
            Reply::Error(status) => Err(status),
        }
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
            reply: Reply::Echo,
            delay: None,
            received: Vec::new(),
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

    /// Answers every `SendMessage` with this message.
    pub fn reply_with(&self, message: ChatMessage) {
        lock(&self.script).reply = Reply::Message(Box::new(message));
    }

    /// Answers every `SendMessage` with this error.
    pub fn fail_with(&self, status: Status) {
        lock(&self.script).reply = Reply::Error(status);
    }

    /// Sleeps this long before answering.
    pub fn delay(&self, delay: Duration) {
        lock(&self.script).delay = Some(delay);
    }

    /// Every `SendMessage` received so far.
    pub fn received(&self) -> Vec<Received> {
        lock(&self.script).received.clone()
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
    }
}

fn echo(request: SendMessageRequest) -> ChatMessage {
    ChatMessage {
        stream_id: request.stream_id,
        content: request.content,
        ..documented_message()
    }
}
