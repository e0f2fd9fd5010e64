//! Server-Sent Events through the real edge and the real chat-service, read
//! by a real HTTP client, on both stores: live messages in order, moderation
//! events, and `Last-Event-ID` resume with nothing lost or repeated.

use std::time::Duration;

use allmine_test_support::TokenBuilder;
use allmine_test_support::backends::Backend;
use serde_json::Value;

use crate::helpers::{Stack, spawn_stack_with};

allmine_test_support::for_each_backend!(
    sse_delivers_live_messages_and_resumes_with_last_event_id,
    sse_carries_deletions_and_accepts_a_query_token,
);

/// One parsed SSE event.
#[derive(Debug)]
struct SseEvent {
    id: String,
    kind: String,
    data: Value,
}

/// Reads SSE events from a streaming response (bounded waits).
struct SseReader {
    response: reqwest::Response,
    buffer: String,
}

impl SseReader {
    async fn next(&mut self) -> SseEvent {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut id, mut kind, mut data) = (String::new(), String::new(), String::new());
                for line in block.lines() {
                    if let Some(value) = line.strip_prefix("id:") {
                        id = value.trim().to_owned();
                    } else if let Some(value) = line.strip_prefix("event:") {
                        kind = value.trim().to_owned();
                    } else if let Some(value) = line.strip_prefix("data:") {
                        data.push_str(value.trim());
                    }
                }
                if kind.is_empty() && data.is_empty() {
                    continue; // a keep-alive comment
                }
                return SseEvent {
                    id,
                    kind,
                    data: serde_json::from_str(&data).expect("JSON data"),
                };
            }
            let chunk = tokio::time::timeout(Duration::from_secs(15), self.response.chunk())
                .await
                .expect("an event within the wait")
                .expect("a healthy stream")
                .expect("the stream is open");
            self.buffer
                .push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        }
    }
}

async fn spawn(backend: Backend) -> Stack {
    spawn_stack_with(backend, |config| {
        config.burst_viewer_limit = 10_000;
        config.live_settle_ms = Some(0);
        config.live_poll_ms = 50;
    })
    .await
}

impl Stack {
    async fn events(&self, stream: &str, token: &str, last_event_id: Option<&str>) -> SseReader {
        let mut request = self
            .client
            .get(format!(
                "{}/api/v1/live-stream/{stream}/chat/events",
                self.base
            ))
            .bearer_auth(token)
            // The client's overall timeout would cut a long-lived stream.
            .timeout(Duration::from_secs(120));
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = request.send().await.expect("the edge answers");
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
        SseReader {
            response,
            buffer: String::new(),
        }
    }
}

async fn sse_delivers_live_messages_and_resumes_with_last_event_id(backend: Backend) {
    let stack = spawn(backend).await;
    let (stream, _owner) = stack.open_stream().await;
    let token = TokenBuilder::new().build();
    let mut events = stack.events(&stream, &token, None).await;
    for index in 0..3 {
        assert_eq!(
            stack
                .send(&stream, &token, &format!("live {index}"))
                .await
                .status()
                .as_u16(),
            201
        );
    }
    let mut last_id = String::new();
    for index in 0..3 {
        let event = events.next().await;
        assert_eq!(event.kind, "message");
        assert_eq!(event.data["content"], format!("live {index}"));
        assert_eq!(event.data["streamId"], stream.as_str());
        assert!(!event.id.is_empty(), "every event carries its cursor as id");
        last_id = event.id;
    }
    drop(events); // the browser loses its connection

    for index in 0..3 {
        stack
            .send(&stream, &token, &format!("missed {index}"))
            .await;
    }
    let mut resumed = stack.events(&stream, &token, Some(&last_id)).await;
    stack.send(&stream, &token, "after reconnect").await;
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(
            resumed.next().await.data["content"]
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
        .client
        .get(format!(
            "{}/api/v1/live-stream/{stream}/chat/events?access_token={token}",
            stack.base
        ))
        .timeout(Duration::from_secs(120))
        .send()
        .await
        .expect("the edge answers");
    assert_eq!(response.status().as_u16(), 200);
    let mut events = SseReader {
        response,
        buffer: String::new(),
    };
    let sent: Value = stack
        .send(&stream, &token, "to delete")
        .await
        .json()
        .await
        .expect("JSON");
    let message_id = sent["_id"].as_str().expect("id");
    assert_eq!(events.next().await.kind, "message");
    let deleted = stack
        .client
        .delete(format!(
            "{}/api/v1/live-stream/{stream}/chat/messages/{message_id}",
            stack.base
        ))
        .bearer_auth(owner.build())
        .send()
        .await
        .expect("answers");
    assert_eq!(deleted.status().as_u16(), 204);
    let event = events.next().await;
    assert_eq!(event.kind, "messageDeleted");
    assert_eq!(event.data["messageId"], message_id);
    assert_eq!(event.data["deletedBy"], owner.user_id().as_str());
    stack.finish().await;
}
