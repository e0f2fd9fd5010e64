//! Records written by an earlier release read back the same.
//!
//! `tests/fixtures/stored-records/` holds what the release whose stores
//! encoded records as the public protobuf messages wrote (commit ecfb292):
//! an embedded data directory and, for ScyllaDB, the raw blob values of each
//! kind of record. The stores now own their record types; these tests prove
//! that today's code reads the old bytes as the same domain values.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chat_service::domain::{
    Ban, ChatMessage, ChatState, IdempotencyKey, MessageContent, MessageId, ModerationEvent,
    ModerationKind, ObjectId, ProfilePhoto, Sender, SlowMode, StreamChat, StreamId, UserId,
    UserProfile,
};
use chat_service::storage::{SharedStore, StorageError};
use chrono::{DateTime, Utc};

/// 2026-01-01T00:00:00Z, the fixture's epoch.
const BASE_MS: i64 = 1_767_225_600_000;

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/stored-records")
}

fn at(millis: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(millis).expect("valid time")
}

/// An id whose timestamp is `millis`' second (as generated ids are), with a
/// distinguishing `serial`.
fn object_id(millis: i64, serial: u64) -> ObjectId {
    let seconds = u32::try_from(millis / 1000).expect("seconds fit");
    ObjectId::parse(&format!("{seconds:08x}{serial:016x}")).expect("id")
}

fn user(serial: u64) -> UserId {
    UserId::parse(&object_id(BASE_MS, 0x00aa_0000 + serial).to_string()).expect("id")
}

/// What the fixture holds, as domain values.
struct Contents {
    stream: StreamChat,
    /// Newest last.
    messages: Vec<ChatMessage>,
    /// The message stored with `key` (also in `messages`).
    keyed: (IdempotencyKey, ChatMessage),
    timeout: Ban,
    permanent_ban: Ban,
    profile: UserProfile,
    last_sent: (UserId, DateTime<Utc>),
    /// Oldest first.
    events: Vec<ModerationEvent>,
}

fn photo() -> ProfilePhoto {
    ProfilePhoto {
        id: "photo-1".into(),
        url: "https://cdn.example.com/u/1.jpg".into(),
        media_type: "image/jpeg".into(),
        variants: BTreeMap::from([
            ("40".into(), "https://cdn.example.com/u/1-40.jpg".into()),
            ("80".into(), "https://cdn.example.com/u/1-80.jpg".into()),
        ]),
        // Sub-millisecond on purpose: photo times keep nanoseconds.
        created_at: Some(DateTime::from_timestamp(1_700_000_000, 123_456_789).expect("valid time")),
        updated_at: None,
    }
}

fn contents() -> Contents {
    let stream_id = StreamId::parse(&object_id(BASE_MS, 0x5000).to_string()).expect("id");
    let owner = user(1);
    let moderator = user(2);
    let speaker = user(3);
    let banned = user(4);
    let profile = UserProfile {
        user_id: speaker,
        username: Some("ada".into()),
        name: Some("Ada".into()),
        surname: Some("Lovelace".into()),
        profile_photo: Some(photo()),
        availability_status: Some("online".into()),
    };
    let message = |serial: u64, created_ms: i64, text: &str, sender: Sender| ChatMessage {
        id: MessageId::parse(&object_id(created_ms, serial).to_string()).expect("id"),
        stream_id,
        content: MessageContent::parse(text).expect("valid content"),
        sender,
        created_at: at(created_ms),
        updated_at: at(created_ms + 7),
    };
    let messages = vec![
        message(1, BASE_MS + 1_000, "hello", profile.to_sender()),
        message(
            2,
            BASE_MS + 1_000,
            "same millisecond",
            Sender::anonymous(owner),
        ),
        message(3, BASE_MS + 2_500, "¡ünïcödé! 🎉", profile.to_sender()),
    ];
    let keyed = (
        IdempotencyKey::parse("send-42").expect("valid key"),
        message(4, BASE_MS + 3_000, "sent once", profile.to_sender()),
    );
    let mut all_messages = messages;
    all_messages.push(keyed.1.clone());
    let stream = StreamChat {
        id: stream_id,
        owner,
        state: ChatState::Closed,
        slow_mode: SlowMode::parse(30).expect("valid"),
        moderators: BTreeSet::from([moderator]),
        created_at: at(BASE_MS),
        updated_at: at(BASE_MS + 500),
    };
    let ban = |user_id: UserId, expires_at: Option<DateTime<Utc>>, reason: Option<&str>| Ban {
        stream_id,
        user_id,
        expires_at,
        reason: reason.map(Into::into),
        banned_by: moderator,
        created_at: at(BASE_MS + 4_000),
    };
    let event = |serial: u64, created_ms: i64, kind: ModerationKind| ModerationEvent {
        id: object_id(created_ms, 0xe000 + serial),
        stream_id,
        created_at: at(created_ms),
        kind,
    };
    let events = vec![
        event(
            1,
            BASE_MS + 4_000,
            ModerationKind::UserBanned {
                user_id: banned,
                expires_at: Some(at(BASE_MS + 86_400_000)),
            },
        ),
        event(
            2,
            BASE_MS + 4_100,
            ModerationKind::UserBanned {
                user_id: owner,
                expires_at: None,
            },
        ),
        event(
            3,
            BASE_MS + 5_000,
            ModerationKind::MessageDeleted {
                message_id: all_messages[1].id,
                deleted_by: moderator,
            },
        ),
        event(
            4,
            BASE_MS + 6_000,
            ModerationKind::ChatStateChanged(ChatState::Closed),
        ),
    ];
    Contents {
        timeout: ban(banned, Some(at(BASE_MS + 86_400_000)), Some("spam")),
        permanent_ban: ban(owner, None, None),
        last_sent: (speaker, at(BASE_MS + 2_500)),
        stream,
        messages: all_messages,
        keyed,
        profile,
        events,
    }
}

/// Writes every record of `contents` through the store's trait.
async fn write_contents(store: &SharedStore, contents: &Contents, key_window: Duration) {
    store.put_stream(&contents.stream).await.expect("stream");
    store.put_profile(&contents.profile).await.expect("profile");
    for message in &contents.messages[..contents.messages.len() - 1] {
        store.append(message).await.expect("message");
    }
    let (key, keyed) = &contents.keyed;
    store
        .append_keyed(keyed, key, key_window)
        .await
        .expect("keyed message");
    store.put_ban(&contents.timeout).await.expect("timeout");
    store.put_ban(&contents.permanent_ban).await.expect("ban");
    let (user, sent_at) = contents.last_sent;
    store
        .record_sent(
            &contents.stream.id,
            &user,
            sent_at,
            Duration::from_secs(3_600),
        )
        .await
        .expect("last sent");
    for event in &contents.events {
        store.append_event(event).await.expect("event");
    }
}

/// The ScyllaDB columns that hold records, each as row id to bytes.
const BLOB_COLUMNS: [(&str, &str, &str); 4] = [
    (
        "messages.sender_photo",
        "messages",
        "message_id, sender_photo",
    ),
    (
        "user_profiles.profile_photo",
        "user_profiles",
        "user_id, profile_photo",
    ),
    ("stream_events.event", "stream_events", "event_id, event"),
    (
        "idempotency_keys.message",
        "idempotency_keys",
        "idempotency_key, message",
    ),
];

/// Every non-null record in `keyspace`'s [`BLOB_COLUMNS`], by column.
async fn blob_columns(
    session: &scylla::client::session::Session,
    keyspace: &str,
) -> BTreeMap<&'static str, BTreeMap<String, Vec<u8>>> {
    let mut columns = BTreeMap::new();
    for (column, table, selection) in BLOB_COLUMNS {
        let rows = session
            .query_unpaged(format!("SELECT {selection} FROM {keyspace}.{table}"), ())
            .await
            .expect("query")
            .into_rows_result()
            .expect("rows");
        let blobs = rows
            .rows::<(String, Option<Vec<u8>>)>()
            .expect("typed rows")
            .filter_map(|row| {
                let (id, blob) = row.expect("row");
                blob.map(|blob| (id, blob))
            })
            .collect();
        columns.insert(column, blobs);
    }
    columns
}

/// A copy of the fixture's embedded data directory (opening a store writes
/// to its directory; the committed fixture stays as it was).
fn copy_of_embedded_fixture() -> tempfile::TempDir {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).expect("create dir");
        for entry in std::fs::read_dir(from).expect("read dir") {
            let entry = entry.expect("entry");
            let target = to.join(entry.file_name());
            if entry.file_type().expect("file type").is_dir() {
                copy(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), &target).expect("copy file");
            }
        }
    }
    let directory = tempfile::tempdir().expect("temp dir");
    copy(&fixture_dir().join("embedded"), directory.path());
    directory
}

/// Every record of `contents` reads back from `store` as written.
async fn assert_reads_contents(store: &SharedStore, contents: &Contents) {
    let stream = contents.stream.id;
    assert_eq!(
        store.stream(&stream).await.expect("stream"),
        Some(contents.stream.clone())
    );
    assert_eq!(
        store
            .profile(&contents.profile.user_id)
            .await
            .expect("profile"),
        Some(contents.profile.clone())
    );
    let newest_first: Vec<ChatMessage> = contents.messages.iter().rev().cloned().collect();
    assert_eq!(store.newest(&stream, 10).await.expect("page"), newest_first);
    let second = &contents.messages[1];
    assert_eq!(
        store.find(&stream, &second.id).await.expect("find"),
        Some(second.clone())
    );
    let (key, keyed) = &contents.keyed;
    assert_eq!(
        store
            .keyed_message(&stream, &keyed.sender.id, key, at(BASE_MS + 60_000))
            .await
            .expect("keyed message"),
        Some(keyed.clone())
    );
    // The timeout only on the embedded store: ScyllaDB expires a timeout's
    // row with it (a TTL from the real clock), so the fixture's is gone.
    let permanent = &contents.permanent_ban;
    assert_eq!(
        store
            .active_ban(&stream, &permanent.user_id, at(BASE_MS + 10_000))
            .await
            .expect("ban"),
        Some(permanent.clone())
    );
    let before_all = chat_service::domain::Position {
        created_ms: BASE_MS,
        id: ObjectId::from_bytes([0; 12]),
    };
    assert_eq!(
        store
            .events_after(&stream, before_all, 10)
            .await
            .expect("events"),
        contents.events
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embedded_data_dir_of_the_previous_release_reads_the_same() {
    use chat_service::storage::embedded::{EmbeddedStore, Verification};
    use std::sync::Arc;

    let directory = copy_of_embedded_fixture();
    let embedded = Arc::new(EmbeddedStore::open(directory.path()).expect("open the fixture"));
    let report = embedded.recovery_report();
    assert_eq!(report.lost_acknowledged_writes(), 0, "{report:?}");
    assert_eq!(report.discarded_bytes(), 0, "{report:?}");
    let store: SharedStore = embedded.clone();
    let contents = contents();
    assert_reads_contents(&store, &contents).await;
    let timeout = &contents.timeout;
    assert_eq!(
        store
            .active_ban(&contents.stream.id, &timeout.user_id, at(BASE_MS + 10_000))
            .await
            .expect("timeout"),
        Some(timeout.clone())
    );
    let (user, sent_at) = contents.last_sent;
    assert_eq!(
        store
            .last_sent(&contents.stream.id, &user)
            .await
            .expect("last sent"),
        Some(sent_at)
    );
    // The start-up scan reads every record of every keyspace: clean.
    let mut outcome = None;
    for _ in 0..200 {
        outcome = embedded.verification();
        if outcome.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        matches!(outcome, Some(Verification::Clean { .. })),
        "start-up scan of the fixture: {outcome:?}"
    );
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|index| u8::from_str_radix(&text[index..index + 2], 16).expect("hex"))
        .collect()
}

/// The fixture's ScyllaDB blobs of one column, by row id.
fn scylla_blobs(column: &str) -> BTreeMap<String, Vec<u8>> {
    let text = std::fs::read_to_string(fixture_dir().join("scylla-blobs.json")).expect("fixture");
    let json: serde_json::Value = serde_json::from_str(&text).expect("json");
    json[column]
        .as_object()
        .unwrap_or_else(|| panic!("no {column} in the fixture"))
        .iter()
        .map(|(id, hex)| (id.clone(), unhex(hex.as_str().expect("hex string"))))
        .collect()
}

/// A ScyllaDB store holding `contents`, whose blob columns then hold the
/// fixture's bytes (the rest of each row is plain CQL columns, unchanged).
struct ScyllaWithOldBlobs {
    fixture: allmine_test_support::backends::StoreFixture,
    session: scylla::client::session::Session,
}

impl ScyllaWithOldBlobs {
    async fn new(contents: &Contents) -> Self {
        use allmine_test_support::backends::{Backend, StoreFixture, scylla_settings};
        use std::sync::Arc;

        let fixture = StoreFixture::new(Backend::Scylla);
        let store: SharedStore = Arc::new(fixture.open_scylla().await);
        write_contents(&store, contents, Duration::from_secs(86_400)).await;
        let settings = scylla_settings(fixture.keyspace(), fixture.bucket_width);
        let session = scylla::client::session_builder::SessionBuilder::new()
            .known_nodes(&settings.nodes)
            .build()
            .await
            .expect("session");
        let with = Self { fixture, session };
        with.put_old_blobs(contents).await;
        // Every record column now holds exactly the old release's bytes
        // (an UPDATE with a wrong key would have added a row instead).
        for (column, blobs) in blob_columns(&with.session, with.fixture.keyspace()).await {
            assert_eq!(blobs, scylla_blobs(column), "{column}");
        }
        with
    }

    async fn execute(&self, cql: String, values: impl scylla::serialize::row::SerializeRow) {
        self.session
            .query_unpaged(cql, values)
            .await
            .expect("raw CQL write");
    }

    async fn put_old_blobs(&self, contents: &Contents) {
        let keyspace = self.fixture.keyspace();
        let stream = contents.stream.id.to_string();
        let rows = self
            .session
            .query_unpaged(
                format!(
                    "SELECT stream_id, bucket, created_at, message_id FROM {keyspace}.messages"
                ),
                (),
            )
            .await
            .expect("messages")
            .into_rows_result()
            .expect("rows");
        let photos = scylla_blobs("messages.sender_photo");
        for row in rows
            .rows::<(String, i64, scylla::value::CqlTimestamp, String)>()
            .expect("typed rows")
        {
            let (stream_id, bucket, created_at, message_id) = row.expect("row");
            if let Some(photo) = photos.get(&message_id) {
                self.execute(
                    format!(
                        "UPDATE {keyspace}.messages SET sender_photo = ? \
                         WHERE stream_id = ? AND bucket = ? AND created_at = ? AND message_id = ?"
                    ),
                    (photo, stream_id, bucket, created_at, message_id),
                )
                .await;
            }
        }
        for (user, photo) in scylla_blobs("user_profiles.profile_photo") {
            self.execute(
                format!("UPDATE {keyspace}.user_profiles SET profile_photo = ? WHERE user_id = ?"),
                (photo, user),
            )
            .await;
        }
        for event in &contents.events {
            let blobs = scylla_blobs("stream_events.event");
            let blob = blobs.get(&event.id.to_string()).expect("event in fixture");
            self.execute(
                format!(
                    "UPDATE {keyspace}.stream_events SET event = ? \
                     WHERE stream_id = ? AND created_at = ? AND event_id = ?"
                ),
                (
                    blob,
                    &stream,
                    scylla::value::CqlTimestamp(event.created_at.timestamp_millis()),
                    event.id.to_string(),
                ),
            )
            .await;
        }
        let (key, keyed) = &contents.keyed;
        let blobs = scylla_blobs("idempotency_keys.message");
        self.execute(
            format!(
                "UPDATE {keyspace}.idempotency_keys USING TTL 86400 SET message = ? \
                 WHERE stream_id = ? AND user_id = ? AND idempotency_key = ?"
            ),
            (
                blobs.get(key.as_str()).expect("key in fixture"),
                &stream,
                keyed.sender.id.to_string(),
                key.as_str(),
            ),
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scylla_blobs_of_the_previous_release_read_the_same() {
    use std::sync::Arc;

    let contents = contents();
    let with = ScyllaWithOldBlobs::new(&contents).await;
    let store: SharedStore = Arc::new(with.fixture.open_scylla().await);
    assert_reads_contents(&store, &contents).await;
    drop(store);
    with.fixture.cleanup().await;
}

/// `record` as a later release might write it: version 2 (tag 15, varint)
/// added to bytes that this build would otherwise read.
fn as_version_2(record: &[u8]) -> Vec<u8> {
    let mut bytes = record.to_vec();
    bytes.extend_from_slice(&[0x78, 0x02]);
    bytes
}

fn assert_refused_as_newer(outcome: Result<impl std::fmt::Debug, StorageError>) {
    match outcome {
        Err(StorageError::Corrupt(reason)) => assert!(reason.contains("version 2"), "{reason}"),
        other => panic!("a record of a newer version was read: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embedded_record_of_a_newer_version_is_refused_as_corruption() {
    use chat_service::storage::embedded::EmbeddedStore;
    use fjall::{Database, KeyspaceCreateOptions, PersistMode};

    let contents = contents();
    let directory = copy_of_embedded_fixture();
    {
        // Rewrites two records behind the store's back, as a later release
        // would have written them.
        let database = Database::builder(directory.path().join("fjall"))
            .open()
            .expect("open the fixture's database");
        for (keyspace, key) in [
            ("streams", contents.stream.id.as_bytes().to_vec()),
            ("profiles", contents.profile.user_id.as_bytes().to_vec()),
        ] {
            let keyspace = database
                .keyspace(keyspace, KeyspaceCreateOptions::default)
                .expect("keyspace");
            let record = keyspace.get(&key).expect("read").expect("a record");
            keyspace
                .insert(&key, as_version_2(&record))
                .expect("rewrite");
        }
        database.persist(PersistMode::SyncAll).expect("persist");
    }
    let store: SharedStore =
        std::sync::Arc::new(EmbeddedStore::open(directory.path()).expect("open"));
    assert_refused_as_newer(store.stream(&contents.stream.id).await);
    assert_refused_as_newer(store.profile(&contents.profile.user_id).await);
    // The other records still read.
    assert_eq!(
        store
            .newest(&contents.stream.id, 10)
            .await
            .expect("page")
            .len(),
        contents.messages.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scylla_record_of_a_newer_version_is_refused_as_corruption() {
    use std::sync::Arc;

    let contents = contents();
    let with = ScyllaWithOldBlobs::new(&contents).await;
    let keyspace = with.fixture.keyspace();
    let user = contents.profile.user_id;
    let photo = &scylla_blobs("user_profiles.profile_photo")[&user.to_string()];
    with.execute(
        format!("UPDATE {keyspace}.user_profiles SET profile_photo = ? WHERE user_id = ?"),
        (as_version_2(photo), user.to_string()),
    )
    .await;
    let event = &contents.events[0];
    let blob = &scylla_blobs("stream_events.event")[&event.id.to_string()];
    with.execute(
        format!(
            "UPDATE {keyspace}.stream_events SET event = ? \
             WHERE stream_id = ? AND created_at = ? AND event_id = ?"
        ),
        (
            as_version_2(blob),
            contents.stream.id.to_string(),
            scylla::value::CqlTimestamp(event.created_at.timestamp_millis()),
            event.id.to_string(),
        ),
    )
    .await;
    let store: SharedStore = Arc::new(with.fixture.open_scylla().await);
    assert_refused_as_newer(store.profile(&user).await);
    let before_all = chat_service::domain::Position {
        created_ms: BASE_MS,
        id: ObjectId::from_bytes([0; 12]),
    };
    assert_refused_as_newer(
        store
            .events_after(&contents.stream.id, before_all, 10)
            .await,
    );
    drop(store);
    with.fixture.cleanup().await;
}

/// The other direction, for a rollback: the previous release decoded
/// records as the public messages, which skip the version's tag, so it
/// reads what this release writes.
#[test]
fn the_previous_release_decodes_a_message_this_one_writes() {
    use allmine_chat_proto::v1 as pb;
    use chat_service::storage::codec::encode_message;
    use prost::Message;

    let contents = contents();
    let message = &contents.messages[0];
    let decoded = pb::ChatMessage::decode(encode_message(message).as_slice()).expect("decodes");
    let sender = decoded.sender.expect("sender");
    let photo = sender.profile_photo.expect("photo");
    let expected_photo = message.sender.profile_photo.as_ref().expect("photo");
    assert_eq!(
        (
            decoded.id,
            decoded.stream_id,
            decoded.content,
            decoded.created_at.map(|at| (at.seconds, at.nanos)),
        ),
        (
            message.id.to_string(),
            message.stream_id.to_string(),
            message.content.as_str().to_owned(),
            Some((message.created_at.timestamp(), 0)),
        )
    );
    assert_eq!(
        (sender.id, sender.username, photo.url, photo.variants.len()),
        (
            message.sender.id.to_string(),
            message.sender.username.clone(),
            expected_photo.url.clone(),
            expected_photo.variants.len()
        )
    );
}
