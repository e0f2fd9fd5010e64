//! Seeing the stack run, end to end: the real http-edge in front of the real
//! chat-service, on ephemeral ports, with their `/metrics` listeners, JSON
//! logs and OTLP export to a receiver in this process.
//!
//! A test binary of its own: tracing's subscriber is global to a process,
//! and here it must be the JSON one that exports (set up once, before any
//! test starts a service); the other end-to-end tests install the default
//! one. In one process both services log through that one subscriber:
//! their lines are told apart by `target` (`http_edge::…`,
//! `chat_service::…`), their spans by name.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod receiver;
mod stack;

use std::time::Duration;

use allmine_observability::exposition::Exposition;
use allmine_test_support::TokenBuilder;
use serde_json::{Value, json};

use crate::stack::{Stack, observed, serial};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_covers_the_edge_and_chat_service_in_spans_and_logs() {
    let _serial = serial().await;
    let observed = observed();
    let stack = Stack::start().await;
    let stream_id = stack.register().await;
    let token = TokenBuilder::new().build();
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let response = stack
        .client
        .post(stack.edge_url(&format!("/api/v1/live-stream/{stream_id}/chat/messages")))
        .bearer_auth(&token)
        .header("traceparent", format!("00-{trace_id}-{caller_span}-01"))
        .json(&json!({ "content": "traced" }))
        .send()
        .await
        .expect("the edge answers");
    assert_eq!(response.status().as_u16(), 201);

    // The spans, as exported.
    let spans = observed.spans_of(trace_id).await;
    let edge = spans
        .iter()
        .find(|span| span.name == "http_request")
        .unwrap_or_else(|| panic!("the edge's span is exported: {spans:#?}"));
    assert_eq!(
        edge.parent_span_id, caller_span,
        "the edge continues the caller's trace"
    );
    let service = spans
        .iter()
        .find(|span| span.name == "allmine.chat.v1.ChatService/SendMessage")
        .unwrap_or_else(|| panic!("chat-service's span is exported: {spans:#?}"));
    assert_eq!(
        service.parent_span_id, edge.span_id,
        "the edge's span is the parent"
    );
    assert_eq!(edge.service_name, "e2e-observability");

    // The logs: JSON lines, the same trace id in both services' lines.
    let lines = observed.log_lines();
    assert!(!lines.is_empty());
    for line in &lines {
        for key in ["timestamp", "level", "target", "message"] {
            assert!(line.get(key).is_some(), "{key} missing in {line}");
        }
    }
    let traced_targets: Vec<&str> = lines
        .iter()
        .filter(|line| line["trace_id"] == trace_id)
        .filter_map(|line| line["target"].as_str())
        .collect();
    assert!(
        traced_targets
            .iter()
            .any(|target| target.starts_with("http_edge")),
        "{traced_targets:?}"
    );
    assert!(
        traced_targets
            .iter()
            .any(|target| target.starts_with("chat_service")),
        "{traced_targets:?}"
    );
    let request_ids: Vec<&Value> = lines
        .iter()
        .filter(|line| line["trace_id"] == trace_id)
        .map(|line| &line["request_id"])
        .collect();
    assert!(
        request_ids.iter().all(|id| id.is_string()),
        "{request_ids:?}"
    );
    // Tokens never appear.
    assert!(!observed.raw_logs().contains(&token));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scraping_both_services_shows_sends_refusals_and_subscriptions() {
    let _serial = serial().await;
    observed();
    let stack = Stack::start().await;
    let stream_id = stack.register().await;
    let token = TokenBuilder::new().build();
    let before = stack.scrape_both().await;

    // A live subscriber through the edge.
    let events_path = format!("/api/v1/live-stream/{stream_id}/chat/events");
    let mut events = stack
        .client
        .get(stack.edge_url(&events_path))
        .bearer_auth(&token)
        .send()
        .await
        .expect("the edge answers");
    assert_eq!(events.status().as_u16(), 200);
    let (chat, edge) = stack
        .scrape_until(|(chat, edge)| {
            chat.sum("chat_live_subscribers", &[]) == 1.0
                && edge.sum("edge_event_streams_open", &[]) == 1.0
        })
        .await;
    assert_eq!(chat.sum("chat_live_streams", &[]), 1.0);
    assert_eq!(edge.sum("edge_event_streams_open", &[]), 1.0);

    for content in ["one", "two", "three"] {
        assert_eq!(stack.send(&stream_id, &token, content).await, 201);
    }
    let mut received = String::new();
    while received.matches("event: message").count() < 3 {
        let chunk = tokio::time::timeout(Duration::from_secs(10), events.chunk())
            .await
            .expect("events arrive")
            .expect("the stream goes on")
            .expect("a chunk");
        received.push_str(&String::from_utf8_lossy(&chunk));
    }
    // Refused: an unregistered stream, an empty message.
    let unregistered = allmine_test_support::random_object_id();
    assert_eq!(stack.send(&unregistered, &token, "hi").await, 404);
    assert_eq!(stack.send(&stream_id, &token, "   ").await, 400);

    let (chat, edge) = stack.scrape_both().await;
    let (chat_before, edge_before) = &before;
    let grown = |after: &Exposition, before: &Exposition, name: &str, labels: &[(&str, &str)]| {
        after.sum(name, labels) - before.sum(name, labels)
    };
    assert_eq!(
        grown(&chat, chat_before, "chat_messages_accepted_total", &[]),
        3.0
    );
    for reason in ["not_registered", "invalid"] {
        let labels = [("reason", reason)];
        assert_eq!(
            grown(&chat, chat_before, "chat_messages_refused_total", &labels),
            1.0,
            "{reason}"
        );
    }
    let send_ok = [("grpc_method", "SendMessage"), ("grpc_code", "OK")];
    assert_eq!(
        grown(&chat, chat_before, "grpc_server_handled_total", &send_ok),
        3.0
    );
    assert!(grown(&chat, chat_before, "chat_live_events_delivered_total", &[]) >= 3.0);
    let route = [
        ("http_route", "/api/v1/live-stream/{streamId}/chat/messages"),
        ("http_request_method", "POST"),
    ];
    assert_eq!(
        grown(
            &edge,
            edge_before,
            "http_server_request_duration_seconds_count",
            &route
        ),
        5.0
    );
    let not_found = [("grpc_code", "NotFound")];
    assert_eq!(
        grown(
            &edge,
            edge_before,
            "edge_upstream_failures_total",
            &not_found
        ),
        1.0
    );
    assert_eq!(chat.sum("chat_store_up", &[]), 1.0);

    // The subscriber leaves: both gauges come back to zero.
    drop(events);
    let (chat, edge) = stack
        .scrape_until(|(chat, edge)| {
            chat.sum("chat_live_subscribers", &[]) == 0.0
                && edge.sum("edge_event_streams_open", &[]) == 0.0
        })
        .await;
    assert_eq!(chat.sum("chat_live_subscribers", &[]), 0.0);
    assert_eq!(edge.sum("edge_event_streams_open", &[]), 0.0);
}
