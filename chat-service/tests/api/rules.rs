//! The stream chat rules over gRPC, on both stores: registration, open and
//! closed chats, bans and timeouts, moderators, slow mode, the burst limit,
//! sender snapshots, and the admin service's role check. No refused send
//! stores anything.

use std::time::Duration;

use allmine_chat_proto::v1 as pb;
use allmine_test_support::backends::Backend;
use allmine_test_support::{TokenBuilder, random_object_id};
use tonic::{Code, Status};
use tonic_types::StatusExt;

use allmine_test_support::grpc::Admin;

use crate::helpers::{spawn_service_for, spawn_service_for_with};

allmine_test_support::for_each_backend!(
    an_unregistered_stream_is_not_found,
    a_closed_or_ended_chat_refuses_messages,
    a_banned_user_is_refused_until_unbanned,
    a_timeout_ends_by_itself,
    who_may_ban_whom,
    only_the_owner_manages_moderators,
    slow_mode_holds_viewers_back_but_not_owner_or_moderators,
    the_burst_limit_refuses_the_message_after_the_allowance,
    the_sender_snapshot_comes_from_the_stored_profile_else_the_claims,
    the_admin_service_needs_the_service_role,
    registration_is_idempotent_for_the_same_owner_only,
);

fn assert_code(result: Result<impl std::fmt::Debug, Status>, code: Code, fragment: &str) -> Status {
    let status = result.expect_err("must be refused");
    assert_eq!(status.code(), code, "{status:?}");
    assert!(
        status.message().contains(fragment),
        "expected {fragment:?} in {:?}",
        status.message()
    );
    status
}

async fn an_unregistered_stream_is_not_found(backend: Backend) {
    let service = spawn_service_for(backend).await;
    let stream = random_object_id();
    assert_code(
        service.send_as_anyone(&stream, "hi").await,
        Code::NotFound,
        "not registered",
    );
    assert_eq!(service.stored_count(&stream).await, 0);
    service.finish().await;
}

async fn a_closed_or_ended_chat_refuses_messages(backend: Backend) {
    let service = spawn_service_for(backend).await;
    let stream = service.open_stream().await;
    service
        .admin()
        .try_set_open(&stream, false)
        .await
        .expect("closed");
    assert_code(
        service.send_as_anyone(&stream, "hi").await,
        Code::FailedPrecondition,
        "closed",
    );
    assert_eq!(service.stored_count(&stream).await, 0);

    service
        .admin()
        .try_set_open(&stream, true)
        .await
        .expect("reopened");
    service
        .send_as_anyone(&stream, "hi")
        .await
        .expect("accepted once open");

    service.admin().try_end(&stream).await.expect("ended");
    assert_code(
        service.send_as_anyone(&stream, "hi").await,
        Code::FailedPrecondition,
        "ended",
    );
    assert_code(
        service.admin().try_set_open(&stream, true).await,
        Code::FailedPrecondition,
        "ended",
    );
    assert_eq!(service.stored_count(&stream).await, 1);
    service.finish().await;
}

async fn a_banned_user_is_refused_until_unbanned(backend: Backend) {
    let service = spawn_service_for(backend).await;
    let (stream, owner) = service.open_stream_with_owner().await;
    let viewer = TokenBuilder::new();
    let ban = service
        .ban(&owner, &stream, &viewer.user_id(), None)
        .await
        .expect("banned");
    assert_eq!(ban.expires_at, None);
    assert_eq!(ban.banned_by, owner.user_id());

    assert_code(
        service.send_as(&viewer, &stream, "hi").await,
        Code::PermissionDenied,
        "permanently",
    );
    assert_eq!(service.stored_count(&stream).await, 0);

    service
        .unban(&owner, &stream, &viewer.user_id())
        .await
        .expect("unbanned");
    service
        .send_as(&viewer, &stream, "hi again")
        .await
        .expect("accepted after unban");
    service.finish().await;
}

async fn a_timeout_ends_by_itself(backend: Backend) {
    let service = spawn_service_for(backend).await;
    let (stream, owner) = service.open_stream_with_owner().await;
    let viewer = TokenBuilder::new();
    let ban = service
        .ban(&owner, &stream, &viewer.user_id(), Some(1))
        .await
        .expect("timed out");
    assert!(ban.expires_at.is_some());
    assert_code(
        service.send_as(&viewer, &stream, "hi").await,
        Code::PermissionDenied,
        "until",
    );
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    service
        .send_as(&viewer, &stream, "back")
        .await
        .expect("accepted after the timeout");
    assert_eq!(service.stored_count(&stream).await, 1);
    service.finish().await;
}

async fn who_may_ban_whom(backend: Backend) {
    let service = spawn_service_for(backend).await;
    let (stream, owner) = service.open_stream_with_owner().await;
    let (moderator, other_moderator, viewer) = (
        TokenBuilder::new(),
        TokenBuilder::new(),
        TokenBuilder::new(),
    );
    for appointed in [&moderator, &other_moderator] {
        service
            .add_moderator(&owner, &stream, &appointed.user_id())
            .await
            .expect("appointed");
    }

    assert_code(
        service
            .ban(&viewer, &stream, &TokenBuilder::new().user_id(), None)
            .await,
        Code::PermissionDenied,
        "owner and moderators",
    );
    assert_code(
        service
            .ban(&moderator, &stream, &other_moderator.user_id(), None)
            .await,
        Code::PermissionDenied,
        "another moderator",
    );
    for actor in [&owner, &moderator] {
        assert_code(
            service.ban(actor, &stream, &owner.user_id(), None).await,
            Code::PermissionDenied,
            "owner cannot",
        );
    }
    assert_code(
        service.unban(&viewer, &stream, &moderator.user_id()).await,
        Code::PermissionDenied,
        "owner and moderators",
    );
    service
        .ban(&moderator, &stream, &viewer.user_id(), Some(60))
        .await
        .expect("a moderator bans a viewer");
    service
        .ban(&owner, &stream, &other_moderator.user_id(), None)
        .await
        .expect("the owner bans a moderator");
    assert_code(
        service
            .ban(&owner, &random_object_id(), &viewer.user_id(), None)
            .await,
        Code::NotFound,
        "not registered",
    );
    let status = assert_code(
        service
            .ban(&owner, &stream, &viewer.user_id(), Some(0))
            .await,
        Code::InvalidArgument,
        "duration_seconds",
    );
    assert!(status.get_details_bad_request().is_some());
    service.finish().await;
}

async fn only_the_owner_manages_moderators(backend: Backend) {
    let service = spawn_service_for(backend).await;
    let (stream, owner) = service.open_stream_with_owner().await;
    let moderator = TokenBuilder::new();
    let updated = service
        .add_moderator(&owner, &stream, &moderator.user_id())
        .await
        .expect("appointed");
    assert_eq!(updated.moderator_ids, [moderator.user_id()]);
    assert_code(
        service
            .add_moderator(&moderator, &stream, &TokenBuilder::new().user_id())
            .await,
        Code::PermissionDenied,
        "only the stream's owner",
    );
    assert_code(
        service
            .add_moderator(&owner, &stream, &owner.user_id())
            .await,
        Code::InvalidArgument,
        "owner",
    );
    let removed = service
        .remove_moderator(&owner, &stream, &moderator.user_id())
        .await
        .expect("removed");
    assert!(removed.moderator_ids.is_empty());
    service.finish().await;
}

async fn slow_mode_holds_viewers_back_but_not_owner_or_moderators(backend: Backend) {
    let service = spawn_service_for(backend).await;
    let (stream, owner) = service.open_stream_with_owner().await;
    let moderator = TokenBuilder::new();
    service
        .add_moderator(&owner, &stream, &moderator.user_id())
        .await
        .expect("appointed");
    assert_code(
        service.admin().try_slow_mode(&stream, 121).await,
        Code::InvalidArgument,
        "120",
    );
    service
        .admin()
        .try_slow_mode(&stream, 30)
        .await
        .expect("slow mode on");

    let viewer = TokenBuilder::new();
    service
        .send_as(&viewer, &stream, "first")
        .await
        .expect("first is accepted");
    let status = assert_code(
        service.send_as(&viewer, &stream, "second").await,
        Code::ResourceExhausted,
        "slow mode",
    );
    let retry = status
        .get_details_retry_info()
        .and_then(|info| info.retry_delay)
        .expect("a retry delay");
    assert!(
        retry > Duration::ZERO && retry <= Duration::from_secs(30),
        "{retry:?}"
    );
    assert!(
        status.message().contains("retry after"),
        "{}",
        status.message()
    );

    for privileged in [&owner, &moderator] {
        service
            .send_as(privileged, &stream, "one")
            .await
            .expect("exempt");
        service
            .send_as(privileged, &stream, "two")
            .await
            .expect("exempt");
    }
    assert_eq!(service.stored_count(&stream).await, 5);
    service.finish().await;
}

async fn the_burst_limit_refuses_the_message_after_the_allowance(backend: Backend) {
    let service = spawn_service_for_with(backend, |config| {
        config.burst_viewer_limit = 3;
        config.burst_privileged_limit = 5;
        config.burst_window_secs = 30;
    })
    .await;
    let (stream, owner) = service.open_stream_with_owner().await;
    // A viewer's allowance, then the owner's larger one on the same stream.
    let mut allowed = 0;
    for (who, sender, limit) in [("viewer", TokenBuilder::new(), 3), ("owner", owner, 5)] {
        for index in 0..limit {
            service
                .send_as(&sender, &stream, &format!("{who} {index}"))
                .await
                .expect("within the allowance");
        }
        let status = assert_code(
            service.send_as(&sender, &stream, "one too many").await,
            Code::ResourceExhausted,
            "too many messages",
        );
        assert!(status.get_details_retry_info().is_some(), "{who}");
        allowed += limit;
    }
    assert_eq!(service.stored_count(&stream).await, allowed);
    service.finish().await;
}

async fn the_sender_snapshot_comes_from_the_stored_profile_else_the_claims(backend: Backend) {
    let service = spawn_service_for(backend).await;
    let stream = service.open_stream().await;
    let with_profile = TokenBuilder::new().profile("claimed", "Claimed", "Name");
    let photo = pb::ProfilePhoto {
        id: "507f1f77bcf86cd799439012".into(),
        url: "https://example.com/uploads/images/profile.jpg".into(),
        r#type: "image".into(),
        variants: [(
            "40".to_owned(),
            "https://cdn.example.com/40.webp".to_owned(),
        )]
        .into(),
        created_at: Some(prost_types::Timestamp {
            seconds: 1_705_314_600,
            nanos: 0,
        }),
        updated_at: Some(prost_types::Timestamp {
            seconds: 1_705_321_800,
            nanos: 0,
        }),
    };
    let profile = pb::UserProfile {
        user_id: with_profile.user_id(),
        username: Some("johndoe".into()),
        name: Some("John".into()),
        surname: Some("Doe".into()),
        profile_photo: Some(photo.clone()),
        availability_status: Some("available".into()),
    };
    service.admin().upsert_profile(profile).await;

    let sender = service
        .send_as(&with_profile, &stream, "hi")
        .await
        .expect("accepted")
        .sender
        .expect("sender");
    assert_eq!(
        sender.username.as_deref(),
        Some("johndoe"),
        "the stored profile wins over claims"
    );
    assert_eq!(sender.profile_photo, Some(photo));
    assert_eq!(sender.availability_status.as_deref(), Some("available"));

    let claims_only = TokenBuilder::new().profile("alice", "Alice", "Smith");
    let sender = service
        .send_as(&claims_only, &stream, "hi")
        .await
        .expect("accepted")
        .sender
        .expect("sender");
    assert_eq!(sender.username.as_deref(), Some("alice"));
    assert_eq!(sender.profile_photo, None);
    service.finish().await;
}

async fn the_admin_service_needs_the_service_role(backend: Backend) {
    let mut service = spawn_service_for(backend).await;
    let user = TokenBuilder::new();
    let as_user = Admin::new(service.channel(), user.build());
    assert_code(
        as_user
            .try_register(&random_object_id(), &user.user_id())
            .await,
        Code::PermissionDenied,
        "service",
    );
    assert_code(
        as_user
            .try_upsert_profile(pb::UserProfile {
                user_id: user.user_id(),
                ..Default::default()
            })
            .await,
        Code::PermissionDenied,
        "service",
    );
    let unauthenticated = tonic::Request::new(pb::GetStreamRequest {
        stream_id: random_object_id(),
    });
    assert_code(
        service.admin.get_stream(unauthenticated).await,
        Code::Unauthenticated,
        "authorization",
    );
    service.finish().await;
}

async fn registration_is_idempotent_for_the_same_owner_only(backend: Backend) {
    let service = spawn_service_for(backend).await;
    let (stream, owner) = service.open_stream_with_owner().await;
    let registered = service
        .admin()
        .try_register(&stream, &owner.user_id())
        .await
        .expect("idempotent");
    assert_eq!(registered.owner_id, owner.user_id());
    assert_eq!(registered.state, pb::ChatState::Open as i32);
    assert_code(
        service
            .admin()
            .try_register(&stream, &random_object_id())
            .await,
        Code::AlreadyExists,
        "another owner",
    );
    service.finish().await;
}
