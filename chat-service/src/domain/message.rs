//! A chat message as chat-service accepts, stores and returns it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{MessageContent, MessageId, StreamId, UserId};

/// An accepted chat message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    pub id: MessageId,
    pub stream_id: StreamId,
    pub content: MessageContent,
    /// The sender as they were when the message was accepted (a snapshot, so
    /// history keeps showing the name that was used at the time).
    pub sender: Sender,
    /// Acceptance time, millisecond precision.
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A snapshot of the sender's public profile. Unknown values are `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sender {
    pub id: UserId,
    pub username: Option<String>,
    pub name: Option<String>,
    pub surname: Option<String>,
    pub profile_photo: Option<ProfilePhoto>,
    pub availability_status: Option<String>,
}

impl Sender {
    /// A sender of whom nothing but the id is known.
    pub fn anonymous(id: UserId) -> Self {
        Self {
            id,
            username: None,
            name: None,
            surname: None,
            profile_photo: None,
            availability_status: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfilePhoto {
    pub id: String,
    pub url: String,
    pub media_type: String,
    /// Size in pixels (as text, e.g. "40") to URL.
    pub variants: BTreeMap<String, String>,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
}

/// `at` cut to whole milliseconds, the precision clients see and stores keep.
pub fn truncate_to_millis(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(at.timestamp_millis()).unwrap_or(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncating_drops_sub_millisecond_precision() {
        let at = DateTime::from_timestamp(1_700_000_000, 123_456_789).expect("valid time");
        let truncated = truncate_to_millis(at);
        assert_eq!(truncated.timestamp_subsec_nanos(), 123_000_000);
        assert_eq!(truncated.timestamp(), 1_700_000_000);
    }
}
