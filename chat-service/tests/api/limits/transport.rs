//! The transport: a flood of reset calls, oversized headers, the
//! connection cap, connections that never send a request.

use std::time::Duration;

use allmine_chat_proto::v1 as pb;
use allmine_test_support::TokenBuilder;
use pb::chat_event::Event;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tonic_health::pb::health_check_response::ServingStatus;

use super::{WAIT, health, path, spawn, within};
use crate::helpers::channel;
use crate::raw_h2;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_reset_calls_does_not_close_the_connection_it_shares() {
    let service = spawn(|_| {}).await;
    let stream = service.open_stream().await;
    let viewer = TokenBuilder::new().build();

    // A gateway's connection: a live subscription on it, then 2,000 calls
    // that its clients abandon at once (bogus token, reset right away).
    let mut connection = raw_h2::connect(service.addr).await;
    let mut live = connection
        .server_stream(
            &path("SubscribeMessages"),
            &viewer,
            &pb::SubscribeMessagesRequest {
                stream_id: stream.clone(),
                after: None,
            },
        )
        .await
        .expect("subscribed");
    connection
        .open_and_reset(&path("SendMessage"), "bogus", 2_000)
        .await
        .expect("the connection stays open during the flood");

    // The same connection still carries new calls...
    let sent: pb::ChatMessage = within(
        "a send after the flood",
        connection.unary(
            &path("SendMessage"),
            &viewer,
            &pb::SendMessageRequest {
                stream_id: stream.clone(),
                content: "still here".into(),
                idempotency_key: None,
            },
        ),
    )
    .await
    .expect("the connection survived the flood")
    .expect("the send is accepted");
    // ...and its subscription still delivers.
    let event: pb::ChatEvent = within("the live event", live.next_message())
        .await
        .expect("the subscription survived the flood")
        .expect("an event");
    assert_eq!(event.event, Some(Event::Message(sent)));
    // Another client is untouched too.
    service
        .send_as_anyone(&stream, "another client")
        .await
        .expect("another client's send");
    service.stop().await;
}

/// Whether the server closed `stream` (end of file or reset) within WAIT.
async fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut buffer = [0_u8; 64];
    loop {
        match tokio::time::timeout(WAIT, stream.read(&mut buffer)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            // Bytes the server sent before closing (HTTP/2 settings): read on.
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_connection_cap_new_connections_are_closed_and_open_ones_keep_working() {
    // The test service's own client is the first connection.
    let service = spawn(|config| config.max_connections = 2).await;
    let stream = service.open_stream().await;
    let second = channel(service.addr).await;
    assert_eq!(
        health(second.clone()).await.ok(),
        Some(ServingStatus::Serving)
    );

    // A third connection is closed at once, before it can send anything.
    let mut third = TcpStream::connect(service.addr)
        .await
        .expect("TCP connects");
    assert!(
        closed_by_server(&mut third).await,
        "a connection over the cap is closed"
    );

    // The two open connections are unaffected.
    service
        .send_as_anyone(&stream, "first connection")
        .await
        .expect("the first connection works");
    assert_eq!(
        health(second.clone()).await.ok(),
        Some(ServingStatus::Serving)
    );

    // Once one closes, its slot is free again.
    drop(second);
    within("a new connection after one closed", async {
        loop {
            let endpoint =
                tonic::transport::Endpoint::from_shared(format!("http://{}", service.addr))
                    .expect("a valid address");
            if let Ok(channel) = endpoint.connect().await
                && health(channel).await.is_ok()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_sends_no_request_is_closed() {
    let service = spawn(|_| {}).await;
    // Connected and silent, or stalled in the middle of the HTTP/2 preface:
    // either would hold a connection slot forever.
    let mut silent = TcpStream::connect(service.addr)
        .await
        .expect("TCP connects");
    let mut stalled = TcpStream::connect(service.addr)
        .await
        .expect("TCP connects");
    tokio::io::AsyncWriteExt::write_all(&mut stalled, b"PRI * HTTP/2.0\r\n")
        .await
        .expect("writes");
    let (silent_closed, stalled_closed) = tokio::join!(
        closed_by_server(&mut silent),
        closed_by_server(&mut stalled)
    );
    assert!(silent_closed, "a silent connection is closed");
    assert!(stalled_closed, "a stalled preface is closed");
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_headers_cost_only_their_own_call_or_connection() {
    let service = spawn(|_| {}).await;
    let stream = service.open_stream().await;
    let viewer = TokenBuilder::new().build();
    let mut connection = raw_h2::connect(service.addr).await;
    let mut live = connection
        .server_stream(
            &path("SubscribeMessages"),
            &viewer,
            &pb::SubscribeMessagesRequest {
                stream_id: stream.clone(),
                after: None,
            },
        )
        .await
        .expect("subscribed");
    let send = pb::SendMessageRequest {
        stream_id: stream.clone(),
        content: "hello".into(),
        idempotency_key: None,
    };

    // Up to 8 KiB (what http-edge forwards) the call reaches chat-service,
    // which judges the token itself.
    let large = within(
        "a call with an 8 KiB token",
        connection.unary::<pb::ChatMessage>(&path("SendMessage"), &"a".repeat(8 * 1024), &send),
    )
    .await
    .expect("the connection works");
    assert_eq!(large.err(), Some(tonic::Code::Unauthenticated));

    // Over the 16 KiB header limit, each such call is refused on its own.
    for _ in 0..50 {
        let refused = within(
            "a call with a 20 KiB token",
            connection.unary::<pb::ChatMessage>(
                &path("SendMessage"),
                &"a".repeat(20 * 1024),
                &send,
            ),
        )
        .await
        .expect("the connection lives on");
        assert!(refused.is_err(), "a 20 KiB header was accepted");
    }
    // Over 64 KiB (h2's abuse limit, four times the list size) the sender
    // loses its connection: its own, no one else's.
    let mut abuser = raw_h2::connect(service.addr).await;
    let abuse = within(
        "a call with a 64 KiB token",
        abuser.unary::<pb::ChatMessage>(&path("SendMessage"), &"a".repeat(64 * 1024), &send),
    )
    .await;
    assert!(
        abuse.is_err(),
        "the abuser's connection is closed: {abuse:?}"
    );

    // The connection and its subscription live on.
    let sent: pb::ChatMessage = within(
        "a send after the oversized calls",
        connection.unary(&path("SendMessage"), &viewer, &send),
    )
    .await
    .expect("the connection survived")
    .expect("the send is accepted");
    let event: pb::ChatEvent = within("the live event", live.next_message())
        .await
        .expect("the subscription survived")
        .expect("an event");
    assert_eq!(event.event, Some(Event::Message(sent)));
    service.stop().await;
}
