//! The storage contract for chat state (streams, bans, slow-mode
//! bookkeeping, profiles), instantiated once per backend.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use allmine_test_support::backends::{Backend, StoreFixture};
use allmine_test_support::random_object_id;
use chat_service::domain::{
    Ban, ChatState, ProfilePhoto, SlowMode, StreamChat, StreamId, UserId, UserProfile,
    truncate_to_millis,
};
use chrono::Utc;

allmine_test_support::for_each_backend!(
    a_stream_round_trips_and_replaces,
    an_unknown_stream_is_none,
    a_permanent_ban_is_active_until_lifted,
    a_timeout_is_active_only_until_it_expires,
    a_new_ban_replaces_the_old_one_entirely,
    bans_are_per_stream_and_user,
    the_last_send_round_trips,
    a_profile_round_trips_and_a_replacement_clears_old_fields,
    chat_state_survives_a_restart,
);

fn stream_id() -> StreamId {
    StreamId::parse(&random_object_id()).expect("id")
}

fn user_id() -> UserId {
    UserId::parse(&random_object_id()).expect("id")
}

fn now() -> chrono::DateTime<Utc> {
    truncate_to_millis(Utc::now())
}

fn ban(stream: StreamId, user: UserId, expires_in: Option<chrono::Duration>) -> Ban {
    let created = now();
    Ban {
        stream_id: stream,
        user_id: user,
        expires_at: expires_in.map(|duration| created + duration),
        reason: Some("spam".into()),
        banned_by: user_id(),
        created_at: created,
    }
}

async fn a_stream_round_trips_and_replaces(backend: Backend) {
    let fixture = StoreFixture::new(backend);
    let store = fixture.open().await;
    let mut stream = StreamChat::new(stream_id(), user_id(), now());
    store.put_stream(&stream).await.expect("put");
    assert_eq!(
        store.stream(&stream.id).await.expect("get"),
        Some(stream.clone())
    );

    stream.state = ChatState::Closed;
    stream.slow_mode = SlowMode::parse(30).expect("valid");
    stream.moderators = BTreeSet::from([user_id(), user_id()]);
    stream.updated_at = now();
    store.put_stream(&stream).await.expect("replace");
    assert_eq!(
        store.stream(&stream.id).await.expect("get"),
        Some(stream.clone())
    );

    stream.moderators.clear();
    stream.state = ChatState::Ended;
    store.put_stream(&stream).await.expect("replace");
    assert_eq!(store.stream(&stream.id).await.expect("get"), Some(stream));
    drop(store);
    fixture.cleanup().await;
}

async fn an_unknown_stream_is_none(backend: Backend) {
    let fixture = StoreFixture::new(backend);
    let store = fixture.open().await;
    assert_eq!(store.stream(&stream_id()).await.expect("get"), None);
    drop(store);
    fixture.cleanup().await;
}

async fn a_permanent_ban_is_active_until_lifted(backend: Backend) {
    let fixture = StoreFixture::new(backend);
    let store = fixture.open().await;
    let (stream, user) = (stream_id(), user_id());
    let permanent = ban(stream, user, None);
    store.put_ban(&permanent).await.expect("ban");
    let far_future = now() + chrono::Duration::days(3650);
    assert_eq!(
        store
            .active_ban(&stream, &user, far_future)
            .await
            .expect("read"),
        Some(permanent)
    );
    store.remove_ban(&stream, &user).await.expect("unban");
    assert_eq!(
        store.active_ban(&stream, &user, now()).await.expect("read"),
        None
    );
    store
        .remove_ban(&stream, &user)
        .await
        .expect("unbanning twice is fine");
    drop(store);
    fixture.cleanup().await;
}

async fn a_timeout_is_active_only_until_it_expires(backend: Backend) {
    let fixture = StoreFixture::new(backend);
    let store = fixture.open().await;
    let (stream, user) = (stream_id(), user_id());
    let timeout = ban(stream, user, Some(chrono::Duration::seconds(60)));
    store.put_ban(&timeout).await.expect("ban");
    let expiry = timeout.expires_at.expect("a timeout");
    let just_before = expiry - chrono::Duration::milliseconds(1);
    assert_eq!(
        store
            .active_ban(&stream, &user, just_before)
            .await
            .expect("read"),
        Some(timeout)
    );
    assert_eq!(
        store
            .active_ban(&stream, &user, expiry)
            .await
            .expect("read"),
        None
    );
    drop(store);
    fixture.cleanup().await;
}

async fn a_new_ban_replaces_the_old_one_entirely(backend: Backend) {
    let fixture = StoreFixture::new(backend);
    let store = fixture.open().await;
    let (stream, user) = (stream_id(), user_id());
    store
        .put_ban(&ban(stream, user, Some(chrono::Duration::seconds(60))))
        .await
        .expect("timeout");
    // Made permanent, without a reason: neither the old expiry nor the old
    // reason may survive.
    let mut permanent = ban(stream, user, None);
    permanent.reason = None;
    store.put_ban(&permanent).await.expect("ban");
    let later = now() + chrono::Duration::seconds(120);
    assert_eq!(
        store.active_ban(&stream, &user, later).await.expect("read"),
        Some(permanent)
    );
    drop(store);
    fixture.cleanup().await;
}

async fn bans_are_per_stream_and_user(backend: Backend) {
    let fixture = StoreFixture::new(backend);
    let store = fixture.open().await;
    let (stream, other_stream, user, other_user) = (stream_id(), stream_id(), user_id(), user_id());
    store.put_ban(&ban(stream, user, None)).await.expect("ban");
    assert!(
        store
            .active_ban(&other_stream, &user, now())
            .await
            .expect("read")
            .is_none()
    );
    assert!(
        store
            .active_ban(&stream, &other_user, now())
            .await
            .expect("read")
            .is_none()
    );
    drop(store);
    fixture.cleanup().await;
}

async fn the_last_send_round_trips(backend: Backend) {
    let fixture = StoreFixture::new(backend);
    let store = fixture.open().await;
    let (stream, user) = (stream_id(), user_id());
    assert_eq!(store.last_sent(&stream, &user).await.expect("read"), None);
    let first = now();
    store
        .record_sent(&stream, &user, first, Duration::from_secs(30))
        .await
        .expect("record");
    assert_eq!(
        store.last_sent(&stream, &user).await.expect("read"),
        Some(first)
    );
    let second = first + chrono::Duration::seconds(5);
    store
        .record_sent(&stream, &user, second, Duration::from_secs(30))
        .await
        .expect("record");
    assert_eq!(
        store.last_sent(&stream, &user).await.expect("read"),
        Some(second)
    );
    drop(store);
    fixture.cleanup().await;
}

async fn a_profile_round_trips_and_a_replacement_clears_old_fields(backend: Backend) {
    let fixture = StoreFixture::new(backend);
    let store = fixture.open().await;
    let user = user_id();
    let full = UserProfile {
        user_id: user,
        username: Some("johndoe".into()),
        name: Some("John".into()),
        surname: Some("Doe".into()),
        profile_photo: Some(ProfilePhoto {
            id: "507f1f77bcf86cd799439012".into(),
            url: "https://example.com/uploads/images/profile.jpg".into(),
            media_type: "image".into(),
            variants: BTreeMap::from([("40".into(), "https://cdn.example.com/40.webp".into())]),
            created_at: Some(now()),
            updated_at: Some(now()),
        }),
        availability_status: Some("available".into()),
    };
    store.put_profile(&full).await.expect("put");
    assert_eq!(store.profile(&user).await.expect("get"), Some(full));

    let sparse = UserProfile {
        user_id: user,
        username: Some("john".into()),
        name: None,
        surname: None,
        profile_photo: None,
        availability_status: None,
    };
    store.put_profile(&sparse).await.expect("replace");
    assert_eq!(store.profile(&user).await.expect("get"), Some(sparse));
    assert_eq!(store.profile(&user_id()).await.expect("get"), None);
    drop(store);
    fixture.cleanup().await;
}

async fn chat_state_survives_a_restart(backend: Backend) {
    let fixture = StoreFixture::new(backend);
    let stream = StreamChat::new(stream_id(), user_id(), now());
    let banned = ban(stream.id, user_id(), None);
    {
        let store = fixture.open().await;
        store.put_stream(&stream).await.expect("put");
        store.put_ban(&banned).await.expect("ban");
    }
    let store = fixture.open().await;
    assert_eq!(
        store.stream(&stream.id).await.expect("get"),
        Some(stream.clone())
    );
    assert_eq!(
        store
            .active_ban(&stream.id, &banned.user_id, now())
            .await
            .expect("read"),
        Some(banned)
    );
    drop(store);
    fixture.cleanup().await;
}
