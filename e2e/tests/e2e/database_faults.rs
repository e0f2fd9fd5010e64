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

use crate::helpers::{eventually, expect_envelope, spawn_edge, spawn_service_on};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_gives_503_and_sends_recover_without_a_restart() {
    let cassandra = Arc::new(PrivateCassandra::new());
    cassandra.run_async("start").await;

    let mut settings = scylla_settings("chat_faults", Duration::from_secs(60));
    settings.nodes = vec![cassandra.node()];
    settings.request_timeout = Duration::from_secs(2);
    let store = Arc::new(ScyllaStore::connect(&settings).await.expect("connects"));
    let service = spawn_service_on(store, |_| {}).await;
    let edge = spawn_edge(service.addr).await;
    let stream = random_object_id();
    service.admin().register(&stream, &random_object_id()).await;
    let token = TokenBuilder::new().build();
    let send = |content: &'static str| edge.send(&stream, &token, content);
    let readyz = || async { edge.get("/readyz").await.status().as_u16() };

    assert_eq!(send("before the outage").await.status().as_u16(), 201);

    cassandra.run_async("stop").await;
    // The HTTP client's own timeout bounds this call: a hang fails the test.
    let errors = expect_envelope(send("during the outage").await, 503).await;
    assert_eq!(errors, ["Service unavailable"]);
    assert!(
        eventually(OUTAGE_WAIT, || async { readyz().await == 503 }).await,
        "health turns NOT_SERVING while the database is down"
    );

    cassandra.run_async("resume").await;
    assert!(
        eventually(OUTAGE_WAIT, || async {
            send("after the outage").await.status().as_u16() == 201
        })
        .await,
        "sends succeed again once the database is back, with no restart"
    );
    assert!(
        eventually(OUTAGE_WAIT, || async { readyz().await == 200 }).await,
        "health turns SERVING again"
    );
    service.stop().await;
}

/// How long a node takes to go down or come back, at the most.
const OUTAGE_WAIT: Duration = Duration::from_secs(120);
