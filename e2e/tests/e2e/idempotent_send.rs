//! Idempotent sends through the edge and chat-service, on both stores: a
//! retried REST send never stores a second copy.

use allmine_test_support::TokenBuilder;
use allmine_test_support::backends::Backend;
use allmine_test_support::rest::message_path;
use reqwest::{Method, Response};
use serde_json::{Value, json};

use crate::helpers::{Stack, expect_envelope, spawn_stack};

allmine_test_support::for_each_backend!(
    a_retried_send_returns_the_original_marked_as_replayed,
    concurrent_sends_with_one_key_store_one_message_and_all_get_it,
    the_same_key_with_other_content_is_409_and_a_bad_key_400,
    a_retry_is_answered_under_slow_mode,
);

async fn send_keyed(
    stack: &Stack,
    stream: &str,
    token: &str,
    content: &str,
    key: &str,
) -> Response {
    stack
        .edge
        .request(Method::POST, &message_path(stream), Some(token))
        .header("Idempotency-Key", key)
        .json(&json!({ "content": content }))
        .send()
        .await
        .expect("the edge answers")
}

/// 201, then whether it was marked as a replay, and the body.
async fn created(response: Response) -> (bool, Value) {
    assert_eq!(response.status().as_u16(), 201);
    let replayed = match response.headers().get("idempotent-replayed") {
        None => false,
        Some(value) => {
            assert_eq!(value, "true");
            true
        }
    };
    (replayed, response.json().await.expect("a JSON body"))
}

async fn a_retried_send_returns_the_original_marked_as_replayed(backend: Backend) {
    let stack = spawn_stack(backend).await;
    let (stream, _owner) = stack.open_stream().await;
    let token = TokenBuilder::new().build();

    let (replayed, first) =
        created(send_keyed(&stack, &stream, &token, "Merhaba!", "retry-1").await).await;
    assert!(!replayed);
    let (replayed, retry) =
        created(send_keyed(&stack, &stream, &token, "Merhaba!", "retry-1").await).await;
    assert!(replayed, "the retry carries Idempotent-Replayed: true");
    assert_eq!(retry, first, "the same body, byte for byte in meaning");

    let history: Value = stack
        .edge
        .history(&stream, "", Some(&token))
        .await
        .json()
        .await
        .expect("a JSON body");
    assert_eq!(history["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(history["items"][0]["_id"], first["_id"]);
    stack.finish().await;
}

async fn concurrent_sends_with_one_key_store_one_message_and_all_get_it(backend: Backend) {
    // Within the viewer burst allowance (20), so that no send is refused.
    const SENDS: usize = 16;
    let stack = spawn_stack(backend).await;
    let (stream, _owner) = stack.open_stream().await;
    let token = TokenBuilder::new().build();

    let responses = futures::future::join_all(
        (0..SENDS).map(|_| send_keyed(&stack, &stream, &token, "once, please", "race-key")),
    )
    .await;
    let mut replies = Vec::new();
    for response in responses {
        replies.push(created(response).await);
    }

    let stored = stack.stored(&stream).await;
    assert_eq!(stored.len(), 1, "exactly one stored message");
    let stored_id = stored[0].id.to_string();
    assert!(
        replies
            .iter()
            .all(|(_, body)| body["_id"] == stored_id.as_str()),
        "every reply names the stored message"
    );
    let fresh = replies.iter().filter(|(replayed, _)| !replayed).count();
    assert_eq!(fresh, 1, "exactly one reply is the fresh send");
    stack.finish().await;
}

async fn the_same_key_with_other_content_is_409_and_a_bad_key_400(backend: Backend) {
    let stack = spawn_stack(backend).await;
    let (stream, _owner) = stack.open_stream().await;
    let token = TokenBuilder::new().build();
    created(send_keyed(&stack, &stream, &token, "first", "conflict-key").await).await;

    let errors = expect_envelope(
        send_keyed(&stack, &stream, &token, "second", "conflict-key").await,
        409,
    )
    .await;
    assert!(errors[1].contains("idempotency key"), "{errors:?}");

    let too_long = "k".repeat(256);
    let errors = expect_envelope(
        send_keyed(&stack, &stream, &token, "x", &too_long).await,
        400,
    )
    .await;
    assert!(errors[1].starts_with("Idempotency-Key"), "{errors:?}");

    assert_eq!(stack.stored(&stream).await.len(), 1);
    stack.finish().await;
}

async fn a_retry_is_answered_under_slow_mode(backend: Backend) {
    let stack = spawn_stack(backend).await;
    let (stream, _owner) = stack.open_stream().await;
    stack.admin().slow_mode(&stream, 120).await;
    let token = TokenBuilder::new().build();

    let (_, first) = created(send_keyed(&stack, &stream, &token, "slow", "slow-key").await).await;
    let refused = send_keyed(&stack, &stream, &token, "another", "slow-other").await;
    assert_eq!(
        refused.status().as_u16(),
        429,
        "slow mode holds new messages"
    );
    let (replayed, retry) =
        created(send_keyed(&stack, &stream, &token, "slow", "slow-key").await).await;
    assert!(replayed);
    assert_eq!(retry, first);
    assert_eq!(stack.stored(&stream).await.len(), 1);
    stack.finish().await;
}
