//! Load shedding: over `CHAT_MAX_IN_FLIGHT`, unary calls are answered at
//! once with UNAVAILABLE and a retry delay; probes and subscriptions are
//! not limited, and calls in progress finish normally.

use std::sync::Arc;
use std::time::Duration;

use allmine_chat_proto::v1 as pb;
use allmine_test_support::TokenBuilder;
use chat_service::storage::SharedStore;
use chat_service::storage::embedded::EmbeddedStore;
use pb::chat_event::Event;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_types::StatusExt;

use super::{health, path, relaxed, subscribe, until_serving, within};
use crate::gated_store::{Gate, gated};
use crate::helpers::{authorized, channel, spawn_service_on};
use crate::raw_h2;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_in_flight_limit_calls_are_shed_with_a_retry_delay_and_probes_still_answer() {
    let (_data_dir, gate, mut service, stream) = gated_service(|config| {
        config.max_in_flight = 1;
        config.queue_timeout_ms = 1;
    })
    .await;

    // One send takes the only permit and is held inside the store.
    gate.close();
    let held = spawn_send(&service, &stream, "held");
    within("the held send reaches the store", gate.until_waiting(1)).await;

    // Every other unary call is answered at once: UNAVAILABLE, retry in 1 s.
    let sends = (0..20).map(|index| {
        let mut service_client = service.client.clone();
        let request = authorized(
            pb::SendMessageRequest {
                stream_id: stream.clone(),
                content: format!("shed {index}"),
                idempotency_key: None,
            },
            &format!("Bearer {}", TokenBuilder::new().build()),
        );
        async move { service_client.send_message(request).await }
    });
    for result in futures::future::join_all(sends).await {
        let status = result.expect_err("shed while the permit is held");
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        assert!(status.message().contains("overloaded"), "{status:?}");
        let retry = status.get_details_retry_info().expect("retry info");
        assert_eq!(retry.retry_delay, Some(Duration::from_secs(1)));
    }
    // Probes and live subscriptions are not limited.
    assert_eq!(
        health(channel(service.addr).await).await.ok(),
        Some(ServingStatus::Serving)
    );
    let mut events = subscribe(&mut service.client, &stream, &TokenBuilder::new().build())
        .await
        .expect("subscriptions are not shed");

    // The held call then finishes normally, and so do later calls.
    gate.open();
    let held = within("the held send", held)
        .await
        .expect("the task")
        .expect("the held send succeeds")
        .into_inner();
    assert_eq!(held.content, "held");
    let after = service
        .send_as_anyone(&stream, "after")
        .await
        .expect("room again once the held call is done");
    // "held" took its position before the subscription was accepted, so a
    // subscription without a cursor does not get it (docs/live.md, "Where a
    // subscription starts"); "after" comes next.
    let event = within("a live event", events.message())
        .await
        .expect("a healthy stream")
        .expect("an event");
    assert_eq!(event.event, Some(Event::Message(after)));
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_sends_its_request_slowly_holds_no_permit() {
    let service = super::spawn(|config| {
        config.max_in_flight = 1;
        config.queue_timeout_ms = 1;
    })
    .await;
    let stream = service.open_stream().await;
    // A call whose headers arrived but whose message never does.
    let mut slow = raw_h2::connect(service.addr).await;
    let pending = slow
        .open_without_body(&path("SendMessage"), &TokenBuilder::new().build())
        .await
        .expect("stream opened");
    // A round trip on the same connection: the server has taken the slow
    // call in by the time this answers.
    slow.unary::<tonic_health::pb::HealthCheckResponse>(
        "/grpc.health.v1.Health/Check",
        "",
        &tonic_health::pb::HealthCheckRequest::default(),
    )
    .await
    .expect("the connection works")
    .expect("health answers");

    for index in 0..3 {
        service
            .send_as_anyone(&stream, &format!("not shed {index}"))
            .await
            .expect("the slow call holds no permit");
    }
    drop(pending);
    service.stop().await;
}

/// A service on the embedded store behind a gate that can hold its writes,
/// with `configure` applied to relaxed settings, serving, and a stream.
async fn gated_service(
    configure: impl FnOnce(&mut chat_service::Config),
) -> (tempfile::TempDir, Gate, crate::helpers::TestService, String) {
    let data_dir = tempfile::tempdir().expect("temporary directory");
    let store: SharedStore = Arc::new(EmbeddedStore::open(data_dir.path()).expect("store"));
    let gate = Gate::new();
    let service = spawn_service_on(gated(store, gate.clone()), |config| {
        relaxed(config);
        configure(config);
    })
    .await;
    let stream = service.open_stream().await;
    until_serving(channel(service.addr).await).await;
    (data_dir, gate, service, stream)
}

/// A send, with the stream and a fresh viewer token, on its own task.
fn spawn_send(
    service: &crate::helpers::TestService,
    stream: &str,
    content: &str,
) -> tokio::task::JoinHandle<Result<tonic::Response<pb::ChatMessage>, tonic::Status>> {
    let mut client = service.client.clone();
    let request = authorized(
        pb::SendMessageRequest {
            stream_id: stream.to_owned(),
            content: content.to_owned(),
            idempotency_key: None,
        },
        &format!("Bearer {}", TokenBuilder::new().build()),
    );
    tokio::spawn(async move { client.send_message(request).await })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_waits_in_the_queue_while_there_is_room_and_is_shed_at_once_past_it() {
    // One slot, room for one waiter, and a queue timeout far longer than
    // the test: a call past the queue can only be refused by its bound.
    let (_data_dir, gate, service, stream) = gated_service(|config| {
        config.max_in_flight = 1;
        config.max_queued = 1;
        config.queue_timeout_ms = 60_000;
    })
    .await;

    gate.close();
    let held = spawn_send(&service, &stream, "held");
    within("the held send reaches the store", gate.until_waiting(1)).await;
    // Five more: whichever arrives first waits in the queue's one place, the
    // other four are refused at once (without the bound they would all wait
    // the minute-long queue timeout).
    let mut calls: Vec<_> = (0..5)
        .map(|index| spawn_send(&service, &stream, &format!("more {index}")))
        .collect();
    within("four refusals", async {
        while calls.iter().filter(|call| call.is_finished()).count() < 4 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    let waiting = calls
        .iter()
        .position(|call| !call.is_finished())
        .expect("one call still waits in the queue");
    let waiting = calls.swap_remove(waiting);
    for call in calls {
        let status = call
            .await
            .expect("the task")
            .expect_err("refused past the queue");
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        assert!(
            status.get_details_retry_info().is_some(),
            "a refusal past the queue carries its retry delay"
        );
    }

    gate.open();
    for (what, call) in [("the held send", held), ("the queued send", waiting)] {
        within(what, call)
            .await
            .expect("the task")
            .unwrap_or_else(|status| panic!("{what} succeeds: {status:?}"));
    }
    service.stop().await;
}
