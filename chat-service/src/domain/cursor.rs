//! One ordering and one cursor for every way of reading a stream's chat.
//!
//! Messages of a stream are totally ordered by [`Position`]: creation time
//! (milliseconds), then message id. Equal times never tie, because ids are
//! unique; and within one chat-service process ids grow with time, so the
//! order is the order of acceptance.
//!
//! A [`Cursor`] is a position, encoded for clients: opaque, URL-safe
//! (base64url of a version byte, 8 bytes of time and 12 of id), and the same
//! kind of value in history pages and in the live stream's events.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::{ChatMessage, ObjectId};

/// Where a message stands in its stream's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    pub created_ms: i64,
    /// The id of the message or event at this position.
    pub id: ObjectId,
}

impl ChatMessage {
    pub fn position(&self) -> Position {
        Position {
            created_ms: self.created_at.timestamp_millis(),
            id: self.id.object_id(),
        }
    }
}

/// A position as clients see it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Cursor(Position);

const VERSION: u8 = 1;
const ENCODED_LEN: usize = 21;

/// Why a text is not a cursor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("is not a cursor returned by this API")]
pub struct CursorError;

impl Cursor {
    pub fn new(position: Position) -> Self {
        Self(position)
    }

    pub fn position(&self) -> Position {
        self.0
    }

    pub fn parse(text: &str) -> Result<Self, CursorError> {
        // A bound before decoding, so a huge input costs nothing.
        if text.len() > 64 {
            return Err(CursorError);
        }
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| CursorError)?;
        let bytes: [u8; ENCODED_LEN] = bytes.try_into().map_err(|_| CursorError)?;
        if bytes[0] != VERSION {
            return Err(CursorError);
        }
        let mut millis = [0u8; 8];
        millis.copy_from_slice(&bytes[1..9]);
        let mut id = [0u8; 12];
        id.copy_from_slice(&bytes[9..21]);
        Ok(Self(Position {
            created_ms: i64::from_be_bytes(millis),
            id: ObjectId::from_bytes(id),
        }))
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut bytes = [0u8; ENCODED_LEN];
        bytes[0] = VERSION;
        bytes[1..9].copy_from_slice(&self.0.created_ms.to_be_bytes());
        bytes[9..21].copy_from_slice(self.0.id.as_bytes());
        formatter.write_str(&URL_SAFE_NO_PAD.encode(bytes))
    }
}

impl fmt::Debug for Cursor {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "Cursor({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn position(created_ms: i64, id: &str) -> Position {
        Position {
            created_ms,
            id: ObjectId::parse(id).expect("id"),
        }
    }

    #[test]
    fn a_cursor_round_trips_through_its_text() {
        let cursor = Cursor::new(position(1_767_225_600_123, "64d15f9e2e6c8f4d5a123456"));
        let text = cursor.to_string();
        assert_eq!(text.len(), 28);
        assert!(
            text.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        assert_eq!(Cursor::parse(&text), Ok(cursor));
    }

    #[test]
    fn garbage_is_not_a_cursor() {
        for text in ["", "abc", "!!!!", &"A".repeat(28), &"A".repeat(500)] {
            assert_eq!(Cursor::parse(text), Err(CursorError), "{text:?}");
        }
    }

    #[test]
    fn positions_order_by_time_then_id() {
        let early = position(1_000, "ffffffffffffffffffffffff");
        let late = position(1_001, "000000000000000000000000");
        let late_bigger_id = position(1_001, "000000000000000000000001");
        assert!(early < late && late < late_bigger_id);
    }
}
