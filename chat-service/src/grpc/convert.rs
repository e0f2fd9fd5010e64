//! Conversions between domain types and the generated protobuf types, each
//! written once.
//!
//! Domain → protobuf is total. Protobuf → domain is for data this service
//! wrote itself (records read back from a store) and for parts of requests
//! that the handlers have already validated (a profile photo); requests from
//! clients go through the parsing in the handlers, which reports field
//! violations.

use std::collections::{BTreeMap, BTreeSet};

use allmine_chat_proto::v1 as pb;
use chrono::{DateTime, Utc};

use crate::domain::{
    Ban, ChatMessage, ChatState, Cursor, MessageContent, MessageId, ModerationKind, ProfilePhoto,
    Sender, SlowMode, StreamChat, StreamEvent, StreamId, UserId, UserProfile,
};

pub fn timestamp(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        // Always within 0..1e9, so the cast cannot truncate.
        nanos: at.timestamp_subsec_nanos() as i32,
    }
}

pub fn date_time(at: &prost_types::Timestamp) -> Option<DateTime<Utc>> {
    let nanos = u32::try_from(at.nanos).ok()?;
    DateTime::from_timestamp(at.seconds, nanos)
}

impl From<ChatMessage> for pb::ChatMessage {
    fn from(message: ChatMessage) -> Self {
        Self {
            cursor: Cursor::new(message.position()).to_string(),
            id: message.id.to_string(),
            stream_id: message.stream_id.to_string(),
            content: message.content.into_string(),
            sender: Some(message.sender.into()),
            created_at: Some(timestamp(message.created_at)),
            updated_at: Some(timestamp(message.updated_at)),
        }
    }
}

impl From<Sender> for pb::Sender {
    fn from(sender: Sender) -> Self {
        Self {
            id: sender.id.to_string(),
            username: sender.username,
            name: sender.name,
            surname: sender.surname,
            profile_photo: sender.profile_photo.map(Into::into),
            availability_status: sender.availability_status,
        }
    }
}

impl From<ProfilePhoto> for pb::ProfilePhoto {
    fn from(photo: ProfilePhoto) -> Self {
        Self {
            id: photo.id,
            url: photo.url,
            r#type: photo.media_type,
            variants: photo.variants.into_iter().collect(),
            created_at: photo.created_at.map(timestamp),
            updated_at: photo.updated_at.map(timestamp),
        }
    }
}

/// Why a stored record is not a valid message.
#[derive(Debug, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct RecordError {
    field: &'static str,
    reason: String,
}

fn invalid(field: &'static str, reason: impl ToString) -> RecordError {
    RecordError {
        field,
        reason: reason.to_string(),
    }
}

fn required_time(
    field: &'static str,
    at: Option<&prost_types::Timestamp>,
) -> Result<DateTime<Utc>, RecordError> {
    at.and_then(date_time)
        .ok_or_else(|| invalid(field, "missing or out of range"))
}

impl TryFrom<pb::ChatMessage> for ChatMessage {
    type Error = RecordError;

    fn try_from(record: pb::ChatMessage) -> Result<Self, Self::Error> {
        let sender = record.sender.ok_or_else(|| invalid("sender", "missing"))?;
        Ok(Self {
            id: MessageId::parse(&record.id).map_err(|error| invalid("id", error))?,
            stream_id: StreamId::parse(&record.stream_id)
                .map_err(|error| invalid("stream_id", error))?,
            content: MessageContent::parse(&record.content)
                .map_err(|error| invalid("content", error))?,
            sender: Sender::try_from(sender)?,
            created_at: required_time("created_at", record.created_at.as_ref())?,
            updated_at: required_time("updated_at", record.updated_at.as_ref())?,
        })
    }
}

impl TryFrom<pb::Sender> for Sender {
    type Error = RecordError;

    fn try_from(sender: pb::Sender) -> Result<Self, Self::Error> {
        Ok(Self {
            id: UserId::parse(&sender.id).map_err(|error| invalid("sender.id", error))?,
            username: sender.username,
            name: sender.name,
            surname: sender.surname,
            profile_photo: sender.profile_photo.map(ProfilePhoto::from),
            availability_status: sender.availability_status,
        })
    }
}

impl From<pb::ProfilePhoto> for ProfilePhoto {
    fn from(photo: pb::ProfilePhoto) -> Self {
        Self {
            id: photo.id,
            url: photo.url,
            media_type: photo.r#type,
            variants: photo.variants.into_iter().collect::<BTreeMap<_, _>>(),
            created_at: photo.created_at.as_ref().and_then(date_time),
            updated_at: photo.updated_at.as_ref().and_then(date_time),
        }
    }
}

impl From<ChatState> for pb::ChatState {
    fn from(state: ChatState) -> Self {
        match state {
            ChatState::Open => Self::Open,
            ChatState::Closed => Self::Closed,
            ChatState::Ended => Self::Ended,
        }
    }
}

impl From<StreamChat> for pb::Stream {
    fn from(stream: StreamChat) -> Self {
        Self {
            stream_id: stream.id.to_string(),
            owner_id: stream.owner.to_string(),
            state: pb::ChatState::from(stream.state).into(),
            slow_mode_seconds: stream.slow_mode.seconds(),
            moderator_ids: stream.moderators.iter().map(ToString::to_string).collect(),
            created_at: Some(timestamp(stream.created_at)),
            updated_at: Some(timestamp(stream.updated_at)),
        }
    }
}

/// A `ChatState` field's value (an `i32` on the wire).
fn chat_state(value: i32) -> Result<ChatState, RecordError> {
    match pb::ChatState::try_from(value) {
        Ok(pb::ChatState::Open) => Ok(ChatState::Open),
        Ok(pb::ChatState::Closed) => Ok(ChatState::Closed),
        Ok(pb::ChatState::Ended) => Ok(ChatState::Ended),
        _ => Err(invalid("state", value)),
    }
}

impl TryFrom<pb::Stream> for StreamChat {
    type Error = RecordError;

    fn try_from(record: pb::Stream) -> Result<Self, Self::Error> {
        let state = chat_state(record.state)?;
        let moderators = record
            .moderator_ids
            .iter()
            .map(|id| UserId::parse(id).map_err(|error| invalid("moderator_ids", error)))
            .collect::<Result<BTreeSet<_>, _>>()?;
        Ok(Self {
            id: StreamId::parse(&record.stream_id).map_err(|error| invalid("stream_id", error))?,
            owner: UserId::parse(&record.owner_id).map_err(|error| invalid("owner_id", error))?,
            state,
            slow_mode: SlowMode::parse(record.slow_mode_seconds)
                .map_err(|error| invalid("slow_mode_seconds", error))?,
            moderators,
            created_at: required_time("created_at", record.created_at.as_ref())?,
            updated_at: required_time("updated_at", record.updated_at.as_ref())?,
        })
    }
}

impl From<Ban> for pb::Ban {
    fn from(ban: Ban) -> Self {
        Self {
            stream_id: ban.stream_id.to_string(),
            user_id: ban.user_id.to_string(),
            expires_at: ban.expires_at.map(timestamp),
            reason: ban.reason,
            banned_by: ban.banned_by.to_string(),
            created_at: Some(timestamp(ban.created_at)),
        }
    }
}

impl TryFrom<pb::Ban> for Ban {
    type Error = RecordError;

    fn try_from(record: pb::Ban) -> Result<Self, Self::Error> {
        Ok(Self {
            stream_id: StreamId::parse(&record.stream_id)
                .map_err(|error| invalid("stream_id", error))?,
            user_id: UserId::parse(&record.user_id).map_err(|error| invalid("user_id", error))?,
            expires_at: match record.expires_at.as_ref() {
                Some(at) => {
                    Some(date_time(at).ok_or_else(|| invalid("expires_at", "out of range"))?)
                }
                None => None,
            },
            reason: record.reason,
            banned_by: UserId::parse(&record.banned_by)
                .map_err(|error| invalid("banned_by", error))?,
            created_at: required_time("created_at", record.created_at.as_ref())?,
        })
    }
}

impl From<UserProfile> for pb::UserProfile {
    fn from(profile: UserProfile) -> Self {
        Self {
            user_id: profile.user_id.to_string(),
            username: profile.username,
            name: profile.name,
            surname: profile.surname,
            profile_photo: profile.profile_photo.map(Into::into),
            availability_status: profile.availability_status,
        }
    }
}

impl TryFrom<pb::UserProfile> for UserProfile {
    type Error = RecordError;

    fn try_from(record: pb::UserProfile) -> Result<Self, Self::Error> {
        Ok(Self {
            user_id: UserId::parse(&record.user_id).map_err(|error| invalid("user_id", error))?,
            username: record.username,
            name: record.name,
            surname: record.surname,
            profile_photo: record.profile_photo.map(ProfilePhoto::from),
            availability_status: record.availability_status,
        })
    }
}

impl From<StreamEvent> for pb::ChatEvent {
    fn from(event: StreamEvent) -> Self {
        let cursor = Cursor::new(event.position()).to_string();
        let event = match event {
            StreamEvent::Message(message) => pb::chat_event::Event::Message(message.into()),
            StreamEvent::Moderation(event) => moderation_event(event.kind),
        };
        Self {
            cursor,
            event: Some(event),
        }
    }
}

fn moderation_event(kind: ModerationKind) -> pb::chat_event::Event {
    match kind {
        ModerationKind::MessageDeleted {
            message_id,
            deleted_by,
        } => pb::chat_event::Event::MessageDeleted(pb::MessageDeleted {
            message_id: message_id.to_string(),
            deleted_by: deleted_by.to_string(),
        }),
        ModerationKind::UserBanned {
            user_id,
            expires_at,
        } => pb::chat_event::Event::UserBanned(pb::UserBanned {
            user_id: user_id.to_string(),
            expires_at: expires_at.map(timestamp),
        }),
        ModerationKind::ChatStateChanged(state) => {
            pb::chat_event::Event::ChatStateChanged(pb::ChatStateChanged {
                state: pb::ChatState::from(state).into(),
            })
        }
    }
}

/// The stored form of a moderation event's kind (its id and time are in the
/// store's key or columns).
pub fn encode_moderation_kind(kind: &ModerationKind) -> Vec<u8> {
    use prost::Message;
    pb::ChatEvent {
        cursor: String::new(),
        event: Some(moderation_event(kind.clone())),
    }
    .encode_to_vec()
}

pub fn decode_moderation_kind(bytes: &[u8]) -> Result<ModerationKind, RecordError> {
    use prost::Message;
    let record = pb::ChatEvent::decode(bytes).map_err(|error| invalid("event", error))?;
    match record.event {
        Some(pb::chat_event::Event::MessageDeleted(deleted)) => {
            Ok(ModerationKind::MessageDeleted {
                message_id: MessageId::parse(&deleted.message_id)
                    .map_err(|error| invalid("message_id", error))?,
                deleted_by: UserId::parse(&deleted.deleted_by)
                    .map_err(|error| invalid("deleted_by", error))?,
            })
        }
        Some(pb::chat_event::Event::UserBanned(banned)) => Ok(ModerationKind::UserBanned {
            user_id: UserId::parse(&banned.user_id).map_err(|error| invalid("user_id", error))?,
            expires_at: banned.expires_at.as_ref().and_then(date_time),
        }),
        Some(pb::chat_event::Event::ChatStateChanged(changed)) => {
            Ok(ModerationKind::ChatStateChanged(chat_state(changed.state)?))
        }
        _ => Err(invalid("event", "not a moderation event")),
    }
}
