//! `/healthz` (the edge lives) and `/readyz` (chat-service is SERVING).

use serde_json::{Value, json};

use crate::helpers::{expect_error, reserve_unused_port, spawn_app, spawn_edge};

#[tokio::test]
async fn healthz_is_200_even_when_chat_service_is_down() {
    let edge = spawn_edge(reserve_unused_port()).await;

    let response = edge.get("/healthz").await;

    assert_eq!(response.status().as_u16(), 200);
    assert!(response.headers().get("x-request-id").is_some());
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body, json!({"status": "ok"}));
}

#[tokio::test]
async fn readyz_is_200_when_chat_service_is_serving() {
    let app = spawn_app().await;

    let response = app.edge.get("/readyz").await;

    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body, json!({"status": "ok"}));
}

#[tokio::test]
async fn readyz_is_503_when_chat_service_is_not_serving() {
    let app = spawn_app().await;
    app.chat.set_not_serving().await;

    let response = app.edge.get("/readyz").await;

    let reply = expect_error(response, 503, "Service unavailable").await;
    assert_eq!(reply.errors, ["Service unavailable"]);
}

#[tokio::test]
async fn readyz_is_503_when_chat_service_is_down() {
    let edge = spawn_edge(reserve_unused_port()).await;

    let response = edge.get("/readyz").await;

    let reply = expect_error(response, 503, "Service unavailable").await;
    assert_eq!(reply.errors, ["Service unavailable"]);
}
