//! Reading the chat through REST on both stores: history pages with the
//! cursor, and deleting messages.

use allmine_test_support::TokenBuilder;
use allmine_test_support::backends::Backend;
use serde_json::Value;

use crate::helpers::{Stack, expect_envelope, spawn_stack_with};

allmine_test_support::for_each_backend!(
    history_pages_through_rest_both_ways,
    bad_history_parameters_get_the_400_envelope,
    deleting_through_rest_follows_the_rights_and_leaves_history,
);

async fn spawn(backend: Backend) -> Stack {
    spawn_stack_with(backend, |config| {
        config.burst_viewer_limit = 10_000;
    })
    .await
}

impl Stack {
    async fn history(&self, stream: &str, query: &str, token: &str) -> reqwest::Response {
        self.client
            .get(format!(
                "{}/api/v1/live-stream/{stream}/chat/messages?{query}",
                self.base
            ))
            .bearer_auth(token)
            .send()
            .await
            .expect("the edge answers")
    }

    async fn delete_message(
        &self,
        stream: &str,
        message_id: &str,
        token: &str,
    ) -> reqwest::Response {
        self.client
            .delete(format!(
                "{}/api/v1/live-stream/{stream}/chat/messages/{message_id}",
                self.base
            ))
            .bearer_auth(token)
            .send()
            .await
            .expect("the edge answers")
    }
}

async fn page(response: reqwest::Response) -> (Vec<String>, Option<String>) {
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.expect("JSON");
    let items = body["items"].as_array().expect("items");
    for item in items {
        let keys: Vec<&str> = item
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        assert_eq!(
            sorted,
            [
                "_id",
                "content",
                "createdAt",
                "cursor",
                "sender",
                "streamId",
                "updatedAt"
            ],
            "the documented message keys and the item's cursor"
        );
        assert!(
            item["cursor"]
                .as_str()
                .is_some_and(|cursor| !cursor.is_empty()),
            "every item carries its cursor"
        );
    }
    let contents = items
        .iter()
        .map(|item| item["content"].as_str().expect("content").to_owned())
        .collect();
    (contents, body["nextCursor"].as_str().map(str::to_owned))
}

async fn history_pages_through_rest_both_ways(backend: Backend) {
    let stack = spawn(backend).await;
    let (stream, _owner) = stack.open_stream().await;
    let token = TokenBuilder::new().build();
    for index in 0..5 {
        assert_eq!(
            stack
                .send(&stream, &token, &format!("m{index}"))
                .await
                .status()
                .as_u16(),
            201
        );
    }
    let (newest, cursor) = page(stack.history(&stream, "limit=2", &token).await).await;
    assert_eq!(newest, ["m4", "m3"]);
    let cursor = cursor.expect("more to read");
    let (older, cursor) = page(
        stack
            .history(&stream, &format!("limit=2&before={cursor}"), &token)
            .await,
    )
    .await;
    assert_eq!(older, ["m2", "m1"]);
    let cursor = cursor.expect("more to read");
    let (oldest, end) = page(
        stack
            .history(&stream, &format!("limit=2&before={cursor}"), &token)
            .await,
    )
    .await;
    assert_eq!(oldest, ["m0"]);
    assert_eq!(end, None);

    let (all, _) = page(stack.history(&stream, "", &token).await).await;
    assert_eq!(
        all,
        ["m4", "m3", "m2", "m1", "m0"],
        "default page size covers them"
    );
    let (first_two, _) = page(stack.history(&stream, "limit=5", &token).await).await;
    assert_eq!(first_two.len(), 5);
    stack.finish().await;
}

async fn bad_history_parameters_get_the_400_envelope(backend: Backend) {
    let stack = spawn(backend).await;
    let (stream, _owner) = stack.open_stream().await;
    let token = TokenBuilder::new().build();
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=abc", "limit"),
        ("before=nonsense", "before"),
        ("after=nonsense", "after"),
        ("sort=asc", "sort"),
    ] {
        let errors = expect_envelope(stack.history(&stream, query, &token).await, 400).await;
        assert_eq!(errors[0], "Validation failed");
        assert!(
            errors.iter().any(|error| error.contains(field)),
            "{query}: {errors:?}"
        );
    }
    let response = stack
        .client
        .get(format!(
            "{}/api/v1/live-stream/{stream}/chat/messages",
            stack.base
        ))
        .send()
        .await
        .expect("answers");
    expect_envelope(response, 401).await;
    stack.finish().await;
}

async fn deleting_through_rest_follows_the_rights_and_leaves_history(backend: Backend) {
    let stack = spawn(backend).await;
    let (stream, owner) = stack.open_stream().await;
    let sender = TokenBuilder::new();
    let stranger = TokenBuilder::new();
    let sent: Value = stack
        .send(&stream, &sender.build(), "oops")
        .await
        .json()
        .await
        .expect("JSON");
    let message_id = sent["_id"].as_str().expect("id").to_owned();

    let errors = expect_envelope(
        stack
            .delete_message(&stream, &message_id, &stranger.build())
            .await,
        403,
    )
    .await;
    assert_eq!(errors[0], "Insufficient permissions");
    let response = stack
        .delete_message(&stream, &message_id, &sender.build())
        .await;
    assert_eq!(response.status().as_u16(), 204);
    expect_envelope(
        stack
            .delete_message(&stream, &message_id, &owner.build())
            .await,
        404,
    )
    .await;
    let (left, _) = page(stack.history(&stream, "", &sender.build()).await).await;
    assert!(left.is_empty(), "a deleted message leaves history");
    stack.finish().await;
}
