//! How a message is laid out as bytes: its record (the store's own,
//! versioned: `records`) and the sort keys of the embedded store.

use super::StorageError;
use super::records::Record;
use crate::domain::{ChatMessage, ObjectId, Position, StreamId};

/// Length of a message key: stream id (12) + creation millis (8) + message id (12).
pub const MESSAGE_KEY_LEN: usize = 32;

/// The embedded store's key of a message. Keys sort by stream, then creation
/// time, then id: the newest messages of a stream are the end of one prefix
/// range, and messages with the same millisecond never collide (the id breaks
/// the tie and keeps one process's messages in acceptance order).
pub fn message_key(message: &ChatMessage) -> [u8; MESSAGE_KEY_LEN] {
    position_key(&message.stream_id, &message.position())
}

/// The key a message at `position` of `stream` has (or would have).
pub fn position_key(stream: &StreamId, position: &Position) -> [u8; MESSAGE_KEY_LEN] {
    let mut key = [0u8; MESSAGE_KEY_LEN];
    key[0..12].copy_from_slice(stream.as_bytes());
    key[12..20].copy_from_slice(&sortable_millis(position.created_ms));
    key[20..32].copy_from_slice(position.id.as_bytes());
    key
}

/// The position inside a key made by [`position_key`].
pub fn key_position(key: &[u8]) -> Option<Position> {
    let millis: [u8; 8] = key.get(12..20)?.try_into().ok()?;
    let id: [u8; 12] = key.get(20..32)?.try_into().ok()?;
    Some(Position {
        created_ms: (u64::from_be_bytes(millis) ^ (1 << 63)) as i64,
        id: ObjectId::from_bytes(id),
    })
}

/// Millis as 8 big-endian bytes with the sign bit flipped, so that byte order
/// equals numeric order for times before 1970 too.
pub fn sortable_millis(millis: i64) -> [u8; 8] {
    ((millis as u64) ^ (1 << 63)).to_be_bytes()
}

/// A message's record (its cursor is not stored: the key says it).
pub fn encode_message(message: &ChatMessage) -> Vec<u8> {
    message.encode_record()
}

/// The message in a record written by [`encode_message`] of this or an
/// earlier release.
pub fn decode_message(bytes: &[u8]) -> Result<ChatMessage, StorageError> {
    ChatMessage::decode_record(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_gives_back_its_position() {
        let stream = StreamId::parse("64d15f9e2e6c8f4d5a123000").expect("id");
        for created_ms in [-5_000, 0, 1_767_225_600_123] {
            let position = Position {
                created_ms,
                id: ObjectId::parse("64d15f9e2e6c8f4d5a123456").expect("id"),
            };
            assert_eq!(
                key_position(&position_key(&stream, &position)),
                Some(position)
            );
        }
    }

    #[test]
    fn sortable_millis_keep_numeric_order_across_zero() {
        let values = [i64::MIN, -1_000, -1, 0, 1, 1_000, i64::MAX];
        for pair in values.windows(2) {
            assert!(sortable_millis(pair[0]) < sortable_millis(pair[1]));
        }
    }
}
