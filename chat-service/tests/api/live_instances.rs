//! Live delivery across instances on one ScyllaDB keyspace, with no settle
//! window: the watermarks instances exchange (`live::watermarks`) are what
//! keeps the order and the no-gap rule, and a dead instance's last row does
//! not stall delivery for good.

use std::time::Duration;

use allmine_chat_proto::v1 as pb;
use allmine_test_support::backends::{Backend, StoreFixture};
use chat_service::storage::InstanceWatermark;
use pb::chat_event::Event;
use tonic::Streaming;

use crate::gated_store::{Gate, gated, gated_with_publishes};
use crate::helpers::spawn_service_on;

/// A hang detector, far above the lease a dead instance may hold delivery.
const EVENT_WAIT: Duration = Duration::from_secs(15);

fn no_settle(config: &mut chat_service::Config) {
    config.burst_viewer_limit = 100_000;
    config.burst_privileged_limit = 100_000;
    config.live_settle_ms = Some(0);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_still_in_flight_on_one_instance_holds_back_later_messages_on_another() {
    let fixture = StoreFixture::new(Backend::Scylla);
    let gate = Gate::new();
    let instance_a = spawn_service_on(gated(fixture.open().await, gate.clone()), no_settle).await;
    let instance_b = spawn_service_on(fixture.open().await, no_settle).await;
    let stream = instance_a.open_stream().await;
    let mut on_b = instance_b.subscribe(&stream, None).await;

    // A's message gets its position, then waits before the store.
    gate.close();
    let slow = {
        let stream = stream.clone();
        let client = instance_a.client.clone();
        tokio::spawn(async move {
            let request = allmine_test_support::grpc::bearer(
                pb::SendMessageRequest {
                    stream_id: stream,
                    content: "slow via A".into(),
                    idempotency_key: None,
                },
                &allmine_test_support::TokenBuilder::new().build(),
            );
            client.clone().send_message(request).await
        })
    };
    gate.until_waiting(1).await;
    // B's message comes later in the order and is stored at once.
    instance_b
        .send_as_anyone(&stream, "fast via B")
        .await
        .expect("sent");
    // Time for a feed that ignored A's pending append to pass B's message
    // (what a settle of 0 without the exchange would do).
    tokio::time::sleep(Duration::from_millis(500)).await;
    gate.open();
    slow.await.expect("the send task").expect("sent via A");

    assert_eq!(next_content(&mut on_b).await, "slow via A");
    assert_eq!(next_content(&mut on_b).await, "fast via B");
    instance_a.stop().await;
    instance_b.stop().await;
    fixture.cleanup().await;
}

/// The bug the 3-node cluster test found: an instance whose watermark
/// publishes stall (its requests to a node going away time out) is taken for
/// dead by its peers after the lease, and their feeds pass the position of
/// an append it still has in flight. That append lands after they read past
/// it: it must not be acknowledged, or an acknowledged message is silently
/// missing from their subscribers' live feed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_outliving_its_instances_lease_is_refused_not_lost_from_live() {
    let fixture = StoreFixture::new(Backend::Scylla);
    let appends = Gate::new();
    let publishes = Gate::new();
    let store_a = gated_with_publishes(fixture.open().await, appends.clone(), publishes.clone());
    let instance_a = spawn_service_on(store_a, no_settle).await;
    let instance_b = spawn_service_on(fixture.open().await, no_settle).await;
    let stream = instance_a.open_stream().await;
    let mut on_b = instance_b.subscribe(&stream, None).await;

    // A's message gets its position and waits before the store, while A's
    // watermark publishes stall.
    appends.close();
    publishes.close();
    let held = {
        let stream = stream.clone();
        let client = instance_a.client.clone();
        tokio::spawn(async move {
            let request = allmine_test_support::grpc::bearer(
                pb::SendMessageRequest {
                    stream_id: stream,
                    content: "held via A".into(),
                    idempotency_key: None,
                },
                &allmine_test_support::TokenBuilder::new().build(),
            );
            client.clone().send_message(request).await
        })
    };
    appends.until_waiting(1).await;
    publishes.until_waiting(1).await;
    // B's message comes later in the order. B delivers it only once it has
    // taken A for dead (A's beat silent for the lease): past A's message.
    instance_b
        .send_as_anyone(&stream, "via B while A is silent")
        .await
        .expect("sent");
    assert_eq!(next_content(&mut on_b).await, "via B while A is silent");

    // A's append now lands, after B's feed passed its position.
    appends.open();
    let answer = held.await.expect("the send task");
    assert_eq!(
        answer.as_ref().map_err(tonic::Status::code).err(),
        Some(tonic::Code::Unavailable),
        "a send B's subscribers never get live is not acknowledged: {answer:?}"
    );

    // A's publishes get through again: its lease is renewed, its sends are
    // acknowledged and delivered live on B.
    publishes.open();
    instance_a
        .send_as_anyone(&stream, "via A again")
        .await
        .expect("sent once A publishes again");
    assert_eq!(next_content(&mut on_b).await, "via A again");
    instance_a.stop().await;
    instance_b.stop().await;
    fixture.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_instance_holds_delivery_back_for_the_lease_at_most() {
    let fixture = StoreFixture::new(Backend::Scylla);
    let store = fixture.open().await;
    // An instance that published once, far in the past, and never again.
    store
        .publish_watermark(&InstanceWatermark {
            instance: "dead".into(),
            beat: 1,
            watermark_ms: 0,
        })
        .await
        .expect("published");
    let instance_a = spawn_service_on(store, no_settle).await;
    let instance_b = spawn_service_on(fixture.open().await, no_settle).await;
    let stream = instance_a.open_stream().await;
    let mut on_b = instance_b.subscribe(&stream, None).await;
    instance_a
        .send_as_anyone(&stream, "despite the dead one")
        .await
        .expect("sent");
    assert_eq!(next_content(&mut on_b).await, "despite the dead one");

    // A stops cleanly: B's own messages still flow.
    instance_a.stop().await;
    instance_b
        .send_as_anyone(&stream, "after A left")
        .await
        .expect("sent");
    assert_eq!(next_content(&mut on_b).await, "after A left");
    instance_b.stop().await;
    fixture.cleanup().await;
}
