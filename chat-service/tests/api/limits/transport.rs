//! One client cannot hurt another: the transport and admission limits of
//! chat-service, each attacked as a hostile client would, on a real server.

use std::time::Duration;

use allmine_chat_proto::CHAT_SERVICE_NAME;
use allmine_chat_proto::v1 as pb;
use allmine_test_support::TokenBuilder;
use pb::chat_event::Event;

use crate::helpers::{TestService, spawn_service_with};
use crate::raw_h2;

/// How long a test waits for something that must happen (a hang detector,
/// not a speed assertion).
const WAIT: Duration = Duration::from_secs(15);

fn path(method: &str) -> String {
    format!("/{CHAT_SERVICE_NAME}/{method}")
}

async fn spawn(adjust: impl FnOnce(&mut chat_service::Config)) -> TestService {
    spawn_service_with(|config| {
        config.burst_viewer_limit = 100_000;
        config.live_settle_ms = Some(0);
        config.live_poll_ms = 50;
        adjust(config);
    })
    .await
}

async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing within {WAIT:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_reset_calls_does_not_close_the_connection_it_shares() {
    let mut service = spawn(|_| {}).await;
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
