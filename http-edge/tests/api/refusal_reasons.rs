//! Machine-readable refusals over REST: chat-service's `google.rpc.ErrorInfo`
//! reason answered as the `Allmine-Error-Reason` header (the envelope keeps
//! exactly its five keys), the edge's own refusals with reasons of their own,
//! and the send quota as `RateLimit-*` headers on 201 and 429.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use tonic::{Code, Status, metadata::MetadataMap};
use tonic_types::{ErrorDetails, StatusExt};

use crate::{
    fake_chat::documented_message,
    helpers::{
        STREAM_ID, TOKEN, expect_error, message_path, reserve_unused_port, spawn_app,
        spawn_app_with, spawn_edge,
    },
};

const DOMAIN: &str = "chat.allmine.tv";

fn reason_of(headers: &reqwest::header::HeaderMap) -> &str {
    headers
        .get("allmine-error-reason")
        .expect("an Allmine-Error-Reason header")
        .to_str()
        .expect("ASCII")
}

fn send_body() -> Value {
    json!({"content": "Herkese selam!"})
}

/// A refusal as chat-service sends it: its code, its message, an ErrorInfo
/// with `reason`, and optionally a RetryInfo and response metadata.
fn refusal(
    code: Code,
    message: &str,
    reason: &str,
    retry_after: Option<Duration>,
    metadata: &[(&'static str, &'static str)],
) -> Status {
    let mut details = ErrorDetails::with_error_info(reason, DOMAIN, []);
    if let Some(delay) = retry_after {
        details.set_retry_info(Some(delay));
    }
    let mut map = MetadataMap::new();
    for (key, value) in metadata {
        map.insert(*key, value.parse().expect("ASCII"));
    }
    Status::with_error_details_and_metadata(code, message, details, map)
}

#[tokio::test]
async fn every_chat_service_reason_is_the_header_and_the_envelope_is_unchanged() {
    let app = spawn_app().await;
    for (code, reason, status, phrase) in [
        (
            Code::NotFound,
            "STREAM_NOT_REGISTERED",
            404,
            "Resource not found",
        ),
        (
            Code::FailedPrecondition,
            "CHAT_CLOSED",
            409,
            "Resource already exists or cannot be changed in its current state",
        ),
        (
            Code::FailedPrecondition,
            "STREAM_ENDED",
            409,
            "Resource already exists or cannot be changed in its current state",
        ),
        (
            Code::PermissionDenied,
            "BANNED",
            403,
            "Insufficient permissions",
        ),
        (
            Code::ResourceExhausted,
            "SLOW_MODE",
            429,
            "Too many requests",
        ),
        (
            Code::ResourceExhausted,
            "BURST_LIMIT",
            429,
            "Too many requests",
        ),
        (
            Code::InvalidArgument,
            "VALIDATION",
            400,
            "Validation failed",
        ),
        (
            Code::Unauthenticated,
            "UNAUTHENTICATED",
            401,
            "Authentication required",
        ),
        (
            Code::PermissionDenied,
            "PERMISSION_DENIED",
            403,
            "Insufficient permissions",
        ),
        (Code::NotFound, "NOT_FOUND", 404, "Resource not found"),
    ] {
        app.chat
            .fail_with(refusal(code, "why, in words", reason, None, &[]));

        let response = app
            .edge
            .post_message(STREAM_ID, &send_body(), Some(TOKEN))
            .await;

        // `expect_error` checks the envelope has exactly its five keys.
        let reply = expect_error(response, status, phrase).await;
        assert_eq!(reason_of(&reply.headers), reason, "{code:?}");
        assert_eq!(reply.errors[1..], ["why, in words"], "{reason}");
        assert!(
            !reply.body.contains(reason),
            "the reason stays out of the body"
        );
    }
}

#[tokio::test]
async fn a_status_without_error_info_gets_the_edges_reason_for_its_code() {
    let app = spawn_app().await;
    for (status, code, reason) in [
        (Status::not_found("gone"), 404, "NOT_FOUND"),
        (Status::failed_precondition("closed"), 409, "CONFLICT"),
        (Status::resource_exhausted("slow"), 429, "TOO_MANY_REQUESTS"),
        (Status::internal("secret"), 500, "INTERNAL"),
        (Status::unavailable("down"), 503, "UNAVAILABLE"),
        (Status::deadline_exceeded("slow"), 504, "TIMEOUT"),
    ] {
        app.chat.fail_with(status);

        let response = app
            .edge
            .post_message(STREAM_ID, &send_body(), Some(TOKEN))
            .await;

        assert_eq!(response.status().as_u16(), code);
        assert_eq!(reason_of(response.headers()), reason);
    }
}

#[tokio::test]
async fn a_slow_mode_refusal_carries_retry_after_and_the_rate_limit_headers() {
    let app = spawn_app().await;
    app.chat.fail_with(refusal(
        Code::ResourceExhausted,
        "slow mode is on: one message every 30 s",
        "SLOW_MODE",
        Some(Duration::from_secs(12)),
        &[
            ("ratelimit-limit", "1"),
            ("ratelimit-remaining", "0"),
            ("ratelimit-reset", "12"),
        ],
    ));

    let response = app
        .edge
        .post_message(STREAM_ID, &send_body(), Some(TOKEN))
        .await;

    let reply = expect_error(response, 429, "Too many requests").await;
    assert_eq!(reason_of(&reply.headers), "SLOW_MODE");
    assert_eq!(reply.headers["retry-after"], "12");
    assert_eq!(reply.headers["ratelimit-limit"], "1");
    assert_eq!(reply.headers["ratelimit-remaining"], "0");
    assert_eq!(reply.headers["ratelimit-reset"], "12");
}

#[tokio::test]
async fn a_burst_refusal_is_told_apart_from_slow_mode_by_its_reason_alone() {
    let app = spawn_app().await;
    app.chat.fail_with(refusal(
        Code::ResourceExhausted,
        "too many messages: at most 20 per 30 s",
        "BURST_LIMIT",
        Some(Duration::from_millis(1500)),
        &[
            ("ratelimit-limit", "20"),
            ("ratelimit-remaining", "0"),
            ("ratelimit-reset", "2"),
        ],
    ));

    let response = app
        .edge
        .post_message(STREAM_ID, &send_body(), Some(TOKEN))
        .await;

    let reply = expect_error(response, 429, "Too many requests").await;
    assert_eq!(reason_of(&reply.headers), "BURST_LIMIT");
    assert_eq!(reply.headers["retry-after"], "2");
    assert_eq!(reply.headers["ratelimit-limit"], "20");
}

#[tokio::test]
async fn a_ban_names_its_reason_and_garbage_metadata_is_not_passed_on() {
    let app = spawn_app().await;
    let mut details = ErrorDetails::with_error_info(
        "BANNED",
        DOMAIN,
        [(
            "banned_until".to_owned(),
            "2026-11-30T00:00:00.000Z".to_owned(),
        )],
    );
    details.set_retry_info(None::<Duration>);
    let mut metadata = MetadataMap::new();
    metadata.insert("ratelimit-limit", "twenty".parse().expect("ASCII"));
    app.chat.fail_with(Status::with_error_details_and_metadata(
        Code::PermissionDenied,
        "you are banned from this chat until 2026-11-30T00:00:00.000Z",
        details,
        metadata,
    ));

    let response = app
        .edge
        .post_message(STREAM_ID, &send_body(), Some(TOKEN))
        .await;

    let reply = expect_error(response, 403, "Insufficient permissions").await;
    assert_eq!(reason_of(&reply.headers), "BANNED");
    assert!(reply.headers.get("ratelimit-limit").is_none());
}

#[tokio::test]
async fn a_successful_send_carries_the_rate_limit_headers_and_no_reason() {
    let app = spawn_app().await;
    app.chat.reply_with(documented_message());
    app.chat.reply_metadata("ratelimit-limit", "20");
    app.chat.reply_metadata("ratelimit-remaining", "19");
    app.chat.reply_metadata("ratelimit-reset", "2");

    let response = app
        .edge
        .post_message(STREAM_ID, &send_body(), Some(TOKEN))
        .await;

    assert_eq!(response.status().as_u16(), 201);
    let headers = response.headers().clone();
    assert_eq!(headers["ratelimit-limit"], "20");
    assert_eq!(headers["ratelimit-remaining"], "19");
    assert_eq!(headers["ratelimit-reset"], "2");
    assert!(headers.get("allmine-error-reason").is_none());
    let body: Value = response.json().await.expect("JSON");
    assert!(
        body.get("cursor").is_none(),
        "the 201 body is as documented"
    );
}

#[tokio::test]
async fn the_edges_own_refusals_have_reasons_of_their_own() {
    let app = spawn_app().await;
    let path = message_path(STREAM_ID);
    let authorization = format!("Bearer {TOKEN}");
    let cases: Vec<(reqwest::Response, u16, &str)> = vec![
        (
            app.edge.post_message(STREAM_ID, &send_body(), None).await,
            401,
            "UNAUTHENTICATED",
        ),
        (
            app.edge
                .post_raw(
                    &path,
                    "{not json",
                    &[
                        ("authorization", authorization.as_str()),
                        ("content-type", "application/json"),
                    ],
                )
                .await,
            400,
            "VALIDATION",
        ),
        (
            app.edge
                .post_raw(
                    &path,
                    "content",
                    &[
                        ("authorization", authorization.as_str()),
                        ("content-type", "text/plain"),
                    ],
                )
                .await,
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        (
            app.edge
                .post_raw(
                    &path,
                    vec![b' '; 64 * 1024],
                    &[
                        ("authorization", authorization.as_str()),
                        ("content-type", "application/json"),
                    ],
                )
                .await,
            413,
            "PAYLOAD_TOO_LARGE",
        ),
        (app.edge.get("/no/such/route").await, 404, "NOT_FOUND"),
        (
            app.edge.call(Method::PATCH, &path, None, Some(TOKEN)).await,
            405,
            "METHOD_NOT_ALLOWED",
        ),
    ];
    for (response, status, reason) in cases {
        assert_eq!(response.status().as_u16(), status, "{reason}");
        assert_eq!(reason_of(response.headers()), reason);
    }
    assert_eq!(app.chat.call_count(), 0, "chat-service was never called");
}

#[tokio::test]
async fn a_chat_service_that_does_not_answer_in_time_is_timeout_and_one_that_is_away_unavailable() {
    let app = spawn_app_with(|config| config.grpc_timeout_ms = 200).await;
    app.chat.delay(Duration::from_secs(2));
    let response = app
        .edge
        .post_message(STREAM_ID, &send_body(), Some(TOKEN))
        .await;
    assert_eq!(response.status().as_u16(), 504);
    assert_eq!(reason_of(response.headers()), "TIMEOUT");

    let edge = spawn_edge(reserve_unused_port()).await;
    let response = edge
        .post_message(STREAM_ID, &send_body(), Some(TOKEN))
        .await;
    assert_eq!(response.status().as_u16(), 503);
    assert_eq!(reason_of(response.headers()), "UNAVAILABLE");
}

#[tokio::test]
async fn a_request_shed_by_the_edge_is_overloaded() {
    let app = spawn_app_with(|config| {
        config.limits.max_in_flight = 1;
        config.limits.queue_timeout_ms = 0;
    })
    .await;
    app.chat.delay(Duration::from_secs(1));
    let body = send_body();
    let slow = app.edge.post_message(STREAM_ID, &body, Some(TOKEN));
    let shed = async {
        // Once chat-service has the first call, it holds the one slot.
        tokio::time::timeout(Duration::from_secs(10), async {
            while app.chat.call_count() == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("the first call reaches chat-service");
        app.edge
            .post_message(STREAM_ID, &send_body(), Some(TOKEN))
            .await
    };
    let (slow, shed) = tokio::join!(slow, shed);
    assert_eq!(slow.status().as_u16(), 201);
    assert_eq!(shed.status().as_u16(), 503);
    assert_eq!(reason_of(shed.headers()), "OVERLOADED");
    assert!(shed.headers().get("retry-after").is_some());
}
