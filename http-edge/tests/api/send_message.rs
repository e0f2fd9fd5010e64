//! The success path: what reaches chat-service and what the client sees.

use allmine_chat_proto::v1::{ChatMessage, Sender};
use serde_json::{Value, json};
use tonic::Status;
use tonic_types::{ErrorDetails, StatusExt};

use crate::{
    fake_chat::{CREATED_SECONDS, documented_message, documented_message_json, timestamp},
    helpers::{STREAM_ID, TOKEN, assert_rfc3339_millis_utc, expect_error, spawn_app},
};

#[tokio::test]
async fn a_sent_message_is_201_with_exactly_the_documented_body() {
    let app = spawn_app().await;
    app.chat.reply_with(documented_message());

    let response = app
        .edge
        .post_message(
            STREAM_ID,
            &json!({"content": "Herkese selam!"}),
            Some(TOKEN),
        )
        .await;

    assert_eq!(response.status().as_u16(), 201);
    let content_type = response.headers()["content-type"].to_str().expect("ascii");
    assert!(content_type.starts_with("application/json"));
    let body: Value = response.json().await.expect("a JSON body");
    // Whole-value equality: no key missing, none extra, every type right.
    assert_eq!(body, documented_message_json());
}

#[tokio::test]
async fn unknown_sender_fields_and_a_missing_photo_are_null() {
    let app = spawn_app().await;
    app.chat.reply_with(ChatMessage {
        sender: Some(Sender {
            id: "64d15f9e2e6c8f4d5a123999".to_owned(),
            username: Some("anon".to_owned()),
            ..Sender::default()
        }),
        // Milliseconds survive; finer digits are cut, not rounded into a wider format.
        created_at: Some(prost_types::Timestamp {
            seconds: CREATED_SECONDS,
            nanos: 7_999_999,
        }),
        updated_at: Some(timestamp(CREATED_SECONDS, 250)),
        ..documented_message()
    });

    let response = app
        .edge
        .post_message(
            STREAM_ID,
            &json!({"content": "Herkese selam!"}),
            Some(TOKEN),
        )
        .await;

    assert_eq!(response.status().as_u16(), 201);
    let body: Value = response.json().await.expect("a JSON body");
    assert_eq!(
        body["sender"],
        json!({
            "_id": "64d15f9e2e6c8f4d5a123999",
            "username": "anon",
            "name": null,
            "surname": null,
            "profilePhoto": null,
            "availabilityStatus": null
        })
    );
    assert_eq!(body["createdAt"], "2026-01-15T10:30:00.007Z");
    assert_eq!(body["updatedAt"], "2026-01-15T10:30:00.250Z");
    assert_rfc3339_millis_utc(body["createdAt"].as_str().expect("a string"));
}

#[tokio::test]
async fn the_path_stream_id_the_content_and_the_token_reach_chat_service() {
    let app = spawn_app().await;

    let response = app
        .edge
        .post_message(STREAM_ID, &json!({"content": "  Merhaba\n"}), Some(TOKEN))
        .await;

    assert_eq!(response.status().as_u16(), 201);
    let received = app.chat.received();
    assert_eq!(received.len(), 1);
    let call = &received[0];
    assert_eq!(call.request.stream_id, STREAM_ID);
    // The edge does not trim or judge content: chat-service owns that rule.
    assert_eq!(call.request.content, "  Merhaba\n");
    assert_eq!(
        call.metadata_str("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert!(
        call.metadata_str("grpc-timeout").is_some(),
        "every call has a deadline"
    );
}

#[tokio::test]
async fn a_lowercase_bearer_scheme_is_forwarded_in_canonical_form() {
    let app = spawn_app().await;

    let response = app
        .edge
        .post_raw(
            &crate::helpers::message_path(STREAM_ID),
            r#"{"content":"hi"}"#,
            &[
                ("content-type", "application/json"),
                ("authorization", "bearer abc.def.ghi"),
            ],
        )
        .await;

    assert_eq!(response.status().as_u16(), 201);
    assert_eq!(
        app.chat.received()[0].metadata_str("authorization"),
        Some("Bearer abc.def.ghi")
    );
}

#[tokio::test]
async fn a_bad_stream_id_is_passed_as_is_and_its_violation_names_stream_id() {
    let app = spawn_app().await;
    app.chat.fail_with(Status::with_error_details(
        tonic::Code::InvalidArgument,
        "invalid SendMessageRequest",
        ErrorDetails::with_bad_request_violation("stream_id", "must be 24 hexadecimal digits"),
    ));

    let response = app
        .edge
        .post_message("not-an-id", &json!({"content": "hi"}), Some(TOKEN))
        .await;

    let reply = expect_error(response, 400, "Validation failed").await;
    assert_eq!(
        reply.errors,
        [
            "Validation failed",
            "streamId: must be 24 hexadecimal digits"
        ]
    );
    assert_eq!(app.chat.received()[0].request.stream_id, "not-an-id");
}
