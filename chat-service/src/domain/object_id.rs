//! ObjectId: the 12-byte identifier Allmine uses for users, streams and
//! messages, written as 24 lowercase hex digits.
//!
//! Layout (as MongoDB's): 4 bytes of Unix seconds (big endian), 5 random bytes
//! chosen once per process, 3 bytes of a per-process counter. Ids made by one
//! process therefore sort in creation order (byte order = hex order), and two
//! processes never collide unless their 40 random bits do.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};

use chrono::{DateTime, Utc};

/// A parsed ObjectId. The only ways in are [`ObjectId::parse`] and
/// [`ObjectIdGenerator::next`].
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectId([u8; 12]);

/// Why a string is not an ObjectId.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObjectIdError {
    #[error("must be 24 hexadecimal characters, got {0}")]
    WrongLength(usize),
    #[error("must contain only hexadecimal characters (0-9, a-f)")]
    NotHex,
}

impl ObjectId {
    /// Parses 24 hex digits (either case; shown lowercase afterwards).
    pub fn parse(text: &str) -> Result<Self, ObjectIdError> {
        let chars = text.as_bytes();
        if chars.len() != 24 {
            return Err(ObjectIdError::WrongLength(text.chars().count()));
        }
        let mut bytes = [0u8; 12];
        for (index, pair) in chars.chunks_exact(2).enumerate() {
            let high = hex_value(pair[0]).ok_or(ObjectIdError::NotHex)?;
            let low = hex_value(pair[1]).ok_or(ObjectIdError::NotHex)?;
            bytes[index] = (high << 4) | low;
        }
        Ok(Self(bytes))
    }

    /// Rebuilds an id from the 12 bytes a store kept.
    pub fn from_bytes(bytes: [u8; 12]) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 12] {
        &self.0
    }

    /// The creation second encoded in the id.
    pub fn timestamp_seconds(&self) -> u32 {
        u32::from_be_bytes([self.0[0], self.0[1], self.0[2], self.0[3]])
    }
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

impl ObjectId {
    /// The 24 lowercase hex digits, on the stack. Hand-rolled because an id
    /// is written several times per send (the stored record, the reply,
    /// span fields): twelve `{:02x}` through the formatting machinery cost
    /// ~3,900 instructions per id, ~16% of a send's CPU (BENCHMARKS.md,
    /// "Lean send path").
    pub fn hex(&self) -> HexId {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut text = [0u8; 24];
        for (index, byte) in self.0.iter().enumerate() {
            text[2 * index] = DIGITS[usize::from(byte >> 4)];
            text[2 * index + 1] = DIGITS[usize::from(byte & 0x0f)];
        }
        HexId(text)
    }
}

/// An id's 24 hex digits ([`ObjectId::hex`]).
#[derive(Clone, Copy)]
pub struct HexId([u8; 24]);

impl HexId {
    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever written into it.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.hex().as_str())
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "ObjectId({self})")
    }
}

/// Makes new ObjectIds for one process.
#[derive(Debug)]
pub struct ObjectIdGenerator {
    process_random: [u8; 5],
    counter: AtomicU32,
}

impl Default for ObjectIdGenerator {
    fn default() -> Self {
        Self::new()
    }
}

impl ObjectIdGenerator {
    /// A generator with fresh process randomness and a random counter start
    /// (as the ObjectId spec asks, so that restarts within one second do not
    /// reuse counter values).
    pub fn new() -> Self {
        let process_random: [u8; 5] = rand::random();
        let counter_start: u32 = rand::random::<u32>() & 0x00ff_ffff;
        Self {
            process_random,
            counter: AtomicU32::new(counter_start),
        }
    }

    /// A new id stamped with `at`'s second. The caller passes the same instant
    /// it records as the message's creation time, so the id and the time agree.
    pub fn next(&self, at: DateTime<Utc>) -> ObjectId {
        // Relaxed is enough: uniqueness needs only the atomic increment itself.
        let count = self.counter.fetch_add(1, Ordering::Relaxed) & 0x00ff_ffff;
        // Seconds past 2106 wrap, as in every ObjectId implementation.
        let seconds = (at.timestamp() as u64 & 0xffff_ffff) as u32;
        let mut bytes = [0u8; 12];
        bytes[0..4].copy_from_slice(&seconds.to_be_bytes());
        bytes[4..9].copy_from_slice(&self.process_random);
        bytes[9..12].copy_from_slice(&count.to_be_bytes()[1..4]);
        ObjectId(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_24_hex_string_round_trips_in_lowercase() {
        let id = ObjectId::parse("64D15F9E2E6C8F4D5A123456").expect("valid id");
        assert_eq!(id.to_string(), "64d15f9e2e6c8f4d5a123456");
    }

    #[test]
    fn a_string_of_the_wrong_length_is_rejected() {
        assert_eq!(ObjectId::parse(""), Err(ObjectIdError::WrongLength(0)));
        assert_eq!(
            ObjectId::parse("64d15f9e2e6c8f4d5a12345"),
            Err(ObjectIdError::WrongLength(23))
        );
        assert_eq!(
            ObjectId::parse("64d15f9e2e6c8f4d5a1234567"),
            Err(ObjectIdError::WrongLength(25))
        );
    }

    #[test]
    fn a_non_hex_character_is_rejected() {
        assert_eq!(
            ObjectId::parse("64d15f9e2e6c8f4d5a12345g"),
            Err(ObjectIdError::NotHex)
        );
        assert_eq!(
            ObjectId::parse("64d15f9e2e6c8f4d5a12345 "),
            Err(ObjectIdError::NotHex)
        );
    }

    #[test]
    fn multibyte_text_of_24_bytes_is_rejected_not_panicking() {
        // 12 two-byte characters: 24 bytes, but not hex.
        assert!(ObjectId::parse("éééééééééééé").is_err());
    }

    #[test]
    fn a_generated_id_is_24_lowercase_hex_digits_with_the_given_second() {
        let generator = ObjectIdGenerator::new();
        let at = Utc
            .timestamp_opt(1_700_000_000, 0)
            .single()
            .expect("valid time");
        let id = generator.next(at);
        let text = id.to_string();
        assert_eq!(text.len(), 24);
        assert!(
            text.bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
        );
        assert_eq!(id.timestamp_seconds(), 1_700_000_000);
        assert_eq!(ObjectId::parse(&text), Ok(id));
    }

    #[test]
    fn ids_from_one_generator_increase_within_a_second_and_across_seconds() {
        let generator = ObjectIdGenerator {
            process_random: [1, 2, 3, 4, 5],
            counter: AtomicU32::new(0),
        };
        let first_second = Utc
            .timestamp_opt(1_700_000_000, 0)
            .single()
            .expect("valid time");
        let next_second = Utc
            .timestamp_opt(1_700_000_001, 0)
            .single()
            .expect("valid time");
        let a = generator.next(first_second);
        let b = generator.next(first_second);
        let c = generator.next(next_second);
        assert!(a < b && b < c);
        assert!(a.to_string() < b.to_string() && b.to_string() < c.to_string());
    }

    #[test]
    fn the_counter_takes_three_bytes_and_wraps() {
        let generator = ObjectIdGenerator {
            process_random: [0; 5],
            counter: AtomicU32::new(0x00ff_ffff),
        };
        let at = Utc.timestamp_opt(0, 0).single().expect("valid time");
        assert!(generator.next(at).to_string().ends_with("ffffff"));
        assert!(generator.next(at).to_string().ends_with("000000"));
    }
}
