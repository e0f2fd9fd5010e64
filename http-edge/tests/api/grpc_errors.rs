//! Every row of the gRPC status → HTTP envelope table.

use std::time::{Duration, Instant};

use serde_json::json;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

use crate::{
    fake_chat::FakeChatServer,
    helpers::{
        AUTHORIZED, ErrorReply, STREAM_ID, TOKEN, expect_error, spawn_app, spawn_edge_with_timeout,
    },
    routes::routes,
};

/// What a client sees when chat-service answers `status`.
async fn reply_to(status: Status, http_status: u16, phrase: &str) -> ErrorReply {
    let app = spawn_app().await;
    app.chat.fail_with(status);
    let response = app
        .edge
        .post_message(STREAM_ID, &json!({"content": "hi"}), Some(TOKEN))
        .await;
    expect_error(response, http_status, phrase).await
}

/// Server errors say only their phrase: the gRPC message may hold internals.
async fn assert_no_internals(code: Code, http_status: u16, phrase: &str) {
    let secret = "tcp connect error to 10.1.2.3:5432, pool exhausted in shard-7";
    let reply = reply_to(Status::new(code, secret), http_status, phrase).await;
    assert_eq!(reply.errors, [phrase], "{code:?}");
    assert!(
        !reply.body.contains("10.1.2.3"),
        "{code:?} leaked: {}",
        reply.body
    );
}

#[tokio::test]
async fn invalid_argument_lists_each_field_violation_in_camel_case() {
    let status = Status::with_error_details(
        Code::InvalidArgument,
        "invalid SendMessageRequest",
        ErrorDetails::with_bad_request(vec![
            FieldViolation::new("stream_id", "must be 24 hexadecimal digits"),
            FieldViolation::new("content", "must be 1 to 500 characters"),
        ]),
    );

    let reply = reply_to(status, 400, "Validation failed").await;

    assert_eq!(
        reply.errors,
        [
            "Validation failed",
            "streamId: must be 24 hexadecimal digits",
            "content: must be 1 to 500 characters",
        ]
    );
}

#[tokio::test]
async fn invalid_argument_without_details_gives_its_message() {
    let reply = reply_to(
        Status::invalid_argument("content must not be blank"),
        400,
        "Validation failed",
    )
    .await;
    assert_eq!(
        reply.errors,
        ["Validation failed", "content must not be blank"]
    );
}

#[tokio::test]
async fn out_of_range_is_400() {
    let reply = reply_to(
        Status::out_of_range("page past the end"),
        400,
        "Validation failed",
    )
    .await;
    assert_eq!(reply.errors, ["Validation failed", "page past the end"]);
}

#[tokio::test]
async fn unauthenticated_is_401_with_a_bearer_challenge() {
    let reply = reply_to(
        Status::unauthenticated("token expired"),
        401,
        "Authentication required",
    )
    .await;
    assert_eq!(reply.errors, ["Authentication required", "token expired"]);
    assert_eq!(reply.headers["www-authenticate"], "Bearer");
}

#[tokio::test]
async fn permission_denied_is_403() {
    let reply = reply_to(
        Status::permission_denied("you are banned from this chat"),
        403,
        "Insufficient permissions",
    )
    .await;
    assert_eq!(
        reply.errors,
        ["Insufficient permissions", "you are banned from this chat"]
    );
}

#[tokio::test]
async fn not_found_is_404() {
    let reply = reply_to(
        Status::not_found("stream not found"),
        404,
        "Resource not found",
    )
    .await;
    assert_eq!(reply.errors, ["Resource not found", "stream not found"]);
}

#[tokio::test]
async fn already_exists_aborted_and_failed_precondition_are_409() {
    let phrase = "Resource already exists or cannot be changed in its current state";
    for code in [Code::AlreadyExists, Code::Aborted, Code::FailedPrecondition] {
        let reply = reply_to(Status::new(code, "the stream has ended"), 409, phrase).await;
        assert_eq!(reply.errors, [phrase, "the stream has ended"], "{code:?}");
    }
}

#[tokio::test]
async fn a_client_error_without_message_has_only_the_phrase() {
    let reply = reply_to(
        Status::permission_denied(""),
        403,
        "Insufficient permissions",
    )
    .await;
    assert_eq!(reply.errors, ["Insufficient permissions"]);
}

#[tokio::test]
async fn resource_exhausted_is_429_with_retry_after_rounded_up() {
    let status = Status::with_error_details(
        Code::ResourceExhausted,
        "slow down",
        ErrorDetails::with_retry_info(Some(Duration::from_millis(1200))),
    );

    let reply = reply_to(status, 429, "Too many requests").await;

    assert_eq!(reply.errors, ["Too many requests", "slow down"]);
    assert_eq!(reply.headers["retry-after"], "2");
}

#[tokio::test]
async fn resource_exhausted_without_retry_info_has_no_retry_after() {
    let reply = reply_to(
        Status::resource_exhausted("slow down"),
        429,
        "Too many requests",
    )
    .await;
    assert!(reply.headers.get("retry-after").is_none());
}

#[tokio::test]
async fn unimplemented_is_501_without_internals() {
    assert_no_internals(Code::Unimplemented, 501, "Not implemented").await;
}

#[tokio::test]
async fn unavailable_is_503_without_internals() {
    assert_no_internals(Code::Unavailable, 503, "Service unavailable").await;
}

#[tokio::test]
async fn cancelled_by_chat_service_is_503_without_internals() {
    // What a call gets when chat-service shuts down or its connection closes
    // under the call: retryable, so 503 like UNAVAILABLE, never 500.
    assert_no_internals(Code::Cancelled, 503, "Service unavailable").await;
}

#[tokio::test]
async fn deadline_exceeded_is_504_without_internals() {
    assert_no_internals(Code::DeadlineExceeded, 504, "Gateway timeout").await;
}

#[tokio::test]
async fn other_codes_are_500_without_internals() {
    for code in [Code::Internal, Code::Unknown, Code::DataLoss] {
        assert_no_internals(code, 500, "Internal server error").await;
    }
}

#[tokio::test]
async fn a_chat_service_slower_than_the_deadline_is_504() {
    let chat = FakeChatServer::start().await;
    chat.delay(Duration::from_secs(3));
    let edge = spawn_edge_with_timeout(chat.addr, Duration::from_millis(300)).await;

    let started = Instant::now();
    let response = edge
        .post_message(STREAM_ID, &json!({"content": "hi"}), Some(TOKEN))
        .await;

    let reply = expect_error(response, 504, "Gateway timeout").await;
    assert_eq!(reply.errors, ["Gateway timeout"]);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the edge gave up at its deadline, not when chat-service answered"
    );
}

/// Every route, not only sending: chat-service's refusals reach the client as
/// the envelope with the mapped status, the phrase and chat-service's reason,
/// and a server error as its phrase alone (its message may hold internals).
#[tokio::test]
async fn every_route_passes_chat_services_refusals_through_the_envelope() {
    let conflict = "Resource already exists or cannot be changed in its current state";
    for route in routes() {
        let app = spawn_app().await;
        for (status, http_status, errors) in [
            (
                Status::unauthenticated("token expired"),
                401,
                &["Authentication required", "token expired"][..],
            ),
            (
                Status::permission_denied("only the stream's owner and moderators may"),
                403,
                &[
                    "Insufficient permissions",
                    "only the stream's owner and moderators may",
                ],
            ),
            (
                Status::not_found("stream not found"),
                404,
                &["Resource not found", "stream not found"],
            ),
            (
                Status::failed_precondition("the owner cannot be banned"),
                409,
                &[conflict, "the owner cannot be banned"],
            ),
            (
                Status::unavailable("store at 10.0.0.7 unreachable"),
                503,
                &["Service unavailable"],
            ),
        ] {
            (route.fail)(&app.chat, status);

            let response = route.call(&app, "", &[AUTHORIZED]).await;

            let reply = expect_error(response, http_status, errors[0]).await;
            assert_eq!(reply.errors, errors, "{}", route.name());
            assert!(!reply.body.contains("10.0.0.7"), "{}", reply.body);
        }
    }
}
