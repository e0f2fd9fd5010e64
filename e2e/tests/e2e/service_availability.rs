//! chat-service down: the edge answers 503 and stays up; once chat-service is
//! back on the same address, sends succeed without restarting the edge.

use std::net::TcpListener;

use allmine_test_support::backends::{Backend, StoreFixture};
use allmine_test_support::{TokenBuilder, random_object_id};
use serde_json::json;

use crate::helpers::{
    Admin, expect_envelope, http_client, post_message, start_edge, start_service,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_edge_answers_503_while_chat_service_is_down_and_recovers() {
    let reserved = TcpListener::bind("127.0.0.1:0").expect("a free port");
    let addr = reserved.local_addr().expect("address");
    drop(reserved);
    let (base, _edge) = start_edge(addr).await;
    let client = http_client();
    let stream = random_object_id();
    let token = TokenBuilder::new().build();
    let body = json!({"content": "are you there?"});

    let errors = expect_envelope(
        post_message(&client, &base, &stream, &body, &token).await,
        503,
    )
    .await;
    assert_eq!(errors[0], "Service unavailable");
    let ready = client
        .get(format!("{base}/readyz"))
        .send()
        .await
        .expect("answers");
    assert_eq!(ready.status().as_u16(), 503);

    let fixture = StoreFixture::new(Backend::Embedded);
    let store = fixture.open().await;
    let service = start_service(store.clone(), addr).await;
    Admin::connect(addr)
        .await
        .register(&stream, &random_object_id())
        .await;
    let response = post_message(&client, &base, &stream, &body, &token).await;
    assert_eq!(response.status().as_u16(), 201);
    let ready = client
        .get(format!("{base}/readyz"))
        .send()
        .await
        .expect("answers");
    assert_eq!(ready.status().as_u16(), 200);

    service.stop().await;
    let errors = expect_envelope(
        post_message(&client, &base, &stream, &body, &token).await,
        503,
    )
    .await;
    assert_eq!(errors[0], "Service unavailable");
}
