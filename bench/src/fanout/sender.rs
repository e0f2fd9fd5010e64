//! The one sender of a fan-out run: gRPC `SendMessage` (to chat-service or
//! the no-op RPC) or the REST send (to http-edge or the no-op route), one
//! message at a time at a fixed rate, keeping each acknowledged message's id,
//! start and acknowledgment.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use allmine_chat_proto::v1 as pb;
use http::StatusCode;
use pb::chat_service_client::ChatServiceClient;
use tonic::metadata::AsciiMetadataValue;
use tonic::transport::{Channel, Endpoint};

use super::{MessageKey, Sent, message_key};
use crate::load::http::{HttpRequest, HttpSlot};
use crate::payload;

const DEADLINE: Duration = Duration::from_secs(5);

pub enum Sender {
    Grpc(Box<GrpcSender>),
    Http(Box<HttpSlot>),
}

pub struct GrpcSender {
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
        let authorization = payload::viewer_authorizations(1).remove(0).parse()?;
        Ok(Self::Grpc(Box::new(GrpcSender {
            client: ChatServiceClient::new(channel),
            stream_id: stream_id.to_owned(),
            authorization,
        })))
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
        let slot = HttpSlot::connect(request, &authorization).await?;
        Ok(Self::Http(Box::new(slot)))
    }

    /// Sends `count` messages, the i-th due `i / rate` seconds from now (and
    /// sent then, or as soon as the previous one answered if that is later:
    /// the time from its due time is what the latency from the schedule
    /// counts, so a server that slows its sender cannot hide it).
    pub(super) async fn send_paced(&mut self, count: usize, rate: f64) -> Sent {
        let period = Duration::from_secs_f64(1.0 / rate.max(0.001));
        let start = tokio::time::Instant::now();
        let mut sent = Sent::default();
        for index in 0..count {
            let due = start + period.mul_f64(index as f64);
            tokio::time::sleep_until(due).await;
            match self.send_one().await {
                Ok(key) => {
                    let acknowledged = Instant::now();
                    sent.last_acknowledged = Some(acknowledged);
                    sent.acknowledged
                        .insert(key, (due.into_std(), acknowledged));
                }
                Err(error) => {
                    sent.errors += 1;
                    sent.first_error.get_or_insert(error);
                }
            }
        }
        sent
    }

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
