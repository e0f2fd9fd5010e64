//! `ChatService/SendMessage` over one HTTP/2 connection (a tonic `Channel`),
//! shared by every slot, as http-edge shares its own.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use allmine_chat_proto::v1 as pb;
use pb::chat_service_client::ChatServiceClient;
use prost::Message;
use tonic::metadata::AsciiMetadataValue;
use tonic::transport::{Channel, Endpoint};

use super::Caller;
use crate::payload;

/// Each request's deadline.
const DEADLINE: Duration = Duration::from_secs(5);

/// How much longer than the deadline the client waits before giving up by
/// itself: the server's own DEADLINE_EXCEEDED should come first.
const CLIENT_GRACE: Duration = Duration::from_millis(500);

/// Sends to one stream as one of several users.
pub struct GrpcSend {
    client: ChatServiceClient<Channel>,
    stream_id: String,
    /// One `Bearer …` per user.
    authorizations: Vec<AsciiMetadataValue>,
}

impl GrpcSend {
    /// Connects to `addr` and prepares one token per user.
    pub async fn connect(
        addr: SocketAddr,
        stream_id: &str,
        users: usize,
    ) -> anyhow::Result<Arc<Self>> {
        let channel = Endpoint::from_shared(format!("http://{addr}"))?
            .tcp_nodelay(true)
            .connect_timeout(DEADLINE)
            .connect()
            .await?;
        let authorizations = payload::viewer_authorizations(users.max(1))
            .into_iter()
            .map(|value| value.parse())
            .collect::<Result<_, _>>()?;
        Ok(Arc::new(Self {
            client: ChatServiceClient::new(channel),
            stream_id: stream_id.to_owned(),
            authorizations,
        }))
    }

    /// One send as user `user` (modulo the users prepared).
    pub async fn send(&self, user: usize) -> Result<usize, String> {
        self.call(user)
            .await
            .map_err(|status| format!("{:?}: {}", status.code(), status.message()))
    }

    /// One send as user `user`: the reply's size, or the status as tonic
    /// gave it (the server's, or one tonic made for a transport failure).
    /// The deadline travels to the server (`grpc-timeout`) and is also kept
    /// here, so that a server that never answers cannot hold a request.
    pub async fn call(&self, user: usize) -> Result<usize, tonic::Status> {
        let mut request = tonic::Request::new(pb::SendMessageRequest {
            stream_id: self.stream_id.clone(),
            content: payload::CONTENT.to_owned(),
            idempotency_key: None,
        });
        let authorization = &self.authorizations[user % self.authorizations.len()];
        request
            .metadata_mut()
            .insert("authorization", authorization.clone());
        request.set_timeout(DEADLINE);
        let mut client = self.client.clone();
        let call = client.send_message(request);
        match tokio::time::timeout(DEADLINE + CLIENT_GRACE, call).await {
            Ok(Ok(response)) => Ok(response.get_ref().encoded_len()),
            Ok(Err(status)) => Err(status),
            Err(_) => Err(tonic::Status::deadline_exceeded(format!(
                "no answer within {DEADLINE:?} (client side)"
            ))),
        }
    }

    /// One closed-loop slot per user.
    pub fn slots(self: &Arc<Self>, count: usize) -> Vec<GrpcSlot> {
        (0..count)
            .map(|user| GrpcSlot {
                target: self.clone(),
                user,
            })
            .collect()
    }
}

pub struct GrpcSlot {
    target: Arc<GrpcSend>,
    user: usize,
}

impl Caller for GrpcSlot {
    async fn call(&mut self) -> Result<usize, String> {
        self.target.send(self.user).await
    }
}
