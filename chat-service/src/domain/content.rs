//! The text of a chat message.

use std::fmt;

/// At most this many characters (Unicode scalar values) after trimming.
pub const MAX_CONTENT_CHARS: usize = 500;

/// Message text that is trimmed, 1 to [`MAX_CONTENT_CHARS`] characters long, and
/// free of control characters other than line breaks and tabs.
#[derive(Clone, PartialEq, Eq)]
pub struct MessageContent(String);

/// Why a text is not acceptable message content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContentError {
    #[error("must not be empty or only whitespace")]
    Empty,
    #[error("must be at most {MAX_CONTENT_CHARS} characters, got {0}")]
    TooLong(usize),
    #[error("must not contain control characters (found U+{0:04X})")]
    ControlCharacter(u32),
}

impl MessageContent {
    /// Trims surrounding whitespace, then checks length and characters.
    pub fn parse(text: &str) -> Result<Self, ContentError> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(ContentError::Empty);
        }
        let length = trimmed.chars().count();
        if length > MAX_CONTENT_CHARS {
            return Err(ContentError::TooLong(length));
        }
        // Line breaks and tabs are how people format chat; other control
        // characters (NUL, ESC, bidi controls are not in Cc) only serve to
        // corrupt terminals and logs.
        if let Some(control) = trimmed
            .chars()
            .find(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        {
            return Err(ContentError::ControlCharacter(u32::from(control)));
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Debug for MessageContent {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Content is user data: show its size, not its text, in debug output.
        write!(
            formatter,
            "MessageContent({} chars)",
            self.0.chars().count()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn surrounding_whitespace_is_trimmed() {
        let content = MessageContent::parse("  Herkese selam!\n").expect("valid");
        assert_eq!(content.as_str(), "Herkese selam!");
    }

    #[test]
    fn an_empty_text_is_rejected() {
        assert_eq!(MessageContent::parse(""), Err(ContentError::Empty));
    }

    #[test]
    fn a_text_of_only_whitespace_is_rejected() {
        assert_eq!(MessageContent::parse(" \n\t "), Err(ContentError::Empty));
    }

    #[test]
    fn exactly_500_characters_is_accepted() {
        assert!(MessageContent::parse(&"a".repeat(500)).is_ok());
    }

    #[test]
    fn a_text_longer_than_500_characters_is_rejected() {
        assert_eq!(
            MessageContent::parse(&"a".repeat(501)),
            Err(ContentError::TooLong(501))
        );
    }

    #[test]
    fn length_counts_characters_not_bytes() {
        // 500 two-byte characters are 1000 bytes but 500 characters.
        assert!(MessageContent::parse(&"ç".repeat(500)).is_ok());
        // 500 four-byte emoji likewise.
        assert!(MessageContent::parse(&"🎉".repeat(500)).is_ok());
        assert_eq!(
            MessageContent::parse(&"🎉".repeat(501)),
            Err(ContentError::TooLong(501))
        );
    }

    #[test]
    fn whitespace_beyond_500_characters_is_trimmed_before_counting() {
        let text = format!("   {}   ", "a".repeat(500));
        assert!(MessageContent::parse(&text).is_ok());
    }

    #[test]
    fn line_breaks_and_tabs_inside_are_kept() {
        let content = MessageContent::parse("line one\r\nline two\tend").expect("valid");
        assert_eq!(content.as_str(), "line one\r\nline two\tend");
    }

    #[test]
    fn a_nul_character_is_rejected() {
        assert_eq!(
            MessageContent::parse("hi\u{0}there"),
            Err(ContentError::ControlCharacter(0))
        );
    }

    #[test]
    fn an_escape_sequence_is_rejected() {
        assert_eq!(
            MessageContent::parse("\u{1b}[31mred"),
            Err(ContentError::ControlCharacter(0x1b))
        );
    }

    #[test]
    fn a_c1_control_character_is_rejected() {
        assert_eq!(
            MessageContent::parse("a\u{85}b"),
            Err(ContentError::ControlCharacter(0x85))
        );
    }

    #[test]
    fn debug_output_does_not_show_the_text() {
        let content = MessageContent::parse("secret plans").expect("valid");
        assert_eq!(format!("{content:?}"), "MessageContent(12 chars)");
    }
}
