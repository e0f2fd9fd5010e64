//! A user's public profile, as the user service reports it.

use super::{ProfilePhoto, Sender, UserId};

/// At most this many characters in a profile text field.
pub const MAX_PROFILE_TEXT_CHARS: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserProfile {
    pub user_id: UserId,
    pub username: Option<String>,
    pub name: Option<String>,
    pub surname: Option<String>,
    pub profile_photo: Option<ProfilePhoto>,
    pub availability_status: Option<String>,
}

impl UserProfile {
    /// The sender snapshot a message carries.
    pub fn to_sender(&self) -> Sender {
        Sender {
            id: self.user_id,
            username: self.username.clone(),
            name: self.name.clone(),
            surname: self.surname.clone(),
            profile_photo: self.profile_photo.clone(),
            availability_status: self.availability_status.clone(),
        }
    }
}

/// An optional profile text: trimmed, empty means unknown, bounded, no
/// control characters.
pub fn parse_profile_text(text: Option<&str>) -> Result<Option<String>, String> {
    let Some(trimmed) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let length = trimmed.chars().count();
    if length > MAX_PROFILE_TEXT_CHARS {
        return Err(format!(
            "must be at most {MAX_PROFILE_TEXT_CHARS} characters, got {length}"
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(Some(trimmed.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_texts_are_trimmed_and_empty_means_unknown() {
        assert_eq!(parse_profile_text(Some(" john ")), Ok(Some("john".into())));
        assert_eq!(parse_profile_text(Some("  ")), Ok(None));
        assert_eq!(parse_profile_text(None), Ok(None));
        assert!(parse_profile_text(Some(&"x".repeat(201))).is_err());
    }
}
