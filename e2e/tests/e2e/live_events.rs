//! Server-Sent Events through the real edge and the real chat-service, read
//! by a real HTTP client, on both stores: live messages in order, moderation
//! events, and `Last-Event-ID` resume with nothing lost or repeated.

use std::time::Duration;

use allmine_test_support::TokenBuilder;
use allmine_test_support::backends::Backend;
use serde_json::Value;

use allmine_test_support::sse::{SseEvent, SseReader};

use crate::helpers::{Stack, spawn_stack_with};

/// How long a test waits for one event (a hang bound, not a timing).
const EVENT_WAIT: Duration = Duration::from_secs(15);

allmine_test_support::for_each_backend!(
    sse_delivers_live_messages_and_resumes_with_last_event_id,
    sse_carries_deletions_and_accepts_a_query_token,
);

async fn spawn(backend: Backend) -> Stack {
    spawn_stack_with(backend, |config| {
        config.burst_viewer_limit = 10_000;
        config.live_settle_ms = Some(0);
        config.live_poll_ms = 50;
    })
    .await
}

/// The event stream of `stream` as the holder of `token`, from
/// `last_event_id` when given; asserts the headers that keep proxies from
/// buffering or caching it.
async fn follow(
    stack: &Stack,
    stream: &str,
    token: &str,
    last_event_id: Option<&str>,
) -> SseReader {
    let authorization = format!("Bearer {token}");
    let mut headers = vec![("authorization", authorization.as_str())];
    if let Some(id) = last_event_id {
        headers.push(("last-event-id", id));
    }
    let response = stack.edge.events(stream, "", &headers).await;
    assert_eq!(response.status().as_u16(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        content_type.starts_with("text/event-stream"),
        "{content_type}"
    );
    assert_eq!(response.headers()["cache-control"], "no-cache");
    assert_eq!(response.headers()["x-accel-buffering"], "no");
    SseReader::with_read_timeout(response, EVENT_WAIT)
}

/// The next event, which must come.
async fn next(events: &mut SseReader) -> SseEvent {
    events.next_event().await.expect("the stream is open")
}

async fn sse_delivers_live_messages_and_resumes_with_last_event_id(backend: Backend) {
    let stack = spawn(backend).await;
    let (stream, _owner) = stack.open_stream().await;
    let token = TokenBuilder::new().build();
    let mut events = follow(&stack, &stream, &token, None).await;
    for index in 0..3 {
        assert_eq!(
            stack
                .edge
                .send(&stream, &token, &format!("live {index}"))
                .await
                .status()
                .as_u16(),
            201
        );
    }
    let mut last_id = String::new();
    for index in 0..3 {
        let event = next(&mut events).await;
        assert_eq!(event.event.as_deref(), Some("message"));
        let data = event.json();
        assert_eq!(data["content"], format!("live {index}"));
        assert_eq!(data["streamId"], stream.as_str());
        let id = event.id.unwrap_or_default();
        assert!(!id.is_empty(), "every event carries its cursor as id");
        last_id = id;
    }
    drop(events); // the browser loses its connection

    for index in 0..3 {
        stack
            .edge
            .send(&stream, &token, &format!("missed {index}"))
            .await;
    }
    let mut resumed = follow(&stack, &stream, &token, Some(&last_id)).await;
    stack.edge.send(&stream, &token, "after reconnect").await;
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(
            next(&mut resumed).await.json()["content"]
                .as_str()
                .expect("content")
                .to_owned(),
        );
    }
    assert_eq!(
        seen,
        ["missed 0", "missed 1", "missed 2", "after reconnect"]
    );
    stack.finish().await;
}

async fn sse_carries_deletions_and_accepts_a_query_token(backend: Backend) {
    let stack = spawn(backend).await;
    let (stream, owner) = stack.open_stream().await;
    let token = TokenBuilder::new().build();
    // EventSource cannot send headers: the token goes in the query.
    let response = stack
        .edge
        .events(&stream, &format!("access_token={token}"), &[])
        .await;
    assert_eq!(response.status().as_u16(), 200);
    let mut events = SseReader::with_read_timeout(response, EVENT_WAIT);
    let sent: Value = stack
        .edge
        .send(&stream, &token, "to delete")
        .await
        .json()
        .await
        .expect("JSON");
    let message_id = sent["_id"].as_str().expect("id");
    assert_eq!(next(&mut events).await.event.as_deref(), Some("message"));
    let deleted = stack
        .edge
        .delete_message(&stream, &owner.build(), message_id)
        .await;
    assert_eq!(deleted.status().as_u16(), 204);
    let event = next(&mut events).await;
    assert_eq!(event.event.as_deref(), Some("messageDeleted"));
    let data = event.json();
    assert_eq!(data["messageId"], message_id);
    assert_eq!(data["deletedBy"], owner.user_id().as_str());
    stack.finish().await;
}
