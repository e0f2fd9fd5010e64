//! The key a client attaches to a send so that retrying it is safe.

use std::fmt;

/// At most this many characters: room for a UUID, a ULID or a client's own
/// composite key, small enough to index cheaply in both stores.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// 1 to [`MAX_IDEMPOTENCY_KEY_LEN`] visible ASCII characters (0x21 to 0x7E):
/// exactly what fits in an HTTP header value unchanged, so the REST header and
/// the gRPC field carry the same key.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdempotencyKeyError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {MAX_IDEMPOTENCY_KEY_LEN} characters, got {0}")]
    TooLong(usize),
    #[error("must be visible ASCII characters only (no spaces or control characters)")]
    NotVisibleAscii,
}

impl IdempotencyKey {
    /// Checks the key as given: no trimming, since a key that differs by a
    /// space is another key.
    pub fn parse(text: &str) -> Result<Self, IdempotencyKeyError> {
        if text.is_empty() {
            return Err(IdempotencyKeyError::Empty);
        }
        if !text.bytes().all(|byte| byte.is_ascii_graphic()) {
            return Err(IdempotencyKeyError::NotVisibleAscii);
        }
        if text.len() > MAX_IDEMPOTENCY_KEY_LEN {
            return Err(IdempotencyKeyError::TooLong(text.len()));
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for IdempotencyKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "IdempotencyKey({})", self.0)
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_uuid_is_a_valid_key() {
        let key = IdempotencyKey::parse("6f1c1c2e-8d4b-4f3a-9a51-0b3c2d1e4f5a").expect("valid");
        assert_eq!(key.as_str(), "6f1c1c2e-8d4b-4f3a-9a51-0b3c2d1e4f5a");
    }

    #[test]
    fn an_empty_key_is_rejected() {
        assert_eq!(IdempotencyKey::parse(""), Err(IdempotencyKeyError::Empty));
    }

    #[test]
    fn a_key_of_255_characters_is_accepted_and_256_rejected() {
        assert!(IdempotencyKey::parse(&"k".repeat(255)).is_ok());
        assert_eq!(
            IdempotencyKey::parse(&"k".repeat(256)),
            Err(IdempotencyKeyError::TooLong(256))
        );
    }

    #[test]
    fn spaces_control_characters_and_non_ascii_are_rejected() {
        for text in [
            "has space",
            " lead",
            "tab\t",
            "nul\0",
            "é",
            "line\nbreak",
            "\u{7f}",
        ] {
            assert_eq!(
                IdempotencyKey::parse(text),
                Err(IdempotencyKeyError::NotVisibleAscii),
                "{text:?}"
            );
        }
    }
}
