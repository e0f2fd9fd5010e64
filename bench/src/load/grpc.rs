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
        match self.client.clone().send_message(request).await {
            Ok(response) => Ok(response.get_ref().encoded_len()),
            Err(status) => Err(format!("{:?}: {}", status.code(), status.message())),
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
