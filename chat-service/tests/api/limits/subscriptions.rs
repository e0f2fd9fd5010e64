//! Subscription caps (per user, per connection) and subscribers that stop
//! reading: each costs others nothing and gets its room back when its
//! stream ends, however it ends.

use std::collections::HashSet;

use allmine_chat_proto::v1 as pb;
use allmine_chat_proto::v1::chat_service_client::ChatServiceClient;
use allmine_test_support::TokenBuilder;
use chat_service::live::REPLAY_LIMIT;
use pb::chat_event::Event;
use prost::Message;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status, Streaming};

use super::{spawn, subscribe, within};
use crate::helpers::{authorized, channel};

/// Subscribes, retrying while the cap refuses (room comes back once the
/// server has seen a stream end; bounded by WAIT).
async fn subscribe_once_room(
    client: &mut ChatServiceClient<Channel>,
    stream: &str,
    token: &str,
    after: Option<String>,
) -> Streaming<pb::ChatEvent> {
    within("room for a subscription", async {
        loop {
            let request = authorized(
                pb::SubscribeMessagesRequest {
                    stream_id: stream.into(),
                    after: after.clone(),
                },
                &format!("Bearer {token}"),
            );
            match client.subscribe_messages(request).await {
                Ok(response) => return response.into_inner(),
                Err(status) if status.code() == Code::ResourceExhausted => {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                Err(status) => panic!("unexpected {status:?}"),
            }
        }
    })
    .await
}

fn assert_refused(result: Result<Streaming<pb::ChatEvent>, Status>, limit: &str) {
    let status = result.expect_err("over the cap");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains(limit), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_over_the_per_user_cap_are_refused_until_one_ends() {
    let mut service = spawn(|config| config.max_subscriptions_per_user = 2).await;
    let stream = service.open_stream().await;
    let viewer = TokenBuilder::new();
    let first = subscribe(&mut service.client, &stream, &viewer.build())
        .await
        .expect("first");
    // Another connection does not help the same user.
    let mut elsewhere = ChatServiceClient::new(channel(service.addr).await);
    let _second = subscribe(&mut elsewhere, &stream, &viewer.build())
        .await
        .expect("second");
    assert_refused(
        subscribe(&mut elsewhere, &stream, &viewer.build()).await,
        "at most 2",
    );
    // Other users are not affected.
    subscribe(&mut service.client, &stream, &TokenBuilder::new().build())
        .await
        .expect("another user");

    // The client cancels one: its room comes back.
    drop(first);
    subscribe_once_room(&mut service.client, &stream, &viewer.build(), None).await;
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_over_the_per_connection_cap_are_refused_until_one_ends() {
    let mut service = spawn(|config| config.max_subscriptions_per_connection = 2).await;
    let stream = service.open_stream().await;
    let first = subscribe(&mut service.client, &stream, &TokenBuilder::new().build())
        .await
        .expect("first");
    let _second = subscribe(&mut service.client, &stream, &TokenBuilder::new().build())
        .await
        .expect("second");
    let third_user = TokenBuilder::new().build();
    assert_refused(
        subscribe(&mut service.client, &stream, &third_user).await,
        "connection",
    );
    // The same user on another connection is welcome.
    let mut elsewhere = ChatServiceClient::new(channel(service.addr).await);
    subscribe(&mut elsewhere, &stream, &third_user)
        .await
        .expect("another connection");

    drop(first);
    subscribe_once_room(&mut service.client, &stream, &third_user, None).await;
    service.stop().await;
}

/// Messages sent while the stalled subscriber does not read; each event
/// is ~0.5 KB, so together they are several times the bound below. At
/// most what a resume replays, so that resuming from the gap gets the rest.
const SENT: usize = REPLAY_LIMIT / BATCH * BATCH;

/// Messages sent at once; below the per-stream buffer (64 events), so that
/// the reading subscriber, which the sender waits for after each batch,
/// never falls behind however slow the machine.
const BATCH: usize = 32;

/// What a subscriber that stops reading may still receive before its gap:
/// what HTTP/2 flow control let through (its 1 KiB windows), what
/// chat-service encoded and queued for it (tonic encodes up to 32 KiB
/// ahead; hyper queues at most STREAM_SEND_BUFFER, 64 KiB), and a few
/// events of slack. Anything unbounded per subscriber (a queue, a task
/// reading ahead) would show here; the memory this costs a server whose
/// clients stop reading their sockets is measured in the benchmarks.
const STALLED_BYTES_BOUND: usize = 128 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_stops_reading_gets_what_was_buffered_then_a_gap_and_others_get_everything()
 {
    let mut service = spawn(|config| {
        config.live_buffer = 64;
        // The stalled user's one subscription must be given back by the gap.
        config.max_subscriptions_per_user = 1;
    })
    .await;
    let stream = service.open_stream().await;
    let stalled_user = TokenBuilder::new();

    // Subscribed over a connection with 1 KiB windows, and not reading.
    let tiny_windows = Endpoint::from_shared(format!("http://{}", service.addr))
        .expect("uri")
        .initial_stream_window_size(Some(1_024))
        .initial_connection_window_size(Some(1_024))
        .connect()
        .await
        .expect("connects");
    let mut stalled = subscribe(
        &mut ChatServiceClient::new(tiny_windows),
        &stream,
        &stalled_user.build(),
    )
    .await
    .expect("subscribed");
    // Another subscriber of the same stream reads everything as it comes.
    let mut reading = subscribe(&mut service.client, &stream, &TokenBuilder::new().build())
        .await
        .expect("subscribed");
    let (progress, mut read_so_far) = tokio::sync::watch::channel(0);
    let reader = tokio::spawn(async move {
        let mut ids = Vec::new();
        while ids.len() < SENT {
            match within("the reading subscriber's next event", reading.message()).await {
                Ok(Some(event)) => match event.event {
                    Some(Event::Message(message)) => {
                        ids.push(message.id);
                        progress.send_replace(ids.len());
                    }
                    other => panic!("the reading subscriber got {other:?}"),
                },
                other => panic!("after {} events: {other:?}", ids.len()),
            }
        }
        ids
    });

    let sender = TokenBuilder::new().build();
    let filler = "x".repeat(400);
    let mut sent = Vec::new();
    for batch in 0..SENT / BATCH {
        let sends = (0..BATCH).map(|index| {
            let mut client = service.client.clone();
            let request = authorized(
                pb::SendMessageRequest {
                    stream_id: stream.clone(),
                    content: format!("flood {} {filler}", batch * BATCH + index),
                    idempotency_key: None,
                },
                &format!("Bearer {sender}"),
            );
            async move { client.send_message(request).await }
        });
        for result in futures::future::join_all(sends).await {
            sent.push(result.expect("senders are never held up").into_inner().id);
        }
        let sent_so_far = sent.len();
        within(
            "the reading subscriber catching up",
            read_so_far.wait_for(|read| *read >= sent_so_far),
        )
        .await
        .expect("the reader is alive");
    }
    let everything: HashSet<_> = sent.iter().cloned().collect();
    let read = within("the reading subscriber", reader)
        .await
        .expect("the reader");
    assert_eq!(
        read.iter().cloned().collect::<HashSet<_>>(),
        everything,
        "the reading subscriber got every message, once"
    );
    assert_eq!(read.len(), SENT);

    // Reading again: what was buffered, in order, then a gap.
    let (mut delivered, mut delivered_bytes, mut last_cursor) = (Vec::new(), 0, None);
    let gap = loop {
        let event = match within("the stalled subscriber", stalled.message()).await {
            Ok(Some(event)) => event,
            other => panic!("after {} messages: {other:?}", delivered.len()),
        };
        match &event.event {
            Some(Event::Message(message)) => {
                delivered_bytes += event.encoded_len();
                delivered.push(message.id.clone());
                last_cursor = Some(event.cursor.clone());
            }
            Some(Event::Gap(_)) => break event,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(
        delivered[..],
        read[..delivered.len()],
        "the first events, in order"
    );
    assert!(
        delivered_bytes <= STALLED_BYTES_BOUND,
        "{delivered_bytes} bytes ({} events) were buffered for a subscriber that did not read",
        delivered.len()
    );
    assert_eq!(
        Some(gap.cursor.clone()),
        last_cursor,
        "the gap resumes after the last delivered message"
    );
    let end = within("the end of the stalled stream", stalled.message()).await;
    assert!(
        matches!(end, Ok(None)),
        "the stream ends after a gap: {end:?}"
    );

    // Its slot is free again (the cap is 1), and resuming from the gap's
    // cursor continues with the very next message.
    let mut resumed = subscribe_once_room(
        &mut service.client,
        &stream,
        &stalled_user.build(),
        Some(gap.cursor.clone()),
    )
    .await;
    let next = within("the resumed stream", resumed.message())
        .await
        .expect("a healthy stream")
        .expect("an event");
    match next.event {
        Some(Event::Message(message)) => assert_eq!(message.id, read[delivered.len()]),
        other => panic!("expected the next message, got {other:?}"),
    }
    service.stop().await;
}

/// An Allmine service (http-edge's shared feeds: one subscription per stream
/// it serves) is not one viewer: the per-user cap does not count it, and a
/// viewer's room is not taken by it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_token_is_not_held_to_the_per_user_cap() {
    let mut service = spawn(|config| config.max_subscriptions_per_user = 2).await;
    let edge = TokenBuilder::service();
    let mut feeds = Vec::new();
    for _ in 0..4 {
        let stream = service.open_stream().await;
        feeds.push(
            subscribe(&mut service.client, &stream, &edge.build())
                .await
                .expect("a service's subscription"),
        );
    }
    let stream = service.open_stream().await;
    let viewer = TokenBuilder::new();
    for _ in 0..2 {
        feeds.push(
            subscribe(&mut service.client, &stream, &viewer.build())
                .await
                .expect("a viewer's"),
        );
    }
    assert_refused(
        subscribe(&mut service.client, &stream, &viewer.build()).await,
        "at most 2",
    );
    service.stop().await;
}
