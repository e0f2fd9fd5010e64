//! chat-service down: the edge answers 503 and stays up; once chat-service is
//! back on the same address, sends succeed without restarting the edge.

use allmine_test_support::backends::{Backend, StoreFixture};
use allmine_test_support::{TokenBuilder, random_object_id, unused_addr};

use crate::helpers::{expect_envelope, spawn_edge, spawn_service_on};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_edge_answers_503_while_chat_service_is_down_and_recovers() {
    let addr = unused_addr();
    let edge = spawn_edge(addr).await;
    let stream = random_object_id();
    let token = TokenBuilder::new().build();
    let content = "are you there?";

    let errors = expect_envelope(edge.send(&stream, &token, content).await, 503).await;
    assert_eq!(errors[0], "Service unavailable");
    assert_eq!(edge.get("/readyz").await.status().as_u16(), 503);

    let fixture = StoreFixture::new(Backend::Embedded);
    let store = fixture.open().await;
    let service = spawn_service_on(store, |config| config.grpc_addr = addr).await;
    service.admin().register(&stream, &random_object_id()).await;
    let response = edge.send(&stream, &token, content).await;
    assert_eq!(response.status().as_u16(), 201);
    assert_eq!(edge.get("/readyz").await.status().as_u16(), 200);

    service.stop().await;
    let errors = expect_envelope(edge.send(&stream, &token, content).await, 503).await;
    assert_eq!(errors[0], "Service unavailable");
}
