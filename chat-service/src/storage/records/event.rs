//! Moderation event records: what happened (the event's id and time are in
//! the store's key or columns).

use prost::{Message, Oneof};

use super::state::{chat_state, chat_state_number};
use super::{RECORD_VERSION, Record, RecordError, TimeRecord, invalid};
use crate::domain::{MessageId, ModerationKind, UserId};

/// Tags as `allmine.chat.v1.ChatEvent` had them; only the moderation
/// variants were ever stored (no cursor, message or gap).
#[derive(Clone, PartialEq, Message)]
pub struct EventRecord {
    #[prost(oneof = "EventKind", tags = "3, 4, 5")]
    pub kind: Option<EventKind>,
    #[prost(uint32, tag = "15")]
    pub version: u32,
}

#[derive(Clone, PartialEq, Oneof)]
pub enum EventKind {
    #[prost(message, tag = "3")]
    MessageDeleted(MessageDeletedRecord),
    #[prost(message, tag = "4")]
    UserBanned(UserBannedRecord),
    #[prost(message, tag = "5")]
    ChatStateChanged(ChatStateChangedRecord),
}

#[derive(Clone, PartialEq, Message)]
pub struct MessageDeletedRecord {
    #[prost(string, tag = "1")]
    pub message_id: String,
    #[prost(string, tag = "2")]
    pub deleted_by: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct UserBannedRecord {
    #[prost(string, tag = "1")]
    pub user_id: String,
    /// Absent: a permanent ban.
    #[prost(message, optional, tag = "2")]
    pub expires_at: Option<TimeRecord>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ChatStateChangedRecord {
    #[prost(int32, tag = "1")]
    pub state: i32,
}

impl Record for ModerationKind {
    const KIND: &'static str = "event";
    type Stored = EventRecord;

    fn to_stored(&self) -> EventRecord {
        let kind = match self {
            Self::MessageDeleted {
                message_id,
                deleted_by,
            } => EventKind::MessageDeleted(MessageDeletedRecord {
                message_id: message_id.to_string(),
                deleted_by: deleted_by.to_string(),
            }),
            Self::UserBanned {
                user_id,
                expires_at,
            } => EventKind::UserBanned(UserBannedRecord {
                user_id: user_id.to_string(),
                expires_at: expires_at.map(TimeRecord::new),
            }),
            Self::ChatStateChanged(state) => EventKind::ChatStateChanged(ChatStateChangedRecord {
                state: chat_state_number(*state),
            }),
        };
        EventRecord {
            kind: Some(kind),
            version: RECORD_VERSION,
        }
    }

    fn version(stored: &EventRecord) -> u32 {
        stored.version
    }

    fn from_stored(record: EventRecord) -> Result<Self, RecordError> {
        match record.kind {
            Some(EventKind::MessageDeleted(deleted)) => Ok(Self::MessageDeleted {
                message_id: MessageId::parse(&deleted.message_id)
                    .map_err(|error| invalid("message_id", error))?,
                deleted_by: UserId::parse(&deleted.deleted_by)
                    .map_err(|error| invalid("deleted_by", error))?,
            }),
            Some(EventKind::UserBanned(banned)) => Ok(Self::UserBanned {
                user_id: UserId::parse(&banned.user_id)
                    .map_err(|error| invalid("user_id", error))?,
                // As it always read: an expiry out of range is no expiry.
                expires_at: banned.expires_at.and_then(TimeRecord::date_time),
            }),
            Some(EventKind::ChatStateChanged(changed)) => {
                Ok(Self::ChatStateChanged(chat_state(changed.state)?))
            }
            None => Err(invalid("event", "not a moderation event")),
        }
    }
}
