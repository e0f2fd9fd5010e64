//! Bans and timeouts.

use chrono::{DateTime, Utc};

use super::{StreamId, UserId};

/// The longest timeout: two weeks. Longer means a permanent ban.
pub const MAX_TIMEOUT_SECS: u32 = 14 * 24 * 3600;

/// At most this many characters of ban reason.
pub const MAX_REASON_CHARS: usize = 200;

/// A ban of one user from one stream's chat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ban {
    pub stream_id: StreamId,
    pub user_id: UserId,
    /// `None`: permanent. `Some`: a timeout that ends then.
    pub expires_at: Option<DateTime<Utc>>,
    pub reason: Option<String>,
    pub banned_by: UserId,
    pub created_at: DateTime<Utc>,
}

impl Ban {
    /// Whether the ban still holds at `now`.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_none_or(|expires_at| now < expires_at)
    }

    /// "until …" or "permanently", for the banned user's error message.
    pub fn describe_until(&self) -> String {
        describe_ban_end(self.expires_at)
    }
}

/// "until <RFC 3339 time>" for a ban that ends at `expires_at`, "permanently"
/// for one that does not.
pub fn describe_ban_end(expires_at: Option<DateTime<Utc>>) -> String {
    match expires_at {
        Some(expires_at) => format!(
            "until {}",
            expires_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        ),
        None => "permanently".into(),
    }
}

/// The length of a timeout, 1 s to [`MAX_TIMEOUT_SECS`].
pub fn parse_timeout_seconds(seconds: u32) -> Result<chrono::Duration, String> {
    if seconds == 0 || seconds > MAX_TIMEOUT_SECS {
        return Err(format!(
            "must be between 1 and {MAX_TIMEOUT_SECS} seconds (omit it for a permanent ban), got {seconds}"
        ));
    }
    Ok(chrono::Duration::seconds(i64::from(seconds)))
}

/// A ban reason: trimmed, at most [`MAX_REASON_CHARS`], no control
/// characters; empty means none.
pub fn parse_reason(text: &str) -> Result<Option<String>, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    let length = trimmed.chars().count();
    if length > MAX_REASON_CHARS {
        return Err(format!(
            "must be at most {MAX_REASON_CHARS} characters, got {length}"
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

    fn ban(expires_at: Option<DateTime<Utc>>) -> Ban {
        let id = UserId::parse("64d15f9e2e6c8f4d5a123456").expect("id");
        Ban {
            stream_id: StreamId::parse("64d15f9e2e6c8f4d5a123000").expect("id"),
            user_id: id,
            expires_at,
            reason: None,
            banned_by: id,
            created_at: Utc::now(),
        }
    }

    #[test]
    fn a_permanent_ban_is_always_active() {
        assert!(ban(None).is_active(Utc::now() + chrono::Duration::days(3650)));
        assert_eq!(ban(None).describe_until(), "permanently");
    }

    #[test]
    fn a_timeout_ends_at_its_expiry() {
        let expiry = Utc::now();
        let timeout = ban(Some(expiry));
        assert!(timeout.is_active(expiry - chrono::Duration::milliseconds(1)));
        assert!(!timeout.is_active(expiry));
        assert!(timeout.describe_until().starts_with("until "));
    }

    #[test]
    fn timeouts_run_from_one_second_to_two_weeks() {
        assert!(parse_timeout_seconds(0).is_err());
        assert!(parse_timeout_seconds(1).is_ok());
        assert!(parse_timeout_seconds(MAX_TIMEOUT_SECS).is_ok());
        assert!(parse_timeout_seconds(MAX_TIMEOUT_SECS + 1).is_err());
    }

    #[test]
    fn reasons_are_trimmed_bounded_and_optional() {
        assert_eq!(parse_reason("  spam  "), Ok(Some("spam".into())));
        assert_eq!(parse_reason("   "), Ok(None));
        assert!(parse_reason(&"x".repeat(201)).is_err());
        assert!(parse_reason("a\u{0}b").is_err());
    }
}
