//! "Follow a stream's chat" (Server-Sent Events at `GET
//! /api/v1/live-stream/{streamId}/chat/events`): its query string and the
//! JSON `data` of each event type, converted from the proto `ChatEvent`.

use allmine_chat_proto::v1::{ChatStateChanged, Gap, MessageDeleted, UserBanned, chat_event};
use serde::Serialize;
use utoipa::ToSchema;

use super::{
    ChatMessageJson, format_proto_timestamp,
    stream::{ChatStateJson, state_name},
};
use crate::extract::{ACCESS_TOKEN_PARAM, FromQuery};

/// The query string of the event stream: `?after=&access_token=`, each
/// optional and at most once, nothing else.
///
/// `after` is a cursor to resume from on a first connection (a reconnecting
/// `EventSource` sends `Last-Event-ID` instead, which wins); it is opaque and
/// passed on as it is, for chat-service to check. `access_token` is read by
/// [`EventSourceToken`](crate::extract::EventSourceToken); here it is only
/// allowed, and its value is never kept or echoed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SubscribeQuery {
    pub after: Option<String>,
}

impl FromQuery for SubscribeQuery {
    fn from_query(pairs: Vec<(String, String)>) -> Result<Self, Vec<String>> {
        let mut problems = Vec::new();
        let mut after = None;
        let mut tokens = 0_usize;
        for (name, value) in pairs {
            let repeated = match name.as_str() {
                "after" => after.replace(value).is_some(),
                ACCESS_TOKEN_PARAM => {
                    tokens += 1;
                    tokens > 1
                }
                // Unlike the other routes, the name is not repeated back (or
                // logged): a mangled URL (`?access_token:<token>`,
                // `?<token>`) could make the token itself a "name".
                _ => {
                    push_once(&mut problems, UNKNOWN_PARAMETER.to_owned());
                    continue;
                }
            };
            if repeated {
                push_once(&mut problems, format!("{name}: must be given at most once"));
            }
        }
        if problems.is_empty() {
            Ok(Self { after })
        } else {
            Err(problems)
        }
    }
}

fn push_once(problems: &mut Vec<String>, problem: String) {
    if !problems.contains(&problem) {
        problems.push(problem);
    }
}

/// The problem reported for any parameter but `after` and `access_token`.
const UNKNOWN_PARAMETER: &str =
    "unknown query parameter: only `after` and `access_token` are allowed";

/// The `data` of one event, by type. Serialized without a tag: the type is
/// the SSE `event:` field ([`ChatEventData::event_type`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ChatEventData {
    /// A new message: exactly the JSON of "send message" (no cursor; the
    /// event's `id:` is the cursor).
    /// Boxed: a message is several times larger than the other events.
    Message(Box<ChatMessageJson>),
    MessageDeleted(MessageDeletedJson),
    UserBanned(UserBannedJson),
    ChatStateChanged(ChatStateChangedJson),
    Gap(GapJson),
}

impl ChatEventData {
    /// The SSE event type, what a browser passes to `addEventListener`.
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::Message(_) => "message",
            Self::MessageDeleted(_) => "messageDeleted",
            Self::UserBanned(_) => "userBanned",
            Self::ChatStateChanged(_) => "chatStateChanged",
            Self::Gap(_) => "gap",
        }
    }
}

// Every variant of the oneof is matched, so that a new one fails to compile
// here until someone decides how clients see it.
impl From<chat_event::Event> for ChatEventData {
    fn from(event: chat_event::Event) -> Self {
        match event {
            chat_event::Event::Message(message) => Self::Message(Box::new(message.into())),
            chat_event::Event::MessageDeleted(deleted) => Self::MessageDeleted(deleted.into()),
            chat_event::Event::UserBanned(banned) => Self::UserBanned(banned.into()),
            chat_event::Event::ChatStateChanged(changed) => Self::ChatStateChanged(changed.into()),
            chat_event::Event::Gap(gap) => Self::Gap(gap.into()),
        }
    }
}

/// A message was deleted (by its sender, the owner or a moderator).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = MessageDeletedEvent)]
pub struct MessageDeletedJson {
    pub message_id: String,
    pub deleted_by: String,
}

impl From<MessageDeleted> for MessageDeletedJson {
    fn from(deleted: MessageDeleted) -> Self {
        Self {
            message_id: deleted.message_id,
            deleted_by: deleted.deleted_by,
        }
    }
}

/// A user was banned (`expiresAt` `null`) or timed out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = UserBannedEvent)]
pub struct UserBannedJson {
    pub user_id: String,
    #[schema(required, format = DateTime)]
    pub expires_at: Option<String>,
}

impl From<UserBanned> for UserBannedJson {
    fn from(banned: UserBanned) -> Self {
        Self {
            user_id: banned.user_id,
            expires_at: banned.expires_at.and_then(format_proto_timestamp),
        }
    }
}

/// The chat was opened or closed, or the stream ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[schema(as = ChatStateChangedEvent)]
pub struct ChatStateChangedJson {
    /// `"open"`, `"closed"` or `"ended"`; `null` for a state this build does
    /// not know (as in the stream JSON).
    #[schema(required)]
    pub state: Option<ChatStateJson>,
}

impl From<ChatStateChanged> for ChatStateChangedJson {
    fn from(changed: ChatStateChanged) -> Self {
        Self {
            state: state_name(changed.state),
        }
    }
}

/// Events were skipped: the event's `id:` is the cursor to resume from (by
/// reconnecting, or by reading history after it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[schema(as = GapEvent)]
pub struct GapJson {
    pub reason: String,
}

impl From<Gap> for GapJson {
    fn from(gap: Gap) -> Self {
        Self { reason: gap.reason }
    }
}

#[cfg(test)]
mod tests {
    use allmine_chat_proto::v1::{ChatMessage, ChatState};
    use serde_json::json;

    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<SubscribeQuery, Vec<String>> {
        SubscribeQuery::from_query(
            pairs
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect(),
        )
    }

    fn data_of(event: chat_event::Event) -> (&'static str, serde_json::Value) {
        let data = ChatEventData::from(event);
        let json = serde_json::to_value(&data).expect("serializable");
        (data.event_type(), json)
    }

    #[test]
    fn after_and_the_token_are_optional_and_the_token_is_not_kept() {
        assert_eq!(parse(&[]).expect("valid"), SubscribeQuery::default());
        let query = parse(&[("access_token", "secret"), ("after", "c+/=")]).expect("valid");
        assert_eq!(query.after.as_deref(), Some("c+/="));
        assert!(!format!("{query:?}").contains("secret"));
    }

    #[test]
    fn unknown_and_repeated_parameters_are_refused_without_echoing_values() {
        let problems = parse(&[
            ("after", "a"),
            ("after", "b"),
            ("access_token", "first-secret"),
            ("access_token", "second-secret"),
            ("limit", "5"),
            ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.sig", ""),
            ("access_token:secret", ""),
        ])
        .expect_err("invalid");
        assert_eq!(
            problems,
            [
                "after: must be given at most once",
                "access_token: must be given at most once",
                "unknown query parameter: only `after` and `access_token` are allowed",
            ]
        );
        assert!(!problems.concat().contains("secret"));
        assert!(!problems.concat().contains("eyJ"));
    }

    #[test]
    fn each_event_type_has_its_name_and_its_json() {
        let (kind, json) = data_of(chat_event::Event::MessageDeleted(MessageDeleted {
            message_id: "m".to_owned(),
            deleted_by: "u".to_owned(),
        }));
        assert_eq!(kind, "messageDeleted");
        assert_eq!(json, json!({"messageId": "m", "deletedBy": "u"}));

        let (kind, json) = data_of(chat_event::Event::UserBanned(UserBanned {
            user_id: "u".to_owned(),
            expires_at: Some(prost_types::Timestamp {
                seconds: 1_768_473_000,
                nanos: 5_000_000,
            }),
        }));
        assert_eq!(kind, "userBanned");
        assert_eq!(
            json,
            json!({"userId": "u", "expiresAt": "2026-01-15T10:30:00.005Z"})
        );

        let (_, json) = data_of(chat_event::Event::UserBanned(UserBanned {
            user_id: "u".to_owned(),
            expires_at: None,
        }));
        assert_eq!(json, json!({"userId": "u", "expiresAt": null}));

        let (kind, json) = data_of(chat_event::Event::ChatStateChanged(ChatStateChanged {
            state: ChatState::Ended.into(),
        }));
        assert_eq!(kind, "chatStateChanged");
        assert_eq!(json, json!({"state": "ended"}));

        let (_, json) = data_of(chat_event::Event::ChatStateChanged(ChatStateChanged {
            state: 42,
        }));
        assert_eq!(json, json!({"state": null}));

        let (kind, json) = data_of(chat_event::Event::Gap(Gap {
            reason: "fell behind".to_owned(),
        }));
        assert_eq!(kind, "gap");
        assert_eq!(json, json!({"reason": "fell behind"}));

        let (kind, json) = data_of(chat_event::Event::Message(ChatMessage {
            id: "m".to_owned(),
            cursor: "never-shown".to_owned(),
            ..ChatMessage::default()
        }));
        assert_eq!(kind, "message");
        assert_eq!(
            json,
            json!({
                "_id": "m",
                "streamId": "",
                "content": "",
                "sender": null,
                "createdAt": null,
                "updatedAt": null,
            })
        );
    }
}
