//! The text of a chat message.

use std::fmt;

use super::characters::{is_explicit_bidi_control, is_invisible};

/// At most this many characters (Unicode scalar values) after trimming.
pub const MAX_CONTENT_CHARS: usize = 500;

/// Message text that is trimmed, 1 to [`MAX_CONTENT_CHARS`] characters long,
/// not blank (something in it is visible), free of control characters other
/// than line breaks and tabs, and free of explicit bidi controls.
#[derive(Clone, PartialEq, Eq)]
pub struct MessageContent(String);

/// Why a text is not acceptable message content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContentError {
    /// Nothing visible: empty, or only whitespace and invisible characters
    /// (see [`super::characters`]).
    #[error("must not be empty or only whitespace/invisible characters")]
    Empty,
    #[error("must be at most {MAX_CONTENT_CHARS} characters, got {0}")]
    TooLong(usize),
    #[error("must not contain control characters (found U+{0:04X})")]
    ControlCharacter(u32),
    #[error(
        "must not contain bidirectional embedding, override or isolate controls (found U+{0:04X})"
    )]
    BidiControl(u32),
}

impl MessageContent {
    /// Trims surrounding whitespace, then checks length and characters.
    /// Invisible characters are kept as sent (emoji sequences and
    /// right-to-left text need joiners and marks); they only cannot make up
    /// a whole message.
    pub fn parse(text: &str) -> Result<Self, ContentError> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(ContentError::Empty);
        }
        let length = trimmed.chars().count();
        if length > MAX_CONTENT_CHARS {
            return Err(ContentError::TooLong(length));
        }
        // After the length check, so that it reads at most 500 characters;
        // it stops at the first visible one (the first, in ordinary text).
        if trimmed
            .chars()
            .all(|c| c.is_whitespace() || is_invisible(c))
        {
            return Err(ContentError::Empty);
        }
        // Line breaks and tabs are how people format chat; other control
        // characters (NUL, ESC) only serve to corrupt terminals and logs.
        if let Some(control) = trimmed
            .chars()
            .find(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        {
            return Err(ContentError::ControlCharacter(u32::from(control)));
        }
        // Embeddings, overrides and isolates reorder what follows them, up to
        // the end of the paragraph in a renderer that does not close them at
        // the message's end: a message could show text that reads otherwise
        // than it is stored (Trojan Source, CVE-2021-42574), or reorder the
        // chat shown after it. Stripping would change the text silently and
        // balancing them still lets a message reorder itself; refusing is
        // the one answer a client can act on. The implicit marks (LRM, RLM,
        // ALM) stay: right-to-left writers need them, and they reorder
        // nothing beyond their neighbours.
        if let Some(bidi) = trimmed.chars().find(|c| is_explicit_bidi_control(*c)) {
            return Err(ContentError::BidiControl(u32::from(bidi)));
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
    fn a_text_of_only_invisible_characters_is_blank() {
        let blank_texts = [
            "\u{200B}",
            "\u{200B}\u{2060}\u{FEFF}\u{3164}\u{2800}",
            " \u{200C}\u{200D} \u{00AD}\n\u{115F}\u{1160}\u{FFA0}",
            "\u{2061}\u{2062}\u{2063}\u{2064}\u{180E}\u{034F}",
            "\u{200E}\u{200F}\u{061C}",
            "\u{FE0F}\u{E0100}",
            "\u{E0001}\u{E0074}\u{E0065}\u{E0073}\u{E0074}\u{E007F}",
            // A lone override is blank before it is a bidi violation.
            "\u{202E}",
        ];
        for text in blank_texts {
            assert_eq!(
                MessageContent::parse(text),
                Err(ContentError::Empty),
                "{text:?}"
            );
        }
    }

    #[test]
    fn every_invisible_character_alone_is_blank_and_beside_a_letter_is_kept() {
        let invisible = (0..=u32::from(char::MAX))
            .filter_map(char::from_u32)
            .filter(|c| super::is_invisible(*c) && !super::is_explicit_bidi_control(*c));
        let mut checked = 0;
        for character in invisible {
            let alone = character.to_string();
            assert_eq!(MessageContent::parse(&alone), Err(ContentError::Empty));
            let beside = format!("a{character}");
            let content = MessageContent::parse(&beside).expect("visible text");
            assert_eq!(content.as_str(), beside, "kept as sent");
            checked += 1;
        }
        // Default_Ignorable_Code_Point has 4,174 code points in Unicode 16.0;
        // 9 of them are explicit bidi controls; U+2800 is added.
        assert_eq!(checked, 4_174 - 9 + 1);
    }

    #[test]
    fn invisible_characters_inside_visible_text_are_kept() {
        let texts = [
            // A ZWJ emoji sequence (family) and an emoji presentation selector.
            "\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}",
            "\u{2764}\u{FE0F}",
            // The flag of England: a tag sequence.
            "\u{1F3F4}\u{E0067}\u{E0062}\u{E0065}\u{E006E}\u{E0067}\u{E007F}",
            // Persian needs the zero-width non-joiner.
            "می\u{200C}خواهم",
            // An RLM keeping punctuation on the right side of Hebrew text.
            "שלום!\u{200F}",
        ];
        for text in texts {
            let content = MessageContent::parse(text).expect("visible text");
            assert_eq!(content.as_str(), text);
        }
    }

    #[test]
    fn format_characters_that_draw_something_are_not_blank() {
        // The Arabic number sign is Cf but visible (not default-ignorable).
        assert!(MessageContent::parse("\u{0600}").is_ok());
    }

    #[test]
    fn explicit_bidi_controls_are_refused_and_named() {
        let cases = [
            ("price: \u{202E}0001\u{202C} TL", 0x202E),
            ("a\u{202A}b", 0x202A),
            ("a\u{202B}b", 0x202B),
            ("a\u{202D}b", 0x202D),
            ("isolated \u{2066}text\u{2069}", 0x2066),
            ("a\u{2067}b", 0x2067),
            ("a\u{2068}b", 0x2068),
            ("a\u{2069}b", 0x2069),
        ];
        for (text, code_point) in cases {
            assert_eq!(
                MessageContent::parse(text),
                Err(ContentError::BidiControl(code_point)),
                "{text:?}"
            );
        }
        assert_eq!(
            ContentError::BidiControl(0x202E).to_string(),
            "must not contain bidirectional embedding, override or isolate controls (found U+202E)"
        );
    }

    #[test]
    fn the_blank_message_names_invisible_characters() {
        assert_eq!(
            ContentError::Empty.to_string(),
            "must not be empty or only whitespace/invisible characters"
        );
    }

    #[test]
    fn debug_output_does_not_show_the_text() {
        let content = MessageContent::parse("secret plans").expect("valid");
        assert_eq!(format!("{content:?}"), "MessageContent(12 chars)");
    }
}
