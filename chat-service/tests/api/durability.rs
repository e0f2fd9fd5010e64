//! An acknowledged message survives `kill -9` of the chat-service process.

use std::time::Duration;

use allmine_chat_proto::v1::SendMessageRequest;
use allmine_chat_proto::v1::chat_service_client::ChatServiceClient;
use allmine_test_support::service_process::{ProcessConfig, ServiceProcess};
use allmine_test_support::{TokenBuilder, random_object_id};
use chat_service::domain::StreamId;
use chat_service::storage::MessageStore;
use chat_service::storage::embedded::EmbeddedStore;
use tonic::transport::Channel;

use crate::helpers::authorized;

type SendTask = tokio::task::JoinHandle<Result<String, tonic::Status>>;

/// Starts one concurrent send per index.
fn send_wave(
    client: &ChatServiceClient<Channel>,
    stream: &str,
    indices: std::ops::Range<usize>,
) -> Vec<SendTask> {
    indices
        .map(|index| {
            let mut client = client.clone();
            let request = authorized(
                SendMessageRequest {
                    stream_id: stream.to_owned(),
                    content: format!("durable {index}"),
                    idempotency_key: None,
                },
                &format!("Bearer {}", TokenBuilder::new().build()),
            );
            tokio::spawn(async move {
                client
                    .send_message(request)
                    .await
                    .map(|reply| reply.into_inner().id)
            })
        })
        .collect()
}

#[tokio::test]
async fn acknowledged_messages_survive_kill_9() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut service = ServiceProcess::start(ProcessConfig::embedded(
        env!("CARGO_BIN_EXE_chat-service").as_ref(),
        data_dir.path(),
    ));
    let client = ChatServiceClient::new(service.channel().await);
    let stream = random_object_id();
    service.register_stream(&stream).await;

    // A first wave, all acknowledged while the process runs.
    let mut acknowledged = Vec::new();
    for task in send_wave(&client, &stream, 0..100) {
        acknowledged.push(task.await.expect("task").expect("accepted"));
    }
    // A second wave with the kill landing among its group commits.
    let second_wave = send_wave(&client, &stream, 100..300);
    tokio::time::sleep(Duration::from_millis(5)).await;
    // SIGKILL: no chance to flush anything.
    service.kill_9();
    for task in second_wave {
        if let Ok(Ok(id)) = task.await {
            acknowledged.push(id);
        }
    }

    // Reopen the data directory the way a restarted service does.
    let store = EmbeddedStore::open(data_dir.path()).expect("store reopens");
    let stored: Vec<String> = store
        .newest(&StreamId::parse(&stream).expect("id"), 1000)
        .await
        .expect("read")
        .into_iter()
        .map(|message| message.id.to_string())
        .collect();
    for id in &acknowledged {
        assert!(stored.contains(id), "acknowledged message {id} was lost");
    }
    drop(store);

    // And the restarted binary serves again on the same data.
    service.restart();
    let mut client = ChatServiceClient::new(service.channel().await);
    let request = authorized(
        SendMessageRequest {
            stream_id: stream.clone(),
            content: "after restart".into(),
            idempotency_key: None,
        },
        &format!("Bearer {}", TokenBuilder::new().build()),
    );
    client
        .send_message(request)
        .await
        .expect("accepted after restart");
}
