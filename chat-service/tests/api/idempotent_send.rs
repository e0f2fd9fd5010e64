//! Idempotent sends through the real gRPC server: replays with their
//! metadata, conflicts, validation, rules bypass for replays, concurrency,
//! scope and the window.

use std::time::Duration;

use allmine_chat_proto::IDEMPOTENT_REPLAYED_METADATA;
use allmine_chat_proto::v1 as pb;
use allmine_test_support::TokenBuilder;
use allmine_test_support::backends::{Backend, StoreFixture};
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::helpers::{
    TestService, authorized, spawn_service_for, spawn_service_for_with, spawn_service_on,
};

allmine_test_support::for_each_backend!(
    a_retry_with_the_same_key_returns_the_original_marked_as_a_replay,
    the_same_key_with_other_content_is_already_exists,
    an_invalid_key_is_refused_naming_the_field,
    a_replay_is_answered_although_slow_mode_a_ban_or_a_closed_chat_would_refuse,
    a_replay_is_answered_although_the_burst_limit_would_refuse,
    concurrent_sends_with_one_key_store_one_message,
    a_key_is_scoped_to_its_user_and_stream,
    after_the_window_the_key_sends_a_new_message,
);

/// A send's reply and whether it was marked as a replay.
type Reply = (pb::ChatMessage, bool);

async fn send_keyed(
    service: &TestService,
    sender: &TokenBuilder,
    stream: &str,
    content: &str,
    key: &str,
) -> Result<Reply, Status> {
    let request = authorized(
        pb::SendMessageRequest {
            stream_id: stream.into(),
            content: content.into(),
            idempotency_key: Some(key.into()),
        },
        &format!("Bearer {}", sender.build()),
    );
    let response = service.client.clone().send_message(request).await?;
    let replayed = match response.metadata().get(IDEMPOTENT_REPLAYED_METADATA) {
        None => false,
        Some(value) => {
            assert_eq!(value, "true", "the replay marker is `true` when present");
            true
        }
    };
    Ok((response.into_inner(), replayed))
}

async fn a_retry_with_the_same_key_returns_the_original_marked_as_a_replay(backend: Backend) {
    let service = spawn_service_for(backend).await;
    let stream = service.open_stream().await;
    let viewer = TokenBuilder::new();

    let (first, replayed) = send_keyed(&service, &viewer, &stream, "only once", "key-1")
        .await
        .expect("first send");
    assert!(!replayed, "a fresh send is not marked as a replay");
    let (retry, replayed) = send_keyed(&service, &viewer, &stream, "  only once ", "key-1")
        .await
        .expect("retry");
    assert!(replayed, "the retry is marked as a replay");
    assert_eq!(retry, first, "the retry returns the original message");
    assert_eq!(service.stored(&stream).await.len(), 1);
    service.finish().await;
}

async fn the_same_key_with_other_content_is_already_exists(backend: Backend) {
    let service = spawn_service_for(backend).await;
    let stream = service.open_stream().await;
    let viewer = TokenBuilder::new();
    send_keyed(&service, &viewer, &stream, "first text", "key-2")
        .await
        .expect("first send");
    let status = send_keyed(&service, &viewer, &stream, "other text", "key-2")
        .await
        .expect_err("other content under the same key");
    assert_eq!(status.code(), Code::AlreadyExists, "{status:?}");
    assert!(status.message().contains("idempotency key"), "{status:?}");
    let stored = service.stored(&stream).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].content.as_str(), "first text");
    service.finish().await;
}

async fn an_invalid_key_is_refused_naming_the_field(backend: Backend) {
    let service = spawn_service_for(backend).await;
    let stream = service.open_stream().await;
    let viewer = TokenBuilder::new();
    for key in ["", "has space", "ümlaut", &"k".repeat(256)] {
        let status = send_keyed(&service, &viewer, &stream, "hello", key)
            .await
            .expect_err("invalid key");
        assert_eq!(status.code(), Code::InvalidArgument, "{key:?}: {status:?}");
        let fields: Vec<String> = status
            .get_details_bad_request()
            .expect("field violations")
            .field_violations
            .into_iter()
            .map(|violation| violation.field)
            .collect();
        assert_eq!(fields, ["idempotency_key"], "{key:?}");
    }
    assert!(
        send_keyed(&service, &viewer, &stream, "hello", &"k".repeat(255))
            .await
            .is_ok()
    );
    assert_eq!(service.stored(&stream).await.len(), 1);
    service.finish().await;
}

async fn a_replay_is_answered_although_slow_mode_a_ban_or_a_closed_chat_would_refuse(
    backend: Backend,
) {
    let service = spawn_service_for(backend).await;
    let (stream, owner) = service.open_stream_with_owner().await;
    service.admin().slow_mode(&stream, 120).await;
    let viewer = TokenBuilder::new();
    let (original, _) = send_keyed(&service, &viewer, &stream, "hi", "key-rules")
        .await
        .expect("first send");

    // Slow mode refuses a new message but not the retry.
    let status = send_keyed(&service, &viewer, &stream, "again", "key-new")
        .await
        .expect_err("slow mode");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    let replay = send_keyed(&service, &viewer, &stream, "hi", "key-rules").await;
    assert_eq!(
        replay.expect("replay under slow mode"),
        (original.clone(), true)
    );

    // A ban.
    service
        .ban(&owner, &stream, &viewer.user_id(), None)
        .await
        .expect("banned");
    let replay = send_keyed(&service, &viewer, &stream, "hi", "key-rules").await;
    assert_eq!(
        replay.expect("replay while banned"),
        (original.clone(), true)
    );

    // A closed chat.
    service.admin().set_open(&stream, false).await;
    let replay = send_keyed(&service, &viewer, &stream, "hi", "key-rules").await;
    assert_eq!(replay.expect("replay in a closed chat"), (original, true));
    let status = send_keyed(&service, &owner, &stream, "owner", "key-owner")
        .await
        .expect_err("closed chat refuses a new message");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");

    assert_eq!(service.stored(&stream).await.len(), 1);
    service.finish().await;
}

async fn a_replay_is_answered_although_the_burst_limit_would_refuse(backend: Backend) {
    let service = spawn_service_for_with(backend, |config| {
        config.burst_viewer_limit = 1;
        config.burst_window_secs = 3600;
    })
    .await;
    let stream = service.open_stream().await;
    let viewer = TokenBuilder::new();
    let (original, _) = send_keyed(&service, &viewer, &stream, "burst", "key-burst")
        .await
        .expect("first send");
    let status = send_keyed(&service, &viewer, &stream, "more", "key-more")
        .await
        .expect_err("over the burst limit");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    for _ in 0..3 {
        let replay = send_keyed(&service, &viewer, &stream, "burst", "key-burst").await;
        assert_eq!(replay.expect("replay"), (original.clone(), true));
    }
    assert_eq!(service.stored(&stream).await.len(), 1);
    service.finish().await;
}

async fn concurrent_sends_with_one_key_store_one_message(backend: Backend) {
    const SENDERS: usize = 16;
    let service = spawn_service_for(backend).await;
    let stream = service.open_stream().await;
    let viewer = TokenBuilder::new();
    let replies = futures::future::join_all(
        (0..SENDERS).map(|_| send_keyed(&service, &viewer, &stream, "together", "key-race")),
    )
    .await;
    let replies: Vec<Reply> = replies
        .into_iter()
        .map(|reply| reply.expect("every concurrent send is answered with the message"))
        .collect();
    let stored = service.stored(&stream).await;
    assert_eq!(stored.len(), 1, "one stored message");
    let stored_id = stored[0].id.to_string();
    assert!(replies.iter().all(|(message, _)| message.id == stored_id));
    let fresh = replies.iter().filter(|(_, replayed)| !replayed).count();
    assert_eq!(fresh, 1, "exactly one reply is the fresh send");
    service.finish().await;
}

async fn a_key_is_scoped_to_its_user_and_stream(backend: Backend) {
    let service = spawn_service_for(backend).await;
    let stream = service.open_stream().await;
    let other_stream = service.open_stream().await;
    let (alice, bob) = (TokenBuilder::new(), TokenBuilder::new());
    let (mine, _) = send_keyed(&service, &alice, &stream, "same", "shared-key")
        .await
        .expect("alice");
    let (theirs, replayed) = send_keyed(&service, &bob, &stream, "same", "shared-key")
        .await
        .expect("bob");
    assert!(!replayed);
    assert_ne!(theirs.id, mine.id);
    let (elsewhere, replayed) = send_keyed(&service, &alice, &other_stream, "same", "shared-key")
        .await
        .expect("alice elsewhere");
    assert!(!replayed);
    assert_ne!(elsewhere.id, mine.id);
    assert_eq!(service.stored(&stream).await.len(), 2);
    assert_eq!(service.stored(&other_stream).await.len(), 1);
    service.finish().await;
}

async fn after_the_window_the_key_sends_a_new_message(backend: Backend) {
    let service = spawn_service_for_with(backend, |config| {
        config.idempotency_window_secs = 1;
    })
    .await;
    let stream = service.open_stream().await;
    let viewer = TokenBuilder::new();
    let (first, _) = send_keyed(&service, &viewer, &stream, "tick", "key-window")
        .await
        .expect("first send");
    // Hang detector only: the window is 1 s.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (reply, replayed) = send_keyed(&service, &viewer, &stream, "tick", "key-window")
            .await
            .expect("send");
        if !replayed {
            assert_ne!(reply.id, first.id, "a new message after the window");
            break;
        }
        assert_eq!(reply, first);
        assert!(
            tokio::time::Instant::now() < deadline,
            "the key never expired"
        );
    }
    assert_eq!(service.stored(&stream).await.len(), 2);
    service.finish().await;
}

/// Two instances, each with its own connection to one ScyllaDB keyspace,
/// receive the same keyed send at once: the LWT lets exactly one store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sends_with_one_key_through_two_instances_store_one_message() {
    const SENDS_PER_INSTANCE: usize = 8;
    let fixture = StoreFixture::new(Backend::Scylla);
    let instance_a = spawn_service_on(fixture.open().await, |_| {}).await;
    let instance_b = spawn_service_on(fixture.open().await, |_| {}).await;
    let stream = instance_a.open_stream().await;
    let viewer = TokenBuilder::new();
    let sends = (0..SENDS_PER_INSTANCE).flat_map(|_| {
        [&instance_a, &instance_b]
            .map(|instance| send_keyed(instance, &viewer, &stream, "from anywhere", "key-multi"))
    });
    let replies: Vec<Reply> = futures::future::join_all(sends)
        .await
        .into_iter()
        .map(|reply| reply.expect("every send is answered with the message"))
        .collect();

    let stored = instance_a.stored(&stream).await;
    assert_eq!(stored.len(), 1, "one stored message across instances");
    let stored_id = stored[0].id.to_string();
    assert!(replies.iter().all(|(message, _)| message.id == stored_id));
    assert_eq!(replies.iter().filter(|(_, replayed)| !replayed).count(), 1);
    instance_a.stop().await;
    instance_b.stop().await;
    fixture.cleanup().await;
}
