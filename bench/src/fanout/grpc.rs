//! gRPC subscribers: `SubscribeMessages` streams, several to an HTTP/2
//! connection, as internal services (http-edge among them) multiplex their
//! followers onto a few connections.

use std::net::SocketAddr;
use std::time::Duration;

use allmine_chat_proto::v1 as pb;
use pb::chat_service_client::ChatServiceClient;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tonic::metadata::AsciiMetadataValue;
use tonic::transport::{Channel, Endpoint};

use super::{Receipts, Tally, message_key, wait_ready};
use crate::payload;

/// Opens one subscription per entry of `receipts`, `per_connection` to a
/// connection; returns the readers' tasks and the number of connections.
pub(super) async fn subscribe(
    addr: SocketAddr,
    stream_id: &str,
    receipts: &[Receipts],
    tally: &Tally,
    per_connection: usize,
) -> anyhow::Result<(Vec<JoinHandle<()>>, usize)> {
    let per_connection = per_connection.max(1);
    let authorizations: Vec<AsciiMetadataValue> = payload::viewer_authorizations(receipts.len())
        .into_iter()
        .map(|value| value.parse())
        .collect::<Result<_, _>>()?;
    let (ready, answers) = mpsc::channel(receipts.len().max(1));
    let mut tasks = Vec::with_capacity(receipts.len());
    let mut connections = 0;
    for (chunk, (receipts, authorizations)) in receipts
        .chunks(per_connection)
        .zip(authorizations.chunks(per_connection))
        .enumerate()
    {
        let channel = Endpoint::from_shared(format!("http://{addr}"))?
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(10))
            .connect()
            .await
            .map_err(|error| anyhow::anyhow!("connection {chunk}: {error}"))?;
        connections += 1;
        for (receipts, authorization) in receipts.iter().zip(authorizations) {
            tasks.push(tokio::spawn(follow(
                ChatServiceClient::new(channel.clone()),
                subscribe_request(stream_id, authorization.clone()),
                receipts.clone(),
                tally.clone(),
                ready.clone(),
            )));
        }
    }
    drop(ready);
    wait_ready(answers, &tasks).await?;
    Ok((tasks, connections))
}

fn subscribe_request(
    stream_id: &str,
    authorization: AsciiMetadataValue,
) -> tonic::Request<pb::SubscribeMessagesRequest> {
    let mut request = tonic::Request::new(pb::SubscribeMessagesRequest {
        stream_id: stream_id.to_owned(),
        after: None,
    });
    request
        .metadata_mut()
        .insert("authorization", authorization);
    request
}

/// Subscribes, says so on `ready`, then records every message received.
async fn follow(
    mut client: ChatServiceClient<Channel>,
    request: tonic::Request<pb::SubscribeMessagesRequest>,
    receipts: Receipts,
    tally: Tally,
    ready: mpsc::Sender<Result<(), String>>,
) {
    let mut events = match client.subscribe_messages(request).await {
        Ok(response) => response.into_inner(),
        Err(status) => {
            let _ = ready
                .send(Err(format!("{:?}: {}", status.code(), status.message())))
                .await;
            return;
        }
    };
    let _ = ready.send(Ok(())).await;
    drop(ready);
    loop {
        match events.message().await {
            Ok(Some(pb::ChatEvent {
                event: Some(pb::chat_event::Event::Message(message)),
                ..
            })) => match message_key(&message.id) {
                Some(key) => tally.copy(&receipts, key),
                None => tally.error(format!("a message with a malformed id: {:?}", message.id)),
            },
            Ok(Some(pb::ChatEvent {
                event: Some(pb::chat_event::Event::Gap(gap)),
                ..
            })) => {
                tally.error(format!("gap: {}", gap.reason));
                return;
            }
            // Moderation events: none are made during a run.
            Ok(Some(_)) => {}
            Ok(None) => {
                tally.error("the server ended the stream".to_owned());
                return;
            }
            Err(status) => {
                tally.error(format!("{:?}: {}", status.code(), status.message()));
                return;
            }
        }
    }
}
