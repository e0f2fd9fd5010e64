//! `x-request-id`: generated or reused, echoed, forwarded to chat-service.

use serde_json::json;

use crate::helpers::{STREAM_ID, TOKEN, message_path, spawn_app};

fn request_id_of(response: &reqwest::Response) -> String {
    response.headers()["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_owned()
}

#[tokio::test]
async fn a_request_id_is_generated_echoed_and_forwarded() {
    let app = spawn_app().await;

    let response = app
        .edge
        .post_message(STREAM_ID, &json!({"content": "hi"}), Some(TOKEN))
        .await;

    assert_eq!(response.status().as_u16(), 201);
    let request_id = request_id_of(&response);
    let uuid = uuid::Uuid::parse_str(&request_id).expect("a UUID");
    assert_eq!(uuid.get_version_num(), 4);
    assert_eq!(
        app.chat.received()[0].metadata_str("x-request-id"),
        Some(request_id.as_str())
    );
}

#[tokio::test]
async fn a_given_request_id_is_reused_echoed_and_forwarded() {
    let app = spawn_app().await;

    let response = app
        .edge
        .post_raw(
            &message_path(STREAM_ID),
            r#"{"content":"hi"}"#,
            &[
                ("content-type", "application/json"),
                ("authorization", "Bearer h.p.s"),
                ("x-request-id", "client-req-42"),
            ],
        )
        .await;

    assert_eq!(response.status().as_u16(), 201);
    assert_eq!(request_id_of(&response), "client-req-42");
    assert_eq!(
        app.chat.received()[0].metadata_str("x-request-id"),
        Some("client-req-42")
    );
}

#[tokio::test]
async fn an_unsafe_request_id_is_replaced() {
    let app = spawn_app().await;
    let too_long = "x".repeat(200);

    for given in ["has spaces", "quote\"d", too_long.as_str()] {
        let response = app
            .edge
            .client
            .get(app.edge.url("/healthz"))
            .header("x-request-id", given)
            .send()
            .await
            .expect("the edge answers");

        let echoed = request_id_of(&response);
        assert_ne!(echoed, given);
        uuid::Uuid::parse_str(&echoed).expect("a fresh UUID");
    }
}

#[tokio::test]
async fn error_responses_carry_a_request_id_too() {
    let app = spawn_app().await;

    let unknown_route = app.edge.get("/nowhere").await;
    let unauthenticated = app
        .edge
        .post_message(STREAM_ID, &json!({"content": "hi"}), None)
        .await;

    assert_eq!(unknown_route.status().as_u16(), 404);
    assert_eq!(unauthenticated.status().as_u16(), 401);
    assert!(!request_id_of(&unknown_route).is_empty());
    assert!(!request_id_of(&unauthenticated).is_empty());
    assert_ne!(
        request_id_of(&unknown_route),
        request_id_of(&unauthenticated)
    );
}
