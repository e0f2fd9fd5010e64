//! The documented call, end to end, on both stores.

use allmine_test_support::backends::Backend;
use allmine_test_support::{TokenBuilder, random_object_id};
use serde_json::{Value, json};

use crate::helpers::{expect_envelope, spawn_stack};

allmine_test_support::for_each_backend!(
    the_documented_call_returns_201_with_the_documented_body,
    invalid_input_gets_the_400_envelope_and_stores_nothing,
    a_body_cannot_choose_the_stream_the_sender_or_the_id,
    a_bad_token_gets_401_and_stores_nothing,
);

fn is_iso_millis(value: &Value) -> bool {
    // 2026-01-15T10:30:00.000Z
    value.as_str().is_some_and(|text| {
        text.len() == 24
            && text.ends_with('Z')
            && text.as_bytes()[10] == b'T'
            && text.as_bytes()[19] == b'.'
            && chrono_like(text)
    })
}

fn chrono_like(text: &str) -> bool {
    text.chars().enumerate().all(|(index, c)| match index {
        4 | 7 => c == '-',
        10 => c == 'T',
        13 | 16 => c == ':',
        19 => c == '.',
        23 => c == 'Z',
        _ => c.is_ascii_digit(),
    })
}

async fn the_documented_call_returns_201_with_the_documented_body(backend: Backend) {
    let stack = spawn_stack(backend).await;
    let (stream, _owner) = stack.open_stream().await;
    let token = TokenBuilder::new().profile("johndoe", "John", "Doe");

    let response = stack
        .post_message(
            &stream,
            &json!({"content": "Herkese selam! Yayın çok güzel."}),
            &token.build(),
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
            .post_message(&stream, &json!({"content": "   "}), &token)
            .await,
        400,
    )
    .await;
    assert_eq!(errors[0], "Validation failed");
    assert!(errors[1].starts_with("content: "), "{errors:?}");

    let too_long = "ş".repeat(501);
    let errors = expect_envelope(
        stack
            .post_message(&stream, &json!({"content": too_long}), &token)
            .await,
        400,
    )
    .await;
    assert!(errors[1].contains("500"), "{errors:?}");

    let errors = expect_envelope(
        stack
            .post_message("not-a-stream", &json!({"content": "hi"}), &token)
            .await,
        400,
    )
    .await;
    assert!(errors[1].starts_with("streamId: "), "{errors:?}");

    let errors = expect_envelope(
        stack
            .post_message(&stream, &json!({"content": 42}), &token)
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
        let errors = expect_envelope(stack.post_message(&stream, &body, &token).await, 400).await;
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
        .post_message(&stream, &json!({"content": "hi"}), &expired)
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
