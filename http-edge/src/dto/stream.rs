//! A stream's chat state, as the moderator routes return it.

use allmine_chat_proto::v1::{ChatState, Stream};
use serde::Serialize;
use utoipa::ToSchema;

use super::format_proto_timestamp;

/// A stream's chat as the public API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Stream)]
pub struct StreamJson {
    pub stream_id: String,
    pub owner_id: String,
    /// `"open"`, `"closed"` or `"ended"`; `null` if chat-service sends a state
    /// the edge does not know (unspecified or newer than this build).
    #[schema(required)]
    pub state: Option<ChatStateJson>,
    pub slow_mode_seconds: u32,
    pub moderator_ids: Vec<String>,
    #[schema(required, format = DateTime)]
    pub created_at: Option<String>,
    #[schema(required, format = DateTime)]
    pub updated_at: Option<String>,
}

/// A chat's state as the public API names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = ChatState)]
pub enum ChatStateJson {
    Open,
    Closed,
    Ended,
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
pub(super) fn state_name(state: i32) -> Option<ChatStateJson> {
    match ChatState::try_from(state).ok()? {
        ChatState::Open => Some(ChatStateJson::Open),
        ChatState::Closed => Some(ChatStateJson::Closed),
        ChatState::Ended => Some(ChatStateJson::Ended),
        ChatState::Unspecified => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn states_have_lowercase_names_and_unknown_ones_are_null() {
        let name = |state: ChatState| serde_json::to_value(state_name(state as i32)).ok();
        assert_eq!(name(ChatState::Open), Some(json!("open")));
        assert_eq!(name(ChatState::Closed), Some(json!("closed")));
        assert_eq!(name(ChatState::Ended), Some(json!("ended")));
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
