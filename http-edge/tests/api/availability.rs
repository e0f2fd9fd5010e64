//! chat-service down, and back: the edge answers 503 and recovers by itself.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::{
    fake_chat::FakeChatServer,
    helpers::{STREAM_ID, TOKEN, TestEdge, expect_error, reserve_unused_port, spawn_edge},
};

async fn send(edge: &TestEdge) -> reqwest::Response {
    edge.post_message(STREAM_ID, &json!({"content": "hi"}), Some(TOKEN))
        .await
}

/// Sends until the status is `wanted`, for at most ten seconds; returns the
/// last status. The channel redials on demand, so a few attempts may be needed.
async fn send_until(edge: &TestEdge, wanted: u16) -> u16 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = send(edge).await.status().as_u16();
        if status == wanted || Instant::now() > deadline {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn chat_service_down_is_503_and_the_edge_stays_up() {
    let edge = spawn_edge(reserve_unused_port()).await;

    let response = send(&edge).await;

    let reply = expect_error(response, 503, "Service unavailable").await;
    assert_eq!(
        reply.errors,
        ["Service unavailable"],
        "no transport error leaks"
    );
    assert!(!reply.body.contains("connect"), "{}", reply.body);
    assert_eq!(edge.get("/healthz").await.status().as_u16(), 200);
}

#[tokio::test]
async fn the_edge_connects_once_chat_service_starts() {
    let chat_addr = reserve_unused_port();
    let edge = spawn_edge(chat_addr).await;
    expect_error(send(&edge).await, 503, "Service unavailable").await;

    let chat = FakeChatServer::start_on(chat_addr).await;

    assert_eq!(
        send_until(&edge, 201).await,
        201,
        "recovered without a restart"
    );
    assert!(!chat.received().is_empty());
}

#[tokio::test]
async fn chat_service_going_away_is_503_and_its_return_is_noticed() {
    let chat = FakeChatServer::start().await;
    let chat_addr = chat.addr;
    let edge = spawn_edge(chat_addr).await;
    assert_eq!(send(&edge).await.status().as_u16(), 201);

    chat.stop().await;
    assert_eq!(send_until(&edge, 503).await, 503);

    let _chat = FakeChatServer::start_on(chat_addr).await;
    assert_eq!(send_until(&edge, 201).await, 201);
}

/// A peer that accepts the edge's connections, reads the start of a call and
/// closes the socket under it: what a chat-service that dies mid-call, or a
/// connection torn down during a restart, looks like from the edge.
async fn start_connection_dropper() -> std::net::SocketAddr {
    use tokio::io::AsyncReadExt;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buffer = [0_u8; 4096];
            // The client preface and SETTINGS come first, then the call's
            // HEADERS and DATA; close once bytes stop arriving in a burst.
            let _ = socket.read(&mut buffer).await;
            let _ = tokio::time::timeout(Duration::from_millis(50), async {
                while socket.read(&mut buffer).await.is_ok_and(|read| read > 0) {}
            })
            .await;
            drop(socket);
        }
    });
    addr
}

#[tokio::test]
async fn a_connection_dropped_under_a_call_is_503_not_500() {
    let edge = spawn_edge(start_connection_dropper().await).await;

    for _ in 0..3 {
        let reply = expect_error(send(&edge).await, 503, "Service unavailable").await;
        assert_eq!(reply.errors, ["Service unavailable"], "{}", reply.body);
    }
    assert_eq!(edge.get("/healthz").await.status().as_u16(), 200);
}
