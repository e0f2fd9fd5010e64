//! Encode once: every `SubscribeMessages` subscriber receives the bytes the
//! stream's feed encoded once, and those bytes are exactly prost's encoding
//! of the event (the wire contract is unchanged). Read with a bare HTTP/2
//! client, so that the test sees each message's bytes as sent, not a
//! decoded copy.

use std::time::Duration;

use allmine_chat_proto::CHAT_SERVICE_NAME;
use allmine_chat_proto::v1 as pb;
use allmine_test_support::TokenBuilder;
use bytes::Bytes;
use pb::chat_event::Event;
use prost::Message;

use crate::helpers::{TestService, spawn_service_with};
use crate::raw_h2::{self, RawStream};

/// A hang detector, not a timing assertion.
const WAIT: Duration = Duration::from_secs(15);

fn subscribe_path() -> String {
    format!("/{CHAT_SERVICE_NAME}/SubscribeMessages")
}

async fn spawn() -> TestService {
    spawn_service_with(|config| {
        config.burst_viewer_limit = 100_000;
        config.live_settle_ms = Some(0);
        config.live_poll_ms = 50;
    })
    .await
}

async fn next_frame(stream: &mut RawStream) -> Bytes {
    tokio::time::timeout(WAIT, stream.next_frame())
        .await
        .expect("a message within the wait")
        .expect("a healthy connection")
        .expect("the stream is open")
}

/// The event a subscriber must get for a message, as prost encodes it.
fn message_event(message: &pb::ChatMessage) -> Vec<u8> {
    pb::ChatEvent {
        cursor: message.cursor.clone(),
        event: Some(Event::Message(message.clone())),
    }
    .encode_to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_subscriber_gets_the_prost_encoding_of_each_event_byte_for_byte() {
    let service = spawn().await;
    let stream = service.open_stream().await;
    let sender = TokenBuilder::new();
    let before = service
        .send_as(&sender, &stream, "before anyone listens")
        .await
        .expect("sent");

    // Two live subscribers on one connection (the shared encoding), and one
    // resuming from a cursor (a replay: its own encoding, then live).
    let mut connection = raw_h2::connect(service.addr).await;
    let mut subscribers = Vec::new();
    for after in [None, None, Some(before.cursor.clone())] {
        let request = pb::SubscribeMessagesRequest {
            stream_id: stream.clone(),
            after,
        };
        let token = TokenBuilder::new().build();
        subscribers.push(
            connection
                .server_stream(&subscribe_path(), &token, &request)
                .await
                .expect("subscribed"),
        );
    }

    let mut sent = Vec::new();
    for index in 0..3 {
        let content = format!("live {index} · ünïcode ✓");
        sent.push(
            service
                .send_as(&sender, &stream, &content)
                .await
                .expect("sent"),
        );
    }
    for message in &sent {
        let expected = message_event(message);
        for subscriber in &mut subscribers {
            assert_eq!(
                next_frame(subscriber).await.as_ref(),
                expected.as_slice(),
                "the event's bytes are prost's encoding of it"
            );
        }
    }

    // A moderation event: whatever its id, every subscriber gets the same
    // bytes, and they are the canonical encoding of what they decode to.
    service
        .delete_message(&sender, &stream, &sent[0].id)
        .await
        .expect("deleted by its sender");
    let deletion = next_frame(&mut subscribers[0]).await;
    let event = pb::ChatEvent::decode(deletion.clone()).expect("a ChatEvent");
    assert!(
        matches!(event.event, Some(Event::MessageDeleted(_))),
        "a deletion event, got {event:?}"
    );
    assert_eq!(event.encode_to_vec(), deletion.as_ref());
    for subscriber in &mut subscribers[1..] {
        assert_eq!(next_frame(subscriber).await, deletion);
    }
    service.finish().await;
}

/// The fan-out in batches (`CHAT_LIVE_FANOUT_BATCH`): with one subscriber
/// per batch, the feed yields between every subscriber, and each still gets
/// every event, once, in order; one that joins while events flow starts
/// where it should.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_in_separate_batches_each_get_every_event_in_order() {
    let service = spawn_service_with(|config| {
        config.burst_viewer_limit = 100_000;
        config.live_settle_ms = Some(0);
        config.live_poll_ms = 50;
        config.live_fanout_batch = 1;
    })
    .await;
    let stream = service.open_stream().await;
    let mut early = Vec::new();
    for _ in 0..4 {
        early.push(service.subscribe(&stream, None).await);
    }
    let mut sent = Vec::new();
    for index in 0..10 {
        sent.push(
            service
                .send_as_anyone(&stream, &format!("batch {index}"))
                .await
                .expect("sent"),
        );
    }
    let mut late = service.subscribe(&stream, Some(&sent[4].cursor)).await;
    for index in 10..15 {
        sent.push(
            service
                .send_as_anyone(&stream, &format!("batch {index}"))
                .await
                .expect("sent"),
        );
    }
    for events in &mut early {
        for message in &sent {
            let event = tokio::time::timeout(WAIT, events.message())
                .await
                .expect("an event within the wait")
                .expect("a healthy stream")
                .expect("open");
            assert_eq!(event.event, Some(Event::Message(message.clone())));
        }
    }
    for message in &sent[5..] {
        let event = tokio::time::timeout(WAIT, late.message())
            .await
            .expect("an event within the wait")
            .expect("a healthy stream")
            .expect("open");
        assert_eq!(event.event, Some(Event::Message(message.clone())));
    }
    service.finish().await;
}
