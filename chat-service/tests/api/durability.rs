//! An acknowledged message survives `kill -9` of the chat-service process.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use allmine_chat_proto::v1::chat_admin_service_client::ChatAdminServiceClient;
use allmine_chat_proto::v1::chat_service_client::ChatServiceClient;
use allmine_chat_proto::v1::{RegisterStreamRequest, SendMessageRequest};
use allmine_test_support::{TEST_SECRET, TokenBuilder, random_object_id};
use chat_service::domain::StreamId;
use chat_service::storage::MessageStore;
use chat_service::storage::embedded::EmbeddedStore;
use tonic::transport::Channel;

use crate::helpers::authorized;

/// Starts the real binary on `port` with its store in `data_dir`.
fn start_binary(port: u16, data_dir: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_chat-service"))
        .env("CHAT_GRPC_ADDR", format!("127.0.0.1:{port}"))
        .env("CHAT_DATA_DIR", data_dir)
        .env("CHAT_JWT_SECRET", TEST_SECRET)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("binary starts")
}

/// Connects, retrying while the process starts (bounded).
async fn connect(port: u16) -> ChatServiceClient<Channel> {
    for _ in 0..200 {
        if let Ok(channel) = Channel::from_shared(format!("http://127.0.0.1:{port}"))
            .expect("uri")
            .connect()
            .await
        {
            return ChatServiceClient::new(channel);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("chat-service did not start on port {port}");
}

/// Registers `stream` through the admin service, as the stream service would.
async fn register_stream(port: u16, stream: &str) {
    let channel = Channel::from_shared(format!("http://127.0.0.1:{port}"))
        .expect("uri")
        .connect()
        .await
        .expect("connects");
    let request = authorized(
        RegisterStreamRequest {
            stream_id: stream.to_owned(),
            owner_id: random_object_id(),
        },
        &format!("Bearer {}", TokenBuilder::service().build()),
    );
    ChatAdminServiceClient::new(channel)
        .register_stream(request)
        .await
        .expect("stream registered");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

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
    let port = free_port();
    let mut child = start_binary(port, data_dir.path());
    let client = connect(port).await;
    let stream = random_object_id();
    register_stream(port, &stream).await;

    // A first wave, all acknowledged while the process runs.
    let mut acknowledged = Vec::new();
    for task in send_wave(&client, &stream, 0..100) {
        acknowledged.push(task.await.expect("task").expect("accepted"));
    }
    // A second wave with the kill landing among its group commits.
    let second_wave = send_wave(&client, &stream, 100..300);
    tokio::time::sleep(Duration::from_millis(5)).await;
    // SIGKILL: no chance to flush anything.
    child.kill().expect("kill -9");
    for task in second_wave {
        if let Ok(Ok(id)) = task.await {
            acknowledged.push(id);
        }
    }
    let _ = child.wait();

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
    let mut restarted = start_binary(port, data_dir.path());
    let mut client = connect(port).await;
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
    restarted.kill().expect("stop");
    let _ = restarted.wait();
}
