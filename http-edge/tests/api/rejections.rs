//! The edge's own rejections: each is the documented envelope, and none of
//! them reaches chat-service. The rules every route shares (credentials,
//! methods, JSON bodies) are tables over the routes, so that a new route is
//! one row; what only the message route does follows them.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{
    AUTHORIZED, JSON, STREAM_ID, TOKEN, TestApp, ban_path, bans_path, events_path, expect_error,
    message_item_path, message_path, moderator_path, spawn_app,
};
use crate::routes::{MESSAGE_ID, MISSING_HEADER, USER_ID, body_routes, routes};

/// A token given in the query string.
const QUERY_TOKEN: &str = "query-token.never-logged.7f3a9c";
const AUTHENTICATION_REQUIRED: &str = "Authentication required";
const NOT_BEARER: &str = "Authorization header must be 'Bearer <token>'";

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

/// Asserts the 401 envelope with `reason` and the `WWW-Authenticate`
/// challenge; `what` names the request in a failure.
async fn expect_unauthenticated(response: reqwest::Response, reason: &str, what: &str) {
    let reply = expect_error(response, 401, AUTHENTICATION_REQUIRED).await;
    assert_eq!(reply.errors, [AUTHENTICATION_REQUIRED, reason], "{what}");
    assert_eq!(reply.headers["www-authenticate"], "Bearer", "{what}");
}

#[tokio::test]
async fn every_route_without_credentials_is_401_and_nothing_is_forwarded() {
    let app = spawn_app().await;
    for route in routes() {
        let response = route.call(&app, "", &[]).await;

        expect_unauthenticated(response, route.missing, &route.name()).await;
    }
    app.assert_nothing_forwarded();
}

#[tokio::test]
async fn every_route_refuses_an_authorization_header_that_is_not_bearer_and_a_token() {
    let app = spawn_app().await;
    for route in routes() {
        for authorization in [
            "Basic dXNlcjpwYXNz",
            "Bearer",
            "Bearer ",
            "Token abc",
            "Bearerabc",
            "Bearer two tokens",
        ] {
            let response = route
                .call(&app, "", &[("authorization", authorization)])
                .await;

            let what = format!("{} {authorization:?}", route.name());
            expect_unauthenticated(response, NOT_BEARER, &what).await;
        }
    }
    app.assert_nothing_forwarded();
}

#[tokio::test]
async fn the_access_token_query_parameter_counts_on_the_events_route_only() {
    let app = spawn_app().await;
    let query = format!("?access_token={QUERY_TOKEN}");
    for route in routes() {
        if route.path.ends_with("/events") {
            continue;
        }
        let response = route.call(&app, &query, &[]).await;

        expect_unauthenticated(response, MISSING_HEADER, &route.name()).await;
    }
    app.assert_nothing_forwarded();
}

#[tokio::test]
async fn without_a_token_a_bad_body_or_query_is_still_401() {
    let app = spawn_app().await;
    let text = [("content-type", "text/plain")];
    let bad_history = format!("{}?limit=abc&unknown=1", message_path(STREAM_ID));
    for (method, path, body, headers) in [
        (Method::POST, message_path(STREAM_ID), "not json", &text[..]),
        (Method::POST, bans_path(STREAM_ID), "not json", &text[..]),
        (Method::GET, bad_history, "", &[][..]),
    ] {
        let response = app
            .edge
            .call_raw(method.clone(), &path, body, headers)
            .await;

        expect_unauthenticated(response, MISSING_HEADER, &format!("{method} {path}")).await;
    }
    app.assert_nothing_forwarded();
}

#[tokio::test]
async fn unknown_body_fields_are_400_naming_the_field_and_nothing_is_forwarded() {
    let app = spawn_app().await;
    // Fields that could change the stream, the identity or the record, in
    // either spelling.
    let message_fields = [
        "streamId",
        "stream_id",
        "sender",
        "_id",
        "senderId",
        "createdAt",
    ];
    let ban_fields = [
        "streamId",
        "bannedBy",
        "expiresAt",
        "createdAt",
        "user_id",
        "duration_seconds",
    ];
    for (path, accepted, fields, value) in [
        (
            message_path(STREAM_ID),
            json!({"content": "hi"}),
            message_fields,
            "64d15f9e2e6c8f4d5a999999",
        ),
        (
            bans_path(STREAM_ID),
            json!({"userId": USER_ID}),
            ban_fields,
            "x",
        ),
    ] {
        for field in fields {
            let mut body = accepted.clone();
            body[field] = json!(value);
            let response = app
                .edge
                .call(Method::POST, &path, Some(&body), Some(TOKEN))
                .await;

            let reply = expect_error(response, 400, "Validation failed").await;
            assert_eq!(reply.errors.len(), 2, "{field}: {:?}", reply.errors);
            assert!(
                reply.errors[1].starts_with(&format!("unknown field `{field}`")),
                "{path} {field}: {:?}",
                reply.errors
            );
        }
    }
    app.assert_nothing_forwarded();
}

#[tokio::test]
async fn a_body_that_is_not_json_by_content_type_is_415_on_every_body_route() {
    let app = spawn_app().await;
    let cases: [&[(&str, &str)]; 3] = [
        &[("content-type", "text/plain"), AUTHORIZED],
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            AUTHORIZED,
        ],
        &[AUTHORIZED],
    ];
    for route in body_routes() {
        let body = route.body.as_ref().expect("a body route").to_string();
        for headers in cases {
            let response = app
                .edge
                .call_raw(route.method.clone(), &route.path, body.clone(), headers)
                .await;

            let reply = expect_error(response, 415, "Unsupported media type").await;
            assert_eq!(
                reply.errors,
                [
                    "Unsupported media type",
                    "Content-Type must be application/json"
                ],
                "{} {headers:?}",
                route.name()
            );
        }
    }
    app.assert_nothing_forwarded();
}

#[tokio::test]
async fn wrong_methods_are_405_with_allow_and_nothing_is_forwarded() {
    let app = spawn_app().await;
    // axum serves HEAD wherever GET is.
    for (path, wrong, allowed) in [
        (
            format!("{}?limit=5", message_path(STREAM_ID)),
            &[Method::PUT, Method::DELETE, Method::PATCH][..],
            &["GET", "HEAD", "POST"][..],
        ),
        (
            message_item_path(STREAM_ID, MESSAGE_ID),
            &[Method::GET, Method::POST, Method::PUT, Method::PATCH],
            &["DELETE"],
        ),
        (
            events_path(STREAM_ID, ""),
            &[Method::POST, Method::PUT, Method::DELETE],
            &["GET", "HEAD"],
        ),
        (
            bans_path(STREAM_ID),
            &[Method::GET, Method::DELETE],
            &["POST"],
        ),
        (
            ban_path(STREAM_ID, USER_ID),
            &[Method::GET, Method::POST, Method::PUT],
            &["DELETE"],
        ),
        (
            moderator_path(STREAM_ID, USER_ID),
            &[Method::GET, Method::POST, Method::PATCH],
            &["DELETE", "PUT"],
        ),
        ("/healthz".to_owned(), &[Method::DELETE], &["GET", "HEAD"]),
    ] {
        for method in wrong {
            let response = app
                .edge
                .call(method.clone(), &path, None, Some(TOKEN))
                .await;

            let reply = expect_error(response, 405, "Method not allowed").await;
            let allow = reply.headers["allow"].to_str().expect("ascii");
            let mut listed: Vec<&str> = allow.split(',').map(str::trim).collect();
            listed.sort_unstable();
            assert_eq!(listed, allowed, "{method} {path}: {allow}");
            assert_eq!(
                reply.errors,
                [
                    "Method not allowed".to_owned(),
                    format!("Method {method} is not allowed on this path"),
                ],
                "{method} {path}"
            );
        }
    }
    app.assert_nothing_forwarded();
}

#[tokio::test]
async fn a_body_that_is_not_a_message_is_400_saying_why() {
    let app = spawn_app().await;
    for (body, why) in [
        // Not JSON at all.
        (r#"{"content": "hi""#, "Malformed JSON"),
        ("", "Malformed JSON"),
        ("content=hi", "Malformed JSON"),
        (r#"{"content":"hi"} trailing"#, "Malformed JSON"),
        // JSON of the wrong shape: the field is named.
        (r#"{"content":5}"#, "content: invalid type"),
        (r#"{"content":null}"#, "content: invalid type"),
        (r#"{"content":["hi"]}"#, "content: invalid type"),
        (r#""hi""#, "invalid type: string"),
        ("{}", "missing field `content`"),
    ] {
        let response = post(&app, body, &[JSON, AUTHORIZED]).await;

        let reply = expect_error(response, 400, "Validation failed").await;
        assert_eq!(reply.errors.len(), 2, "{body:?}: {:?}", reply.errors);
        assert!(
            reply.errors[1].starts_with(why),
            "{body:?}: {:?}",
            reply.errors
        );
    }
    app.assert_nothing_forwarded();
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
    app.assert_nothing_forwarded();
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
        // Moderators are appointed one by one: the collection has no route.
        "/api/v1/live-stream/64d15f9e2e6c8f4d5a123000/chat/moderators",
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
