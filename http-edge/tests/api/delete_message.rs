//! `DELETE .../chat/messages/{messageId}` (`DeleteMessage`): 204, what
//! reaches chat-service, its refusals, the edge's own rejections.

use reqwest::Method;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::{
    fake_chat::rpc,
    helpers::{STREAM_ID, TOKEN, TestApp, expect_error, message_item_path, spawn_app},
};

const MESSAGE_ID: &str = "64d15f9e2e6c8f4d5a123456";

async fn delete(app: &TestApp, message_id: &str, token: Option<&str>) -> reqwest::Response {
    app.edge
        .call(
            Method::DELETE,
            &message_item_path(STREAM_ID, message_id),
            None,
            token,
        )
        .await
}

#[tokio::test]
async fn a_deleted_message_is_204_with_an_empty_body() {
    let app = spawn_app().await;

    let response = delete(&app, MESSAGE_ID, Some(TOKEN)).await;

    assert_eq!(response.status().as_u16(), 204);
    assert!(response.headers().get("x-request-id").is_some());
    assert!(response.headers().get("content-type").is_none());
    assert_eq!(response.bytes().await.expect("a body").len(), 0);
}

#[tokio::test]
async fn the_ids_the_token_the_request_id_and_a_deadline_reach_chat_service() {
    let app = spawn_app().await;

    let response = app
        .edge
        .call_raw(
            Method::DELETE,
            &message_item_path(STREAM_ID, MESSAGE_ID),
            "",
            &[
                ("authorization", "Bearer header.payload.signature"),
                ("x-request-id", "delete-req-1"),
            ],
        )
        .await;

    assert_eq!(response.status().as_u16(), 204);
    assert_eq!(response.headers()["x-request-id"], "delete-req-1");
    let calls = app.chat.calls::<rpc::DeleteMessage>();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(call.request.stream_id, STREAM_ID);
    assert_eq!(call.request.message_id, MESSAGE_ID);
    assert_eq!(
        call.metadata_str("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(call.metadata_str("x-request-id"), Some("delete-req-1"));
    assert!(call.metadata_str("grpc-timeout").is_some(), "a deadline");
    assert_eq!(app.chat.call_count(), 1, "only DeleteMessage was called");
}

#[tokio::test]
async fn the_ids_are_passed_as_they_are_for_chat_service_to_check() {
    let app = spawn_app().await;

    let response = delete(&app, "not-an-id", Some(TOKEN)).await;

    assert_eq!(response.status().as_u16(), 204);
    let calls = app.chat.calls::<rpc::DeleteMessage>();
    assert_eq!(calls[0].request.message_id, "not-an-id");
}

#[tokio::test]
async fn a_bad_message_id_violation_names_message_id() {
    // The other refusals: grpc_errors.rs, for every route.
    let app = spawn_app().await;
    app.chat
        .fail::<rpc::DeleteMessage>(Status::with_error_details(
            Code::InvalidArgument,
            "invalid request",
            ErrorDetails::with_bad_request_violation(
                "message_id",
                "must be 24 hexadecimal characters",
            ),
        ));

    let response = delete(&app, MESSAGE_ID, Some(TOKEN)).await;

    let reply = expect_error(response, 400, "Validation failed").await;
    assert_eq!(
        reply.errors,
        [
            "Validation failed",
            "messageId: must be 24 hexadecimal characters"
        ]
    );
}
