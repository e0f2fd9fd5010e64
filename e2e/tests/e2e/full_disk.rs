//! The embedded store's disk fills up, through the whole stack: sends answer
//! the 503 envelope, `/readyz` turns 503, and once space is freed `/readyz`
//! is 200 again and sends are 201 without a restart; every acknowledged
//! message is still stored, once.

use std::sync::Arc;
use std::time::Duration;

use allmine_test_support::tmpfs::Tmpfs;
use allmine_test_support::{TokenBuilder, random_object_id};
use chat_service::domain::StreamId;
use chat_service::storage::SharedStore;
use chat_service::storage::embedded::EmbeddedStore;
use serde_json::Value;

use crate::helpers::{eventually, expect_envelope, spawn_edge, spawn_service_on};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_gives_503_and_readyz_503_then_heals_without_a_restart() {
    let Some(tmpfs) = Tmpfs::mount("16m") else {
        return;
    };
    let store: SharedStore = Arc::new(
        EmbeddedStore::open(&tmpfs.path().join("data")).expect("store opens on the tmpfs"),
    );
    let service = spawn_service_on(store.clone(), |_| {}).await;
    let edge = spawn_edge(service.addr).await;
    let stream = random_object_id();
    service.admin().register(&stream, &random_object_id()).await;
    let mut acknowledged = Vec::new();
    let send = |n: usize| {
        // A new user per send keeps clear of the burst limit.
        let token = TokenBuilder::new().build();
        let content = format!("message {n} {}", "x".repeat(400));
        let (edge, stream) = (&edge, &stream);
        async move { edge.send(stream, &token, &content).await }
    };
    let readyz = || async { edge.get("/readyz").await.status().as_u16() };

    for n in 0..10 {
        let response = send(n).await;
        assert_eq!(response.status().as_u16(), 201);
        let body: Value = response.json().await.expect("JSON");
        acknowledged.push(body["_id"].as_str().expect("_id").to_owned());
    }
    assert!(eventually(HEALTH_WAIT, || async { readyz().await == 200 }).await);

    let filler = tmpfs.fill();
    let errors = expect_envelope(send(100).await, 503).await;
    assert_eq!(errors, ["Service unavailable"]);
    assert!(
        eventually(HEALTH_WAIT, || async { readyz().await == 503 }).await,
        "/readyz turns 503 while the disk is full"
    );
    expect_envelope(send(101).await, 503).await;

    std::fs::remove_file(filler).expect("free the space");
    assert!(
        eventually(HEALTH_WAIT, || async { readyz().await == 200 }).await,
        "/readyz turns 200 once space is freed"
    );
    for n in 200..210 {
        let response = send(n).await;
        assert_eq!(
            response.status().as_u16(),
            201,
            "sends succeed again, no restart"
        );
        let body: Value = response.json().await.expect("JSON");
        acknowledged.push(body["_id"].as_str().expect("_id").to_owned());
    }

    let stored = store
        .newest(&StreamId::parse(&stream).expect("id"), 1000)
        .await
        .expect("read");
    for id in &acknowledged {
        let copies = stored.iter().filter(|m| m.id.to_string() == *id).count();
        assert_eq!(copies, 1, "acknowledged message {id}");
    }
    service.stop().await;
}

/// How long health takes to follow the disk, at the most.
const HEALTH_WAIT: Duration = Duration::from_secs(30);
