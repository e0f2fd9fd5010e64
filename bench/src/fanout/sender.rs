//! The sender of a fan-out run: gRPC `SendMessage` (to chat-service or the
//! no-op RPC) or the REST send (to http-edge or the no-op route), messages
//! due at a fixed rate (open loop, a few in flight), keeping each
//! acknowledged message's id, due time and acknowledgment.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use allmine_chat_proto::v1 as pb;
use http::StatusCode;
use pb::chat_service_client::ChatServiceClient;
use std::future::Future;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tonic::metadata::AsciiMetadataValue;
use tonic::transport::{Channel, Endpoint};

use super::{MessageKey, Sent, message_key};
use crate::load::http::{HttpRequest, HttpSlot};
use crate::payload;
use crate::stats::nanos;

const DEADLINE: Duration = Duration::from_secs(5);

/// Messages a sender may have in flight: sends are due on a fixed
/// schedule whatever the answers do (open loop), as many users' messages
/// are; a slow answer does not hold back the next message.
const IN_FLIGHT: usize = 8;

/// The sender: [`IN_FLIGHT`] slots, each a gRPC client (one HTTP/2
/// connection shared by all) or a REST connection of its own, on a thread
/// and runtime of their own.
///
/// Why a thread: the subscribers' tasks, on the generator's runtime, handle
/// ~100,000 copies a second at 10,000 subscribers. A sender among them had
/// its acknowledgment *read* only once its task's turn came, behind those
/// copies: the send latency measured the generator's queue, not the server
/// (and the copies' "latency from the ack" started late). On its own thread
/// the kernel runs it as soon as an answer arrives.
pub struct Sender {
    commands: std::sync::mpsc::Sender<Command>,
}

/// A window to send: (count, rate, where to answer).
type Command = (usize, f64, oneshot::Sender<Sent>);

struct Slots {
    slots: Vec<Slot>,
}

enum Slot {
    Grpc(Box<GrpcSender>),
    Http(Box<HttpSlot>),
}

#[derive(Clone)]
struct GrpcSender {
    client: ChatServiceClient<Channel>,
    stream_id: String,
    authorization: AsciiMetadataValue,
}

impl Sender {
    /// A gRPC sender to `addr`, as the first benchmark viewer.
    pub async fn grpc(addr: SocketAddr, stream_id: &str) -> anyhow::Result<Self> {
        let stream_id = stream_id.to_owned();
        Self::start(move || async move { Slots::grpc(addr, &stream_id).await }).await
    }

    /// A REST sender to `addr`, as the first benchmark viewer.
    pub async fn http(addr: SocketAddr, stream_id: &str) -> anyhow::Result<Self> {
        let stream_id = stream_id.to_owned();
        Self::start(move || async move { Slots::http(addr, &stream_id).await }).await
    }

    /// Starts the sender's thread, its slots made there by `make`; the
    /// thread ends when the sender is dropped.
    async fn start<F, Made>(make: F) -> anyhow::Result<Self>
    where
        F: FnOnce() -> Made + Send + 'static,
        Made: Future<Output = anyhow::Result<Slots>>,
    {
        let (ready, made) = oneshot::channel();
        let (commands, next) = std::sync::mpsc::channel::<Command>();
        std::thread::Builder::new()
            .name("fanout-sender".to_owned())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(error) => {
                        let _ = ready.send(Err(error.into()));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let mut slots = match make().await {
                        Ok(slots) => slots,
                        Err(error) => {
                            let _ = ready.send(Err(error));
                            return;
                        }
                    };
                    let _ = ready.send(Ok(()));
                    // Blocking between windows is fine: this thread does
                    // nothing else, and its connections idle meanwhile.
                    while let Ok((count, rate, answer)) = next.recv() {
                        let _ = answer.send(slots.send_paced(count, rate).await);
                    }
                });
            })?;
        made.await??;
        Ok(Self { commands })
    }

    /// Sends `count` messages at `rate` ([`Slots::send_paced`]).
    pub(super) async fn send_paced(&mut self, count: usize, rate: f64) -> Sent {
        let (answer, sent) = oneshot::channel();
        if self.commands.send((count, rate, answer)).is_err() {
            return Sent::failed("the sender's thread has stopped");
        }
        sent.await
            .unwrap_or_else(|_| Sent::failed("the sender's thread has stopped"))
    }
}

impl Slots {
    async fn grpc(addr: SocketAddr, stream_id: &str) -> anyhow::Result<Self> {
        let channel = Endpoint::from_shared(format!("http://{addr}"))?
            .tcp_nodelay(true)
            .connect_timeout(DEADLINE)
            .connect()
            .await?;
        let sender = GrpcSender {
            client: ChatServiceClient::new(channel),
            stream_id: stream_id.to_owned(),
            authorization: payload::viewer_authorizations(1).remove(0).parse()?,
        };
        Ok(Self {
            slots: (0..IN_FLIGHT)
                .map(|_| Slot::Grpc(Box::new(sender.clone())))
                .collect(),
        })
    }

    async fn http(addr: SocketAddr, stream_id: &str) -> anyhow::Result<Self> {
        let request = HttpRequest {
            addr,
            path: format!("/api/v1/live-stream/{stream_id}/chat/messages").parse()?,
            body: payload::rest_body().into(),
            expect: StatusCode::CREATED,
        };
        let authorization = payload::viewer_authorizations(1).remove(0);
        let mut slots = Vec::with_capacity(IN_FLIGHT);
        for _ in 0..IN_FLIGHT {
            let slot = HttpSlot::connect(request.clone(), &authorization).await?;
            slots.push(Slot::Http(Box::new(slot)));
        }
        Ok(Self { slots })
    }

    /// Sends `count` messages, the i-th due `i / rate` seconds from now and
    /// sent then, unless all [`IN_FLIGHT`] slots are busy (it waits for one:
    /// the latency from the schedule counts that wait, so a server that
    /// slows its sender cannot hide it).
    async fn send_paced(&mut self, count: usize, rate: f64) -> Sent {
        let period = Duration::from_secs_f64(1.0 / rate.max(0.001));
        let (free, mut idle) = mpsc::channel(self.slots.len().max(1));
        for slot in self.slots.drain(..) {
            let _ = free.try_send(slot);
        }
        let mut sends = JoinSet::new();
        let start = tokio::time::Instant::now();
        for index in 0..count {
            let due = start + period.mul_f64(index as f64);
            tokio::time::sleep_until(due).await;
            let Some(mut slot) = idle.recv().await else {
                break;
            };
            let free = free.clone();
            sends.spawn(async move {
                let started = Instant::now();
                let result = slot.send_one().await;
                let acknowledged = Instant::now();
                let _ = free.send(slot).await;
                (due.into_std(), started, acknowledged, result)
            });
        }
        let mut sent = Sent::default();
        while let Some(joined) = sends.join_next().await {
            match joined {
                Ok((due, started, acknowledged, Ok(key))) => {
                    sent.last_acknowledged = sent.last_acknowledged.max(Some(acknowledged));
                    sent.acknowledged.insert(key, (due, acknowledged));
                    sent.send_nanos.push(nanos(acknowledged - started));
                }
                Ok((_, _, _, Err(error))) => {
                    sent.errors += 1;
                    sent.first_error.get_or_insert(error);
                }
                Err(error) => {
                    sent.errors += 1;
                    sent.first_error.get_or_insert(error.to_string());
                }
            }
        }
        drop(free);
        while let Ok(slot) = idle.try_recv() {
            self.slots.push(slot);
        }
        sent
    }
}

impl Slot {
    async fn send_one(&mut self) -> Result<MessageKey, String> {
        let id = match self {
            Self::Grpc(grpc) => {
                let GrpcSender {
                    client,
                    stream_id,
                    authorization,
                } = grpc.as_mut();
                let mut request = tonic::Request::new(pb::SendMessageRequest {
                    stream_id: stream_id.clone(),
                    content: payload::CONTENT.to_owned(),
                    idempotency_key: None,
                });
                request
                    .metadata_mut()
                    .insert("authorization", authorization.clone());
                request.set_timeout(DEADLINE);
                let reply = client
                    .send_message(request)
                    .await
                    .map_err(|status| format!("{:?}: {}", status.code(), status.message()))?;
                reply.into_inner().id
            }
            Self::Http(slot) => {
                let body = slot.exchange().await?;
                #[derive(serde::Deserialize)]
                struct Reply {
                    #[serde(rename = "_id")]
                    id: String,
                }
                serde_json::from_slice::<Reply>(&body)
                    .map_err(|error| format!("the send's reply has no _id: {error}"))?
                    .id
            }
        };
        message_key(&id).ok_or_else(|| format!("the send's reply has a malformed id: {id:?}"))
    }
}
