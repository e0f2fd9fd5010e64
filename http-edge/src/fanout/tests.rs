//! The feed and its clients without a network: ring coverage, the start
//! filter, laggards and expiry, decided on positions.

use std::{sync::Arc, time::Duration};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use bytes::Bytes;

use super::{
    client::{Client, Start},
    feed::{Feed, FeedEnd},
    frame::{self, Encoded},
    position::Position,
};
use crate::event_stream::{EventStreams, Shutdown};
use allmine_chat_proto::v1::{ChatEvent, ChatStateChanged, chat_event};

const FAR_FUTURE_MS: i64 = i64::MAX / 2;

fn cursor(created_ms: i64, id: u8) -> String {
    let mut bytes = vec![1u8];
    bytes.extend_from_slice(&created_ms.to_be_bytes());
    bytes.extend_from_slice(&[id; 12]);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn position(created_ms: i64, id: u8) -> Position {
    Position::parse(&cursor(created_ms, id)).expect("a cursor")
}

fn publish(feed: &Feed, created_ms: i64, id: u8) {
    let event = ChatEvent {
        cursor: cursor(created_ms, id),
        event: Some(chat_event::Event::ChatStateChanged(ChatStateChanged {
            state: 1,
        })),
    };
    let Ok(Encoded::Frame(frame)) = frame::encode(event) else {
        panic!("a frame");
    };
    feed.publish_for_tests(frame);
}

fn client(feed: &Arc<Feed>, after: Position, buffer: usize, valid_until_ms: i64) -> Client {
    client_with(feed, after, buffer, valid_until_ms, Duration::from_secs(60))
}

fn client_with(
    feed: &Arc<Feed>,
    after: Position,
    buffer: usize,
    valid_until_ms: i64,
    keep_alive: Duration,
) -> Client {
    let seq = feed.attach(after).expect("covered");
    let slot = EventStreams::new(Shutdown::new(), 16, buffer, keep_alive)
        .open()
        .expect("a slot");
    let start = Start {
        seq,
        after,
        cursor: "start".to_owned(),
        valid_until_ms,
        expires: tokio::time::Instant::now() + Duration::from_secs(3600),
    };
    Client::new(Arc::clone(feed), start, slot, Shutdown::new())
}

/// The ids of what the client reads now (until it would wait).
async fn read_now(client: &mut Client) -> Vec<String> {
    let mut seen = Vec::new();
    while let Ok(Some(bytes)) =
        tokio::time::timeout(Duration::from_millis(50), client.next_for_tests()).await
    {
        seen.push(describe(&bytes));
    }
    seen
}

fn describe(bytes: &Bytes) -> String {
    let text = std::str::from_utf8(bytes).expect("UTF-8");
    let id = text
        .lines()
        .find_map(|line| line.strip_prefix("id: "))
        .unwrap_or("-");
    let kind = text
        .lines()
        .find_map(|line| line.strip_prefix("event: "))
        .unwrap_or("-");
    format!("{kind}@{id}")
}

fn state(created_ms: i64, id: u8) -> String {
    format!("chatStateChanged@{}", cursor(created_ms, id))
}

#[tokio::test]
async fn the_ring_covers_cursors_from_its_boundary_on() {
    let feed = Feed::new("s".to_owned(), position(100, 0), 2);
    for ms in [101, 102, 103] {
        publish(&feed, ms, 1);
    }
    // 101 was evicted: the ring holds 102 and 103, and covers after 101.
    assert_eq!(feed.attach(position(100, 9)), None);
    assert!(feed.attach(position(101, 1)).is_some());
    assert!(
        feed.attach(position(500, 0)).is_some(),
        "a later cursor waits"
    );
    let mut from_ring = client(&feed, position(102, 1), 8, FAR_FUTURE_MS);
    assert_eq!(read_now(&mut from_ring).await, [state(103, 1)]);
}

#[tokio::test]
async fn what_is_at_or_before_a_clients_start_is_skipped_even_when_it_arrives_later() {
    let feed = Feed::new("s".to_owned(), position(100, 0), 16);
    publish(&feed, 101, 1);
    // Joins with the acceptance of 105: an event positioned at 104 that the
    // feed delivers only now (accepted before, delivered after) is not its.
    let mut joined = client(&feed, position(105, 0xff), 8, FAR_FUTURE_MS);
    publish(&feed, 104, 1);
    publish(&feed, 106, 1);
    assert_eq!(read_now(&mut joined).await, [state(106, 1)]);
}

#[tokio::test]
async fn a_client_more_than_its_buffer_behind_gets_a_gap_at_its_last_event() {
    let feed = Feed::new("s".to_owned(), position(100, 0), 64);
    let mut slow = client(&feed, position(100, 0), 2, FAR_FUTURE_MS);
    let mut fast = client(&feed, position(100, 0), 2, FAR_FUTURE_MS);
    publish(&feed, 101, 1);
    assert_eq!(read_now(&mut slow).await, [state(101, 1)]);
    assert_eq!(read_now(&mut fast).await, [state(101, 1)]);
    for ms in 102..=104 {
        publish(&feed, ms, 1);
        assert_eq!(read_now(&mut fast).await, [state(ms, 1)]);
    }
    assert_eq!(
        read_now(&mut slow).await,
        [format!("gap@{}", cursor(101, 1))],
        "then it ends"
    );
    publish(&feed, 105, 1);
    assert_eq!(read_now(&mut fast).await, [state(105, 1)]);
}

#[tokio::test]
async fn a_replay_longer_than_the_buffer_is_not_lagging_until_the_ring_evicts_it() {
    let feed = Feed::new("s".to_owned(), position(100, 0), 8);
    for ms in 101..=106 {
        publish(&feed, ms, 1);
    }
    let mut resumed = client(&feed, position(100, 0), 2, FAR_FUTURE_MS);
    let expected: Vec<_> = (101..=106).map(|ms| state(ms, 1)).collect();
    assert_eq!(read_now(&mut resumed).await, expected);
}

#[tokio::test]
async fn nothing_created_after_the_token_expires_is_delivered() {
    let feed = Feed::new("s".to_owned(), position(100, 0), 8);
    let mut expiring = client(&feed, position(100, 0), 8, 102);
    publish(&feed, 101, 1);
    publish(&feed, 103, 1);
    assert_eq!(
        read_now(&mut expiring).await,
        [state(101, 1), "error@-".to_owned()]
    );
}

#[tokio::test]
async fn a_feed_that_ends_ends_its_clients_after_what_they_have_not_read() {
    let feed = Feed::new("s".to_owned(), position(100, 0), 8);
    let mut failing = client(&feed, position(100, 0), 8, FAR_FUTURE_MS);
    let mut gapped = client(&feed, position(100, 0), 8, FAR_FUTURE_MS);
    publish(&feed, 101, 1);
    assert_eq!(read_now(&mut gapped).await, [state(101, 1)]);
    feed.end(FeedEnd::Gap("fell behind".to_owned()));
    assert_eq!(
        read_now(&mut gapped).await,
        [format!("gap@{}", cursor(101, 1))]
    );
    assert_eq!(
        read_now(&mut failing).await,
        [state(101, 1), format!("gap@{}", cursor(101, 1))]
    );
    let other = Feed::new("t".to_owned(), position(100, 0), 8);
    let mut errored = client(&other, position(100, 0), 8, FAR_FUTURE_MS);
    other.end(FeedEnd::Failed(frame::error(
        &crate::ApiError::Unavailable("x".to_owned()),
    )));
    assert_eq!(read_now(&mut errored).await, ["error@-"]);
}

#[tokio::test]
async fn an_idle_client_gets_one_keep_alive_per_interval_and_still_its_events() {
    let hang = Duration::from_secs(20);
    let feed = Feed::new("s".to_owned(), position(100, 0), 8);
    let mut client = client_with(
        &feed,
        position(100, 0),
        8,
        FAR_FUTURE_MS,
        Duration::from_secs(2),
    );
    let first = tokio::time::timeout(hang, client.next_for_tests()).await;
    assert_eq!(
        first.expect("within the hang bound"),
        Some(frame::keep_alive())
    );
    // One per interval, not a keep-alive on every poll once the timer fired.
    let more = tokio::time::timeout(Duration::from_millis(50), client.next_for_tests()).await;
    assert!(more.is_err(), "nothing within the interval, got {more:?}");

    publish(&feed, 101, 1);
    assert_eq!(read_now(&mut client).await, [state(101, 1)]);
    let second = tokio::time::timeout(hang, client.next_for_tests()).await;
    assert_eq!(
        second.expect("within the hang bound"),
        Some(frame::keep_alive())
    );
}
