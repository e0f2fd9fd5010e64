//! The documented JSON shapes, one file per resource, and the API's one time
//! format.
//!
//! - [`message`]: the body of "send message" and the `ChatMessage` it returns.
//! - [`history`]: the query string of "list messages" and the page of
//!   `ChatMessage`s it returns, each with its cursor.
//! - [`ban`]: the body of "ban a user" and the `Ban` it returns.
//! - [`stream`]: a stream's chat state (`Stream`), returned by the moderator
//!   routes.
//! - [`events`]: the query string of the event stream and the JSON `data` of
//!   each Server-Sent Event, converted from the proto `ChatEvent`.
//!
//! Every documented key is always present; a value chat-service does not know
//! is `null` (the `Option` fields serialize as `null`, never skipped).

pub mod ban;
pub mod events;
pub mod history;
pub mod message;
pub mod stream;

use chrono::{DateTime, SecondsFormat, Utc};

pub use ban::{BanJson, BanUserBody};
pub use events::{
    ChatEventData, ChatStateChangedJson, GapJson, MessageDeletedJson, SubscribeQuery,
    UserBannedJson,
};
pub use history::{HistoryItemJson, ListMessagesQuery, MessagePageJson};
pub use message::{
    ChatMessageJson, ProfilePhotoJson, SEND_MESSAGE_REST_NAMES, SendMessageBody, SenderJson,
};
pub use stream::{ChatStateJson, StreamJson};

/// RFC 3339 in UTC with milliseconds, the API's one time format:
/// `2026-01-15T10:30:00.000Z`.
pub fn format_timestamp(instant: DateTime<Utc>) -> String {
    instant.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// `None` for a timestamp outside chrono's range or with invalid nanoseconds.
fn format_proto_timestamp(timestamp: prost_types::Timestamp) -> Option<String> {
    let nanos = u32::try_from(timestamp.nanos).ok()?;
    DateTime::from_timestamp(timestamp.seconds, nanos).map(format_timestamp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timestamp(seconds: i64, nanos: i32) -> prost_types::Timestamp {
        prost_types::Timestamp { seconds, nanos }
    }

    #[test]
    fn timestamps_are_utc_with_milliseconds() {
        // 2026-01-15T10:30:00Z
        assert_eq!(
            format_proto_timestamp(timestamp(1_768_473_000, 123_456_789)).as_deref(),
            Some("2026-01-15T10:30:00.123Z")
        );
        assert_eq!(
            format_proto_timestamp(timestamp(1_768_473_000, 0)).as_deref(),
            Some("2026-01-15T10:30:00.000Z")
        );
    }

    #[test]
    fn an_invalid_timestamp_is_null() {
        assert_eq!(format_proto_timestamp(timestamp(0, -1)), None);
        assert_eq!(format_proto_timestamp(timestamp(i64::MAX, 0)), None);
    }
}
