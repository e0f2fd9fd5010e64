//! `GET .../chat/events`: a stream's live chat as Server-Sent Events, relayed
//! from `SubscribeMessages`: the events and their JSON, resuming, the token
//! (header or `access_token`), refusals before the stream, failures during
//! it, cancellation and shutdown.

use std::{
    io,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use allmine_chat_proto::v1::{
    ChatEvent, ChatStateChanged, Gap, MessageDeleted, UserBanned, chat_event,
};
use reqwest::{Method, Response};
use serde_json::{Value, json};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use allmine_test_support::sse::{SseEvent, SseReader};

use crate::{
    fake_chat::{
        CREATED_SECONDS, DOCUMENTED_CURSOR, FakeChatServer, MODERATOR_ID, Subscription, Then,
        documented_message, documented_message_json, message_event, rpc, timestamp,
    },
    helpers::{
        STREAM_ID, TOKEN, TestApp, events_path, expect_error, reserve_unused_port, spawn_app,
        spawn_edge, spawn_edge_with_timeout,
    },
};

/// A viewer who gets banned.
const VIEWER_ID: &str = "64d15f9e2e6c8f4d5a123333";
/// A token given in the query string, distinctive enough to search for.
const QUERY_TOKEN: &str = "query-token.never-logged.7f3a9c";

/// `GET` the event stream with these headers.
async fn subscribe(app: &TestApp, query: &str, headers: &[(&str, &str)]) -> Response {
    app.edge.events(STREAM_ID, query, headers).await
}

/// `GET` the event stream with `Authorization: Bearer TOKEN`.
async fn subscribe_authorized(app: &TestApp, query: &str, headers: &[(&str, &str)]) -> Response {
    let authorization = format!("Bearer {TOKEN}");
    let mut all = vec![("authorization", authorization.as_str())];
    all.extend_from_slice(headers);
    subscribe(app, query, &all).await
}

/// Asserts a 200 event stream and returns its reader.
fn expect_stream(response: Response) -> SseReader {
    assert_eq!(response.status().as_u16(), 200, "status");
    SseReader::new(response)
}

fn event(cursor: &str, event: chat_event::Event) -> ChatEvent {
    ChatEvent {
        cursor: cursor.to_owned(),
        event: Some(event),
    }
}

/// One event of each type, in the order chat-service would send them.
fn one_of_each() -> Vec<ChatEvent> {
    vec![
        message_event(documented_message()),
        event(
            "AAAB-deleted",
            chat_event::Event::MessageDeleted(MessageDeleted {
                message_id: documented_message().id,
                deleted_by: MODERATOR_ID.to_owned(),
            }),
        ),
        event(
            "AAAB-timeout",
            chat_event::Event::UserBanned(UserBanned {
                user_id: VIEWER_ID.to_owned(),
                expires_at: Some(timestamp(CREATED_SECONDS + 600, 250)),
            }),
        ),
        event(
            "AAAB-banned",
            chat_event::Event::UserBanned(UserBanned {
                user_id: VIEWER_ID.to_owned(),
                expires_at: None,
            }),
        ),
        event(
            "AAAB-closed",
            chat_event::Event::ChatStateChanged(ChatStateChanged {
                state: allmine_chat_proto::v1::ChatState::Closed.into(),
            }),
        ),
        event(
            "AAAB-gap",
            chat_event::Event::Gap(Gap {
                reason: "this subscriber fell behind".to_owned(),
            }),
        ),
    ]
}

fn summary(event: &SseEvent) -> (Option<&str>, Option<&str>, Value) {
    (event.id.as_deref(), event.event.as_deref(), event.json())
}

/// Waits (at most five seconds) until the fake serves `count` subscriptions.
async fn wait_for_open_subscriptions(chat: &FakeChatServer, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while chat.open_subscriptions() != count {
        assert!(
            Instant::now() < deadline,
            "{} subscriptions open, expected {count}",
            chat.open_subscriptions()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn each_event_type_is_relayed_in_order_with_its_cursor_type_and_json() {
    let app = spawn_app().await;
    app.chat
        .reply::<rpc::SubscribeMessages>(Subscription::ending(one_of_each()));

    let mut stream = expect_stream(subscribe_authorized(&app, "", &[]).await);
    let events = stream.events(6).await;
    stream.expect_end().await;

    let summaries: Vec<_> = events.iter().map(summary).collect();
    assert_eq!(
        summaries,
        [
            (
                Some(DOCUMENTED_CURSOR),
                Some("message"),
                documented_message_json()
            ),
            (
                Some("AAAB-deleted"),
                Some("messageDeleted"),
                json!({"messageId": "64d15f9e2e6c8f4d5a123456", "deletedBy": MODERATOR_ID})
            ),
            (
                Some("AAAB-timeout"),
                Some("userBanned"),
                json!({"userId": VIEWER_ID, "expiresAt": "2026-01-15T10:40:00.250Z"})
            ),
            (
                Some("AAAB-banned"),
                Some("userBanned"),
                json!({"userId": VIEWER_ID, "expiresAt": null})
            ),
            (
                Some("AAAB-closed"),
                Some("chatStateChanged"),
                json!({"state": "closed"})
            ),
            (
                Some("AAAB-gap"),
                Some("gap"),
                json!({"reason": "this subscriber fell behind"})
            ),
        ]
    );
    assert!(!stream.raw.contains("cursor"), "no cursor in the JSON");
}

#[tokio::test]
async fn every_chat_state_has_its_name() {
    let app = spawn_app().await;
    let states = [(1, "open"), (2, "closed"), (3, "ended")];
    app.chat
        .reply::<rpc::SubscribeMessages>(Subscription::ending(
            states
                .iter()
                .map(|(state, name)| {
                    event(
                        name,
                        chat_event::Event::ChatStateChanged(ChatStateChanged { state: *state }),
                    )
                })
                .collect(),
        ));

    let mut stream = expect_stream(subscribe_authorized(&app, "", &[]).await);

    for (event, (_, name)) in stream.events(3).await.iter().zip(states) {
        assert_eq!(event.json(), json!({"state": name}));
    }
    stream.expect_end().await;
}

#[tokio::test]
async fn the_response_is_an_uncached_unbuffered_event_stream_in_the_wire_format() {
    let app = spawn_app().await;
    app.chat
        .reply::<rpc::SubscribeMessages>(Subscription::ending(vec![event(
            "AAAB-gap",
            chat_event::Event::Gap(Gap {
                reason: "read history".to_owned(),
            }),
        )]));

    let response = subscribe_authorized(&app, "", &[("x-request-id", "sse-req-1")]).await;

    assert_eq!(response.status().as_u16(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "text/event-stream");
    assert_eq!(headers["cache-control"], "no-cache");
    assert_eq!(headers["x-accel-buffering"], "no");
    assert_eq!(headers["x-request-id"], "sse-req-1");
    assert!(headers.get("content-length").is_none(), "a streamed body");
    let body = response.text().await.expect("the body ends");
    assert_eq!(
        body,
        "id: AAAB-gap\nevent: gap\ndata: {\"reason\":\"read history\"}\n\n"
    );
}

#[tokio::test]
async fn the_stream_stays_open_after_the_scripted_events() {
    let app = spawn_app().await;

    // The fake's default: the documented message, then silence.
    let mut stream = expect_stream(subscribe_authorized(&app, "", &[]).await);

    let first = stream.events(1).await.remove(0);
    assert_eq!(first.event.as_deref(), Some("message"));
    assert_eq!(first.id.as_deref(), Some(DOCUMENTED_CURSOR));
    stream.expect_silence(Duration::from_millis(300)).await;
    assert_eq!(app.chat.open_subscriptions(), 1);
}

#[tokio::test]
async fn an_accepted_subscription_is_answered_200_before_any_event() {
    let app = spawn_app().await;
    app.chat
        .reply::<rpc::SubscribeMessages>(Subscription::open(Vec::new()));

    let response =
        tokio::time::timeout(Duration::from_secs(5), subscribe_authorized(&app, "", &[]))
            .await
            .expect("the headers come without waiting for an event");

    let mut stream = expect_stream(response);
    stream.expect_silence(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn the_client_leaving_cancels_the_subscription_on_chat_service() {
    let app = spawn_app().await;
    let mut stream = expect_stream(subscribe_authorized(&app, "", &[]).await);
    stream.events(1).await;
    wait_for_open_subscriptions(&app.chat, 1).await;

    drop(stream);

    wait_for_open_subscriptions(&app.chat, 0).await;
}

#[tokio::test]
async fn the_subscription_has_no_deadline_and_outlives_the_grpc_timeout() {
    let chat = FakeChatServer::start().await;
    let edge = spawn_edge_with_timeout(chat.addr, Duration::from_millis(300)).await;
    let app = TestApp { edge, chat };

    let mut stream = expect_stream(subscribe_authorized(&app, "", &[]).await);
    stream.events(1).await;
    stream.expect_silence(Duration::from_millis(900)).await;

    let calls = app.chat.calls::<rpc::SubscribeMessages>();
    assert_eq!(calls[0].metadata_str("grpc-timeout"), None, "no deadline");
    assert_eq!(app.chat.open_subscriptions(), 1);
}

#[tokio::test]
async fn a_chat_service_that_does_not_accept_in_time_is_504() {
    let chat = FakeChatServer::start().await;
    chat.delay(Duration::from_secs(3));
    let edge = spawn_edge_with_timeout(chat.addr, Duration::from_millis(300)).await;
    let app = TestApp { edge, chat };

    let started = Instant::now();
    let response = subscribe_authorized(&app, "", &[]).await;

    let reply = expect_error(response, 504, "Gateway timeout").await;
    assert_eq!(reply.errors, ["Gateway timeout"]);
    assert!(started.elapsed() < Duration::from_secs(2), "bounded wait");
}

#[tokio::test]
async fn the_stream_the_token_and_the_request_id_reach_chat_service_without_a_cursor() {
    let app = spawn_app().await;

    let response = subscribe_authorized(&app, "", &[("x-request-id", "sse-req-2")]).await;

    assert_eq!(response.status().as_u16(), 200);
    let calls = app.chat.calls::<rpc::SubscribeMessages>();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].request.stream_id, STREAM_ID);
    assert_eq!(calls[0].request.after, None, "from now on");
    assert_eq!(
        calls[0].metadata_str("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(calls[0].metadata_str("x-request-id"), Some("sse-req-2"));
    assert_eq!(
        app.chat.call_count(),
        1,
        "only SubscribeMessages was called"
    );
}

#[tokio::test]
async fn last_event_id_and_after_are_forwarded_as_after_and_the_header_wins() {
    let app = spawn_app().await;
    for (query, headers, expected) in [
        (
            "",
            vec![("last-event-id", "AAAB-header")],
            Some("AAAB-header"),
        ),
        ("after=AAAB-query", vec![], Some("AAAB-query")),
        (
            "after=AAAB-query",
            vec![("last-event-id", "AAAB-header")],
            Some("AAAB-header"),
        ),
        // Percent-decoded, otherwise passed as it is: chat-service checks it.
        ("after=a%2Bb%3D", vec![], Some("a+b=")),
        // An empty Last-Event-ID is no cursor (EventSource never sends one).
        (
            "after=AAAB-query",
            vec![("last-event-id", "")],
            Some("AAAB-query"),
        ),
        ("", vec![("last-event-id", "")], None),
    ] {
        let response = subscribe_authorized(&app, query, &headers).await;
        assert_eq!(response.status().as_u16(), 200, "{query} {headers:?}");
        drop(response);

        let calls = app.chat.calls::<rpc::SubscribeMessages>();
        let call = calls.last().expect("a call");
        assert_eq!(
            call.request.after.as_deref(),
            expected,
            "{query} {headers:?}"
        );
    }
}

#[tokio::test]
async fn an_access_token_in_the_query_is_forwarded_as_bearer_metadata() {
    let app = spawn_app().await;

    let response = subscribe(&app, &format!("access_token={QUERY_TOKEN}"), &[]).await;

    let mut stream = expect_stream(response);
    stream.events(1).await;
    let calls = app.chat.calls::<rpc::SubscribeMessages>();
    assert_eq!(
        calls[0].metadata_str("authorization"),
        Some(format!("Bearer {QUERY_TOKEN}").as_str())
    );
    assert_eq!(calls[0].request.after, None);
}

#[tokio::test]
async fn the_authorization_header_wins_over_the_access_token() {
    let app = spawn_app().await;

    let response =
        subscribe_authorized(&app, &format!("access_token={QUERY_TOKEN}&after=c"), &[]).await;

    assert_eq!(response.status().as_u16(), 200);
    let calls = app.chat.calls::<rpc::SubscribeMessages>();
    assert_eq!(
        calls[0].metadata_str("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(calls[0].request.after.as_deref(), Some("c"));
}

#[tokio::test]
async fn without_a_usable_token_it_is_401_before_any_stream_and_nothing_is_forwarded() {
    let app = spawn_app().await;
    // Without any credentials: rejections.rs, with every other route.
    for (query, headers, reason) in [
        (
            "after=c&limit=5",
            vec![("last-event-id", "x")],
            "Authorization header or access_token query parameter is missing",
        ),
        (
            "access_token=",
            vec![],
            "access_token must be a non-empty token of visible ASCII characters",
        ),
        (
            "access_token=two%20words",
            vec![],
            "access_token must be a non-empty token of visible ASCII characters",
        ),
        (
            &*format!("access_token={QUERY_TOKEN}"),
            vec![("authorization", "Basic dXNlcjpwYXNz")],
            "Authorization header must be 'Bearer <token>'",
        ),
    ] {
        let response = subscribe(&app, query, &headers).await;

        let reply = expect_error(response, 401, "Authentication required").await;
        assert_eq!(
            reply.errors,
            ["Authentication required", reason],
            "{query} {headers:?}"
        );
        assert_eq!(reply.headers["www-authenticate"], "Bearer");
    }
    app.assert_nothing_forwarded();
}

#[tokio::test]
async fn unknown_or_repeated_query_parameters_and_a_repeated_last_event_id_are_400() {
    let app = spawn_app().await;
    for (query, headers, reason) in [
        (
            "limit=5",
            vec![],
            "unknown query parameter: only `after` and `access_token` are allowed",
        ),
        (
            "after=a&after=b",
            vec![],
            "after: must be given at most once",
        ),
        (
            "access_token=a&access_token=b",
            vec![],
            "access_token: must be given at most once",
        ),
        (
            "",
            vec![("last-event-id", "a"), ("last-event-id", "b")],
            "Last-Event-ID header must be given at most once",
        ),
    ] {
        let response = subscribe_authorized(&app, query, &headers).await;

        let reply = expect_error(response, 400, "Validation failed").await;
        assert_eq!(
            reply.errors,
            ["Validation failed", reason],
            "{query} {headers:?}"
        );
    }
    app.assert_nothing_forwarded();
}

#[tokio::test]
async fn a_refusal_at_call_time_is_the_envelope_with_the_mapped_status_not_a_stream() {
    for (status, code, phrase, reasons) in [
        (
            Status::not_found("stream 64d15f9e2e6c8f4d5a123000 is not registered for chat"),
            404,
            "Resource not found",
            vec!["stream 64d15f9e2e6c8f4d5a123000 is not registered for chat"],
        ),
        (
            Status::permission_denied("not allowed"),
            403,
            "Insufficient permissions",
            vec!["not allowed"],
        ),
        (
            Status::unauthenticated("token expired"),
            401,
            "Authentication required",
            vec!["token expired"],
        ),
        (
            Status::with_error_details(
                Code::InvalidArgument,
                "invalid request",
                ErrorDetails::with_bad_request_violation("after", "not a cursor"),
            ),
            400,
            "Validation failed",
            vec!["after: not a cursor"],
        ),
        (
            Status::unavailable("store at 10.0.0.7 unreachable"),
            503,
            "Service unavailable",
            vec![],
        ),
    ] {
        let app = spawn_app().await;
        app.chat.fail::<rpc::SubscribeMessages>(status);

        let response = subscribe_authorized(&app, "after=c", &[]).await;

        let reply = expect_error(response, code, phrase).await;
        let mut expected = vec![phrase];
        expected.extend(reasons);
        assert_eq!(reply.errors, expected);
        assert!(!reply.body.contains("10.0.0.7"), "{}", reply.body);
        assert_eq!(app.chat.calls::<rpc::SubscribeMessages>().len(), 1);
    }
}

#[tokio::test]
async fn chat_service_down_is_a_503_envelope() {
    let edge = spawn_edge(reserve_unused_port()).await;

    let response = edge
        .client
        .get(edge.url(&events_path(STREAM_ID, "")))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("the edge answers");

    let reply = expect_error(response, 503, "Service unavailable").await;
    assert_eq!(reply.errors, ["Service unavailable"]);
}

#[tokio::test]
async fn a_failure_mid_stream_is_an_error_event_then_the_end_without_internals() {
    for (status, errors) in [
        (
            Status::unavailable("store at 10.0.0.7 unreachable"),
            json!(["Service unavailable"]),
        ),
        (
            Status::internal("panic at 10.0.0.7"),
            json!(["Internal server error"]),
        ),
        (
            Status::permission_denied("you were banned"),
            json!(["Insufficient permissions", "you were banned"]),
        ),
    ] {
        let app = spawn_app().await;
        app.chat.reply::<rpc::SubscribeMessages>(Subscription {
            events: vec![
                Ok(message_event(documented_message())),
                Err(status),
                Ok(message_event(documented_message())),
            ],
            then: Then::StayOpen,
        });

        let mut stream = expect_stream(subscribe_authorized(&app, "", &[]).await);
        let events = stream.events(2).await;
        stream.expect_end().await;

        assert_eq!(events[0].event.as_deref(), Some("message"));
        assert_eq!(events[1].event.as_deref(), Some("error"));
        assert_eq!(events[1].id, None, "the resume point stays the last event");
        assert_eq!(events[1].json(), json!({ "errors": errors }));
        assert!(!stream.raw.contains("10.0.0.7"), "{}", stream.raw);
    }
}

#[tokio::test]
async fn an_event_whose_cursor_cannot_be_an_sse_id_ends_the_stream_with_an_error() {
    for cursor in ["line\nbreak", ""] {
        let app = spawn_app().await;
        app.chat
            .reply::<rpc::SubscribeMessages>(Subscription::open(vec![
                message_event(documented_message()),
                event(cursor, chat_event::Event::Gap(Gap::default())),
            ]));

        let mut stream = expect_stream(subscribe_authorized(&app, "", &[]).await);
        let events = stream.events(2).await;
        stream.expect_end().await;

        assert_eq!(events[1].event.as_deref(), Some("error"), "{cursor:?}");
        assert_eq!(
            events[1].json(),
            json!({"errors": ["Internal server error"]})
        );
        wait_for_open_subscriptions(&app.chat, 0).await;
    }
}

#[tokio::test]
async fn an_event_of_an_unknown_type_is_skipped() {
    let app = spawn_app().await;
    app.chat
        .reply::<rpc::SubscribeMessages>(Subscription::ending(vec![
            message_event(documented_message()),
            ChatEvent {
                cursor: "AAAB-newer-type".to_owned(),
                event: None,
            },
            event(
                "AAAB-gap",
                chat_event::Event::Gap(Gap {
                    reason: "r".to_owned(),
                }),
            ),
        ]));

    let mut stream = expect_stream(subscribe_authorized(&app, "", &[]).await);
    let events = stream.events(2).await;
    stream.expect_end().await;

    let ids: Vec<_> = events.iter().map(|event| event.id.as_deref()).collect();
    assert_eq!(ids, [Some(DOCUMENTED_CURSOR), Some("AAAB-gap")]);
}

#[tokio::test]
async fn no_response_echoes_the_access_token() {
    let app = spawn_app().await;
    let token = format!("access_token={QUERY_TOKEN}");
    let mut bodies = Vec::new();

    // A stream: its headers and first event.
    let response = subscribe(&app, &token, &[]).await;
    let headers = format!("{:?}", response.headers());
    let mut stream = expect_stream(response);
    stream.events(1).await;
    bodies.push((headers, stream.raw.clone()));
    drop(stream);

    // The edge's own rejections and a refusal by chat-service.
    for (method, path) in [
        (
            Method::GET,
            events_path(STREAM_ID, &format!("{token}&limit=5")),
        ),
        (
            Method::GET,
            events_path(STREAM_ID, &format!("{token}&{token}")),
        ),
        (
            Method::GET,
            events_path(STREAM_ID, &format!("{QUERY_TOKEN}&{token}")),
        ),
        (Method::POST, events_path(STREAM_ID, &token)),
        (
            Method::GET,
            format!("/api/v1/live-stream/{STREAM_ID}/chat/eventz?{token}"),
        ),
    ] {
        let response = app.edge.call(method, &path, None, None).await;
        assert!(response.status().is_client_error(), "{path}");
        let headers = format!("{:?}", response.headers());
        bodies.push((headers, response.text().await.expect("a body")));
    }
    app.chat
        .fail::<rpc::SubscribeMessages>(Status::not_found("no such stream"));
    let response = subscribe(&app, &token, &[]).await;
    assert_eq!(response.status().as_u16(), 404);
    let headers = format!("{:?}", response.headers());
    bodies.push((headers, response.text().await.expect("a body")));

    for (headers, body) in bodies {
        assert!(!headers.contains(QUERY_TOKEN), "{headers}");
        assert!(!body.contains(QUERY_TOKEN), "{body}");
        assert!(!body.contains("7f3a9c"), "{body}");
    }
}

/// Every log line written while it is installed on this thread (the
/// `#[tokio::test]` runtime runs the edge, the fake and the client on it).
#[derive(Clone, Default)]
struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    fn text(&self) -> String {
        let bytes = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl io::Write for CapturedLogs {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_logs_name_the_matched_route_and_never_the_access_token() {
    // tracing caches, per call site, whether anyone is interested in it.
    // With a single dispatcher registered, that is decided by the default
    // dispatcher of whichever thread first reaches the call site, so another
    // test's thread (which has none) could switch a line off for this test
    // too. A second, silent dispatcher makes tracing ask every registered
    // dispatcher instead.
    let _second = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());
    let logs = CapturedLogs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .finish();
    let _installed = tracing::subscriber::set_default(subscriber);
    tracing::callsite::rebuild_interest_cache();

    let app = spawn_app().await;
    let token = format!("access_token={QUERY_TOKEN}");
    let mut stream = expect_stream(subscribe(&app, &token, &[]).await);
    stream.events(1).await;
    drop(stream);
    wait_for_open_subscriptions(&app.chat, 0).await;
    let rejected = subscribe(&app, &format!("{token}&{QUERY_TOKEN}=x"), &[]).await;
    assert_eq!(rejected.status().as_u16(), 400);
    let unknown = app
        .edge
        .get(&format!(
            "/api/v1/live-stream/{STREAM_ID}/chat/eventz?{token}"
        ))
        .await;
    assert_eq!(unknown.status().as_u16(), 404);
    // The relay logs when its response is dropped; give it a moment.
    tokio::time::sleep(Duration::from_millis(100)).await;

    let text = logs.text();
    assert!(
        text.contains("route=/api/v1/live-stream/{streamId}/chat/events"),
        "{text}"
    );
    assert!(text.contains("event stream closed"), "{text}");
    assert!(text.contains("request rejected"), "{text}");
    assert!(!text.contains(QUERY_TOKEN), "{text}");
    assert!(!text.contains("7f3a9c"), "{text}");
    assert!(!text.contains("access_token="), "{text}");
}

#[tokio::test]
async fn stopping_the_edge_ends_open_streams_and_the_edge_stops_promptly() {
    let chat = FakeChatServer::start().await;
    let edge = spawn_edge(chat.addr).await;
    let authorization = format!("Bearer {TOKEN}");
    let response = edge
        .events(STREAM_ID, "", &[("authorization", &authorization)])
        .await;
    let mut stream = expect_stream(response);
    stream.events(1).await;

    let server = edge.shut_down();

    stream.expect_end().await;
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("the edge stops promptly despite the open stream")
        .expect("the server task did not panic")
        .expect("the server stopped cleanly");
    wait_for_open_subscriptions(&chat, 0).await;
}
