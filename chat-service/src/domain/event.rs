//! What happens in a stream's chat besides new messages, and the one event
//! type the live stream delivers.

use chrono::{DateTime, Utc};

use super::{ChatMessage, ChatState, MessageId, ObjectId, Position, StreamId, UserId};

/// A moderation or state event, stored in the stream's order beside its
/// messages so that live subscribers on every instance see it, and a resume
/// from a cursor replays it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModerationEvent {
    pub id: ObjectId,
    pub stream_id: StreamId,
    pub created_at: DateTime<Utc>,
    pub kind: ModerationKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModerationKind {
    MessageDeleted {
        message_id: MessageId,
        deleted_by: UserId,
    },
    UserBanned {
        user_id: UserId,
        expires_at: Option<DateTime<Utc>>,
    },
    ChatStateChanged(ChatState),
}

impl ModerationEvent {
    pub fn position(&self) -> Position {
        Position {
            created_ms: self.created_at.timestamp_millis(),
            id: self.id,
        }
    }
}

/// One event of the live stream.
// Messages dominate the stream, so boxing them would allocate for the common
// case to save bytes in the rare one.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent {
    Message(ChatMessage),
    Moderation(ModerationEvent),
}

impl StreamEvent {
    pub fn position(&self) -> Position {
        match self {
            Self::Message(message) => message.position(),
            Self::Moderation(event) => event.position(),
        }
    }
}
