//! Round trips and version rules of every record kind. That bytes of the
//! release before versioned records still read is proven against a fixture
//! written by that release (`tests/api/stored_records.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;

use chrono::{DateTime, Utc};
use prost::Message;

use super::*;
use crate::domain::{
    Ban, ChatMessage, ChatState, MessageContent, MessageId, ModerationKind, ProfilePhoto, Sender,
    SlowMode, StreamChat, StreamId, UserId, UserProfile,
};

/// Protobuf key of tag 15 as a varint: (15 << 3) | 0.
const VERSION_KEY: u8 = 0x78;

fn at(millis: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(millis).expect("valid time")
}

fn id(serial: u8) -> String {
    format!("6955b9000000000000000{serial:03x}")
}

fn photo() -> ProfilePhoto {
    ProfilePhoto {
        id: "p".into(),
        url: "https://cdn.example.com/p.jpg".into(),
        media_type: "image/jpeg".into(),
        variants: BTreeMap::from([("40".into(), "https://cdn.example.com/p-40.jpg".into())]),
        created_at: Some(DateTime::from_timestamp(1_700_000_000, 123_456_789).expect("time")),
        updated_at: None,
    }
}

fn message() -> ChatMessage {
    let user = UserId::parse(&id(1)).expect("id");
    ChatMessage {
        id: MessageId::parse(&id(2)).expect("id"),
        stream_id: StreamId::parse(&id(3)).expect("id"),
        content: MessageContent::parse("hello").expect("content"),
        sender: Sender {
            profile_photo: Some(photo()),
            username: Some("ada".into()),
            ..Sender::anonymous(user)
        },
        created_at: at(1_767_225_601_000),
        updated_at: at(1_767_225_601_007),
    }
}

fn stream() -> StreamChat {
    StreamChat {
        id: StreamId::parse(&id(3)).expect("id"),
        owner: UserId::parse(&id(1)).expect("id"),
        state: ChatState::Ended,
        slow_mode: SlowMode::parse(30).expect("slow mode"),
        moderators: BTreeSet::from([UserId::parse(&id(4)).expect("id")]),
        created_at: at(1_767_225_600_000),
        updated_at: at(1_767_225_600_500),
    }
}

fn ban(expires_at: Option<DateTime<Utc>>) -> Ban {
    Ban {
        stream_id: StreamId::parse(&id(3)).expect("id"),
        user_id: UserId::parse(&id(5)).expect("id"),
        expires_at,
        reason: Some("spam".into()),
        banned_by: UserId::parse(&id(4)).expect("id"),
        created_at: at(1_767_225_604_000),
    }
}

fn profile() -> UserProfile {
    UserProfile {
        user_id: UserId::parse(&id(1)).expect("id"),
        username: Some("ada".into()),
        name: None,
        surname: Some("Lovelace".into()),
        profile_photo: Some(photo()),
        availability_status: Some("online".into()),
    }
}

fn events() -> Vec<ModerationKind> {
    vec![
        ModerationKind::MessageDeleted {
            message_id: MessageId::parse(&id(2)).expect("id"),
            deleted_by: UserId::parse(&id(4)).expect("id"),
        },
        ModerationKind::UserBanned {
            user_id: UserId::parse(&id(5)).expect("id"),
            expires_at: Some(at(1_767_312_000_000)),
        },
        ModerationKind::UserBanned {
            user_id: UserId::parse(&id(5)).expect("id"),
            expires_at: None,
        },
        ModerationKind::ChatStateChanged(ChatState::Closed),
    ]
}

/// `value` in its stored form with `version` in place of the current one.
fn with_version<T: Record>(value: &T, version: u32) -> Vec<u8> {
    let mut bytes = value.encode_record();
    assert_eq!(
        bytes[bytes.len() - 2..],
        [VERSION_KEY, RECORD_VERSION as u8],
        "the version is the last field written"
    );
    bytes.truncate(bytes.len() - 2);
    if version != 0 {
        prost::encoding::uint32::encode(15, &version, &mut bytes);
    }
    bytes
}

/// Every record kind: each value round-trips, reads the same without a
/// version (as written before versions), and is refused at a newer version.
fn check_versions<T: Record + PartialEq + Debug>(values: &[T]) {
    for value in values {
        let bytes = value.encode_record();
        assert_eq!(&T::decode_record(&bytes).expect("round trip"), value);
        assert_eq!(
            &T::decode_record(&with_version(value, 0)).expect("unversioned"),
            value
        );
        match T::decode_record(&with_version(value, RECORD_VERSION + 1)) {
            Err(StorageError::Corrupt(reason)) => assert!(
                reason.contains(&format!("version {}", RECORD_VERSION + 1)),
                "{reason}"
            ),
            other => panic!("a newer {} record was not refused: {other:?}", T::KIND),
        }
    }
}

#[test]
fn messages_round_trip_and_refuse_newer_versions() {
    let anonymous = ChatMessage {
        sender: Sender::anonymous(UserId::parse(&id(9)).expect("id")),
        ..message()
    };
    check_versions(&[message(), anonymous]);
}

#[test]
fn photos_round_trip_and_refuse_newer_versions() {
    let bare = ProfilePhoto {
        id: String::new(),
        url: String::new(),
        media_type: String::new(),
        variants: BTreeMap::new(),
        created_at: None,
        updated_at: None,
    };
    check_versions(&[photo(), bare]);
}

#[test]
fn streams_round_trip_and_refuse_newer_versions() {
    let open = StreamChat {
        state: ChatState::Open,
        moderators: BTreeSet::new(),
        ..stream()
    };
    check_versions(&[stream(), open]);
}

#[test]
fn bans_round_trip_and_refuse_newer_versions() {
    check_versions(&[ban(None), ban(Some(at(1_767_312_000_000)))]);
}

#[test]
fn profiles_round_trip_and_refuse_newer_versions() {
    let bare = UserProfile {
        user_id: UserId::parse(&id(6)).expect("id"),
        username: None,
        name: None,
        surname: None,
        profile_photo: None,
        availability_status: None,
    };
    check_versions(&[profile(), bare]);
}

#[test]
fn events_round_trip_and_refuse_newer_versions() {
    check_versions(&events());
}

#[test]
fn a_photo_inside_a_record_carries_no_version_of_its_own() {
    let stored = message().to_stored();
    let nested = stored
        .sender
        .and_then(|sender| sender.profile_photo)
        .expect("photo");
    assert_eq!(nested.version, 0);
}

#[test]
fn undecodable_bytes_and_invalid_values_are_corruption() {
    assert!(matches!(
        ChatMessage::decode_record(&[0xff, 0xff]),
        Err(StorageError::Corrupt(_))
    ));
    let mut stored = stream().to_stored();
    stored.state = 0;
    assert!(matches!(
        StreamChat::decode_record(&stored.encode_to_vec()),
        Err(StorageError::Corrupt(reason)) if reason.contains("state")
    ));
    let empty_event = event::EventRecord {
        kind: None,
        version: RECORD_VERSION,
    };
    assert!(matches!(
        ModerationKind::decode_record(&empty_event.encode_to_vec()),
        Err(StorageError::Corrupt(_))
    ));
}

#[test]
fn equal_photos_encode_to_equal_bytes_whatever_their_insertion_order() {
    let sizes = ["10", "20", "30", "40", "80", "160", "320"];
    let mut forward = photo();
    let mut backward = photo();
    for size in sizes {
        forward
            .variants
            .insert(size.into(), format!("https://cdn/{size}"));
    }
    for size in sizes.iter().rev() {
        backward
            .variants
            .insert((*size).into(), format!("https://cdn/{size}"));
    }
    assert_eq!(forward.encode_record(), backward.encode_record());
}
