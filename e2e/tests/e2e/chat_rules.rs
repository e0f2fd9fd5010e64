//! The stream chat rules, each through REST (the edge in front of
//! chat-service), on both stores: unknown streams, closed and ended chats,
//! bans and timeouts, moderators, slow mode, the burst limit, sender
//! snapshots from stored profiles, and who may call the admin service.
//!
//! Every refused send is also checked to have stored nothing.

use std::collections::HashMap;
use std::time::Duration;

use allmine_chat_proto::v1 as pb;
use allmine_test_support::backends::Backend;
use allmine_test_support::{TokenBuilder, random_object_id};
use reqwest::Response;
use serde_json::{Value, json};

use crate::helpers::{
    Admin, Stack, expect_envelope, parse_api_time, retry_after_secs, spawn_stack, spawn_stack_with,
};

allmine_test_support::for_each_backend!(
    a_send_to_an_unknown_stream_is_404,
    a_closed_chat_refuses_with_409_until_reopened_and_an_ended_one_for_good,
    a_ban_refuses_the_users_sends_until_it_is_lifted,
    a_timeout_refuses_sends_until_it_expires,
    moderators_ban_viewers_but_not_moderators_nor_the_owner,
    slow_mode_refuses_a_viewers_second_message_and_exempts_owner_and_moderators,
    the_burst_limit_refuses_the_message_over_the_limit,
    the_sender_is_the_stored_profile_else_the_tokens_claims,
    the_admin_service_refuses_a_token_without_the_service_role,
);

const FORBIDDEN: &str = "Insufficient permissions";
const CONFLICT: &str = "Resource already exists or cannot be changed in its current state";
const TOO_MANY: &str = "Too many requests";

/// Asserts a 201 and returns the message.
async fn expect_sent(response: Response) -> Value {
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("a JSON body");
    assert_eq!(status, 201, "{body}");
    body
}

async fn expect_no_content(response: Response) {
    let status = response.status().as_u16();
    let body = response.text().await.expect("a body");
    assert_eq!(status, 204, "{body}");
    assert!(body.is_empty(), "{body}");
}

async fn expect_json(response: Response, status: u16) -> Value {
    let actual = response.status().as_u16();
    let body: Value = response.json().await.expect("a JSON body");
    assert_eq!(actual, status, "{body}");
    body
}

async fn stored_count(stack: &Stack, stream: &str) -> usize {
    stack.stored(stream).await.len()
}

async fn a_send_to_an_unknown_stream_is_404(backend: Backend) {
    let stack = spawn_stack(backend).await;
    let unknown = random_object_id();
    let token = TokenBuilder::new().build();

    let errors = expect_envelope(stack.send(&unknown, &token, "hello?").await, 404).await;
    assert_eq!(errors[0], "Resource not found");
    assert!(
        errors[1].contains(&unknown) && errors[1].contains("not registered"),
        "{errors:?}"
    );
    assert!(stack.stored(&unknown).await.is_empty());
    stack.finish().await;
}

async fn a_closed_chat_refuses_with_409_until_reopened_and_an_ended_one_for_good(backend: Backend) {
    let stack = spawn_stack(backend).await;
    let (stream, _owner) = stack.open_stream().await;
    let viewer = TokenBuilder::new().build();
    let mut admin = stack.admin().await;

    admin.set_open(&stream, false).await;
    let errors = expect_envelope(stack.send(&stream, &viewer, "anyone here?").await, 409).await;
    assert_eq!(errors[0], CONFLICT);
    assert!(
        errors[1].contains("closed") && !errors[1].contains("ended"),
        "{errors:?}"
    );
    assert!(stack.stored(&stream).await.is_empty());

    admin.set_open(&stream, true).await;
    let message = expect_sent(stack.send(&stream, &viewer, "open again").await).await;
    assert_eq!(message["content"], json!("open again"));
    assert_eq!(stored_count(&stack, &stream).await, 1);

    admin.end(&stream).await;
    let errors = expect_envelope(stack.send(&stream, &viewer, "still here?").await, 409).await;
    assert_eq!(errors[0], CONFLICT);
    assert!(errors[1].contains("ended"), "{errors:?}");
    assert_eq!(stored_count(&stack, &stream).await, 1);
    stack.finish().await;
}

async fn a_ban_refuses_the_users_sends_until_it_is_lifted(backend: Backend) {
    let stack = spawn_stack(backend).await;
    let (stream, owner) = stack.open_stream().await;
    let viewer = TokenBuilder::new();
    let owner_token = owner.build();

    let ban = expect_json(
        stack
            .ban(
                &stream,
                &owner_token,
                &json!({"userId": viewer.user_id(), "reason": "spam"}),
            )
            .await,
        201,
    )
    .await;
    let created_at = ban["createdAt"].as_str().expect("createdAt").to_owned();
    assert!(parse_api_time(&created_at).is_some(), "{ban}");
    assert_eq!(
        ban,
        json!({
            "streamId": stream,
            "userId": viewer.user_id(),
            "expiresAt": null,
            "reason": "spam",
            "bannedBy": owner.user_id(),
            "createdAt": created_at,
        })
    );

    let errors =
        expect_envelope(stack.send(&stream, &viewer.build(), "let me in").await, 403).await;
    assert_eq!(errors[0], FORBIDDEN);
    assert!(
        errors[1].contains("banned") && errors[1].contains("permanently"),
        "{errors:?}"
    );
    assert!(stack.stored(&stream).await.is_empty());

    expect_no_content(stack.unban(&stream, &owner_token, &viewer.user_id()).await).await;
    expect_sent(stack.send(&stream, &viewer.build(), "thanks").await).await;
    assert_eq!(stored_count(&stack, &stream).await, 1);
    stack.finish().await;
}

async fn a_timeout_refuses_sends_until_it_expires(backend: Backend) {
    let stack = spawn_stack(backend).await;
    let (stream, owner) = stack.open_stream().await;
    let viewer = TokenBuilder::new();

    let ban = expect_json(
        stack
            .ban(
                &stream,
                &owner.build(),
                &json!({"userId": viewer.user_id(), "durationSeconds": 1}),
            )
            .await,
        201,
    )
    .await;
    assert_eq!(ban["reason"], Value::Null);
    let created_at = parse_api_time(ban["createdAt"].as_str().expect("createdAt"));
    let expires_text = ban["expiresAt"].as_str().expect("a timeout expires");
    let expires_at = parse_api_time(expires_text);
    assert_eq!(
        expires_at.zip(created_at).map(|(end, start)| end - start),
        Some(1000),
        "{ban}"
    );

    let errors = expect_envelope(stack.send(&stream, &viewer.build(), "too soon").await, 403).await;
    assert_eq!(errors[0], FORBIDDEN);
    assert!(
        errors[1].contains(&format!("until {expires_text}")),
        "{errors:?} (expires {expires_text})"
    );
    assert!(stack.stored(&stream).await.is_empty());

    // The timeout lasts one second from its creation; 1.2 s later it is over.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    expect_sent(stack.send(&stream, &viewer.build(), "back").await).await;
    assert_eq!(stored_count(&stack, &stream).await, 1);
    stack.finish().await;
}

async fn moderators_ban_viewers_but_not_moderators_nor_the_owner(backend: Backend) {
    let stack = spawn_stack(backend).await;
    let (stream, owner) = stack.open_stream().await;
    let owner_token = owner.build();
    let moderator = TokenBuilder::new();
    let other_moderator = TokenBuilder::new();
    let viewer = TokenBuilder::new();
    let another_viewer = TokenBuilder::new();

    let state = expect_json(
        stack
            .add_moderator(&stream, &owner_token, &moderator.user_id())
            .await,
        200,
    )
    .await;
    assert_eq!(state["streamId"], json!(stream));
    assert_eq!(state["ownerId"], json!(owner.user_id()));
    assert_eq!(state["state"], json!("open"));
    assert_eq!(state["moderatorIds"], json!([moderator.user_id()]));
    let state = expect_json(
        stack
            .add_moderator(&stream, &owner_token, &other_moderator.user_id())
            .await,
        200,
    )
    .await;
    let moderator_ids = state["moderatorIds"].as_array().expect("moderatorIds");
    assert_eq!(moderator_ids.len(), 2, "{state}");
    assert!(
        moderator_ids.contains(&json!(moderator.user_id())),
        "{state}"
    );
    assert!(
        moderator_ids.contains(&json!(other_moderator.user_id())),
        "{state}"
    );

    // A moderator bans a viewer.
    let ban = expect_json(
        stack
            .ban(
                &stream,
                &moderator.build(),
                &json!({"userId": viewer.user_id()}),
            )
            .await,
        201,
    )
    .await;
    assert_eq!(ban["userId"], json!(viewer.user_id()));
    assert_eq!(ban["bannedBy"], json!(moderator.user_id()));
    let errors = expect_envelope(stack.send(&stream, &viewer.build(), "hi").await, 403).await;
    assert_eq!(errors[0], FORBIDDEN);
    assert!(stack.stored(&stream).await.is_empty());

    // A viewer cannot ban (nor unban).
    let errors = expect_envelope(
        stack
            .ban(
                &stream,
                &another_viewer.build(),
                &json!({"userId": TokenBuilder::new().user_id()}),
            )
            .await,
        403,
    )
    .await;
    assert_eq!(errors[0], FORBIDDEN);
    assert!(
        errors[1].contains("only the stream's owner and moderators"),
        "{errors:?}"
    );
    let errors = expect_envelope(
        stack
            .unban(&stream, &another_viewer.build(), &viewer.user_id())
            .await,
        403,
    )
    .await;
    assert_eq!(errors[0], FORBIDDEN);

    // A moderator cannot ban another moderator.
    let errors = expect_envelope(
        stack
            .ban(
                &stream,
                &moderator.build(),
                &json!({"userId": other_moderator.user_id()}),
            )
            .await,
        403,
    )
    .await;
    assert_eq!(errors[0], FORBIDDEN);
    assert!(
        errors[1].contains("cannot ban another moderator"),
        "{errors:?}"
    );
    // So the other moderator still sends.
    expect_sent(
        stack
            .send(&stream, &other_moderator.build(), "still here")
            .await,
    )
    .await;

    // Nobody bans the owner: neither a moderator nor the owner.
    for actor in [&moderator, &owner] {
        let errors = expect_envelope(
            stack
                .ban(
                    &stream,
                    &actor.build(),
                    &json!({"userId": owner.user_id(), "durationSeconds": 60}),
                )
                .await,
            403,
        )
        .await;
        assert_eq!(errors[0], FORBIDDEN);
        assert!(errors[1].contains("owner cannot be banned"), "{errors:?}");
    }
    expect_sent(stack.send(&stream, &owner_token, "still mine").await).await;

    // A moderator cannot appoint (or remove) moderators.
    let errors = expect_envelope(
        stack
            .add_moderator(&stream, &moderator.build(), &another_viewer.user_id())
            .await,
        403,
    )
    .await;
    assert_eq!(errors[0], FORBIDDEN);
    assert!(
        errors[1].contains("only the stream's owner may appoint"),
        "{errors:?}"
    );
    let errors = expect_envelope(
        stack
            .remove_moderator(&stream, &moderator.build(), &other_moderator.user_id())
            .await,
        403,
    )
    .await;
    assert_eq!(errors[0], FORBIDDEN);

    assert_eq!(stored_count(&stack, &stream).await, 2);
    stack.finish().await;
}

async fn slow_mode_refuses_a_viewers_second_message_and_exempts_owner_and_moderators(
    backend: Backend,
) {
    let stack = spawn_stack(backend).await;
    let (stream, owner) = stack.open_stream().await;
    let owner_token = owner.build();
    let moderator = TokenBuilder::new();
    expect_json(
        stack
            .add_moderator(&stream, &owner_token, &moderator.user_id())
            .await,
        200,
    )
    .await;
    let settings = stack.admin().await.slow_mode(&stream, 30).await;
    assert_eq!(settings.slow_mode_seconds, 30);
    let viewer = TokenBuilder::new().build();

    expect_sent(stack.send(&stream, &viewer, "first").await).await;
    let response = stack.send(&stream, &viewer, "second").await;
    let retry_after = retry_after_secs(&response);
    assert!(
        (1..=30).contains(&retry_after),
        "Retry-After: {retry_after}"
    );
    let errors = expect_envelope(response, 429).await;
    assert_eq!(errors[0], TOO_MANY);
    assert!(
        errors[1].contains("slow mode") && errors[1].contains("retry after"),
        "{errors:?}"
    );
    let stored = stack.stored(&stream).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].content.as_str(), "first");

    // The owner and moderators are exempt.
    for token in [&owner_token, &moderator.build()] {
        expect_sent(stack.send(&stream, token, "one").await).await;
        expect_sent(stack.send(&stream, token, "two").await).await;
    }
    assert_eq!(stored_count(&stack, &stream).await, 5);
    stack.finish().await;
}

async fn the_burst_limit_refuses_the_message_over_the_limit(backend: Backend) {
    let stack = spawn_stack_with(backend, |config| {
        config.burst_viewer_limit = 3;
        config.burst_privileged_limit = 6;
        config.burst_window_secs = 30;
    })
    .await;
    let (stream, owner) = stack.open_stream().await;
    let viewer = TokenBuilder::new().build();

    for index in 1..=3 {
        expect_sent(
            stack
                .send(&stream, &viewer, &format!("viewer {index}"))
                .await,
        )
        .await;
    }
    let response = stack.send(&stream, &viewer, "viewer 4").await;
    let retry_after = retry_after_secs(&response);
    assert!(
        (1..=30).contains(&retry_after),
        "Retry-After: {retry_after}"
    );
    let errors = expect_envelope(response, 429).await;
    assert_eq!(errors[0], TOO_MANY);
    assert!(
        errors[1].contains("too many messages") && errors[1].contains("at most 3 per 30 s"),
        "{errors:?}"
    );
    assert_eq!(stored_count(&stack, &stream).await, 3);

    let owner_token = owner.build();
    for index in 1..=6 {
        expect_sent(
            stack
                .send(&stream, &owner_token, &format!("owner {index}"))
                .await,
        )
        .await;
    }
    let response = stack.send(&stream, &owner_token, "owner 7").await;
    let retry_after = retry_after_secs(&response);
    assert!(
        (1..=30).contains(&retry_after),
        "Retry-After: {retry_after}"
    );
    let errors = expect_envelope(response, 429).await;
    assert_eq!(errors[0], TOO_MANY);
    assert!(
        errors[1].contains("too many messages") && errors[1].contains("at most 6 per 30 s"),
        "{errors:?}"
    );
    let stored = stack.stored(&stream).await;
    assert_eq!(stored.len(), 9);
    assert!(
        !stored
            .iter()
            .any(|message| ["viewer 4", "owner 7"].contains(&message.content.as_str())),
        "a refused message was stored"
    );
    stack.finish().await;
}

async fn the_sender_is_the_stored_profile_else_the_tokens_claims(backend: Backend) {
    let stack = spawn_stack(backend).await;
    let (stream, _owner) = stack.open_stream().await;
    let known = TokenBuilder::new().profile("token-name", "Token", "Claims");
    let photo_id = random_object_id();
    let photo_url = format!("https://cdn.allmine.example/photos/{photo_id}.jpg");
    let small = format!("https://cdn.allmine.example/photos/{photo_id}-40.jpg");
    let medium = format!("https://cdn.allmine.example/photos/{photo_id}-76.jpg");

    let mut photo = pb::ProfilePhoto {
        id: photo_id.clone(),
        url: photo_url.clone(),
        r#type: "image".into(),
        variants: HashMap::from([("40".into(), small.clone()), ("76".into(), medium.clone())])
            .into_iter()
            .collect(),
        ..Default::default()
    };
    // 2026-01-15T10:30:00.123Z and 2026-01-16T08:00:00.456Z (prost-types is
    // not a dependency of this crate, hence the field writes).
    for (slot, seconds, millis) in [
        (&mut photo.created_at, 1_768_473_000_i64, 123),
        (&mut photo.updated_at, 1_768_550_400_i64, 456),
    ] {
        let time = slot.get_or_insert_with(Default::default);
        time.seconds = seconds;
        time.nanos = millis * 1_000_000;
    }
    stack
        .admin()
        .await
        .upsert_profile(pb::UserProfile {
            user_id: known.user_id(),
            username: Some("johndoe".into()),
            name: Some("John".into()),
            surname: Some("Doe".into()),
            profile_photo: Some(photo),
            availability_status: Some("available".into()),
        })
        .await;

    let message = expect_sent(stack.send(&stream, &known.build(), "with a face").await).await;
    assert_eq!(
        message["sender"],
        json!({
            "_id": known.user_id(),
            "username": "johndoe",
            "name": "John",
            "surname": "Doe",
            "profilePhoto": {
                "_id": photo_id,
                "url": photo_url,
                "type": "image",
                "variants": {"40": small, "76": medium},
                "createdAt": "2026-01-15T10:30:00.123Z",
                "updatedAt": "2026-01-16T08:00:00.456Z",
            },
            "availabilityStatus": "available",
        })
    );

    let unknown = TokenBuilder::new().profile("janedoe", "Jane", "Doe");
    let message = expect_sent(stack.send(&stream, &unknown.build(), "no profile").await).await;
    assert_eq!(
        message["sender"],
        json!({
            "_id": unknown.user_id(),
            "username": "janedoe",
            "name": "Jane",
            "surname": "Doe",
            "profilePhoto": null,
            "availabilityStatus": null,
        })
    );

    // The snapshot is what was stored, too.
    let stored = stack.stored(&stream).await;
    assert_eq!(stored.len(), 2);
    let with_profile = stored
        .iter()
        .find(|message| message.content.as_str() == "with a face")
        .expect("stored");
    assert_eq!(with_profile.sender.username.as_deref(), Some("johndoe"));
    assert!(with_profile.sender.profile_photo.is_some());
    stack.finish().await;
}

async fn the_admin_service_refuses_a_token_without_the_service_role(backend: Backend) {
    let stack = spawn_stack(backend).await;
    let viewer = TokenBuilder::new();
    let stream = random_object_id();
    let mut admin = Admin::connect_as(stack.service_addr(), viewer.build()).await;

    let status = admin
        .try_register(&stream, &viewer.user_id())
        .await
        .expect_err("a viewer cannot register streams");
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
    assert!(status.message().contains("'service' role"), "{status:?}");

    // Nothing was registered: a send to that stream is still a 404.
    let errors = expect_envelope(stack.send(&stream, &viewer.build(), "mine?").await, 404).await;
    assert_eq!(errors[0], "Resource not found");
    assert!(stack.stored(&stream).await.is_empty());
    stack.finish().await;
}

#[test]
fn api_times_parse_to_epoch_milliseconds() {
    assert_eq!(parse_api_time("1970-01-01T00:00:00.000Z"), Some(0));
    assert_eq!(
        parse_api_time("2026-01-15T10:30:00.123Z"),
        Some(1_768_473_000_123)
    );
    assert_eq!(
        parse_api_time("2024-03-01T00:00:00.000Z"),
        Some(1_709_251_200_000)
    );
    assert_eq!(parse_api_time("2026-01-15T10:30:00Z"), None);
    assert_eq!(parse_api_time("2026-01-15 10:30:00.123Z"), None);
}
