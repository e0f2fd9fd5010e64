//! Resuming (`Last-Event-ID`, `after`): from the edge's ring when it still
//! holds the cursor's successors (no subscription is opened on
//! chat-service), from chat-service when it does not (a private
//! subscription); no gap, no duplicate either way, and both clients then
//! follow the live chat.

use allmine_test_support::TokenBuilder;
use allmine_test_support::sse::SseReader;

use crate::fleet::{Fleet, HANG, contents, follow, messages, send};

/// The ring: the last 4 events of a stream.
const RING: u64 = 4;

#[tokio::test]
async fn a_recent_cursor_resumes_from_the_ring_and_an_older_one_from_chat_service() {
    let fleet = Fleet::start(|_| {}).await;
    let edge = fleet.edge(|config| config.fanout.event_ring = RING).await;
    let stream = fleet.stream().await;
    let sender = TokenBuilder::new().build();
    // Keeps the feed open and reads everything as it comes.
    let mut keeper = follow(&edge, &stream, &TokenBuilder::new().build(), &[]).await;
    let mut sent = Vec::new();
    for index in 0..10 {
        send(&edge, &stream, &sender, &format!("m{index}")).await;
        sent.push(messages(&mut keeper, 1).await.remove(0));
    }
    fleet.expect_live_subscribers(1.0).await;

    // m6..m9 are in the ring: after m7, m8 and m9 come from it.
    let mut recent = follow(
        &edge,
        &stream,
        &TokenBuilder::new().build(),
        &[("last-event-id", &sent[7].0)],
    )
    .await;
    assert_eq!(contents(&messages(&mut recent, 2).await), ["m8", "m9"]);
    assert_eq!(
        fleet.live_subscribers().await,
        1.0,
        "served by the edge alone"
    );

    // m3 was evicted: after m2 is chat-service's to replay.
    let authorization = format!("Bearer {}", TokenBuilder::new().build());
    let response = edge
        .events(
            &stream,
            &format!("after={}", sent[2].0),
            &[("authorization", authorization.as_str())],
        )
        .await;
    assert_eq!(response.status().as_u16(), 200);
    let mut older = SseReader::with_read_timeout(response, HANG);
    assert_eq!(
        contents(&messages(&mut older, 7).await),
        ["m3", "m4", "m5", "m6", "m7", "m8", "m9"]
    );
    fleet.expect_live_subscribers(2.0).await;

    // Then everyone follows the live chat, once.
    send(&edge, &stream, &sender, "m10").await;
    for reader in [&mut keeper, &mut recent, &mut older] {
        assert_eq!(contents(&messages(reader, 1).await), ["m10"]);
    }
    drop(older);
    fleet.expect_live_subscribers(1.0).await;
}

#[tokio::test]
async fn a_cursor_newer_than_the_ring_waits_for_what_follows_it() {
    let fleet = Fleet::start(|_| {}).await;
    let (edge_a, edge_b) = (fleet.edge(|_| {}).await, fleet.edge(|_| {}).await);
    let stream = fleet.stream().await;
    let sender = TokenBuilder::new().build();
    let mut on_a = follow(&edge_a, &stream, &TokenBuilder::new().build(), &[]).await;
    let mut on_b = follow(&edge_b, &stream, &TokenBuilder::new().build(), &[]).await;
    send(&edge_a, &stream, &sender, "first").await;
    let first = messages(&mut on_a, 1).await.remove(0);
    assert_eq!(contents(&messages(&mut on_b, 1).await), ["first"]);

    // A client moving from edge A to edge B with A's last cursor: B's ring
    // holds it; nothing repeated, nothing lost.
    drop(on_a);
    let mut moved = follow(
        &edge_b,
        &stream,
        &TokenBuilder::new().build(),
        &[("last-event-id", &first.0)],
    )
    .await;
    send(&edge_b, &stream, &sender, "second").await;

    assert_eq!(contents(&messages(&mut moved, 1).await), ["second"]);
    assert_eq!(contents(&messages(&mut on_b, 1).await), ["second"]);
    fleet.expect_live_subscribers(1.0).await;
}

#[tokio::test]
async fn a_client_resuming_just_before_the_feeds_opener_joins_its_feed() {
    let fleet = Fleet::start(|_| {}).await;
    let (edge_a, edge_b) = (fleet.edge(|_| {}).await, fleet.edge(|_| {}).await);
    let stream = fleet.stream().await;
    let sender = TokenBuilder::new().build();
    let mut on_a = follow(&edge_a, &stream, &TokenBuilder::new().build(), &[]).await;
    for index in 0..3 {
        send(&edge_a, &stream, &sender, &format!("m{index}")).await;
    }
    let seen = messages(&mut on_a, 3).await;

    // Two clients move to edge B, where no feed is open yet: the one with
    // the newer cursor opens it; the other, a moment behind, must find its
    // start in that feed too (not a subscription of its own for its life).
    let mut newer = follow(
        &edge_b,
        &stream,
        &TokenBuilder::new().build(),
        &[("last-event-id", &seen[1].0)],
    )
    .await;
    let mut older = follow(
        &edge_b,
        &stream,
        &TokenBuilder::new().build(),
        &[("last-event-id", &seen[0].0)],
    )
    .await;
    assert_eq!(contents(&messages(&mut newer, 1).await), ["m2"]);
    assert_eq!(contents(&messages(&mut older, 2).await), ["m1", "m2"]);
    assert_eq!(
        fleet.live_subscribers().await,
        2.0,
        "one subscription per edge"
    );

    send(&edge_a, &stream, &sender, "m3").await;
    for reader in [&mut on_a, &mut newer, &mut older] {
        assert_eq!(contents(&messages(reader, 1).await), ["m3"]);
    }
}
