//! `Idempotency-Key`: checked at the edge, carried as the gRPC field, and
//! chat-service's replay marker turned into `Idempotent-Replayed: true`.

use allmine_chat_proto::IDEMPOTENT_REPLAYED_METADATA;
use reqwest::header::{HeaderName, HeaderValue};
use serde_json::{Value, json};
use tonic::Status;
use tonic_types::{ErrorDetails, StatusExt};

use crate::{
    fake_chat::documented_message,
    helpers::{STREAM_ID, TOKEN, TestApp, expect_error, message_path, spawn_app},
};

const KEY_HEADER: &str = "idempotency-key";

/// `POST` a message with these `Idempotency-Key` header values (raw bytes,
/// each its own header line).
async fn post_with_keys(app: &TestApp, keys: &[&[u8]]) -> reqwest::Response {
    let mut request = app
        .edge
        .client
        .post(app.edge.url(&message_path(STREAM_ID)))
        .bearer_auth(TOKEN)
        .json(&json!({"content": "Herkese selam!"}));
    for key in keys {
        request = request.header(
            HeaderName::from_static(KEY_HEADER),
            HeaderValue::from_bytes(key).expect("a header value"),
        );
    }
    request.send().await.expect("the edge answers")
}

#[tokio::test]
async fn the_header_reaches_chat_service_as_the_idempotency_key_field() {
    let app = spawn_app().await;
    let key = "6f1c1c2e-8d4b-4f3a-9a51-0b3c2d1e4f5a";
    let response = post_with_keys(&app, &[key.as_bytes()]).await;
    assert_eq!(response.status().as_u16(), 201);
    let response = post_with_keys(&app, &[]).await;
    assert_eq!(response.status().as_u16(), 201);

    let received = app.chat.received();
    assert_eq!(received[0].request.idempotency_key.as_deref(), Some(key));
    assert_eq!(
        received[1].request.idempotency_key, None,
        "no header, no key"
    );
}

#[tokio::test]
async fn an_invalid_or_repeated_key_is_400_naming_the_header_and_never_reaches_chat_service() {
    let app = spawn_app().await;
    let too_long = "k".repeat(256);
    let cases: [(&[&[u8]], &str); 5] = [
        (&[b""], "must be 1 to 255 visible ASCII characters"),
        (&[b"has space"], "must be 1 to 255 visible ASCII characters"),
        (
            &[too_long.as_bytes()],
            "must be 1 to 255 visible ASCII characters",
        ),
        (
            &["ümlaut".as_bytes()],
            "must be 1 to 255 visible ASCII characters",
        ),
        (&[b"one", b"two"], "must be given at most once"),
    ];
    for (keys, reason) in cases {
        let response = post_with_keys(&app, keys).await;
        let reply = expect_error(response, 400, "Validation failed").await;
        assert_eq!(reply.errors.len(), 2, "{:?}", reply.errors);
        assert!(
            reply.errors[1].starts_with("Idempotency-Key header")
                && reply.errors[1].contains(reason),
            "{keys:?}: {:?}",
            reply.errors
        );
    }
    assert_eq!(app.chat.call_count(), 0);
    let longest = "k".repeat(255);
    let response = post_with_keys(&app, &[longest.as_bytes()]).await;
    assert_eq!(response.status().as_u16(), 201, "255 characters are fine");
}

#[tokio::test]
async fn a_replay_is_201_with_the_original_body_and_idempotent_replayed_true() {
    let app = spawn_app().await;
    app.chat.reply_with(documented_message());
    let fresh = post_with_keys(&app, &[b"key-1"]).await;
    assert_eq!(fresh.status().as_u16(), 201);
    assert!(
        fresh.headers().get("idempotent-replayed").is_none(),
        "a fresh send is not marked"
    );
    let fresh_body: Value = fresh.json().await.expect("a JSON body");

    app.chat
        .reply_metadata(IDEMPOTENT_REPLAYED_METADATA, "true");
    let replay = post_with_keys(&app, &[b"key-1"]).await;
    assert_eq!(replay.status().as_u16(), 201);
    assert_eq!(
        replay
            .headers()
            .get("idempotent-replayed")
            .map(|value| value.to_str().expect("ascii")),
        Some("true")
    );
    let replay_body: Value = replay.json().await.expect("a JSON body");
    assert_eq!(replay_body, fresh_body);
}

#[tokio::test]
async fn the_same_key_with_other_content_is_409() {
    let app = spawn_app().await;
    app.chat.fail_with(Status::already_exists(
        "this idempotency key was already used for a message with other content",
    ));
    let response = post_with_keys(&app, &[b"key-2"]).await;
    let reply = expect_error(
        response,
        409,
        "Resource already exists or cannot be changed in its current state",
    )
    .await;
    assert_eq!(
        reply.errors[1],
        "this idempotency key was already used for a message with other content"
    );
}

#[tokio::test]
async fn chat_services_violation_on_the_key_names_the_header() {
    let app = spawn_app().await;
    app.chat.fail_with(Status::with_error_details(
        tonic::Code::InvalidArgument,
        "invalid SendMessageRequest",
        ErrorDetails::with_bad_request_violation("idempotency_key", "must not be empty"),
    ));
    let response = post_with_keys(&app, &[b"key-3"]).await;
    let reply = expect_error(response, 400, "Validation failed").await;
    assert_eq!(reply.errors[1], "Idempotency-Key: must not be empty");
}
