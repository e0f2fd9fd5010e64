//! A stream's chat state, as the moderator routes return it.

use allmine_chat_proto::v1::{ChatState, Stream};
use serde::Serialize;

use super::format_proto_timestamp;

/// A stream's chat as the public API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamJson {
    pub stream_id: String,
    pub owner_id: String,
    /// `"open"`, `"closed"` or `"ended"`; `null` if chat-service sends a state
    /// the edge does not know (unspecified or newer than this build).
    pub state: Option<&'static str>,
    pub slow_mode_seconds: u32,
    pub moderator_ids: Vec<String>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
}

// An unknown state is shown as `null` rather than turned into a 500: by the
// time chat-service answers, the change is made, and an error would hide that.
impl From<Stream> for StreamJson {
    fn from(stream: Stream) -> Self {
        Self {
            state: state_name(stream.state),
            stream_id: stream.stream_id,
            owner_id: stream.owner_id,
            slow_mode_seconds: stream.slow_mode_seconds,
            moderator_ids: stream.moderator_ids,
            created_at: stream.created_at.and_then(format_proto_timestamp),
            updated_at: stream.updated_at.and_then(format_proto_timestamp),
        }
    }
}

/// The JSON name of a proto `ChatState` (an `i32` on the wire).
pub(super) fn state_name(state: i32) -> Option<&'static str> {
    match ChatState::try_from(state).ok()? {
        ChatState::Open => Some("open"),
        ChatState::Closed => Some("closed"),
        ChatState::Ended => Some("ended"),
        ChatState::Unspecified => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn states_have_lowercase_names_and_unknown_ones_are_null() {
        assert_eq!(state_name(ChatState::Open as i32), Some("open"));
        assert_eq!(state_name(ChatState::Closed as i32), Some("closed"));
        assert_eq!(state_name(ChatState::Ended as i32), Some("ended"));
        assert_eq!(state_name(ChatState::Unspecified as i32), None);
        assert_eq!(state_name(42), None);
    }

    #[test]
    fn every_key_is_present() {
        let json = serde_json::to_value(StreamJson::from(Stream::default())).expect("serializable");
        assert_eq!(
            json,
            json!({
                "streamId": "",
                "ownerId": "",
                "state": null,
                "slowModeSeconds": 0,
                "moderatorIds": [],
                "createdAt": null,
                "updatedAt": null,
            })
        );
    }
}
