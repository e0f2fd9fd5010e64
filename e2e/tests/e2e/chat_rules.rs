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
    Admin, Stack, expect_envelope, expect_json, expect_sent, parse_api_time, retry_after_secs,
    spawn_stack, spawn_stack_with,
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

async fn expect_no_content(response: Response) {
    let status = response.status().as_u16();
    let body = response.text().await.expect("a body");
    assert_eq!(status, 204, "{body}");
    assert!(body.is_empty(), "{body}");
}

async fn a_send_to_an_unknown_stream_is_404(backend: Backend) {
    let stack = spawn_stack(backend).await;
    let unknown = random_object_id();
    let token = TokenBuilder::new().build();

    let errors = expect_envelope(stack.edge.send(&unknown, &token, "hello?").await, 404).await;
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
    let admin = stack.admin();

    admin.set_open(&stream, false).await;
    let errors =
        expect_envelope(stack.edge.send(&stream, &viewer, "anyone here?").await, 409).await;
    assert_eq!(errors[0], CONFLICT);
    assert!(
        errors[1].contains("closed") && !errors[1].contains("ended"),
        "{errors:?}"
    );
    assert!(stack.stored(&stream).await.is_empty());

    admin.set_open(&stream, true).await;
    let message = expect_sent(stack.edge.send(&stream, &viewer, "open again").await).await;
    assert_eq!(message["content"], json!("open again"));
    assert_eq!(stack.service.stored_count(&stream).await, 1);

    admin.end(&stream).await;
    let errors = expect_envelope(stack.edge.send(&stream, &viewer, "still here?").await, 409).await;
    assert_eq!(errors[0], CONFLICT);
    assert!(errors[1].contains("ended"), "{errors:?}");
    assert_eq!(stack.service.stored_count(&stream).await, 1);
    stack.finish().await;
}

async fn a_ban_refuses_the_users_sends_until_it_is_lifted(backend: Backend) {
    let stack = spawn_stack(backend).await;
    let (stream, owner) = stack.open_stream().await;
    let viewer = TokenBuilder::new();
    let owner_token = owner.build();

    let ban = expect_json(
        stack
            .edge
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

    let errors = expect_forbidden(
        stack.edge.send(&stream, &viewer.build(), "let me in").await,
        "",
    )
    .await;
    assert!(
        errors[1].contains("banned") && errors[1].contains("permanently"),
        "{errors:?}"
    );
    assert!(stack.stored(&stream).await.is_empty());

    expect_no_content(
        stack
            .edge
            .unban(&stream, &owner_token, &viewer.user_id())
            .await,
    )
    .await;
    expect_sent(stack.edge.send(&stream, &viewer.build(), "thanks").await).await;
    assert_eq!(stack.service.stored_count(&stream).await, 1);
    stack.finish().await;
}

async fn a_timeout_refuses_sends_until_it_expires(backend: Backend) {
    let stack = spawn_stack(backend).await;
    let (stream, owner) = stack.open_stream().await;
    let viewer = TokenBuilder::new();

    let ban = expect_json(
        stack
            .edge
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

    let errors = expect_forbidden(
        stack.edge.send(&stream, &viewer.build(), "too soon").await,
        "",
    )
    .await;
    assert!(
        errors[1].contains(&format!("until {expires_text}")),
        "{errors:?} (expires {expires_text})"
    );
    assert!(stack.stored(&stream).await.is_empty());

    // The timeout lasts one second from its creation; 1.2 s later it is over.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    expect_sent(stack.edge.send(&stream, &viewer.build(), "back").await).await;
    assert_eq!(stack.service.stored_count(&stream).await, 1);
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
            .edge
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
            .edge
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
            .edge
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
    expect_forbidden(stack.edge.send(&stream, &viewer.build(), "hi").await, "").await;
    assert!(stack.stored(&stream).await.is_empty());

    // Bans nobody may make: by a viewer, of a moderator, of the owner (even
    // by the owner).
    for (actor, target, duration, why) in [
        (
            &another_viewer,
            TokenBuilder::new().user_id(),
            None,
            "only the stream's owner and moderators",
        ),
        (
            &moderator,
            other_moderator.user_id(),
            None,
            "cannot ban another moderator",
        ),
        (
            &moderator,
            owner.user_id(),
            Some(60),
            "owner cannot be banned",
        ),
        (&owner, owner.user_id(), Some(60), "owner cannot be banned"),
    ] {
        let mut body = json!({ "userId": target });
        if let Some(seconds) = duration {
            body["durationSeconds"] = json!(seconds);
        }
        let response = stack.edge.ban(&stream, &actor.build(), &body).await;
        expect_forbidden(response, why).await;
    }
    // Nor may a viewer lift one.
    let response = stack
        .edge
        .unban(&stream, &another_viewer.build(), &viewer.user_id())
        .await;
    expect_forbidden(response, "").await;
    // So the other moderator and the owner still send.
    for (sender, content) in [(&other_moderator, "still here"), (&owner, "still mine")] {
        expect_sent(stack.edge.send(&stream, &sender.build(), content).await).await;
    }

    // A moderator cannot appoint (or remove) moderators.
    expect_forbidden(
        stack
            .edge
            .add_moderator(&stream, &moderator.build(), &another_viewer.user_id())
            .await,
        "only the stream's owner may appoint",
    )
    .await;
    expect_forbidden(
        stack
            .edge
            .remove_moderator(&stream, &moderator.build(), &other_moderator.user_id())
            .await,
        "",
    )
    .await;

    assert_eq!(stack.service.stored_count(&stream).await, 2);
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
            .edge
            .add_moderator(&stream, &owner_token, &moderator.user_id())
            .await,
        200,
    )
    .await;
    let settings = stack.admin().slow_mode(&stream, 30).await;
    assert_eq!(settings.slow_mode_seconds, 30);
    let viewer = TokenBuilder::new().build();

    expect_sent(stack.edge.send(&stream, &viewer, "first").await).await;
    let errors = expect_too_many(stack.edge.send(&stream, &viewer, "second").await, 30).await;
    assert!(
        errors[1].contains("slow mode") && errors[1].contains("retry after"),
        "{errors:?}"
    );
    let stored = stack.stored(&stream).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].content.as_str(), "first");

    // The owner and moderators are exempt.
    for token in [&owner_token, &moderator.build()] {
        expect_sent(stack.edge.send(&stream, token, "one").await).await;
        expect_sent(stack.edge.send(&stream, token, "two").await).await;
    }
    assert_eq!(stack.service.stored_count(&stream).await, 5);
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

    // A viewer's allowance, then the owner's larger one on the same stream.
    let mut allowed = 0;
    let mut refused = Vec::new();
    for (who, token, limit) in [
        ("viewer", TokenBuilder::new().build(), 3),
        ("owner", owner.build(), 6),
    ] {
        refused.push(exhaust_burst(&stack, &stream, &token, who, limit).await);
        allowed += limit;
        assert_eq!(stack.service.stored_count(&stream).await, allowed);
    }
    let stored = stack.stored(&stream).await;
    assert!(
        !stored
            .iter()
            .any(|message| refused.contains(&message.content.as_str().to_owned())),
        "a refused message was stored"
    );
    stack.finish().await;
}

/// Asserts a 403 envelope whose reason mentions `why` (empty: any reason).
async fn expect_forbidden(response: Response, why: &str) -> Vec<String> {
    let errors = expect_envelope(response, 403).await;
    assert_eq!(errors[0], FORBIDDEN);
    assert!(why.is_empty() || errors[1].contains(why), "{errors:?}");
    errors
}

/// Sends `limit` messages as `who` (each accepted), then one more, which the
/// burst limit refuses naming the limit; returns the refused content.
async fn exhaust_burst(
    stack: &Stack,
    stream: &str,
    token: &str,
    who: &str,
    limit: usize,
) -> String {
    for index in 1..=limit {
        expect_sent(
            stack
                .edge
                .send(stream, token, &format!("{who} {index}"))
                .await,
        )
        .await;
    }
    let refused = format!("{who} {}", limit + 1);
    let errors = expect_too_many(stack.edge.send(stream, token, &refused).await, 30).await;
    assert!(
        errors[1].contains("too many messages")
            && errors[1].contains(&format!("at most {limit} per 30 s")),
        "{errors:?}"
    );
    refused
}

/// Asserts a 429 envelope with a `Retry-After` within the rule's
/// `window_secs`; returns its errors.
async fn expect_too_many(response: Response, window_secs: u64) -> Vec<String> {
    let retry_after = retry_after_secs(&response);
    assert!(
        (1..=window_secs).contains(&retry_after),
        "Retry-After: {retry_after}"
    );
    let errors = expect_envelope(response, 429).await;
    assert_eq!(errors[0], TOO_MANY);
    errors
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
        .upsert_profile(pb::UserProfile {
            user_id: known.user_id(),
            username: Some("johndoe".into()),
            name: Some("John".into()),
            surname: Some("Doe".into()),
            profile_photo: Some(photo),
            availability_status: Some("available".into()),
        })
        .await;

    let message = expect_sent(
        stack
            .edge
            .send(&stream, &known.build(), "with a face")
            .await,
    )
    .await;
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
    let message = expect_sent(
        stack
            .edge
            .send(&stream, &unknown.build(), "no profile")
            .await,
    )
    .await;
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
    let admin = Admin::new(stack.service.channel(), viewer.build());

    let status = admin
        .try_register(&stream, &viewer.user_id())
        .await
        .expect_err("a viewer cannot register streams");
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
    assert!(status.message().contains("'service' role"), "{status:?}");

    // Nothing was registered: a send to that stream is still a 404.
    let errors = expect_envelope(
        stack.edge.send(&stream, &viewer.build(), "mine?").await,
        404,
    )
    .await;
    assert_eq!(errors[0], "Resource not found");
    assert!(stack.stored(&stream).await.is_empty());
    stack.finish().await;
}
