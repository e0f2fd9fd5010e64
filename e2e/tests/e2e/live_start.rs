//! Where an SSE subscription without `Last-Event-ID` starts, through the
//! real edge and chat-service on both stores: exactly at its acceptance
//! (the 200), so what was sent before never arrives and what is sent after
//! does. ScyllaDB runs with a settle window, under which a new feed starts
//! in the past (what used to leak the earlier messages).

use std::time::Duration;

use allmine_test_support::TokenBuilder;
use allmine_test_support::backends::Backend;
use allmine_test_support::sse::SseReader;

use crate::helpers::{Stack, spawn_stack_with};

/// How long a test waits for one event (a hang bound, not a timing).
const EVENT_WAIT: Duration = Duration::from_secs(15);

allmine_test_support::for_each_backend!(sse_without_a_cursor_starts_at_its_acceptance);

async fn spawn(backend: Backend) -> Stack {
    spawn_stack_with(backend, move |config| {
        config.burst_viewer_limit = 10_000;
        config.live_settle_ms = Some(match backend {
            Backend::Embedded => 0,
            Backend::Scylla => 1_000,
        });
        config.live_poll_ms = 50;
    })
    .await
}

async fn sse_without_a_cursor_starts_at_its_acceptance(backend: Backend) {
    let stack = spawn(backend).await;
    let (stream, _owner) = stack.open_stream().await;
    let token = TokenBuilder::new().build();
    for index in 0..3 {
        let response = stack
            .edge
            .send(&stream, &token, &format!("before {index}"))
            .await;
        assert_eq!(response.status().as_u16(), 201);
    }
    let authorization = format!("Bearer {token}");
    let response = stack
        .edge
        .events(&stream, "", &[("authorization", authorization.as_str())])
        .await;
    assert_eq!(response.status().as_u16(), 200);
    let mut events = SseReader::with_read_timeout(response, EVENT_WAIT);
    for index in 0..2 {
        let response = stack
            .edge
            .send(&stream, &token, &format!("after {index}"))
            .await;
        assert_eq!(response.status().as_u16(), 201);
    }
    let mut seen = Vec::new();
    for _ in 0..2 {
        let event = events.next_event().await.expect("the stream is open");
        seen.push(
            event.json()["content"]
                .as_str()
                .expect("content")
                .to_owned(),
        );
    }
    assert_eq!(seen, ["after 0", "after 1"]);
    stack.finish().await;
}
