//! The documented call, end to end, on both stores.

use allmine_test_support::backends::Backend;
use allmine_test_support::{TokenBuilder, random_object_id};
use serde_json::{Value, json};

use crate::helpers::{expect_envelope, parse_api_time, spawn_stack};

allmine_test_support::for_each_backend!(
    the_documented_call_returns_201_with_the_documented_body,
    invalid_input_gets_the_400_envelope_and_stores_nothing,
    a_body_cannot_choose_the_stream_the_sender_or_the_id,
    a_bad_token_gets_401_and_stores_nothing,
);

/// 2026-01-15T10:30:00.000Z: RFC 3339 in UTC with milliseconds.
fn is_iso_millis(value: &Value) -> bool {
    value.as_str().and_then(parse_api_time).is_some()
}

async fn the_documented_call_returns_201_with_the_documented_body(backend: Backend) {
    let stack = spawn_stack(backend).await;
    let (stream, _owner) = stack.open_stream().await;
    let token = TokenBuilder::new().profile("johndoe", "John", "Doe");

    let response = stack
        .edge
        .post_message(
            &stream,
            &json!({"content": "Herkese selam! Yayın çok güzel."}),
            Some(&token.build()),
        )
        .await;
    assert_eq!(response.status().as_u16(), 201);
    let body: Value = response.json().await.expect("JSON");

    let keys: Vec<&str> = body
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    let mut sorted_keys = keys.clone();
    sorted_keys.sort_unstable();
    assert_eq!(
        sorted_keys,
        [
            "_id",
            "content",
            "createdAt",
            "sender",
            "streamId",
            "updatedAt"
        ]
    );
    assert_eq!(body["streamId"], json!(stream));
    assert_eq!(body["content"], json!("Herkese selam! Yayın çok güzel."));
    assert!(is_iso_millis(&body["createdAt"]), "{}", body["createdAt"]);
    assert_eq!(body["createdAt"], body["updatedAt"]);
    assert_eq!(
        body["sender"],
        json!({
            "_id": token.user_id(),
            "username": "johndoe",
            "name": "John",
            "surname": "Doe",
            "profilePhoto": null,
            "availabilityStatus": null,
        })
    );

    let stored = stack.stored(&stream).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(body["_id"], json!(stored[0].id.to_string()));
    assert_eq!(
        stored[0].content.as_str(),
        "Herkese selam! Yayın çok güzel."
    );
    stack.finish().await;
}

async fn invalid_input_gets_the_400_envelope_and_stores_nothing(backend: Backend) {
    let stack = spawn_stack(backend).await;
    let (stream, _owner) = stack.open_stream().await;
    let token = TokenBuilder::new().build();

    let errors = expect_envelope(
        stack
            .edge
            .post_message(&stream, &json!({"content": "   "}), Some(&token))
            .await,
        400,
    )
    .await;
    assert_eq!(errors[0], "Validation failed");
    assert!(errors[1].starts_with("content: "), "{errors:?}");

    let too_long = "ş".repeat(501);
    let errors = expect_envelope(
        stack
            .edge
            .post_message(&stream, &json!({"content": too_long}), Some(&token))
            .await,
        400,
    )
    .await;
    assert!(errors[1].contains("500"), "{errors:?}");

    let errors = expect_envelope(
        stack
            .edge
            .post_message("not-a-stream", &json!({"content": "hi"}), Some(&token))
            .await,
        400,
    )
    .await;
    assert!(errors[1].starts_with("streamId: "), "{errors:?}");

    let errors = expect_envelope(
        stack
            .edge
            .post_message(&stream, &json!({"content": 42}), Some(&token))
            .await,
        400,
    )
    .await;
    assert!(errors[1].contains("content"), "{errors:?}");

    assert!(stack.stored(&stream).await.is_empty());
    stack.finish().await;
}

async fn a_body_cannot_choose_the_stream_the_sender_or_the_id(backend: Backend) {
    let stack = spawn_stack(backend).await;
    let (stream, _owner) = stack.open_stream().await;
    let other_stream = random_object_id();
    let token = TokenBuilder::new().build();
    for body in [
        json!({"content": "hi", "streamId": other_stream}),
        json!({"content": "hi", "sender": {"_id": random_object_id(), "username": "admin"}}),
        json!({"content": "hi", "_id": random_object_id()}),
    ] {
        let errors = expect_envelope(
            stack.edge.post_message(&stream, &body, Some(&token)).await,
            400,
        )
        .await;
        assert!(
            errors.iter().any(|e| e.contains("unknown field")),
            "{errors:?}"
        );
    }
    assert!(stack.stored(&stream).await.is_empty());
    assert!(stack.stored(&other_stream).await.is_empty());
    stack.finish().await;
}

async fn a_bad_token_gets_401_and_stores_nothing(backend: Backend) {
    let stack = spawn_stack(backend).await;
    let (stream, _owner) = stack.open_stream().await;
    let expired = TokenBuilder::new().expires_in(-600).build();
    let response = stack
        .edge
        .post_message(&stream, &json!({"content": "hi"}), Some(&expired))
        .await;
    assert_eq!(
        response
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.starts_with("Bearer")),
        Some(true)
    );
    let errors = expect_envelope(response, 401).await;
    assert_eq!(errors[0], "Authentication required");
    assert!(errors[1].contains("expired"), "{errors:?}");
    assert!(stack.stored(&stream).await.is_empty());
    stack.finish().await;
}
