//! The sender of a fan-out run: gRPC `SendMessage` (to chat-service or the
//! no-op RPC) or the REST send (to http-edge or the no-op route), messages
//! due at a fixed rate (open loop, a few in flight), keeping each
//! acknowledged message's id, due time and acknowledgment.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use allmine_chat_proto::v1 as pb;
use http::StatusCode;
use pb::chat_service_client::ChatServiceClient;
use tokio::sync::mpsc;
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
/// connection shared by all) or a REST connection of its own.
pub struct Sender {
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

    /// A REST sender to `addr`, as the first benchmark viewer.
    pub async fn http(addr: SocketAddr, stream_id: &str) -> anyhow::Result<Self> {
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
    pub(super) async fn send_paced(&mut self, count: usize, rate: f64) -> Sent {
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
