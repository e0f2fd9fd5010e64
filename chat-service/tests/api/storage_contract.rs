//! The storage contract: every `MessageStore` implementation must pass these,
//! instantiated once per backend.

use std::collections::BTreeMap;
use std::time::Duration;

use allmine_test_support::random_object_id;
use chat_service::domain::{
    ChatMessage, MessageContent, ObjectIdGenerator, ProfilePhoto, Sender, StreamId, UserId,
};
use chat_service::domain::{ObjectId, Position};
use chat_service::storage::{MessageStore, PageStart};
use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use allmine_test_support::backends::{Backend, StoreFixture};

allmine_test_support::for_each_backend!(
    an_appended_message_reads_back_equal,
    a_full_sender_profile_round_trips,
    newest_returns_newest_first_up_to_the_limit,
    equal_timestamps_neither_collide_nor_reorder,
    messages_spanning_several_buckets_read_back_in_order,
    a_stream_silent_for_many_buckets_still_returns_its_newest,
    streams_are_isolated,
    re_inserting_the_same_message_is_harmless,
    messages_survive_a_restart,
    an_unknown_stream_has_no_messages,
    changing_the_bucket_width_loses_no_message,
    paging_walks_every_message_once_in_order_both_ways,
    pages_start_strictly_beyond_their_position,
);

const BASE_MS: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

fn at(millis: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(millis).expect("valid time")
}

fn message(ids: &ObjectIdGenerator, stream: StreamId, created_ms: i64, text: &str) -> ChatMessage {
    let created = at(created_ms);
    ChatMessage {
        id: ids.next(created).into(),
        stream_id: stream,
        content: MessageContent::parse(text).expect("valid content"),
        sender: Sender::anonymous(UserId::parse(&random_object_id()).expect("id")),
        created_at: created,
        updated_at: created,
    }
}

fn new_stream() -> StreamId {
    StreamId::parse(&random_object_id()).expect("id")
}

fn contents(messages: &[ChatMessage]) -> Vec<&str> {
    messages.iter().map(|m| m.content.as_str()).collect()
}

async fn an_appended_message_reads_back_equal(backend: Backend) {
    let fixture = StoreFixture::new(backend);
    let store = fixture.open().await;
    let ids = ObjectIdGenerator::new();
    let stream = new_stream();
    let sent = message(&ids, stream, BASE_MS, "Herkese selam!");
    store.append(&sent).await.expect("append");
    assert_eq!(store.newest(&stream, 10).await.expect("read"), vec![sent]);
    drop(store);
    fixture.cleanup().await;
}

async fn a_full_sender_profile_round_trips(backend: Backend) {
    let fixture = StoreFixture::new(backend);
    let store = fixture.open().await;
    let ids = ObjectIdGenerator::new();
    let stream = new_stream();
    let mut sent = message(&ids, stream, BASE_MS, "with a profile");
    sent.sender = Sender {
        id: UserId::parse("64d15f9e2e6c8f4d5a123456").expect("id"),
        username: Some("johndoe".into()),
        name: Some("John".into()),
        surname: Some("Doe".into()),
        profile_photo: Some(ProfilePhoto {
            id: "507f1f77bcf86cd799439012".into(),
            url: "https://example.com/uploads/images/profile.jpg".into(),
            media_type: "image".into(),
            variants: BTreeMap::from([
                (
                    "40".into(),
                    "https://cdn.example.com/profiles/user/40.webp".into(),
                ),
                (
                    "76".into(),
                    "https://cdn.example.com/profiles/user/76.webp".into(),
                ),
            ]),
            created_at: Some(at(BASE_MS - 86_400_000)),
            updated_at: Some(at(BASE_MS - 3_600_000)),
        }),
        availability_status: Some("available".into()),
    };
    store.append(&sent).await.expect("append");
    assert_eq!(store.newest(&stream, 1).await.expect("read"), vec![sent]);
    drop(store);
    fixture.cleanup().await;
}

async fn newest_returns_newest_first_up_to_the_limit(backend: Backend) {
    let fixture = StoreFixture::new(backend);
    let store = fixture.open().await;
    let ids = ObjectIdGenerator::new();
    let stream = new_stream();
    for index in 0..30 {
        let sent = message(&ids, stream, BASE_MS + index * 1_000, &format!("m{index}"));
        store.append(&sent).await.expect("append");
    }
    let newest = store.newest(&stream, 5).await.expect("read");
    assert_eq!(contents(&newest), ["m29", "m28", "m27", "m26", "m25"]);
    assert_eq!(store.newest(&stream, 100).await.expect("read").len(), 30);
    assert!(store.newest(&stream, 0).await.expect("read").is_empty());
    drop(store);
    fixture.cleanup().await;
}

async fn equal_timestamps_neither_collide_nor_reorder(backend: Backend) {
    let fixture = StoreFixture::new(backend);
    let store = fixture.open().await;
    let ids = ObjectIdGenerator::new();
    let stream = new_stream();
    // Ten messages in the very same millisecond, appended in id order but
    // stored concurrently.
    let batch: Vec<ChatMessage> = (0..10)
        .map(|index| message(&ids, stream, BASE_MS, &format!("same ms {index}")))
        .collect();
    futures::future::try_join_all(batch.iter().map(|m| store.append(m)))
        .await
        .expect("append");
    let newest = store.newest(&stream, 10).await.expect("read");
    let expected: Vec<ChatMessage> = batch.into_iter().rev().collect();
    assert_eq!(newest, expected, "all ten kept, newest id first");
    drop(store);
    fixture.cleanup().await;
}

async fn messages_spanning_several_buckets_read_back_in_order(backend: Backend) {
    let fixture = StoreFixture::with_bucket_width(backend, Duration::from_secs(60));
    let store = fixture.open().await;
    let ids = ObjectIdGenerator::new();
    let stream = new_stream();
    // Around bucket boundaries: last and first millisecond of windows.
    let times = [
        BASE_MS,
        BASE_MS + 59_999,
        BASE_MS + 60_000,
        BASE_MS + 60_001,
        BASE_MS + 119_999,
        BASE_MS + 180_000,
        BASE_MS + 300_500,
    ];
    for (index, created_ms) in times.iter().enumerate() {
        let sent = message(&ids, stream, *created_ms, &format!("b{index}"));
        store.append(&sent).await.expect("append");
    }
    let newest = store.newest(&stream, 100).await.expect("read");
    assert_eq!(
        contents(&newest),
        ["b6", "b5", "b4", "b3", "b2", "b1", "b0"]
    );
    let newest_three = store.newest(&stream, 3).await.expect("read");
    assert_eq!(contents(&newest_three), ["b6", "b5", "b4"]);
    drop(store);
    fixture.cleanup().await;
}

async fn a_stream_silent_for_many_buckets_still_returns_its_newest(backend: Backend) {
    let fixture = StoreFixture::with_bucket_width(backend, Duration::from_secs(60));
    let store = fixture.open().await;
    let ids = ObjectIdGenerator::new();
    let stream = new_stream();
    let day = 86_400_000;
    // Three messages a day apart (1,440 empty buckets between each), and a
    // burst of five in the last one.
    store
        .append(&message(&ids, stream, BASE_MS, "day one"))
        .await
        .expect("append");
    store
        .append(&message(&ids, stream, BASE_MS + day, "day two"))
        .await
        .expect("append");
    for index in 0..5 {
        let sent = message(
            &ids,
            stream,
            BASE_MS + 30 * day + index,
            &format!("day 31 #{index}"),
        );
        store.append(&sent).await.expect("append");
    }
    let newest = store.newest(&stream, 7).await.expect("read");
    assert_eq!(
        contents(&newest),
        [
            "day 31 #4",
            "day 31 #3",
            "day 31 #2",
            "day 31 #1",
            "day 31 #0",
            "day two",
            "day one"
        ]
    );
    let newest_six = store.newest(&stream, 6).await.expect("read");
    assert_eq!(
        newest_six.last().map(|m| m.content.as_str()),
        Some("day two")
    );
    drop(store);
    fixture.cleanup().await;
}

async fn streams_are_isolated(backend: Backend) {
    let fixture = StoreFixture::new(backend);
    let store = fixture.open().await;
    let ids = ObjectIdGenerator::new();
    let first = new_stream();
    let second = new_stream();
    store
        .append(&message(&ids, first, BASE_MS, "first a"))
        .await
        .expect("append");
    store
        .append(&message(&ids, second, BASE_MS + 1, "second a"))
        .await
        .expect("append");
    store
        .append(&message(&ids, first, BASE_MS + 2, "first b"))
        .await
        .expect("append");
    assert_eq!(
        contents(&store.newest(&first, 10).await.expect("read")),
        ["first b", "first a"]
    );
    assert_eq!(
        contents(&store.newest(&second, 10).await.expect("read")),
        ["second a"]
    );
    drop(store);
    fixture.cleanup().await;
}

async fn re_inserting_the_same_message_is_harmless(backend: Backend) {
    let fixture = StoreFixture::new(backend);
    let store = fixture.open().await;
    let ids = ObjectIdGenerator::new();
    let stream = new_stream();
    let sent = message(&ids, stream, BASE_MS, "retried");
    store.append(&sent).await.expect("append");
    store.append(&sent).await.expect("append again");
    assert_eq!(store.newest(&stream, 10).await.expect("read"), vec![sent]);
    drop(store);
    fixture.cleanup().await;
}

async fn messages_survive_a_restart(backend: Backend) {
    let fixture = StoreFixture::new(backend);
    let ids = ObjectIdGenerator::new();
    let stream = new_stream();
    let sent = message(&ids, stream, BASE_MS, "before restart");
    {
        let store = fixture.open().await;
        store.append(&sent).await.expect("append");
    }
    let reopened = fixture.open().await;
    assert_eq!(
        reopened.newest(&stream, 10).await.expect("read"),
        vec![sent]
    );
    drop(reopened);
    fixture.cleanup().await;
}

async fn an_unknown_stream_has_no_messages(backend: Backend) {
    let fixture = StoreFixture::new(backend);
    let store = fixture.open().await;
    assert!(
        store
            .newest(&new_stream(), 50)
            .await
            .expect("read")
            .is_empty()
    );
    drop(store);
    fixture.cleanup().await;
}

async fn changing_the_bucket_width_loses_no_message(backend: Backend) {
    let ids = ObjectIdGenerator::new();
    let stream = new_stream();
    let minute = StoreFixture::with_bucket_width(backend, Duration::from_secs(60));
    let mut sent = Vec::new();
    {
        let store = minute.open().await;
        for index in 0..3 {
            let m = message(
                &ids,
                stream,
                BASE_MS + 10_000 + index * 30_000,
                &format!("minute {index}"),
            );
            store.append(&m).await.expect("append");
            sent.push(m);
        }
    }
    // The operator widens the buckets to a day: the new windows start before
    // the old ones and overlap them.
    let mut day = minute;
    day.bucket_width = Duration::from_secs(86_400);
    {
        let store = day.open().await;
        for index in 0..3 {
            let m = message(
                &ids,
                stream,
                BASE_MS + 200_000 + index * 1_000,
                &format!("day {index}"),
            );
            store.append(&m).await.expect("append");
            sent.push(m);
        }
    }
    // And narrows them again.
    let mut narrow = day;
    narrow.bucket_width = Duration::from_secs(7);
    let store = narrow.open().await;
    let last = message(&ids, stream, BASE_MS + 300_000, "narrow");
    store.append(&last).await.expect("append");
    sent.push(last);

    let expected: Vec<ChatMessage> = sent.iter().rev().cloned().collect();
    assert_eq!(store.newest(&stream, 100).await.expect("read"), expected);
    for limit in 1..=expected.len() {
        assert_eq!(
            store.newest(&stream, limit).await.expect("read"),
            expected[..limit].to_vec(),
            "newest {limit}"
        );
    }
    drop(store);
    narrow.cleanup().await;
}

/// Pages through `store` from the newest backwards and from the very
/// beginning forwards, `page_size` at a time.
async fn walk(
    store: &dyn MessageStore,
    stream: StreamId,
    page_size: usize,
) -> (Vec<ChatMessage>, Vec<ChatMessage>) {
    let mut backward = Vec::new();
    let mut start = PageStart::Newest;
    loop {
        let page = store.page(&stream, start, page_size).await.expect("page");
        let Some(last) = page.last() else { break };
        start = PageStart::Before(last.position());
        let done = page.len() < page_size;
        backward.extend(page);
        if done {
            break;
        }
    }
    let mut forward = Vec::new();
    let mut start = PageStart::After(Position {
        created_ms: i64::MIN,
        id: ObjectId::from_bytes([0; 12]),
    });
    loop {
        let page = store.page(&stream, start, page_size).await.expect("page");
        let Some(last) = page.last() else { break };
        start = PageStart::After(last.position());
        let done = page.len() < page_size;
        forward.extend(page);
        if done {
            break;
        }
    }
    (backward, forward)
}

/// A property test with seeded random message sets (reproducible: the seed is
/// in the failure message): random sizes, times spread over many buckets with
/// bursts of equal timestamps, random page sizes. Paging either way must
/// return exactly the sorted truth: no duplicate, no omission.
async fn paging_walks_every_message_once_in_order_both_ways(backend: Backend) {
    let fixture = StoreFixture::with_bucket_width(backend, Duration::from_secs(60));
    let store = fixture.open().await;
    for seed in 0..6u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let ids = ObjectIdGenerator::new();
        let stream = new_stream();
        let count = rng.random_range(0..250);
        let span_ms: i64 = rng.random_range(1..4 * 3_600_000);
        let mut truth = Vec::new();
        for index in 0..count {
            // One in four reuses the previous time: equal timestamps.
            let created_ms = match truth.last() {
                Some(previous) if rng.random_range(0..4) == 0 => {
                    ChatMessage::position(previous).created_ms
                }
                _ => BASE_MS + rng.random_range(0..span_ms),
            };
            truth.push(message(&ids, stream, created_ms, &format!("m{index}")));
        }
        futures::future::try_join_all(truth.iter().map(|m| store.append(m)))
            .await
            .expect("append");
        truth.sort_by_key(ChatMessage::position);

        let page_size = rng.random_range(1..=40);
        let (backward, forward) = walk(store.as_ref(), stream, page_size).await;
        let newest_first: Vec<ChatMessage> = truth.iter().rev().cloned().collect();
        assert_eq!(
            backward, newest_first,
            "backward, seed {seed}, page size {page_size}"
        );
        assert_eq!(
            forward, truth,
            "forward, seed {seed}, page size {page_size}"
        );
    }
    drop(store);
    fixture.cleanup().await;
}

async fn pages_start_strictly_beyond_their_position(backend: Backend) {
    let fixture = StoreFixture::new(backend);
    let store = fixture.open().await;
    let ids = ObjectIdGenerator::new();
    let stream = new_stream();
    let sent: Vec<ChatMessage> = (0..5)
        .map(|index| message(&ids, stream, BASE_MS + index * 90_000, &format!("p{index}")))
        .collect();
    for m in &sent {
        store.append(m).await.expect("append");
    }
    let middle = sent[2].position();
    let before = store
        .page(&stream, PageStart::Before(middle), 10)
        .await
        .expect("page");
    assert_eq!(contents(&before), ["p1", "p0"]);
    let after = store
        .page(&stream, PageStart::After(middle), 10)
        .await
        .expect("page");
    assert_eq!(contents(&after), ["p3", "p4"]);
    let after_two = store
        .page(&stream, PageStart::After(sent[0].position()), 2)
        .await
        .expect("page");
    assert_eq!(contents(&after_two), ["p1", "p2"]);
    // A position between messages (no message there) works too.
    let between = Position {
        created_ms: BASE_MS + 100_000,
        id: sent[1].id.object_id(),
    };
    assert_eq!(
        contents(
            &store
                .page(&stream, PageStart::Before(between), 10)
                .await
                .expect("page")
        ),
        ["p1", "p0"]
    );
    assert_eq!(
        contents(
            &store
                .page(&stream, PageStart::After(between), 10)
                .await
                .expect("page")
        ),
        ["p2", "p3", "p4"]
    );
    drop(store);
    fixture.cleanup().await;
}
