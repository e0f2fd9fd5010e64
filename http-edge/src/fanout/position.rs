//! Where an event stands in its stream's order, read from its cursor, so
//! that the edge can tell whether a client's cursor is inside its ring.
//!
//! A cursor is opaque to clients but not to the edge: chat-service encodes a
//! *position* (creation time in ms, then the 12-byte id; docs/live.md) as
//! base64url of a version byte, 8 big-endian bytes of time and the id. The
//! cursor *texts* do not sort like the positions (the base64url alphabet is
//! not in ASCII order), so membership is decided on decoded positions.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The version byte this edge understands (chat-service's `Cursor`).
const VERSION: u8 = 1;
const ENCODED_LEN: usize = 21;

/// A position: creation time (ms), then id; ordered as chat-service orders
/// events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    pub created_ms: i64,
    pub id: [u8; 12],
}

impl Position {
    /// The position `cursor` encodes, or `None` for a text that is not a
    /// cursor of this version (chat-service then decides, and refuses it).
    pub fn parse(cursor: &str) -> Option<Self> {
        if cursor.len() > 64 {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
        let bytes: [u8; ENCODED_LEN] = bytes.try_into().ok()?;
        if bytes[0] != VERSION {
            return None;
        }
        let mut millis = [0u8; 8];
        millis.copy_from_slice(&bytes[1..9]);
        let mut id = [0u8; 12];
        id.copy_from_slice(&bytes[9..21]);
        Some(Self {
            created_ms: i64::from_be_bytes(millis),
            id,
        })
    }

    /// The position `millis` before this one (before every event of that
    /// millisecond).
    pub fn earlier_by(self, millis: i64) -> Self {
        Self {
            created_ms: self.created_ms.saturating_sub(millis),
            id: [0; 12],
        }
    }

    /// The cursor chat-service reads as this position.
    pub fn cursor(&self) -> String {
        let mut bytes = [0u8; ENCODED_LEN];
        bytes[0] = VERSION;
        bytes[1..9].copy_from_slice(&self.created_ms.to_be_bytes());
        bytes[9..].copy_from_slice(&self.id);
        URL_SAFE_NO_PAD.encode(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(created_ms: i64, id: [u8; 12]) -> String {
        Position { created_ms, id }.cursor()
    }

    #[test]
    fn a_cursor_decodes_to_its_position() {
        let text = encode(1_767_225_600_123, [7; 12]);
        // Version 1, 8 big-endian bytes of time, the id (docs/live.md).
        assert_eq!(text, "AQAAAZt22qh7BwcHBwcHBwcHBwcH");
        assert_eq!(
            Position::parse(&text),
            Some(Position {
                created_ms: 1_767_225_600_123,
                id: [7; 12]
            })
        );
    }

    #[test]
    fn positions_order_by_time_then_id_whatever_the_texts_say() {
        // 0x3e encodes as '-' and 0x3f as '_', which sort before and after
        // the letters in ASCII.
        let early = encode(1_000, [0x3e; 12]);
        let late = encode(1_000, [0x3f; 12]);
        let later = encode(1_001, [0; 12]);
        let (early, late, later) = (
            Position::parse(&early).expect("cursor"),
            Position::parse(&late).expect("cursor"),
            Position::parse(&later).expect("cursor"),
        );
        assert!(early < late && late < later);
        let earlier = later.earlier_by(1);
        assert!(earlier < early);
        assert_eq!(Position::parse(&earlier.cursor()), Some(earlier));
    }

    #[test]
    fn other_texts_are_not_positions() {
        for text in ["", "abc", "AAAB-gap", &"A".repeat(28), &"A".repeat(500)] {
            assert_eq!(Position::parse(text), None, "{text:?}");
        }
        let mut other_version = vec![2u8];
        other_version.extend_from_slice(&[0; 20]);
        assert_eq!(
            Position::parse(&URL_SAFE_NO_PAD.encode(other_version)),
            None
        );
    }
}
