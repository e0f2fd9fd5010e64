//! The suite's harness is test-support's ([`allmine_test_support::stack`]):
//! a fresh store, chat-service on it and the edge in front, with typed REST
//! and gRPC helpers. Re-exported here under the names the tests import,
//! with the scenario checks several files share.

use std::future::Future;
use std::time::Duration;

use reqwest::Response;
use serde_json::Value;

pub use allmine_test_support::edge::spawn_edge;
pub use allmine_test_support::grpc::Admin;
pub use allmine_test_support::rest::{expect_envelope, parse_api_time, retry_after_secs};
pub use allmine_test_support::service::spawn_service_on;
pub use allmine_test_support::stack::{
    TestApp as Stack, spawn_app as spawn_stack, spawn_app_with as spawn_stack_with,
};

/// Asserts a 201 and returns the message.
pub async fn expect_sent(response: Response) -> Value {
    expect_json(response, 201).await
}

/// Asserts `status` and returns the JSON body.
pub async fn expect_json(response: Response, status: u16) -> Value {
    let actual = response.status().as_u16();
    let body: Value = response.json().await.expect("a JSON body");
    assert_eq!(actual, status, "{body}");
    body
}

/// Polls `check` every 200 ms until it holds or `limit` has passed; returns
/// whether it held (a bound, not a speed assertion).
pub async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
