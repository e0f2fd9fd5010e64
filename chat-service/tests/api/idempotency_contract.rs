//! The storage contract for idempotency keys (part of the storage contract
//! suite): every store must pass these, instantiated once per backend.

use std::time::Duration;

use allmine_test_support::backends::{Backend, StoreFixture};
use allmine_test_support::random_object_id;
use chat_service::domain::{
    ChatMessage, IdempotencyKey, MessageContent, ObjectIdGenerator, Sender, StreamId, UserId,
    truncate_to_millis,
};
use chat_service::storage::{KeyedAppend, SharedStore};
use chrono::Utc;

allmine_test_support::for_each_backend!(
    the_first_keyed_append_wins_and_later_ones_get_its_message,
    a_stored_key_returns_its_original_message,
    concurrent_appends_with_one_key_store_exactly_one_message,
    the_same_key_from_another_user_or_in_another_stream_is_independent,
    a_key_expires_after_its_window_and_is_then_free,
    keys_survive_a_restart,
    a_deleted_message_stays_deleted_when_its_key_is_replayed,
);

const WINDOW: Duration = Duration::from_secs(3_600);

fn key(text: &str) -> IdempotencyKey {
    IdempotencyKey::parse(text).expect("valid key")
}

fn new_id<T>(parse: fn(&str) -> Result<T, chat_service::domain::ObjectIdError>) -> T {
    parse(&random_object_id()).expect("id")
}

/// A message created now (keys expire relative to real time on every store).
fn message(ids: &ObjectIdGenerator, stream: StreamId, user: UserId, text: &str) -> ChatMessage {
    let now = truncate_to_millis(Utc::now());
    ChatMessage {
        id: ids.next(now).into(),
        stream_id: stream,
        content: MessageContent::parse(text).expect("valid content"),
        sender: Sender::anonymous(user),
        created_at: now,
        updated_at: now,
    }
}

async fn keyed(
    store: &SharedStore,
    stream: StreamId,
    user: UserId,
    text: &str,
) -> Option<ChatMessage> {
    store
        .keyed_message(&stream, &user, &key(text), Utc::now())
        .await
        .expect("lookup")
}

async fn the_first_keyed_append_wins_and_later_ones_get_its_message(backend: Backend) {
    let fixture = StoreFixture::new(backend);
    let store = fixture.open().await;
    let ids = ObjectIdGenerator::new();
    let (stream, user) = (new_id(StreamId::parse), new_id(UserId::parse));
    let first = message(&ids, stream, user, "first");
    let retry = message(&ids, stream, user, "first");

    let stored = store.append_keyed(&first, &key("k-1"), WINDOW).await;
    assert_eq!(stored.expect("append"), KeyedAppend::Stored);
    let again = store.append_keyed(&retry, &key("k-1"), WINDOW).await;
    assert_eq!(
        again.expect("append"),
        KeyedAppend::Existing(Box::new(first.clone()))
    );

    assert_eq!(store.newest(&stream, 10).await.expect("read"), vec![first]);
    drop(store);
    fixture.cleanup().await;
}

async fn a_stored_key_returns_its_original_message(backend: Backend) {
    let fixture = StoreFixture::new(backend);
    let store = fixture.open().await;
    let ids = ObjectIdGenerator::new();
    let (stream, user) = (new_id(StreamId::parse), new_id(UserId::parse));
    assert_eq!(keyed(&store, stream, user, "k-2").await, None);

    let sent = message(&ids, stream, user, "original");
    store
        .append_keyed(&sent, &key("k-2"), WINDOW)
        .await
        .expect("append");
    assert_eq!(keyed(&store, stream, user, "k-2").await, Some(sent));
    assert_eq!(keyed(&store, stream, user, "k-other").await, None);
    drop(store);
    fixture.cleanup().await;
}

async fn concurrent_appends_with_one_key_store_exactly_one_message(backend: Backend) {
    const SENDERS: usize = 16;
    let fixture = StoreFixture::new(backend);
    let store = fixture.open().await;
    let ids = ObjectIdGenerator::new();
    let (stream, user) = (new_id(StreamId::parse), new_id(UserId::parse));
    let attempts: Vec<ChatMessage> = (0..SENDERS)
        .map(|_| message(&ids, stream, user, "once"))
        .collect();

    let outcomes = futures::future::join_all(attempts.iter().map(|attempt| {
        let store = store.clone();
        async move { store.append_keyed(attempt, &key("k-race"), WINDOW).await }
    }))
    .await;

    let mut winners = Vec::new();
    let mut answered = Vec::new();
    for (attempt, outcome) in attempts.iter().zip(outcomes) {
        match outcome.expect("append") {
            KeyedAppend::Stored => {
                winners.push(attempt.clone());
                answered.push(attempt.clone());
            }
            KeyedAppend::Existing(original) => answered.push(*original),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one append stores");
    assert!(
        answered.iter().all(|message| *message == winners[0]),
        "every attempt is answered with the one stored message"
    );
    assert_eq!(store.newest(&stream, 100).await.expect("read"), winners);
    drop(store);
    fixture.cleanup().await;
}

async fn the_same_key_from_another_user_or_in_another_stream_is_independent(backend: Backend) {
    let fixture = StoreFixture::new(backend);
    let store = fixture.open().await;
    let ids = ObjectIdGenerator::new();
    let (stream, other_stream) = (new_id(StreamId::parse), new_id(StreamId::parse));
    let (user, other_user) = (new_id(UserId::parse), new_id(UserId::parse));
    let sends = [
        message(&ids, stream, user, "mine"),
        message(&ids, stream, other_user, "theirs"),
        message(&ids, other_stream, user, "mine elsewhere"),
    ];
    for sent in &sends {
        let outcome = store.append_keyed(sent, &key("shared"), WINDOW).await;
        assert_eq!(outcome.expect("append"), KeyedAppend::Stored);
    }
    for sent in &sends {
        let found = keyed(&store, sent.stream_id, sent.sender.id, "shared").await;
        assert_eq!(found.as_ref(), Some(sent));
    }
    assert_eq!(store.newest(&stream, 10).await.expect("read").len(), 2);
    assert_eq!(
        store.newest(&other_stream, 10).await.expect("read").len(),
        1
    );
    drop(store);
    fixture.cleanup().await;
}

async fn a_key_expires_after_its_window_and_is_then_free(backend: Backend) {
    let fixture = StoreFixture::new(backend);
    let store = fixture.open().await;
    let ids = ObjectIdGenerator::new();
    let (stream, user) = (new_id(StreamId::parse), new_id(UserId::parse));
    let window = Duration::from_secs(1);
    let first = message(&ids, stream, user, "short-lived key");
    store
        .append_keyed(&first, &key("k-exp"), window)
        .await
        .expect("append");

    // Hang detector only: the window is 1 s; CQL TTLs have second precision.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while keyed(&store, stream, user, "k-exp").await.is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the key never expired"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let second = message(&ids, stream, user, "a new message");
    let outcome = store.append_keyed(&second, &key("k-exp"), window).await;
    assert_eq!(outcome.expect("append"), KeyedAppend::Stored);
    assert_eq!(keyed(&store, stream, user, "k-exp").await, Some(second));
    drop(store);
    fixture.cleanup().await;
}

async fn keys_survive_a_restart(backend: Backend) {
    let fixture = StoreFixture::new(backend);
    let ids = ObjectIdGenerator::new();
    let (stream, user) = (new_id(StreamId::parse), new_id(UserId::parse));
    let sent = message(&ids, stream, user, "before restart");
    {
        let store = fixture.open().await;
        store
            .append_keyed(&sent, &key("k-restart"), WINDOW)
            .await
            .expect("append");
    }
    let reopened = fixture.open().await;
    assert_eq!(
        keyed(&reopened, stream, user, "k-restart").await,
        Some(sent.clone())
    );
    let retry = message(&ids, stream, user, "before restart");
    let outcome = reopened
        .append_keyed(&retry, &key("k-restart"), WINDOW)
        .await;
    assert_eq!(
        outcome.expect("append"),
        KeyedAppend::Existing(Box::new(sent))
    );
    drop(reopened);
    fixture.cleanup().await;
}

async fn a_deleted_message_stays_deleted_when_its_key_is_replayed(backend: Backend) {
    let fixture = StoreFixture::new(backend);
    let store = fixture.open().await;
    let ids = ObjectIdGenerator::new();
    let (stream, user) = (new_id(StreamId::parse), new_id(UserId::parse));
    let sent = message(&ids, stream, user, "soon deleted");
    store
        .append_keyed(&sent, &key("k-deleted"), WINDOW)
        .await
        .expect("append");
    store.delete(&sent).await.expect("delete");

    // The replay answers what the first attempt answered...
    assert_eq!(
        keyed(&store, stream, user, "k-deleted").await,
        Some(sent.clone())
    );
    let retry = message(&ids, stream, user, "soon deleted");
    let outcome = store.append_keyed(&retry, &key("k-deleted"), WINDOW).await;
    assert_eq!(
        outcome.expect("append"),
        KeyedAppend::Existing(Box::new(sent))
    );
    // ...and the message stays deleted.
    assert_eq!(store.newest(&stream, 10).await.expect("read"), Vec::new());
    drop(store);
    fixture.cleanup().await;
}

/// ScyllaDB writes a key and its message separately: a send that died
/// between the two (simulated by writing the key row alone) is completed by
/// whoever finds the key, so a replayed message is always readable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_scylla_a_key_whose_message_was_never_written_is_completed_by_the_retry() {
    use allmine_test_support::backends::{scylla_nodes, scylla_settings};
    use chat_service::storage::codec::encode_message;
    use chat_service::storage::scylla::ScyllaStore;

    let keyspace = format!("chat_test_{}", random_object_id());
    let store = ScyllaStore::connect(&scylla_settings(&keyspace, Duration::from_secs(60)))
        .await
        .expect("a CQL database at CHAT_SCYLLA_NODES");
    let session = ::scylla::client::session_builder::SessionBuilder::new()
        .known_nodes(scylla_nodes())
        .build()
        .await
        .expect("a CQL session");
    let write_key_only = |message: &ChatMessage, key: &'static str| {
        let session = &session;
        let keyspace = &keyspace;
        let values = (
            message.stream_id.to_string(),
            message.sender.id.to_string(),
            key,
            encode_message(message),
        );
        async move {
            session
                .query_unpaged(
                    format!(
                        "INSERT INTO {keyspace}.idempotency_keys \
                         (stream_id, user_id, idempotency_key, message) VALUES (?, ?, ?, ?) USING TTL 3600"
                    ),
                    values,
                )
                .await
                .expect("key row written");
        }
    };
    let ids = ObjectIdGenerator::new();
    let (stream, user) = (new_id(StreamId::parse), new_id(UserId::parse));
    let store: SharedStore = std::sync::Arc::new(store);

    // A retry that loses the claim to the interrupted send.
    let interrupted = message(&ids, stream, user, "interrupted");
    write_key_only(&interrupted, "k-half").await;
    assert_eq!(store.newest(&stream, 10).await.expect("read"), Vec::new());
    let retry = message(&ids, stream, user, "interrupted");
    let outcome = store.append_keyed(&retry, &key("k-half"), WINDOW).await;
    assert_eq!(
        outcome.expect("append"),
        KeyedAppend::Existing(Box::new(interrupted.clone()))
    );
    assert_eq!(
        store.newest(&stream, 10).await.expect("read"),
        vec![interrupted]
    );

    // A retry answered by the lookup before the rules.
    let other_stream = new_id(StreamId::parse);
    let interrupted = message(&ids, other_stream, user, "interrupted too");
    write_key_only(&interrupted, "k-half-2").await;
    assert_eq!(
        keyed(&store, other_stream, user, "k-half-2").await,
        Some(interrupted.clone())
    );
    assert_eq!(
        store.newest(&other_stream, 10).await.expect("read"),
        vec![interrupted]
    );

    session
        .query_unpaged(format!("DROP KEYSPACE IF EXISTS {keyspace}"), ())
        .await
        .expect("keyspace dropped");
}

/// With message retention (`CHAT_SCYLLA_TTL_SECS`) shorter than the
/// idempotency window, a retry after the message expired answers the
/// original but does not write it back into history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_scylla_a_replay_after_retention_does_not_bring_the_message_back() {
    use allmine_test_support::backends::scylla_settings;
    use chat_service::storage::scylla::ScyllaStore;

    let keyspace = format!("chat_test_{}", random_object_id());
    let mut settings = scylla_settings(&keyspace, Duration::from_secs(60));
    settings.ttl = Some(Duration::from_secs(2));
    let store: SharedStore = std::sync::Arc::new(
        ScyllaStore::connect(&settings)
            .await
            .expect("a CQL database at CHAT_SCYLLA_NODES"),
    );
    let ids = ObjectIdGenerator::new();
    let (stream, user) = (new_id(StreamId::parse), new_id(UserId::parse));
    let sent = message(&ids, stream, user, "short retention");
    store
        .append_keyed(&sent, &key("k-retention"), WINDOW)
        .await
        .expect("append");

    // Hang detector only: retention is 2 s.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !store.newest(&stream, 10).await.expect("read").is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the message never expired"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(keyed(&store, stream, user, "k-retention").await, Some(sent));
    assert_eq!(store.newest(&stream, 10).await.expect("read"), Vec::new());

    let scylla_store = ScyllaStore::connect(&settings).await.expect("connect");
    scylla_store
        .drop_keyspace()
        .await
        .expect("keyspace dropped");
}
