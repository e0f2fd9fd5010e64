//! The database goes away and comes back: chat-service keeps running,
//! answers 503 (UNAVAILABLE) within the deadline instead of hanging, reports
//! NOT_SERVING, and recovers by itself once the database is back.
//!
//! The test runs a Cassandra node of its own
//! ([`allmine_test_support::cassandra`]), so stopping it disturbs no other
//! test.

use std::sync::Arc;
use std::time::Duration;

use allmine_test_support::backends::scylla_settings;
use allmine_test_support::cassandra::PrivateCassandra;
use allmine_test_support::{TokenBuilder, random_object_id};
use chat_service::storage::scylla::ScyllaStore;
use serde_json::json;

use crate::helpers::{
    Admin, expect_envelope, http_client, post_message, start_edge, start_service,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_gives_503_and_sends_recover_without_a_restart() {
    let cassandra = Arc::new(PrivateCassandra::new());
    cassandra.run_async("start").await;

    let mut settings = scylla_settings("chat_faults", Duration::from_secs(60));
    settings.nodes = vec![cassandra.node()];
    settings.request_timeout = Duration::from_secs(2);
    let store = Arc::new(ScyllaStore::connect(&settings).await.expect("connects"));
    let service = start_service(store, "127.0.0.1:0".parse().expect("addr")).await;
    let (base, _edge) = start_edge(service.addr).await;
    let client = http_client();
    let stream = random_object_id();
    Admin::connect(service.addr)
        .await
        .register(&stream, &random_object_id())
        .await;
    let token = TokenBuilder::new().build();
    let send = |content: &'static str| {
        let client = client.clone();
        let base = base.clone();
        let stream = stream.clone();
        let token = token.clone();
        async move {
            post_message(
                &client,
                &base,
                &stream,
                &json!({"content": content}),
                &token,
            )
            .await
        }
    };

    assert_eq!(send("before the outage").await.status().as_u16(), 201);

    cassandra.run_async("stop").await;
    // The HTTP client's own timeout bounds this call: a hang fails the test.
    let errors = expect_envelope(send("during the outage").await, 503).await;
    assert_eq!(errors, ["Service unavailable"]);
    assert!(
        eventually(|| async {
            let ready = client.get(format!("{base}/readyz")).send().await;
            ready.is_ok_and(|response| response.status().as_u16() == 503)
        })
        .await,
        "health turns NOT_SERVING while the database is down"
    );

    cassandra.run_async("resume").await;
    assert!(
        eventually(|| async { send("after the outage").await.status().as_u16() == 201 }).await,
        "sends succeed again once the database is back, with no restart"
    );
    assert!(
        eventually(|| async {
            let ready = client.get(format!("{base}/readyz")).send().await;
            ready.is_ok_and(|response| response.status().as_u16() == 200)
        })
        .await,
        "health turns SERVING again"
    );
    service.stop().await;
}

/// Polls `check` for up to a minute (bounded), returning whether it held.
async fn eventually<F, Fut>(mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..120 {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    false
}
