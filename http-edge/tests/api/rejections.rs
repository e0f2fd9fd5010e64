//! The edge's own rejections: each is the documented envelope, and none of
//! them reaches chat-service.

use serde_json::json;

use crate::helpers::{STREAM_ID, TOKEN, TestApp, expect_error, message_path, spawn_app};

const JSON: (&str, &str) = ("content-type", "application/json");
const AUTHORIZED: (&str, &str) = ("authorization", "Bearer header.payload.signature");

/// Posts raw bytes to the message route of a fresh app.
async fn post(
    app: &TestApp,
    body: impl Into<reqwest::Body>,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    app.edge
        .post_raw(&message_path(STREAM_ID), body, headers)
        .await
}

fn assert_nothing_forwarded(app: &TestApp) {
    assert!(app.chat.received().is_empty(), "chat-service was called");
}

#[tokio::test]
async fn a_missing_authorization_header_is_401_and_nothing_is_forwarded() {
    let app = spawn_app().await;

    let response = app
        .edge
        .post_message(STREAM_ID, &json!({"content": "hi"}), None)
        .await;

    let reply = expect_error(response, 401, "Authentication required").await;
    assert_eq!(
        reply.errors,
        ["Authentication required", "Authorization header is missing"]
    );
    assert_eq!(reply.headers["www-authenticate"], "Bearer");
    assert_nothing_forwarded(&app);
}

#[tokio::test]
async fn a_malformed_authorization_header_is_401_and_nothing_is_forwarded() {
    let app = spawn_app().await;
    for authorization in [
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer ",
        "Token abc",
        "Bearerabc",
        "Bearer two tokens",
    ] {
        let response = post(
            &app,
            r#"{"content":"hi"}"#,
            &[JSON, ("authorization", authorization)],
        )
        .await;

        let reply = expect_error(response, 401, "Authentication required").await;
        assert_eq!(
            reply.errors,
            [
                "Authentication required",
                "Authorization header must be 'Bearer <token>'"
            ],
            "{authorization:?}"
        );
        assert_eq!(reply.headers["www-authenticate"], "Bearer");
    }
    assert_nothing_forwarded(&app);
}

#[tokio::test]
async fn an_unauthenticated_request_is_401_even_with_a_bad_body() {
    let app = spawn_app().await;

    let response = post(&app, "not json", &[("content-type", "text/plain")]).await;

    expect_error(response, 401, "Authentication required").await;
    assert_nothing_forwarded(&app);
}

#[tokio::test]
async fn invalid_json_is_400() {
    let app = spawn_app().await;
    for body in [
        r#"{"content": "hi""#,
        "",
        "content=hi",
        r#"{"content":"hi"} trailing"#,
    ] {
        let response = post(&app, body, &[JSON, AUTHORIZED]).await;

        let reply = expect_error(response, 400, "Validation failed").await;
        assert_eq!(reply.errors.len(), 2, "{body:?}: {:?}", reply.errors);
        assert!(
            reply.errors[1].starts_with("Malformed JSON"),
            "{body:?}: {:?}",
            reply.errors
        );
    }
    assert_nothing_forwarded(&app);
}

#[tokio::test]
async fn a_content_of_the_wrong_type_is_400_naming_the_field() {
    let app = spawn_app().await;
    for body in [
        json!({"content": 5}),
        json!({"content": null}),
        json!({"content": ["hi"]}),
    ] {
        let response = app.edge.post_message(STREAM_ID, &body, Some(TOKEN)).await;

        let reply = expect_error(response, 400, "Validation failed").await;
        assert!(
            reply.errors[1].starts_with("content: invalid type"),
            "{body}: {:?}",
            reply.errors
        );
    }
    assert_nothing_forwarded(&app);
}

#[tokio::test]
async fn a_body_that_is_not_an_object_is_400() {
    let app = spawn_app().await;

    let response = app
        .edge
        .post_message(STREAM_ID, &json!("hi"), Some(TOKEN))
        .await;

    let reply = expect_error(response, 400, "Validation failed").await;
    assert!(
        reply.errors[1].starts_with("invalid type: string"),
        "{:?}",
        reply.errors
    );
    assert_nothing_forwarded(&app);
}

#[tokio::test]
async fn a_missing_content_is_400() {
    let app = spawn_app().await;

    let response = app
        .edge
        .post_message(STREAM_ID, &json!({}), Some(TOKEN))
        .await;

    let reply = expect_error(response, 400, "Validation failed").await;
    assert!(
        reply.errors[1].starts_with("missing field `content`"),
        "{:?}",
        reply.errors
    );
    assert_nothing_forwarded(&app);
}

#[tokio::test]
async fn unknown_fields_that_could_change_stream_or_identity_are_400_and_nothing_is_forwarded() {
    let app = spawn_app().await;
    for field in [
        "streamId",
        "stream_id",
        "sender",
        "_id",
        "senderId",
        "createdAt",
    ] {
        let response = app
            .edge
            .post_message(
                STREAM_ID,
                &json!({"content": "hi", field: "64d15f9e2e6c8f4d5a999999"}),
                Some(TOKEN),
            )
            .await;

        let reply = expect_error(response, 400, "Validation failed").await;
        assert!(
            reply.errors[1].starts_with(&format!("unknown field `{field}`")),
            "{field}: {:?}",
            reply.errors
        );
    }
    assert_nothing_forwarded(&app);
}

#[tokio::test]
async fn a_body_that_is_not_json_by_content_type_is_415() {
    let app = spawn_app().await;
    let cases: [&[(&str, &str)]; 3] = [
        &[("content-type", "text/plain"), AUTHORIZED],
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            AUTHORIZED,
        ],
        &[AUTHORIZED],
    ];
    for headers in cases {
        let response = post(&app, r#"{"content":"hi"}"#, headers).await;

        let reply = expect_error(response, 415, "Unsupported media type").await;
        assert_eq!(
            reply.errors,
            [
                "Unsupported media type",
                "Content-Type must be application/json"
            ]
        );
    }
    assert_nothing_forwarded(&app);
}

#[tokio::test]
async fn a_json_content_type_with_a_charset_is_accepted() {
    let app = spawn_app().await;

    let response = post(
        &app,
        r#"{"content":"hi"}"#,
        &[
            ("content-type", "application/json; charset=utf-8"),
            AUTHORIZED,
        ],
    )
    .await;

    assert_eq!(response.status().as_u16(), 201);
}

#[tokio::test]
async fn a_body_over_16_kib_is_413() {
    let app = spawn_app().await;
    let content = "a".repeat(17 * 1024);

    let response = app
        .edge
        .post_message(STREAM_ID, &json!({ "content": content }), Some(TOKEN))
        .await;

    let reply = expect_error(response, 413, "Payload too large").await;
    assert_eq!(
        reply.errors,
        [
            "Payload too large",
            "Request body must be at most 16384 bytes"
        ]
    );
    assert_nothing_forwarded(&app);
}

#[tokio::test]
async fn a_body_just_under_16_kib_is_forwarded() {
    // The size rule belongs to the edge; the 500-character rule to chat-service
    // (which the fake does not enforce).
    let app = spawn_app().await;
    let content = "a".repeat(16 * 1024 - 20);

    let response = app
        .edge
        .post_message(STREAM_ID, &json!({ "content": content }), Some(TOKEN))
        .await;

    assert_eq!(response.status().as_u16(), 201);
    assert_eq!(app.chat.received().len(), 1);
}

#[tokio::test]
async fn an_unknown_path_is_404() {
    let app = spawn_app().await;
    for path in [
        "/app",
        "/api/v1/live-stream",
        "/api/v1/live-stream/x/chat/message",
        "/api/v2/nothing",
    ] {
        let response = app.edge.get(path).await;

        let reply = expect_error(response, 404, "Resource not found").await;
        assert_eq!(
            reply.errors,
            [
                "Resource not found",
                format!("No route for GET {path}").as_str()
            ]
        );
    }
}

#[tokio::test]
async fn a_wrong_method_is_405_with_allow() {
    let app = spawn_app().await;

    let response = app
        .edge
        .client
        .put(app.edge.url(&message_path(STREAM_ID)))
        .send()
        .await
        .expect("the edge answers");

    let reply = expect_error(response, 405, "Method not allowed").await;
    // GET (list) and POST (send); axum serves HEAD wherever GET is.
    assert_eq!(reply.headers["allow"], "GET,HEAD,POST");
    assert_eq!(
        reply.errors,
        [
            "Method not allowed",
            "Method PUT is not allowed on this path"
        ]
    );

    let response = app
        .edge
        .client
        .delete(app.edge.url("/healthz"))
        .send()
        .await
        .expect("the edge answers");
    expect_error(response, 405, "Method not allowed").await;
    assert_nothing_forwarded(&app);
}
