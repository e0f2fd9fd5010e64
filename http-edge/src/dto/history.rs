//! "List messages" (a stream's chat history, one page at a time): its query
//! string and the page it returns.
//!
//! Each item of a page carries its `cursor` beside the documented message
//! keys, as every gRPC `ChatMessage` does: a client that read the newest page
//! subscribes with `Last-Event-ID` (or `after`) = the first item's cursor and
//! joins live with no gap and no duplicate.

use allmine_chat_proto::v1::{ChatMessage, ListMessagesResponse};
use serde::Serialize;
use utoipa::ToSchema;

use super::ChatMessageJson;
use crate::extract::FromQuery;

/// The largest page a client may ask for (the contract's `page_size` rule).
pub const MAX_LIMIT: u32 = 100;

/// The proto fields of `ListMessagesRequest` whose REST name is not their
/// camelCase form: chat-service's violations on `page_size` are about the
/// query parameter `limit`.
pub const LIST_MESSAGES_REST_NAMES: &[(&str, &str)] = &[("page_size", "limit")];

/// The query string of `GET /api/v1/live-stream/{streamId}/chat/messages`:
/// `?limit=&before=&after=`, each optional and at most once, nothing else.
///
/// `limit` is checked here (an integer from 1 to [`MAX_LIMIT`]) because its
/// absence has a meaning of its own: a `limit=0` passed on would silently
/// become chat-service's default page instead of a 400. The cursors are
/// opaque: passed on as they are, checked by chat-service, which also owns
/// the rule that at most one of them may be given.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ListMessagesQuery {
    pub limit: Option<u32>,
    pub before: Option<String>,
    pub after: Option<String>,
}

impl ListMessagesQuery {
    /// The proto `page_size`: the limit, or 0, which asks chat-service for
    /// its default page (50).
    pub fn page_size(&self) -> u32 {
        self.limit.unwrap_or(0)
    }
}

impl FromQuery for ListMessagesQuery {
    fn from_query(pairs: Vec<(String, String)>) -> Result<Self, Vec<String>> {
        let mut problems = Vec::new();
        let (mut limit, mut before, mut after) = (None, None, None);
        for (name, value) in pairs {
            let slot = match name.as_str() {
                "limit" => &mut limit,
                "before" => &mut before,
                "after" => &mut after,
                _ => {
                    problems.push(format!(
                        "unknown query parameter `{name}`; expected `limit`, `before` or `after`"
                    ));
                    continue;
                }
            };
            if slot.replace(value).is_some() {
                let repeated = format!("{name}: must be given at most once");
                if !problems.contains(&repeated) {
                    problems.push(repeated);
                }
            }
        }
        let limit = limit.and_then(|text| {
            parse_limit(&text)
                .ok_or_else(|| {
                    problems.push(format!(
                        "limit: must be an integer from 1 to {MAX_LIMIT}, got {text:?}"
                    ));
                })
                .ok()
        });
        if problems.is_empty() {
            Ok(Self {
                limit,
                before,
                after,
            })
        } else {
            Err(problems)
        }
    }
}

/// Plain decimal digits only (no sign, no spaces), 1 to [`MAX_LIMIT`].
fn parse_limit(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    text.parse()
        .ok()
        .filter(|limit| (1..=MAX_LIMIT).contains(limit))
}

/// One page of history as the public API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = MessagePage, description = "One page of a stream's history.")]
pub struct MessagePageJson {
    /// In the page's direction: newest first, or oldest first after `after`.
    pub items: Vec<HistoryItemJson>,
    /// Where to continue in the same direction; `null` when reading backwards
    /// reached the oldest message.
    #[schema(required)]
    pub next_cursor: Option<String>,
}

impl From<ListMessagesResponse> for MessagePageJson {
    fn from(page: ListMessagesResponse) -> Self {
        Self {
            items: page
                .messages
                .into_iter()
                .map(HistoryItemJson::from)
                .collect(),
            next_cursor: page.next_cursor,
        }
    }
}

/// One message of a history page: the documented message keys, unchanged,
/// plus `cursor`, the message's place in its stream's order.
///
/// The cursor is on history items only: the send call's 201 body and the SSE
/// `message` data stay exactly the documented message (an SSE event carries
/// its cursor as the event `id`). One cursor per item rather than a
/// page-level "newest cursor" because it is what gRPC's `ChatMessage.cursor`
/// already is, it needs no rule for empty or `before`/`after` pages, and a
/// client paging and joining live can keep any item as its place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[schema(
    as = HistoryItem,
    description = "A message of a history page, with its `cursor`: pass it as `before`, `after` or `Last-Event-ID` to continue from there."
)]
pub struct HistoryItemJson {
    #[serde(flatten)]
    pub message: ChatMessageJson,
    /// Pass it as `before`, `after` or `Last-Event-ID` to continue from here.
    pub cursor: String,
}

impl From<ChatMessage> for HistoryItemJson {
    fn from(mut message: ChatMessage) -> Self {
        let cursor = std::mem::take(&mut message.cursor);
        Self {
            message: ChatMessageJson::from(message),
            cursor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<ListMessagesQuery, Vec<String>> {
        ListMessagesQuery::from_query(
            pairs
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn a_history_item_is_the_documented_message_plus_its_cursor() {
        let message = ChatMessage {
            id: "64d15f9e2e6c8f4d5a123456".to_owned(),
            stream_id: "64d15f9e2e6c8f4d5a123000".to_owned(),
            content: "hi".to_owned(),
            cursor: "opaque-cursor".to_owned(),
            ..ChatMessage::default()
        };
        let documented =
            serde_json::to_value(ChatMessageJson::from(message.clone())).expect("serializable");
        let mut item = serde_json::to_value(HistoryItemJson::from(message)).expect("serializable");
        let cursor = item
            .as_object_mut()
            .expect("an object")
            .remove("cursor")
            .expect("a cursor key");
        assert_eq!(cursor, "opaque-cursor");
        assert_eq!(item, documented, "every other key as documented");
    }

    #[test]
    fn every_parameter_is_optional_and_an_absent_limit_is_page_size_zero() {
        let query = parse(&[]).expect("valid");
        assert_eq!(query, ListMessagesQuery::default());
        assert_eq!(query.page_size(), 0);
    }

    #[test]
    fn the_limit_is_an_integer_from_1_to_100() {
        for (text, limit) in [("1", 1), ("50", 50), ("100", 100), ("007", 7)] {
            let query = parse(&[("limit", text)]).expect(text);
            assert_eq!(query.limit, Some(limit));
            assert_eq!(query.page_size(), limit);
        }
        for text in [
            "0",
            "101",
            "-1",
            "+5",
            "abc",
            "",
            " 5",
            "5.0",
            "1e2",
            "99999999999",
        ] {
            let problems = parse(&[("limit", text)]).expect_err(text);
            assert_eq!(
                problems,
                [format!(
                    "limit: must be an integer from 1 to 100, got {text:?}"
                )]
            );
        }
    }

    #[test]
    fn cursors_are_passed_as_they_are_even_both_at_once() {
        let query = parse(&[("before", "b c+/="), ("after", "")]).expect("valid");
        assert_eq!(query.before.as_deref(), Some("b c+/="));
        assert_eq!(query.after.as_deref(), Some(""));
    }

    #[test]
    fn unknown_and_repeated_parameters_are_refused_and_every_problem_is_named() {
        let problems = parse(&[
            ("page_size", "5"),
            ("limit", "0"),
            ("before", "x"),
            ("before", "y"),
            ("before", "z"),
            ("Limit", "5"),
        ])
        .expect_err("invalid");
        assert_eq!(
            problems,
            [
                "unknown query parameter `page_size`; expected `limit`, `before` or `after`",
                "before: must be given at most once",
                "unknown query parameter `Limit`; expected `limit`, `before` or `after`",
                "limit: must be an integer from 1 to 100, got \"0\"",
            ]
        );
    }
}
