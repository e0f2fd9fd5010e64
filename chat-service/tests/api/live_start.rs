//! Where a live subscription starts, the same on both stores: without a
//! cursor, exactly the events after its acceptance (nothing sent before,
//! everything sent after), whether its stream's feed is new or already
//! running, and across two instances sharing one database; with the newest
//! history cursor, no gap and no duplicate (the join recipe).
//!
//! The ScyllaDB instances keep a settle window (a new feed there starts that
//! far in the past), which is what used to leak messages sent before the
//! subscription into it.

use std::time::Duration;

use allmine_chat_proto::v1 as pb;
use allmine_test_support::backends::{Backend, StoreFixture};
use pb::chat_event::Event;
use tonic::Streaming;

use crate::helpers::{TestService, spawn_service_for_with, spawn_service_on};

allmine_test_support::for_each_backend!(
    a_subscription_without_a_cursor_gets_exactly_what_is_sent_after_it,
    history_then_subscribe_after_its_newest_cursor_has_no_gap_and_no_duplicate,
);

/// How long a test waits for one event before failing (a hang detector).
const EVENT_WAIT: Duration = Duration::from_secs(15);

/// Long enough that a feed started within it would still hold the messages
/// sent before the subscription (the ScyllaDB default was 1,000 ms).
const SETTLE_MS: u64 = 1_000;

fn configure(backend: Backend) -> impl FnOnce(&mut chat_service::Config) {
    move |config| {
        config.burst_viewer_limit = 100_000;
        config.burst_privileged_limit = 100_000;
        // Each store with the settle it runs with in production: none for
        // the embedded one, a window for a shared database.
        config.live_settle_ms = Some(match backend {
            Backend::Embedded => 0,
            Backend::Scylla => SETTLE_MS,
        });
        config.live_poll_ms = 50;
    }
}

async fn next_content(events: &mut Streaming<pb::ChatEvent>) -> String {
    let event = tokio::time::timeout(EVENT_WAIT, events.message())
        .await
        .expect("an event within the wait")
        .expect("a healthy stream")
        .expect("the stream is open");
    match event.event {
        Some(Event::Message(message)) => message.content,
        other => panic!("expected a message, got {other:?}"),
    }
}

/// The next `count` messages' contents.
async fn next_contents(events: &mut Streaming<pb::ChatEvent>, count: usize) -> Vec<String> {
    let mut seen = Vec::with_capacity(count);
    for _ in 0..count {
        seen.push(next_content(events).await);
    }
    seen
}

fn labels(prefix: &str, count: usize) -> Vec<String> {
    (0..count)
        .map(|index| format!("{prefix} {index}"))
        .collect()
}

async fn send_all(service: &TestService, stream: &str, contents: &[String]) {
    for content in contents {
        service.send_as_anyone(stream, content).await.expect("sent");
    }
}

async fn a_subscription_without_a_cursor_gets_exactly_what_is_sent_after_it(backend: Backend) {
    let service = spawn_service_for_with(backend, configure(backend)).await;
    let stream = service.open_stream().await;
    let before = labels("before", 5);
    let between = labels("between", 3);
    let after = labels("after", 4);

    // A fresh feed: nothing of `before` arrives, although it was sent
    // within the settle window.
    send_all(&service, &stream, &before).await;
    let mut first = service.subscribe(&stream, None).await;
    send_all(&service, &stream, &between).await;

    // Joining the feed `first` keeps running (which is still behind, by the
    // settle window): nothing of `before` or `between` arrives.
    let mut second = service.subscribe(&stream, None).await;
    send_all(&service, &stream, &after).await;

    let mut expected_first = between.clone();
    expected_first.extend(after.iter().cloned());
    // In position order, so anything sent before would have come first.
    assert_eq!(
        next_contents(&mut first, expected_first.len()).await,
        expected_first
    );
    assert_eq!(next_contents(&mut second, after.len()).await, after);

    // And nothing follows but what is sent next.
    send_all(&service, &stream, &["last".to_owned()]).await;
    assert_eq!(next_content(&mut first).await, "last");
    assert_eq!(next_content(&mut second).await, "last");
    service.finish().await;
}

async fn history_then_subscribe_after_its_newest_cursor_has_no_gap_and_no_duplicate(
    backend: Backend,
) {
    let service = spawn_service_for_with(backend, configure(backend)).await;
    let stream = service.open_stream().await;
    let before = labels("before", 5);
    send_all(&service, &stream, &before).await;

    let page = service
        .history(&stream, 0, None, None)
        .await
        .expect("history");
    assert_eq!(page.messages.len(), before.len(), "the page holds them all");
    let newest = page
        .messages
        .iter()
        .find(|message| message.content == before[before.len() - 1])
        .expect("the newest message is in the page");

    // Sent between the history read and the subscription: a client must
    // get them from the subscription, once.
    let gap = labels("between", 3);
    send_all(&service, &stream, &gap).await;
    let mut events = service.subscribe(&stream, Some(&newest.cursor)).await;
    let after = labels("after", 2);
    send_all(&service, &stream, &after).await;

    let mut expected = gap.clone();
    expected.extend(after.iter().cloned());
    assert_eq!(next_contents(&mut events, expected.len()).await, expected);
    service.finish().await;
}

/// Two instances on one database (ScyllaDB only; the embedded store has one
/// writer): a message sent through A and answered before B accepted a
/// subscription never reaches it; one sent after does, as on one instance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn across_instances_a_subscription_without_a_cursor_starts_at_its_acceptance() {
    let fixture = StoreFixture::new(Backend::Scylla);
    let instance_a = spawn_service_on(fixture.open().await, configure(Backend::Scylla)).await;
    let instance_b = spawn_service_on(fixture.open().await, configure(Backend::Scylla)).await;
    let stream = instance_a.open_stream().await;

    // B already follows the stream, so its feed runs (behind by settle).
    let mut early_on_b = instance_b.subscribe(&stream, None).await;
    let before = labels("before", 5);
    send_all(&instance_a, &stream, &before).await;
    let mut on_b = instance_b.subscribe(&stream, None).await;
    let after = labels("after", 3);
    send_all(&instance_a, &stream, &after).await;
    send_all(&instance_b, &stream, &["via B".to_owned()]).await;

    let mut expected = after.clone();
    expected.push("via B".to_owned());
    assert_eq!(next_contents(&mut on_b, expected.len()).await, expected);
    let mut expected_early = before.clone();
    expected_early.extend(expected.iter().cloned());
    assert_eq!(
        next_contents(&mut early_on_b, expected_early.len()).await,
        expected_early
    );

    // A fresh feed on B (no subscriber there yet) starts at acceptance too.
    let other = instance_a.open_stream().await;
    send_all(&instance_a, &other, &before).await;
    let mut fresh_on_b = instance_b.subscribe(&other, None).await;
    send_all(&instance_a, &other, &after).await;
    assert_eq!(next_contents(&mut fresh_on_b, after.len()).await, after);

    instance_a.stop().await;
    instance_b.stop().await;
    fixture.cleanup().await;
}
