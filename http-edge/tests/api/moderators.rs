//! `PUT` and `DELETE .../chat/moderators/{userId}`: appoint and remove a
//! moderator; both answer with the stream's chat state.

use allmine_chat_proto::v1::{ChatState, Stream};
use reqwest::Method;
use serde_json::{Value, json};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::{
    fake_chat::{CREATED_SECONDS, MODERATOR_ID, OWNER_ID, documented_stream, rpc, timestamp},
    helpers::{AUTHORIZED, STREAM_ID, TOKEN, TestApp, expect_error, moderator_path, spawn_app},
};

/// The user appointed or removed.
const USER_ID: &str = "64d15f9e2e6c8f4d5a123333";

async fn appoint(app: &TestApp, token: Option<&str>) -> reqwest::Response {
    app.edge
        .call(
            Method::PUT,
            &moderator_path(STREAM_ID, USER_ID),
            None,
            token,
        )
        .await
}

async fn remove(app: &TestApp, token: Option<&str>) -> reqwest::Response {
    app.edge
        .call(
            Method::DELETE,
            &moderator_path(STREAM_ID, USER_ID),
            None,
            token,
        )
        .await
}

async fn json_of(response: reqwest::Response) -> Value {
    assert_eq!(response.status().as_u16(), 200);
    let content_type = response.headers()["content-type"].to_str().expect("ascii");
    assert!(content_type.starts_with("application/json"));
    response.json().await.expect("a JSON body")
}

#[tokio::test]
async fn appointing_a_moderator_is_200_with_exactly_the_stream() {
    let app = spawn_app().await;

    let body = json_of(appoint(&app, Some(TOKEN)).await).await;

    assert_eq!(
        body,
        json!({
            "streamId": STREAM_ID,
            "ownerId": OWNER_ID,
            "state": "open",
            "slowModeSeconds": 0,
            "moderatorIds": [MODERATOR_ID, USER_ID],
            "createdAt": "2026-01-14T10:30:00.000Z",
            "updatedAt": "2026-01-15T10:30:00.000Z"
        })
    );
}

#[tokio::test]
async fn removing_a_moderator_is_200_with_exactly_the_stream() {
    let app = spawn_app().await;
    app.chat.reply::<rpc::RemoveModerator>(Stream {
        state: ChatState::Closed.into(),
        slow_mode_seconds: 30,
        moderator_ids: Vec::new(),
        updated_at: Some(timestamp(CREATED_SECONDS + 60, 5)),
        ..documented_stream()
    });

    let body = json_of(remove(&app, Some(TOKEN)).await).await;

    assert_eq!(
        body,
        json!({
            "streamId": STREAM_ID,
            "ownerId": OWNER_ID,
            "state": "closed",
            "slowModeSeconds": 30,
            "moderatorIds": [],
            "createdAt": "2026-01-14T10:30:00.000Z",
            "updatedAt": "2026-01-15T10:31:00.005Z"
        })
    );
}

#[tokio::test]
async fn each_chat_state_has_its_json_name_and_an_unknown_one_is_null() {
    let app = spawn_app().await;
    for (state, expected) in [
        (ChatState::Open as i32, json!("open")),
        (ChatState::Closed as i32, json!("closed")),
        (ChatState::Ended as i32, json!("ended")),
        (ChatState::Unspecified as i32, Value::Null),
        (99, Value::Null),
    ] {
        app.chat.reply::<rpc::AddModerator>(Stream {
            state,
            ..documented_stream()
        });

        let body = json_of(appoint(&app, Some(TOKEN)).await).await;

        assert_eq!(body["state"], expected, "state {state}");
    }
}

#[tokio::test]
async fn the_path_ids_the_token_and_the_request_id_reach_chat_service() {
    let app = spawn_app().await;
    let path = moderator_path(STREAM_ID, USER_ID);

    let put = app
        .edge
        .call_raw(
            Method::PUT,
            &path,
            "",
            &[AUTHORIZED, ("x-request-id", "mod-req-1")],
        )
        .await;
    let delete = app
        .edge
        .call_raw(
            Method::DELETE,
            &path,
            "",
            &[AUTHORIZED, ("x-request-id", "mod-req-2")],
        )
        .await;

    assert_eq!(put.status().as_u16(), 200);
    assert_eq!(delete.status().as_u16(), 200);
    let added = app.chat.calls::<rpc::AddModerator>();
    let removed = app.chat.calls::<rpc::RemoveModerator>();
    assert_eq!((added.len(), removed.len()), (1, 1));
    for (call, request_id) in [(&added[0], "mod-req-1"), (&removed[0], "mod-req-2")] {
        assert_eq!(call.request.stream_id, STREAM_ID);
        assert_eq!(call.request.user_id, USER_ID);
        assert_eq!(
            call.metadata_str("authorization"),
            Some(format!("Bearer {TOKEN}").as_str())
        );
        assert_eq!(call.metadata_str("x-request-id"), Some(request_id));
        assert!(call.metadata_str("grpc-timeout").is_some(), "a deadline");
    }
    assert_eq!(app.chat.call_count(), 2);
}

#[tokio::test]
async fn a_bad_user_id_is_passed_as_is_and_its_violation_names_user_id() {
    let app = spawn_app().await;
    app.chat
        .fail::<rpc::AddModerator>(Status::with_error_details(
            Code::InvalidArgument,
            "invalid ModeratorRequest",
            ErrorDetails::with_bad_request_violation("user_id", "must be 24 hexadecimal digits"),
        ));

    let response = app
        .edge
        .call(
            Method::PUT,
            &moderator_path(STREAM_ID, "nobody"),
            None,
            Some(TOKEN),
        )
        .await;

    let reply = expect_error(response, 400, "Validation failed").await;
    assert_eq!(
        reply.errors,
        ["Validation failed", "userId: must be 24 hexadecimal digits"]
    );
    assert_eq!(
        app.chat.calls::<rpc::AddModerator>()[0].request.user_id,
        "nobody"
    );
}
