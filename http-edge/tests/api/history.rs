//! `GET .../chat/messages?limit=&before=&after=` (a stream's chat history):
//! the page the client sees, what reaches chat-service, the edge's own
//! rejections of the query string, chat-service's errors, and `POST` on the
//! same path still sending.

use allmine_chat_proto::v1::{ChatMessage, ListMessagesRequest, ListMessagesResponse, Sender};
use reqwest::Method;
use serde_json::{Value, json};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

use crate::{
    fake_chat::{CREATED_SECONDS, DOCUMENTED_CURSOR, Received, documented_message, rpc, timestamp},
    helpers::{STREAM_ID, TOKEN, TestApp, expect_error, message_path, spawn_app},
};

const AUTHORIZED: (&str, &str) = ("authorization", "Bearer header.payload.signature");

/// `GET` the history with this query string (without the `?`).
async fn list(app: &TestApp, query: &str, token: Option<&str>) -> reqwest::Response {
    app.edge
        .call(Method::GET, &history_path(query), None, token)
        .await
}

fn history_path(query: &str) -> String {
    let path = message_path(STREAM_ID);
    if query.is_empty() {
        path
    } else {
        format!("{path}?{query}")
    }
}

fn assert_nothing_forwarded(app: &TestApp) {
    assert_eq!(app.chat.call_count(), 0, "chat-service was called");
}

/// The only `ListMessages` call received so far.
fn the_call(app: &TestApp) -> Received<ListMessagesRequest> {
    let calls = app.chat.calls::<rpc::ListMessages>();
    assert_eq!(calls.len(), 1, "one ListMessages call");
    assert_eq!(app.chat.call_count(), 1, "and no other call");
    calls.into_iter().next().expect("one call")
}

/// The documented message as `POST` shows it (no cursor).
fn documented_message_json() -> Value {
    json!({
        "_id": "64d15f9e2e6c8f4d5a123456",
        "streamId": "64d15f9e2e6c8f4d5a123000",
        "content": "Herkese selam!",
        "sender": {
            "_id": "64d15f9e2e6c8f4d5a123456",
            "username": "johndoe",
            "name": "John",
            "surname": "Doe",
            "profilePhoto": {
                "_id": "507f1f77bcf86cd799439012",
                "url": "https://example.com/uploads/images/profile.jpg",
                "type": "image",
                "variants": {
                    "40": "https://cdn.example.com/profiles/user/40.webp",
                    "76": "https://cdn.example.com/profiles/user/76.webp"
                },
                "createdAt": "2024-01-15T10:30:00.000Z",
                "updatedAt": "2024-01-15T12:30:00.000Z"
            },
            "availabilityStatus": "available"
        },
        "createdAt": "2026-01-15T10:30:00.000Z",
        "updatedAt": "2026-01-15T10:30:00.000Z"
    })
}

/// The documented message as a history item: the same keys plus its cursor.
fn documented_item_json() -> Value {
    let mut item = documented_message_json();
    item["cursor"] = Value::from(DOCUMENTED_CURSOR);
    item
}

#[tokio::test]
async fn a_page_is_200_with_exactly_the_documented_items_their_cursors_and_the_next_cursor() {
    let app = spawn_app().await;
    let older = ChatMessage {
        id: "64d15f9e2e6c8f4d5a123455".to_owned(),
        content: "ilk mesaj".to_owned(),
        sender: Some(Sender {
            id: "64d15f9e2e6c8f4d5a123999".to_owned(),
            ..Sender::default()
        }),
        created_at: Some(timestamp(CREATED_SECONDS - 60, 5)),
        updated_at: Some(timestamp(CREATED_SECONDS - 60, 5)),
        cursor: "older-cursor".to_owned(),
        ..documented_message()
    };
    app.chat.reply::<rpc::ListMessages>(ListMessagesResponse {
        messages: vec![documented_message(), older],
        next_cursor: Some("older-cursor".to_owned()),
    });

    let response = list(&app, "limit=2", Some(TOKEN)).await;

    assert_eq!(response.status().as_u16(), 200);
    let content_type = response.headers()["content-type"].to_str().expect("ascii");
    assert!(content_type.starts_with("application/json"));
    assert!(response.headers().get("x-request-id").is_some());
    let body: Value = response.json().await.expect("a JSON body");
    // Whole-value equality: no key missing, none extra (the documented
    // message keys and each item's own cursor), every type right, the order
    // kept.
    assert_eq!(
        body,
        json!({
            "items": [
                documented_item_json(),
                {
                    "_id": "64d15f9e2e6c8f4d5a123455",
                    "streamId": "64d15f9e2e6c8f4d5a123000",
                    "content": "ilk mesaj",
                    "sender": {
                        "_id": "64d15f9e2e6c8f4d5a123999",
                        "username": null,
                        "name": null,
                        "surname": null,
                        "profilePhoto": null,
                        "availabilityStatus": null
                    },
                    "createdAt": "2026-01-15T10:29:00.005Z",
                    "updatedAt": "2026-01-15T10:29:00.005Z",
                    "cursor": "older-cursor"
                }
            ],
            "nextCursor": "older-cursor"
        })
    );
}

#[tokio::test]
async fn the_oldest_page_has_a_null_next_cursor() {
    let app = spawn_app().await;

    // The fake's default: the documented message and no further page.
    let response = list(&app, "", Some(TOKEN)).await;

    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.expect("a JSON body");
    assert_eq!(
        body,
        json!({"items": [documented_item_json()], "nextCursor": null})
    );
}

#[tokio::test]
async fn an_empty_page_is_200_with_no_items() {
    let app = spawn_app().await;
    for next_cursor in [None, Some("same-place")] {
        app.chat.reply::<rpc::ListMessages>(ListMessagesResponse {
            messages: Vec::new(),
            next_cursor: next_cursor.map(str::to_owned),
        });

        let response = list(&app, "after=same-place", Some(TOKEN)).await;

        assert_eq!(response.status().as_u16(), 200);
        let body: Value = response.json().await.expect("a JSON body");
        assert_eq!(body, json!({"items": [], "nextCursor": next_cursor}));
    }
}

#[tokio::test]
async fn the_stream_the_limit_the_cursor_the_token_and_the_request_id_reach_chat_service() {
    let app = spawn_app().await;

    let response = app
        .edge
        .call_raw(
            Method::GET,
            // Percent-encoded as a client would: the cursor arrives decoded.
            &history_path("limit=20&before=AAAB%2Fcur_sor-%3D"),
            "",
            &[AUTHORIZED, ("x-request-id", "history-req-1")],
        )
        .await;

    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["x-request-id"], "history-req-1");
    let call = the_call(&app);
    assert_eq!(call.request.stream_id, STREAM_ID);
    assert_eq!(call.request.page_size, 20);
    assert_eq!(call.request.before.as_deref(), Some("AAAB/cur_sor-="));
    assert_eq!(call.request.after, None);
    assert_eq!(
        call.metadata_str("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(call.metadata_str("x-request-id"), Some("history-req-1"));
    assert!(call.metadata_str("grpc-timeout").is_some(), "a deadline");
}

#[tokio::test]
async fn after_is_forwarded_as_is() {
    let app = spawn_app().await;

    let response = list(&app, "after=opaque.cursor", Some(TOKEN)).await;

    assert_eq!(response.status().as_u16(), 200);
    let call = the_call(&app);
    assert_eq!(call.request.after.as_deref(), Some("opaque.cursor"));
    assert_eq!(call.request.before, None);
    assert_eq!(call.request.page_size, 0);
}

#[tokio::test]
async fn without_a_limit_page_size_0_asks_for_the_default_and_no_cursor_is_sent() {
    let app = spawn_app().await;

    let response = list(&app, "", Some(TOKEN)).await;

    assert_eq!(response.status().as_u16(), 200);
    let call = the_call(&app);
    assert_eq!(call.request.stream_id, STREAM_ID);
    assert_eq!(call.request.page_size, 0);
    assert_eq!(call.request.before, None);
    assert_eq!(call.request.after, None);
}

#[tokio::test]
async fn limits_1_and_100_are_forwarded() {
    let app = spawn_app().await;
    for limit in [1, 100] {
        let response = list(&app, &format!("limit={limit}"), Some(TOKEN)).await;
        assert_eq!(response.status().as_u16(), 200, "{limit}");
    }
    let sizes: Vec<u32> = app
        .chat
        .calls::<rpc::ListMessages>()
        .iter()
        .map(|call| call.request.page_size)
        .collect();
    assert_eq!(sizes, [1, 100]);
}

#[tokio::test]
async fn before_and_after_together_are_forwarded_for_chat_service_to_refuse() {
    let app = spawn_app().await;
    app.chat
        .fail::<rpc::ListMessages>(Status::with_error_details(
            Code::InvalidArgument,
            "invalid ListMessagesRequest",
            ErrorDetails::with_bad_request_violation(
                "after",
                "give either before or after, not both",
            ),
        ));

    let response = list(&app, "before=b&after=a", Some(TOKEN)).await;

    let reply = expect_error(response, 400, "Validation failed").await;
    assert_eq!(
        reply.errors,
        [
            "Validation failed",
            "after: give either before or after, not both"
        ]
    );
    let call = the_call(&app);
    assert_eq!(call.request.before.as_deref(), Some("b"));
    assert_eq!(call.request.after.as_deref(), Some("a"));
}

#[tokio::test]
async fn a_limit_that_is_not_an_integer_from_1_to_100_is_400_and_nothing_is_forwarded() {
    let app = spawn_app().await;
    for (limit, shown) in [
        ("0", "\"0\""),
        ("101", "\"101\""),
        ("abc", "\"abc\""),
        ("-1", "\"-1\""),
        ("", "\"\""),
        ("2.5", "\"2.5\""),
        ("%2B5", "\"+5\""),
        ("4294967296", "\"4294967296\""),
    ] {
        let response = list(&app, &format!("limit={limit}"), Some(TOKEN)).await;

        let reply = expect_error(response, 400, "Validation failed").await;
        assert_eq!(
            reply.errors,
            [
                "Validation failed".to_owned(),
                format!("limit: must be an integer from 1 to 100, got {shown}"),
            ],
            "{limit:?}"
        );
    }
    assert_nothing_forwarded(&app);
}

#[tokio::test]
async fn unknown_query_parameters_are_400_naming_them_and_nothing_is_forwarded() {
    let app = spawn_app().await;
    for name in [
        "page_size",
        "pageSize",
        "cursor",
        "streamId",
        "offset",
        "Limit",
    ] {
        let response = list(&app, &format!("limit=10&{name}=5"), Some(TOKEN)).await;

        let reply = expect_error(response, 400, "Validation failed").await;
        assert_eq!(
            reply.errors,
            [
                "Validation failed".to_owned(),
                format!("unknown query parameter `{name}`; expected `limit`, `before` or `after`"),
            ],
            "{name}"
        );
    }
    assert_nothing_forwarded(&app);
}

#[tokio::test]
async fn a_repeated_parameter_is_400_and_every_problem_is_listed() {
    let app = spawn_app().await;

    let repeated = list(&app, "before=a&before=b", Some(TOKEN)).await;
    let several = list(&app, "limit=0&sort=asc", Some(TOKEN)).await;

    let reply = expect_error(repeated, 400, "Validation failed").await;
    assert_eq!(
        reply.errors,
        ["Validation failed", "before: must be given at most once"]
    );
    let reply = expect_error(several, 400, "Validation failed").await;
    assert_eq!(
        reply.errors,
        [
            "Validation failed",
            "unknown query parameter `sort`; expected `limit`, `before` or `after`",
            "limit: must be an integer from 1 to 100, got \"0\"",
        ]
    );
    assert_nothing_forwarded(&app);
}

#[tokio::test]
async fn without_a_token_listing_is_401_whatever_the_query_and_nothing_is_forwarded() {
    let app = spawn_app().await;

    let plain = list(&app, "", None).await;
    let bad_query = list(&app, "limit=abc&unknown=1", None).await;
    let malformed = app
        .edge
        .call_raw(
            Method::GET,
            &history_path("limit=5"),
            "",
            &[("authorization", "Basic dXNlcjpwYXNz")],
        )
        .await;

    for response in [plain, bad_query] {
        let reply = expect_error(response, 401, "Authentication required").await;
        assert_eq!(
            reply.errors,
            ["Authentication required", "Authorization header is missing"]
        );
        assert_eq!(reply.headers["www-authenticate"], "Bearer");
    }
    let reply = expect_error(malformed, 401, "Authentication required").await;
    assert_eq!(
        reply.errors,
        [
            "Authentication required",
            "Authorization header must be 'Bearer <token>'"
        ]
    );
    assert_nothing_forwarded(&app);
}

#[tokio::test]
async fn a_page_size_violation_is_reported_on_limit_and_other_fields_in_camel_case() {
    let app = spawn_app().await;
    app.chat
        .fail::<rpc::ListMessages>(Status::with_error_details(
            Code::InvalidArgument,
            "invalid ListMessagesRequest",
            ErrorDetails::with_bad_request(vec![
                FieldViolation::new("stream_id", "must be 24 hexadecimal digits"),
                FieldViolation::new("page_size", "must be between 1 and 100, got 500"),
                FieldViolation::new("before", "is not a cursor"),
            ]),
        ));

    let response = list(&app, "limit=50&before=nope", Some(TOKEN)).await;

    let reply = expect_error(response, 400, "Validation failed").await;
    assert_eq!(
        reply.errors,
        [
            "Validation failed",
            "streamId: must be 24 hexadecimal digits",
            "limit: must be between 1 and 100, got 500",
            "before: is not a cursor",
        ]
    );
    assert!(reply.errors[2].starts_with("limit: "));
}

#[tokio::test]
async fn an_unregistered_stream_is_404() {
    let app = spawn_app().await;
    app.chat
        .fail::<rpc::ListMessages>(Status::not_found(format!(
            "stream {STREAM_ID} is not registered for chat"
        )));

    let response = list(&app, "limit=10", Some(TOKEN)).await;

    let reply = expect_error(response, 404, "Resource not found").await;
    assert_eq!(
        reply.errors,
        [
            "Resource not found".to_owned(),
            format!("stream {STREAM_ID} is not registered for chat"),
        ]
    );
    assert_eq!(the_call(&app).request.page_size, 10);
}

#[tokio::test]
async fn chat_service_errors_keep_the_envelope_table() {
    let app = spawn_app().await;
    for (status, http_status, phrase) in [
        (
            Status::unauthenticated("token expired"),
            401,
            "Authentication required",
        ),
        (
            Status::permission_denied("no"),
            403,
            "Insufficient permissions",
        ),
        (
            Status::unavailable("10.0.0.7 down"),
            503,
            "Service unavailable",
        ),
    ] {
        app.chat.fail::<rpc::ListMessages>(status);
        let response = list(&app, "", Some(TOKEN)).await;
        let reply = expect_error(response, http_status, phrase).await;
        assert!(!reply.body.contains("10.0.0.7"), "{}", reply.body);
    }
}

#[tokio::test]
async fn post_on_the_same_path_still_sends_a_message() {
    let app = spawn_app().await;

    let sent = app
        .edge
        .post_message(
            STREAM_ID,
            &json!({"content": "Herkese selam!"}),
            Some(TOKEN),
        )
        .await;
    let listed = list(&app, "limit=1", Some(TOKEN)).await;

    assert_eq!(sent.status().as_u16(), 201);
    let body: Value = sent.json().await.expect("a JSON body");
    assert_eq!(body, documented_message_json());
    assert_eq!(listed.status().as_u16(), 200);
    let sends = app.chat.received();
    assert_eq!(sends.len(), 1);
    assert_eq!(sends[0].request.content, "Herkese selam!");
    assert_eq!(app.chat.calls::<rpc::ListMessages>().len(), 1);
}

#[tokio::test]
async fn other_methods_on_the_messages_path_are_405_allowing_get_and_post() {
    let app = spawn_app().await;
    for method in [Method::PUT, Method::DELETE, Method::PATCH] {
        let response = app
            .edge
            .call(method.clone(), &history_path("limit=5"), None, Some(TOKEN))
            .await;

        let reply = expect_error(response, 405, "Method not allowed").await;
        let allow = reply.headers["allow"].to_str().expect("ascii");
        let allowed: Vec<&str> = allow.split(',').map(str::trim).collect();
        assert!(allowed.contains(&"GET"), "{method}: {allow}");
        assert!(allowed.contains(&"POST"), "{method}: {allow}");
    }
    assert_nothing_forwarded(&app);
}
