//! The Unicode character classes the content rule needs, as small tables
//! (no Unicode database dependency for two properties).
//!
//! - *Invisible*: the Unicode property `Default_Ignorable_Code_Point`
//!   (Unicode 16.0, DerivedCoreProperties.txt), plus U+2800 BRAILLE PATTERN
//!   BLANK. Default-ignorable is the standard's own answer to "renders as
//!   nothing": zero-width space/joiners, word joiner and the invisible
//!   operators, BOM, soft hyphen, LRM/RLM/ALM, the bidi controls, the Hangul
//!   fillers, the Mongolian vowel separator and free variation selectors, the
//!   combining grapheme joiner, variation selectors, tag characters. It
//!   leaves out, on purpose, the format characters that *do* draw something
//!   (Arabic number signs U+0600-U+0605, U+06DD, …) or must be shown when not
//!   supported (U+FFF9-U+FFFB, Egyptian format controls). U+2800 is a
//!   printable symbol whose glyph is an empty cell: text made of it looks
//!   blank, which is all the rule is about.
//! - *Explicit bidi formatting*: the embeddings, overrides and isolates
//!   (U+202A-U+202E, U+2066-U+2069), the subset of `Bidi_Control` that
//!   reorders the text around it. The implicit marks (LRM, RLM, ALM) are not
//!   in it: they change no order beyond their neighbour's direction.

/// `Default_Ignorable_Code_Point` (Unicode 16.0) and U+2800, as sorted,
/// non-overlapping inclusive ranges.
const INVISIBLE: &[(char, char)] = &[
    ('\u{00AD}', '\u{00AD}'),   // soft hyphen
    ('\u{034F}', '\u{034F}'),   // combining grapheme joiner
    ('\u{061C}', '\u{061C}'),   // Arabic letter mark
    ('\u{115F}', '\u{1160}'),   // Hangul choseong and jungseong fillers
    ('\u{17B4}', '\u{17B5}'),   // Khmer inherent vowels
    ('\u{180B}', '\u{180F}'),   // Mongolian free variation selectors, vowel separator
    ('\u{200B}', '\u{200F}'),   // zero-width space, non-joiner, joiner, LRM, RLM
    ('\u{202A}', '\u{202E}'),   // bidi embeddings and overrides
    ('\u{2060}', '\u{206F}'),   // word joiner, invisible operators, isolates, deprecated
    ('\u{2800}', '\u{2800}'),   // Braille pattern blank (not default-ignorable; see above)
    ('\u{3164}', '\u{3164}'),   // Hangul filler
    ('\u{FE00}', '\u{FE0F}'),   // variation selectors 1-16
    ('\u{FEFF}', '\u{FEFF}'),   // zero-width no-break space (BOM)
    ('\u{FFA0}', '\u{FFA0}'),   // halfwidth Hangul filler
    ('\u{FFF0}', '\u{FFF8}'),   // unassigned, reserved as ignorable
    ('\u{1BCA0}', '\u{1BCA3}'), // shorthand format controls
    ('\u{1D173}', '\u{1D17A}'), // musical symbol format controls
    ('\u{E0000}', '\u{E0FFF}'), // tags, variation selectors 17-256, reserved
];

/// Embeddings, overrides (U+202A-U+202E) and isolates (U+2066-U+2069).
const EXPLICIT_BIDI: &[(char, char)] = &[('\u{202A}', '\u{202E}'), ('\u{2066}', '\u{2069}')];

/// Whether `character` renders as nothing (see the module docs).
pub fn is_invisible(character: char) -> bool {
    in_ranges(INVISIBLE, character)
}

/// Whether `character` is an explicit bidi embedding, override or isolate.
pub fn is_explicit_bidi_control(character: char) -> bool {
    in_ranges(EXPLICIT_BIDI, character)
}

fn in_ranges(ranges: &[(char, char)], character: char) -> bool {
    ranges
        .binary_search_by(|&(first, last)| {
            if last < character {
                std::cmp::Ordering::Less
            } else if first > character {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tables_are_sorted_and_do_not_overlap() {
        for ranges in [INVISIBLE, EXPLICIT_BIDI] {
            for (first, last) in ranges {
                assert!(first <= last, "{first:?}..{last:?}");
            }
            for pair in ranges.windows(2) {
                assert!(pair[0].1 < pair[1].0, "{pair:?}");
            }
        }
    }

    #[test]
    fn the_characters_people_hide_messages_with_are_invisible() {
        for character in [
            '\u{200B}',
            '\u{200C}',
            '\u{200D}',
            '\u{2060}',
            '\u{2061}',
            '\u{2064}',
            '\u{FEFF}',
            '\u{00AD}',
            '\u{115F}',
            '\u{1160}',
            '\u{3164}',
            '\u{FFA0}',
            '\u{2800}',
            '\u{180E}',
            '\u{034F}',
            '\u{200E}',
            '\u{200F}',
            '\u{061C}',
            '\u{FE0F}',
            '\u{E0001}',
            '\u{E0041}',
            '\u{E007F}',
            '\u{E0100}',
            '\u{202E}',
            '\u{2066}',
        ] {
            assert!(is_invisible(character), "U+{:04X}", u32::from(character));
        }
    }

    #[test]
    fn visible_characters_and_visible_format_characters_are_not_invisible() {
        for character in [
            'a', 'ç', 'ı', '1', '!', 'ㅎ', '가', '😀', '\u{2764}', '\u{0600}', '\u{06DD}',
            '\u{FFF9}', '\u{2801}', '\u{0301}', ' ',
        ] {
            assert!(!is_invisible(character), "U+{:04X}", u32::from(character));
        }
    }

    #[test]
    fn only_embeddings_overrides_and_isolates_are_explicit_bidi_controls() {
        for character in ('\u{202A}'..='\u{202E}').chain('\u{2066}'..='\u{2069}') {
            assert!(is_explicit_bidi_control(character));
        }
        for character in [
            '\u{200E}', '\u{200F}', '\u{061C}', '\u{2029}', '\u{206A}', 'a',
        ] {
            assert!(!is_explicit_bidi_control(character));
        }
    }
}
