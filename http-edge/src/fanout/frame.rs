//! Events encoded once: each upstream event becomes the bytes of one SSE
//! event, shared (reference-counted) by every client of the stream, so a
//! message costs one JSON serialisation per edge, not one per viewer.
//!
//! The bytes are exactly what the per-client relay writes
//! ([`crate::event_stream`]): `id:` the cursor, `event:` the type, `data:`
//! one line of JSON.

use std::fmt::Write as _;

use allmine_chat_proto::v1::{ChatEvent, Gap, chat_event};
use bytes::Bytes;

use super::position::Position;
use crate::{
    dto::ChatEventData,
    error::ApiError,
    event_stream::{ErrorEventData, one_line_json},
};

/// One event of a stream, encoded.
#[derive(Debug)]
pub struct Frame {
    pub position: Position,
    /// The event's cursor: where a client that got this frame resumes.
    pub cursor: Box<str>,
    /// `true` for chat-service's `gap` (the shared feed fell behind).
    pub is_gap: bool,
    pub bytes: Bytes,
}

/// What an upstream event becomes.
#[derive(Debug)]
pub enum Encoded {
    Frame(Frame),
    /// An event type newer than this build: its clients could not read it
    /// either. Its cursor is not lost: the next event's is later.
    Unknown,
}

/// Encodes one upstream event. A cursor that is not a position this edge can
/// order, or cannot be an SSE id, is refused: the feed cannot place it.
pub fn encode(event: ChatEvent) -> Result<Encoded, ApiError> {
    let ChatEvent { cursor, event } = event;
    let Some(event) = event else {
        return Ok(Encoded::Unknown);
    };
    let position = Position::parse(&cursor).ok_or_else(|| {
        ApiError::Internal(format!(
            "chat-service sent an event whose cursor is not a position: {cursor:?}"
        ))
    })?;
    let is_gap = matches!(event, chat_event::Event::Gap(_));
    let data = ChatEventData::from(event);
    let bytes = event_bytes(Some(&cursor), data.event_type(), &one_line_json(&data)?);
    Ok(Encoded::Frame(Frame {
        position,
        cursor: cursor.into_boxed_str(),
        is_gap,
        bytes,
    }))
}

/// A `gap` event at `cursor`: the client resumes from there.
pub fn gap(cursor: &str, reason: &str) -> Bytes {
    let data = ChatEventData::from(chat_event::Event::Gap(Gap {
        reason: reason.to_owned(),
    }));
    let json = one_line_json(&data).unwrap_or_else(|_| r#"{"reason":"gap"}"#.to_owned());
    event_bytes(Some(cursor), data.event_type(), &json)
}

/// The `error` event: the envelope's `errors`, no id (the resume point stays
/// the last event).
pub fn error(error: &ApiError) -> Bytes {
    let json = one_line_json(&ErrorEventData {
        errors: error.client_errors(),
    })
    .unwrap_or_else(|_| r#"{"errors":["Internal server error"]}"#.to_owned());
    event_bytes(None, "error", &json)
}

/// The comment that keeps an idle stream alive (what `axum`'s `KeepAlive`
/// writes for the per-client relay).
pub fn keep_alive() -> Bytes {
    Bytes::from_static(b": keep-alive\n\n")
}

/// `cursor` must be free of line breaks (checked by [`Position::parse`] for
/// upstream cursors, and by construction for the edge's own).
fn event_bytes(cursor: Option<&str>, event_type: &str, json: &str) -> Bytes {
    let mut text = String::with_capacity(json.len() + 64);
    if let Some(cursor) = cursor {
        let _ = writeln!(text, "id: {cursor}");
    }
    let _ = writeln!(text, "event: {event_type}");
    let _ = write!(text, "data: {json}\n\n");
    Bytes::from(text)
}

#[cfg(test)]
mod tests {
    use allmine_chat_proto::v1::ChatStateChanged;

    use super::*;

    const CURSOR: &str = "AQAAAZt5HqAAZNFfni5sj01aEjRW";

    #[test]
    fn an_event_is_encoded_as_the_relay_writes_it() {
        let Ok(Encoded::Frame(frame)) = encode(ChatEvent {
            cursor: CURSOR.to_owned(),
            event: Some(chat_event::Event::ChatStateChanged(ChatStateChanged {
                state: 2,
            })),
        }) else {
            panic!("a frame");
        };
        assert_eq!(
            frame.bytes,
            format!("id: {CURSOR}\nevent: chatStateChanged\ndata: {{\"state\":\"closed\"}}\n\n")
        );
        assert_eq!(frame.position, Position::parse(CURSOR).expect("cursor"));
        assert!(!frame.is_gap);
    }

    #[test]
    fn a_cursor_that_is_not_a_position_is_refused_and_an_unknown_type_skipped() {
        for cursor in ["", "a\nb", "AAAB-gap"] {
            let event = ChatEvent {
                cursor: cursor.to_owned(),
                event: Some(chat_event::Event::Gap(Gap::default())),
            };
            assert!(encode(event).is_err(), "{cursor:?}");
        }
        let unknown = ChatEvent {
            cursor: CURSOR.to_owned(),
            event: None,
        };
        assert!(matches!(encode(unknown), Ok(Encoded::Unknown)));
    }

    #[test]
    fn gap_and_error_events() {
        assert_eq!(
            gap(CURSOR, "fell behind"),
            format!("id: {CURSOR}\nevent: gap\ndata: {{\"reason\":\"fell behind\"}}\n\n")
        );
        let error = error(&ApiError::Unavailable("10.0.0.7".to_owned()));
        assert_eq!(
            error,
            "event: error\ndata: {\"errors\":[\"Service unavailable\"]}\n\n"
        );
    }
}
