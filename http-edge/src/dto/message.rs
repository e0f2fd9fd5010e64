//! "Send message": its request body and the message it returns, converted
//! from the proto `ChatMessage`.

use std::collections::BTreeMap;

use allmine_chat_proto::v1::{ChatMessage, ProfilePhoto, Sender};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::format_proto_timestamp;

/// The body of `POST /api/v1/live-stream/{streamId}/chat/messages`.
///
/// Unknown fields are rejected rather than ignored: the path names the stream
/// and the token the sender, and a client sending `streamId` or `sender`
/// expects them to matter; they must not.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendMessageBody {
    /// The text: 1 to 500 characters once trimmed, something in it visible,
    /// no control characters but line breaks and tabs, no bidi embedding,
    /// override or isolate controls (chat-service's rules; the pattern says
    /// the last two).
    #[schema(
        example = "Herkese selam!",
        min_length = 1,
        max_length = 500,
        pattern = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F\\u202A-\\u202E\\u2066-\\u2069]*$"
    )]
    pub content: String,
}

/// `SendMessage`'s request fields that the REST call carries elsewhere, by
/// their REST names: the key travels in the `Idempotency-Key` header.
pub const SEND_MESSAGE_REST_NAMES: &[(&str, &str)] = &[("idempotency_key", "Idempotency-Key")];

/// A chat message as the public API shows it, in the response of "send
/// message" and in the pages of "list messages" alike.
///
/// The proto's per-message `cursor` is not part of it: history items carry it
/// beside these keys ([`super::history::HistoryItemJson`]) and SSE events as
/// their `id`, so the documented shape of the send call's 201 body and of the
/// SSE `message` data stays exactly as it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(
    as = ChatMessage,
    description = "A chat message: the body of \"send message\" and the data of the `message` event (a history item adds its `cursor`)."
)]
pub struct ChatMessageJson {
    #[serde(rename = "_id")]
    pub id: String,
    pub stream_id: String,
    pub content: String,
    #[schema(required)]
    pub sender: Option<SenderJson>,
    #[schema(required, format = DateTime)]
    pub created_at: Option<String>,
    #[schema(required, format = DateTime)]
    pub updated_at: Option<String>,
}

/// The sender snapshot stored with a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Sender)]
pub struct SenderJson {
    #[serde(rename = "_id")]
    pub id: String,
    #[schema(required)]
    pub username: Option<String>,
    #[schema(required)]
    pub name: Option<String>,
    #[schema(required)]
    pub surname: Option<String>,
    #[schema(required)]
    pub profile_photo: Option<ProfilePhotoJson>,
    #[schema(required)]
    pub availability_status: Option<String>,
}

/// A profile photo and its resized variants (size in pixels → URL).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ProfilePhoto)]
pub struct ProfilePhotoJson {
    #[serde(rename = "_id")]
    pub id: String,
    pub url: String,
    #[serde(rename = "type")]
    pub media_type: String,
    /// Size in pixels → URL of the resized image.
    // A `BTreeMap` so that the keys come out in a stable order.
    pub variants: BTreeMap<String, String>,
    #[schema(required, format = DateTime)]
    pub created_at: Option<String>,
    #[schema(required, format = DateTime)]
    pub updated_at: Option<String>,
}

// A message whose sender or timestamps are missing is still shown, with
// `null`s, rather than turned into a 500: by the time chat-service answers, the
// message is durable, and an error would invite a duplicate retry.
//
// Destructured field by field, so that a field added to the proto fails to
// compile here until someone decides whether clients see it.
impl From<ChatMessage> for ChatMessageJson {
    fn from(message: ChatMessage) -> Self {
        let ChatMessage {
            id,
            stream_id,
            content,
            sender,
            created_at,
            updated_at,
            cursor: _,
        } = message;
        Self {
            id,
            stream_id,
            content,
            sender: sender.map(SenderJson::from),
            created_at: created_at.and_then(format_proto_timestamp),
            updated_at: updated_at.and_then(format_proto_timestamp),
        }
    }
}

impl From<Sender> for SenderJson {
    fn from(sender: Sender) -> Self {
        Self {
            id: sender.id,
            username: sender.username,
            name: sender.name,
            surname: sender.surname,
            profile_photo: sender.profile_photo.map(ProfilePhotoJson::from),
            availability_status: sender.availability_status,
        }
    }
}

impl From<ProfilePhoto> for ProfilePhotoJson {
    fn from(photo: ProfilePhoto) -> Self {
        Self {
            id: photo.id,
            url: photo.url,
            media_type: photo.r#type,
            variants: photo.variants.into_iter().collect(),
            created_at: photo.created_at.and_then(format_proto_timestamp),
            updated_at: photo.updated_at.and_then(format_proto_timestamp),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timestamp(seconds: i64, nanos: i32) -> prost_types::Timestamp {
        prost_types::Timestamp { seconds, nanos }
    }

    #[test]
    fn unknown_sender_fields_serialize_as_null() {
        let message = ChatMessage {
            id: "64d15f9e2e6c8f4d5a123456".to_owned(),
            stream_id: "64d15f9e2e6c8f4d5a123000".to_owned(),
            content: "hi".to_owned(),
            sender: Some(Sender {
                id: "64d15f9e2e6c8f4d5a123999".to_owned(),
                ..Sender::default()
            }),
            created_at: Some(timestamp(1_768_473_000, 0)),
            updated_at: Some(timestamp(1_768_473_000, 0)),
            cursor: "opaque-cursor".to_owned(),
        };
        let json = serde_json::to_value(ChatMessageJson::from(message)).expect("serializable");
        assert!(json.get("cursor").is_none(), "the cursor is not shown");
        assert_eq!(
            json["sender"],
            serde_json::json!({
                "_id": "64d15f9e2e6c8f4d5a123999",
                "username": null,
                "name": null,
                "surname": null,
                "profilePhoto": null,
                "availabilityStatus": null,
            })
        );
    }

    #[test]
    fn the_body_accepts_only_content() {
        assert!(serde_json::from_str::<SendMessageBody>(r#"{"content":"hi"}"#).is_ok());
        assert!(
            serde_json::from_str::<SendMessageBody>(r#"{"content":"hi","streamId":"x"}"#).is_err()
        );
        assert!(serde_json::from_str::<SendMessageBody>("{}").is_err());
    }
}
