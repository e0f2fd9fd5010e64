//! `POST .../chat/bans` (ban a user) and `DELETE .../chat/bans/{userId}` (lift
//! a ban): the success bodies, what reaches chat-service, the edge's own
//! rejections and chat-service's errors.

use allmine_chat_proto::v1::Ban;
use reqwest::Method;
use serde_json::{Value, json};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::{
    fake_chat::{CREATED_SECONDS, MODERATOR_ID, rpc, timestamp},
    helpers::{
        AUTHORIZED, JSON, STREAM_ID, TOKEN, TestApp, assert_rfc3339_millis_utc, ban_path,
        bans_path, expect_error, spawn_app,
    },
};

/// The viewer being banned.
const USER_ID: &str = "64d15f9e2e6c8f4d5a123333";

async fn ban(app: &TestApp, body: &Value, token: Option<&str>) -> reqwest::Response {
    app.edge
        .call(Method::POST, &bans_path(STREAM_ID), Some(body), token)
        .await
}

async fn unban(app: &TestApp, user_id: &str, token: Option<&str>) -> reqwest::Response {
    app.edge
        .call(Method::DELETE, &ban_path(STREAM_ID, user_id), None, token)
        .await
}

#[tokio::test]
async fn a_permanent_ban_is_201_with_every_key_and_a_null_expiry() {
    let app = spawn_app().await;

    let response = ban(&app, &json!({"userId": USER_ID}), Some(TOKEN)).await;

    assert_eq!(response.status().as_u16(), 201);
    let content_type = response.headers()["content-type"].to_str().expect("ascii");
    assert!(content_type.starts_with("application/json"));
    let body: Value = response.json().await.expect("a JSON body");
    assert_eq!(
        body,
        json!({
            "streamId": STREAM_ID,
            "userId": USER_ID,
            "expiresAt": null,
            "reason": null,
            "bannedBy": MODERATOR_ID,
            "createdAt": "2026-01-15T10:30:00.000Z"
        })
    );
}

#[tokio::test]
async fn a_timeout_is_201_with_its_expiry_and_reason() {
    let app = spawn_app().await;
    app.chat.reply::<rpc::BanUser>(Ban {
        stream_id: STREAM_ID.to_owned(),
        user_id: USER_ID.to_owned(),
        expires_at: Some(timestamp(CREATED_SECONDS + 600, 250)),
        reason: Some("spam".to_owned()),
        banned_by: MODERATOR_ID.to_owned(),
        created_at: Some(timestamp(CREATED_SECONDS, 250)),
    });

    let response = ban(
        &app,
        &json!({"userId": USER_ID, "durationSeconds": 600, "reason": "spam"}),
        Some(TOKEN),
    )
    .await;

    assert_eq!(response.status().as_u16(), 201);
    let body: Value = response.json().await.expect("a JSON body");
    assert_eq!(
        body,
        json!({
            "streamId": STREAM_ID,
            "userId": USER_ID,
            "expiresAt": "2026-01-15T10:40:00.250Z",
            "reason": "spam",
            "bannedBy": MODERATOR_ID,
            "createdAt": "2026-01-15T10:30:00.250Z"
        })
    );
    assert_rfc3339_millis_utc(body["expiresAt"].as_str().expect("a string"));
}

#[tokio::test]
async fn the_path_stream_the_body_the_token_and_the_request_id_reach_chat_service() {
    let app = spawn_app().await;

    let response = app
        .edge
        .call_raw(
            Method::POST,
            &bans_path(STREAM_ID),
            format!(r#"{{"userId":"{USER_ID}","durationSeconds":600,"reason":"  spam  "}}"#),
            &[JSON, AUTHORIZED, ("x-request-id", "ban-req-1")],
        )
        .await;

    assert_eq!(response.status().as_u16(), 201);
    assert_eq!(response.headers()["x-request-id"], "ban-req-1");
    let calls = app.chat.calls::<rpc::BanUser>();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(call.request.stream_id, STREAM_ID);
    assert_eq!(call.request.user_id, USER_ID);
    assert_eq!(call.request.duration_seconds, Some(600));
    // The edge does not trim or judge the reason: chat-service owns that rule.
    assert_eq!(call.request.reason.as_deref(), Some("  spam  "));
    assert_eq!(
        call.metadata_str("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(call.metadata_str("x-request-id"), Some("ban-req-1"));
    assert!(call.metadata_str("grpc-timeout").is_some(), "a deadline");
    assert_eq!(app.chat.call_count(), 1, "only BanUser was called");
}

#[tokio::test]
async fn a_permanent_ban_forwards_no_duration_and_no_reason() {
    let app = spawn_app().await;
    for body in [
        json!({"userId": USER_ID}),
        json!({"userId": USER_ID, "durationSeconds": null, "reason": null}),
    ] {
        let response = ban(&app, &body, Some(TOKEN)).await;
        assert_eq!(response.status().as_u16(), 201, "{body}");
    }

    for call in app.chat.calls::<rpc::BanUser>() {
        assert_eq!(call.request.duration_seconds, None);
        assert_eq!(call.request.reason, None);
    }
}

#[tokio::test]
async fn a_duration_that_is_not_a_u32_is_400_naming_the_field() {
    let app = spawn_app().await;
    for (duration, why) in [
        // serde_json appends where in the body it stopped ("at line 1 column 22").
        (
            json!(-60),
            "durationSeconds: invalid value: integer `-60`, expected u32",
        ),
        (json!(1.5), "durationSeconds: "),
        (json!(60.0), "durationSeconds: "),
        (json!(4_294_967_296_u64), "durationSeconds: "),
        (json!("60"), "durationSeconds: "),
        (json!(true), "durationSeconds: "),
    ] {
        let response = ban(
            &app,
            &json!({"userId": USER_ID, "durationSeconds": duration}),
            Some(TOKEN),
        )
        .await;

        let reply = expect_error(response, 400, "Validation failed").await;
        assert_eq!(reply.errors.len(), 2, "{duration}: {:?}", reply.errors);
        assert!(
            reply.errors[1].starts_with(why),
            "{duration}: {:?}",
            reply.errors
        );
    }
    app.assert_nothing_forwarded();
}

#[tokio::test]
async fn the_largest_u32_duration_is_forwarded_for_chat_service_to_judge() {
    let app = spawn_app().await;

    let response = ban(
        &app,
        &json!({"userId": USER_ID, "durationSeconds": u32::MAX}),
        Some(TOKEN),
    )
    .await;

    assert_eq!(response.status().as_u16(), 201);
    assert_eq!(
        app.chat.calls::<rpc::BanUser>()[0].request.duration_seconds,
        Some(u32::MAX)
    );
}

#[tokio::test]
async fn a_missing_or_mistyped_user_id_is_400() {
    let app = spawn_app().await;

    let missing = ban(&app, &json!({"durationSeconds": 60}), Some(TOKEN)).await;
    let mistyped = ban(&app, &json!({"userId": 42}), Some(TOKEN)).await;

    let reply = expect_error(missing, 400, "Validation failed").await;
    assert!(
        reply.errors[1].starts_with("missing field `userId`"),
        "{:?}",
        reply.errors
    );
    let reply = expect_error(mistyped, 400, "Validation failed").await;
    assert!(
        reply.errors[1].starts_with("userId: invalid type: integer `42`"),
        "{:?}",
        reply.errors
    );
    app.assert_nothing_forwarded();
}

#[tokio::test]
async fn chat_service_range_violations_name_duration_seconds_in_camel_case() {
    let app = spawn_app().await;
    app.chat.fail::<rpc::BanUser>(Status::with_error_details(
        Code::InvalidArgument,
        "invalid BanUserRequest",
        ErrorDetails::with_bad_request_violation(
            "duration_seconds",
            "must be 1 to 1209600 seconds, got 0",
        ),
    ));

    let response = ban(
        &app,
        &json!({"userId": USER_ID, "durationSeconds": 0}),
        Some(TOKEN),
    )
    .await;

    let reply = expect_error(response, 400, "Validation failed").await;
    assert_eq!(
        reply.errors,
        [
            "Validation failed",
            "durationSeconds: must be 1 to 1209600 seconds, got 0"
        ]
    );
    assert_eq!(
        app.chat.calls::<rpc::BanUser>()[0].request.duration_seconds,
        Some(0)
    );
}

#[tokio::test]
async fn lifting_a_ban_is_204_with_an_empty_body() {
    let app = spawn_app().await;

    let response = unban(&app, USER_ID, Some(TOKEN)).await;

    assert_eq!(response.status().as_u16(), 204);
    assert!(response.headers().get("content-type").is_none());
    assert!(response.headers().get("x-request-id").is_some());
    assert_eq!(response.text().await.expect("a body"), "");
}

#[tokio::test]
async fn the_path_ids_the_token_and_the_request_id_reach_unban_user() {
    let app = spawn_app().await;

    let response = app
        .edge
        .call_raw(
            Method::DELETE,
            &ban_path(STREAM_ID, USER_ID),
            "",
            &[AUTHORIZED, ("x-request-id", "unban-req-1")],
        )
        .await;

    assert_eq!(response.status().as_u16(), 204);
    let calls = app.chat.calls::<rpc::UnbanUser>();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(call.request.stream_id, STREAM_ID);
    assert_eq!(call.request.user_id, USER_ID);
    assert_eq!(
        call.metadata_str("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(call.metadata_str("x-request-id"), Some("unban-req-1"));
    assert!(call.metadata_str("grpc-timeout").is_some(), "a deadline");
}

#[tokio::test]
async fn a_bad_user_id_is_passed_as_is_and_its_violation_names_user_id() {
    let app = spawn_app().await;
    app.chat.fail::<rpc::UnbanUser>(Status::with_error_details(
        Code::InvalidArgument,
        "invalid UnbanUserRequest",
        ErrorDetails::with_bad_request_violation("user_id", "must be 24 hexadecimal digits"),
    ));

    let response = unban(&app, "not-an-id", Some(TOKEN)).await;

    let reply = expect_error(response, 400, "Validation failed").await;
    assert_eq!(
        reply.errors,
        ["Validation failed", "userId: must be 24 hexadecimal digits"]
    );
    assert_eq!(
        app.chat.calls::<rpc::UnbanUser>()[0].request.user_id,
        "not-an-id"
    );
}
