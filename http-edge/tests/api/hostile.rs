//! Hostile clients against the real edge (one client cannot hurt another).
//! Each test is an attack that used to work: it asserts what the attacker
//! gets now, and that nobody else is touched. Timeouts are shortened by
//! configuration; every wait is a hang detector, never a timing.

use std::time::Duration;

use allmine_chat_proto::v1::ChatMessage;
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::{
    fake_chat::{Subscription, documented_message, message_event},
    helpers::{STREAM_ID, TOKEN, TestApp, events_path, expect_error, message_path, spawn_app_with},
    raw::{self, HANG},
};

fn send_request(body: &str, extra_headers: &str) -> Vec<u8> {
    format!(
        "POST {} HTTP/1.1\r\nhost: edge\r\ncontent-type: application/json\r\nauthorization: Bearer {TOKEN}\r\ncontent-length: {}\r\n{extra_headers}\r\n{body}",
        message_path(STREAM_ID),
        body.len()
    )
    .into_bytes()
}

#[tokio::test]
async fn an_oversized_authorization_header_is_431_and_never_reaches_chat_service() {
    let app = spawn_app_with(|_| {}).await;
    let token = format!(
        "{}.{}.{}",
        "h".repeat(6000),
        "p".repeat(6000),
        "s".repeat(4000)
    );

    let response = app
        .edge
        .post_message(STREAM_ID, &json!({"content": "hi"}), Some(&token))
        .await;

    let reply = expect_error(response, 431, "Request header fields too large").await;
    assert!(
        reply.errors[1].contains("authorization"),
        "{:?}",
        reply.errors
    );
    assert_eq!(app.chat.call_count(), 0, "nothing was forwarded");
}

#[tokio::test]
async fn a_head_over_the_hard_limit_gets_the_431_envelope_not_a_bare_status() {
    let app = spawn_app_with(|_| {}).await;
    // 1 MB of header: far over what hyper reads, so hyper refuses it itself.
    let request = send_request("{}", &format!("x-filler: {}\r\n", "f".repeat(1024 * 1024)));

    let answer = raw::exchange(&app.edge.address, request).await;

    let json = raw::expect_raw_envelope(&answer, 431);
    assert_eq!(json["errors"][0], "Request header fields too large");
    assert_eq!(app.chat.call_count(), 0);
}

#[tokio::test]
async fn a_long_query_is_414_and_a_huge_one_431_both_in_the_envelope() {
    let app = spawn_app_with(|_| {}).await;
    let long = format!(
        "{}?after={}",
        message_path(STREAM_ID),
        "a".repeat(10 * 1024)
    );
    let response = app
        .edge
        .call(reqwest::Method::GET, &long, None, Some(TOKEN))
        .await;
    expect_error(response, 414, "URI too long").await;

    let huge = format!(
        "GET {}?after={} HTTP/1.1\r\nhost: edge\r\n\r\n",
        message_path(STREAM_ID),
        "a".repeat(200 * 1024)
    );
    let answer = raw::exchange(&app.edge.address, huge.into_bytes()).await;
    raw::expect_raw_envelope(&answer, 431);
    assert_eq!(app.chat.call_count(), 0);
}

#[tokio::test]
async fn a_malformed_content_length_gets_the_400_envelope() {
    let app = spawn_app_with(|_| {}).await;
    let request = format!(
        "POST {} HTTP/1.1\r\nhost: edge\r\ncontent-type: application/json\r\ncontent-length: twelve\r\n\r\n{{}}",
        message_path(STREAM_ID)
    );

    let answer = raw::exchange(&app.edge.address, request.into_bytes()).await;

    let json = raw::expect_raw_envelope(&answer, 400);
    assert_eq!(json["errors"][0], "Validation failed");
}

#[tokio::test]
async fn a_body_shorter_than_its_content_length_is_408_not_a_hang() {
    let app = spawn_app_with(|config| config.limits.body_read_timeout_secs = 1).await;
    let mut stream = raw::connect(&app.edge.address).await;
    let request = format!(
        "POST {} HTTP/1.1\r\nhost: edge\r\ncontent-type: application/json\r\nauthorization: Bearer {TOKEN}\r\ncontent-length: 100\r\n\r\n{{\"content\":",
        message_path(STREAM_ID)
    );
    stream.write_all(request.as_bytes()).await.expect("sent");

    let answer = raw::read_until_closed(&mut stream)
        .await
        .expect("the edge answers and closes instead of waiting forever");

    let json = raw::expect_raw_envelope(&answer, 408);
    assert_eq!(json["errors"][0], "Request timeout");
    assert_eq!(app.chat.call_count(), 0);
}

#[tokio::test]
async fn slow_headers_are_cut_at_the_header_read_timeout() {
    let app = spawn_app_with(|config| config.limits.header_read_timeout_secs = 1).await;
    let mut stream = raw::connect(&app.edge.address).await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: edge\r\n")
        .await
        .expect("sent");

    let answer = raw::read_until_closed(&mut stream).await;

    assert!(answer.is_some(), "the edge closed the slow connection");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let app = spawn_app_with(|config| config.limits.idle_timeout_secs = 2).await;
    let mut stream = raw::connect(&app.edge.address).await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: edge\r\n\r\n")
        .await
        .expect("sent");

    let answer = raw::read_until_closed(&mut stream)
        .await
        .expect("the idle connection is closed");

    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn connections_over_the_cap_get_503_and_open_ones_keep_working() {
    let app = spawn_app_with(|config| config.limits.max_connections = 2).await;
    let mut first = raw::connect(&app.edge.address).await;
    let _second = raw::connect(&app.edge.address).await;
    // Both are accepted before the third arrives.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let refused = raw::exchange(
        &app.edge.address,
        b"GET /healthz HTTP/1.1\r\nhost: edge\r\n\r\n".to_vec(),
    )
    .await;

    let json = raw::expect_raw_envelope(&refused, 503);
    assert!(
        refused.to_ascii_lowercase().contains("retry-after: 1"),
        "{refused}"
    );
    assert!(
        json["errors"][1]
            .as_str()
            .unwrap_or_default()
            .contains("connections"),
        "{json}"
    );
    first
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: edge\r\nconnection: close\r\n\r\n")
        .await
        .expect("sent");
    let answer = raw::read_until_closed(&mut first).await.expect("an answer");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// `GET` the event stream of [`STREAM_ID`] with a valid token.
async fn open_events(app: &TestApp) -> reqwest::Response {
    app.edge
        .call(
            reqwest::Method::GET,
            &events_path(STREAM_ID, ""),
            None,
            Some(TOKEN),
        )
        .await
}

#[tokio::test]
async fn event_streams_over_the_cap_get_503_with_retry_after() {
    let app = spawn_app_with(|config| config.limits.max_event_streams = 1).await;
    app.chat
        .reply::<crate::fake_chat::rpc::SubscribeMessages>(Subscription::open(vec![]));
    let first = open_events(&app).await;
    assert_eq!(first.status().as_u16(), 200);

    let second = open_events(&app).await;

    let reply = expect_error(second, 503, "Service unavailable").await;
    assert!(reply.headers.get("retry-after").is_some());
    assert!(
        reply.errors[1].contains("event streams"),
        "{:?}",
        reply.errors
    );

    drop(first);
    let mut reopened = None;
    for _ in 0..50 {
        let again = open_events(&app).await;
        if again.status().as_u16() == 200 {
            reopened = Some(again);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(reopened.is_some(), "a closed stream frees its slot");
}

fn big_message(index: usize) -> ChatMessage {
    ChatMessage {
        id: format!("{index:024x}"),
        cursor: format!("cursor-{index:06}"),
        content: "é".repeat(1000),
        ..documented_message()
    }
}

/// Three clients that stop reading their event stream while chat-service
/// sends them ~6 MB each: before, their unread events filled the HTTP/2
/// window of the edge's connection to chat-service, and every other request
/// hung. Now other requests answer, and each stalled client finds, once it
/// reads again, what was queued for it and then a `gap` with its resume
/// cursor.
#[tokio::test]
async fn clients_that_stop_reading_their_event_streams_hold_up_nobody() {
    let app = spawn_app_with(|config| config.limits.event_buffer = 8).await;
    let events: Vec<_> = (0..3000)
        .map(|index| message_event(big_message(index)))
        .collect();
    app.chat
        .reply::<crate::fake_chat::rpc::SubscribeMessages>(Subscription::open(events));
    let request = format!(
        "GET {} HTTP/1.1\r\nhost: edge\r\nauthorization: Bearer {TOKEN}\r\n\r\n",
        events_path(STREAM_ID, "")
    );
    let mut stalled = Vec::new();
    for _ in 0..3 {
        let mut stream = raw::connect_small_window(&app.edge.address).await;
        stream.write_all(request.as_bytes()).await.expect("sent");
        stalled.push(stream);
    }
    // Let the events flow (and, before the fix, the windows fill).
    tokio::time::sleep(Duration::from_secs(2)).await;

    for _ in 0..3 {
        let history = tokio::time::timeout(
            HANG,
            app.edge.call(
                reqwest::Method::GET,
                &message_path(STREAM_ID),
                None,
                Some(TOKEN),
            ),
        )
        .await
        .expect("history answers while others stall");
        assert_eq!(history.status().as_u16(), 200);
        let ready = tokio::time::timeout(HANG, app.edge.get("/readyz"))
            .await
            .expect("readiness answers while others stall");
        assert_eq!(ready.status().as_u16(), 200);
    }

    for mut stream in stalled {
        let seen = raw::read_until_closed(&mut stream)
            .await
            .expect("a client that fell behind is ended");
        let last_event = seen
            .rsplit("\n\n")
            .find(|block| block.contains("event: "))
            .expect("at least one event");
        assert!(last_event.contains("event: gap"), "{last_event}");
        assert!(last_event.contains("id: cursor-"), "{last_event}");
        assert!(
            seen.contains("event: message"),
            "what was queued came first"
        );
    }
}

#[tokio::test]
async fn calls_over_the_in_flight_limit_are_shed_with_503_and_retry_after() {
    let app = spawn_app_with(|config| {
        config.limits.max_in_flight = 1;
        config.limits.queue_timeout_ms = 0;
    })
    .await;
    app.chat.delay(Duration::from_millis(500));

    let body = json!({"content": "hi"});
    let sends = (0..6).map(|_| app.edge.post_message(STREAM_ID, &body, Some(TOKEN)));
    let responses = futures::future::join_all(sends).await;

    let mut created = 0;
    let mut shed = 0;
    for response in responses {
        match response.status().as_u16() {
            201 => created += 1,
            503 => {
                let reply = expect_error(response, 503, "Service unavailable").await;
                assert_eq!(
                    reply
                        .headers
                        .get("retry-after")
                        .and_then(|value| value.to_str().ok()),
                    Some("1")
                );
                shed += 1;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(created >= 1, "the call in its slot went through");
    assert!(shed >= 1, "the others were shed at once");
    assert_eq!(
        app.chat.call_count(),
        created,
        "shed calls never reached chat-service"
    );
}

#[tokio::test]
async fn past_the_queue_bound_a_call_is_shed_at_once_with_its_request_id() {
    // One slot, no queue, and a queue timeout far longer than the slow call:
    // without the bound, the second call would wait for the slot and succeed.
    let app = spawn_app_with(|config| {
        config.limits.max_in_flight = 1;
        config.limits.max_queued = 0;
        config.limits.queue_timeout_ms = 60_000;
    })
    .await;
    app.chat.delay(Duration::from_secs(2));
    let body = json!({"content": "hi"});
    let slow = app.edge.post_message(STREAM_ID, &body, Some(TOKEN));
    let shed = async {
        tokio::time::timeout(HANG, async {
            while app.chat.call_count() == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("the first call reaches chat-service");
        app.edge
            .request(reqwest::Method::POST, &message_path(STREAM_ID), Some(TOKEN))
            .header("x-request-id", "shed-me-1")
            .json(&body)
            .send()
            .await
            .expect("an answer")
    };
    let (slow, shed) = tokio::join!(slow, shed);
    assert_eq!(
        slow.status().as_u16(),
        201,
        "the call in its slot went through"
    );
    assert_eq!(
        shed.headers()
            .get("x-request-id")
            .and_then(|value| value.to_str().ok()),
        Some("shed-me-1"),
        "an early refusal still echoes the request id"
    );
    assert_eq!(
        shed.headers()
            .get("allmine-error-reason")
            .and_then(|value| value.to_str().ok()),
        Some("OVERLOADED")
    );
    let reply = expect_error(shed, 503, "Service unavailable").await;
    assert_eq!(
        reply
            .headers
            .get("retry-after")
            .and_then(|value| value.to_str().ok()),
        Some("1")
    );
    assert_eq!(
        app.chat.call_count(),
        1,
        "the shed call never reached chat-service"
    );
}

#[tokio::test]
async fn chat_service_shedding_load_becomes_503_with_its_retry_after() {
    let app = spawn_app_with(|_| {}).await;
    let mut details = ErrorDetails::new();
    details.set_retry_info(Some(Duration::from_secs(2)));
    app.chat.fail_with(Status::with_error_details(
        Code::Unavailable,
        "chat-service is overloaded; retry after 2 s",
        details,
    ));

    let response = app
        .edge
        .post_message(STREAM_ID, &json!({"content": "hi"}), Some(TOKEN))
        .await;

    let reply = expect_error(response, 503, "Service unavailable").await;
    assert_eq!(
        reply
            .headers
            .get("retry-after")
            .and_then(|value| value.to_str().ok()),
        Some("2")
    );
    assert_eq!(
        reply.errors[1],
        "chat-service is overloaded; retry after 2 s"
    );
}

#[tokio::test]
async fn a_token_that_is_not_a_jwt_is_401_and_never_reaches_chat_service() {
    let app = spawn_app_with(|_| {}).await;
    for token in ["opaque", "a.b", "a.b.c.d", "a..c", "a.b.c%"] {
        let response = app
            .edge
            .post_message(STREAM_ID, &json!({"content": "hi"}), Some(token))
            .await;
        let reply = expect_error(response, 401, "Authentication required").await;
        assert!(
            reply.errors[1].contains("JWT"),
            "{token}: {:?}",
            reply.errors
        );
    }
    assert_eq!(app.chat.call_count(), 0);
}
