//! "Ban a user": its request body and the `Ban` it returns.

use allmine_chat_proto::v1::Ban;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::format_proto_timestamp;

/// The body of `POST /api/v1/live-stream/{streamId}/chat/bans`.
///
/// `durationSeconds` absent (or `null`) is a permanent ban, present a timeout.
/// Its type is the proto's `uint32`, so a negative, fractional or too large
/// value is a 400 naming the field here; the allowed range (1 to two weeks) is
/// chat-service's rule, as is the length of `reason`.
///
/// Unknown fields are rejected: the path names the stream and the token the
/// moderator, so `streamId` or `bannedBy` in the body must not seem to matter.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BanUserBody {
    #[schema(example = "64d15f9e2e6c8f4d5a1230b2", pattern = "^[0-9a-fA-F]{24}$")]
    pub user_id: String,
    /// Absent or `null`: a permanent ban; else a timeout of this many
    /// seconds (chat-service allows 1 to 1209600, two weeks), written as an
    /// integer (`600`; `600.0` is refused).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1_209_600)]
    pub duration_seconds: Option<u32>,
    /// At most 200 characters, no control characters.
    #[serde(default)]
    #[schema(max_length = 200)]
    pub reason: Option<String>,
}

/// A ban or timeout as the public API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Ban)]
pub struct BanJson {
    pub stream_id: String,
    pub user_id: String,
    /// `null` for a permanent ban.
    #[schema(required, format = DateTime)]
    pub expires_at: Option<String>,
    #[schema(required)]
    pub reason: Option<String>,
    pub banned_by: String,
    #[schema(required, format = DateTime)]
    pub created_at: Option<String>,
}

impl From<Ban> for BanJson {
    fn from(ban: Ban) -> Self {
        Self {
            stream_id: ban.stream_id,
            user_id: ban.user_id,
            expires_at: ban.expires_at.and_then(format_proto_timestamp),
            reason: ban.reason,
            banned_by: ban.banned_by,
            created_at: ban.created_at.and_then(format_proto_timestamp),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn body(json: &str) -> Result<BanUserBody, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn only_the_user_id_is_required() {
        let ban = body(r#"{"userId":"u"}"#).expect("valid");
        assert_eq!(ban.user_id, "u");
        assert_eq!(ban.duration_seconds, None);
        assert_eq!(ban.reason, None);
        let ban = body(r#"{"userId":"u","durationSeconds":null,"reason":null}"#).expect("valid");
        assert_eq!(ban.duration_seconds, None);
        let ban = body(r#"{"userId":"u","durationSeconds":600,"reason":"spam"}"#).expect("valid");
        assert_eq!(ban.duration_seconds, Some(600));
        assert_eq!(ban.reason.as_deref(), Some("spam"));
        assert!(body("{}").is_err());
    }

    #[test]
    fn the_duration_must_be_a_u32() {
        for duration in ["-1", "1.5", "4294967296", "\"60\"", "true"] {
            let json = format!(r#"{{"userId":"u","durationSeconds":{duration}}}"#);
            assert!(body(&json).is_err(), "{duration} must be rejected");
        }
        let json = r#"{"userId":"u","durationSeconds":4294967295}"#;
        assert_eq!(body(json).expect("valid").duration_seconds, Some(u32::MAX));
    }

    #[test]
    fn unknown_and_snake_case_fields_are_rejected() {
        for field in ["streamId", "bannedBy", "user_id", "duration_seconds"] {
            let json = format!(r#"{{"userId":"u","{field}":"x"}}"#);
            assert!(body(&json).is_err(), "{field} must be rejected");
        }
    }

    #[test]
    fn a_permanent_ban_has_every_key_with_null_expiry() {
        let ban = Ban {
            stream_id: "s".to_owned(),
            user_id: "u".to_owned(),
            banned_by: "m".to_owned(),
            ..Ban::default()
        };
        let json = serde_json::to_value(BanJson::from(ban)).expect("serializable");
        assert_eq!(
            json,
            json!({
                "streamId": "s",
                "userId": "u",
                "expiresAt": null,
                "reason": null,
                "bannedBy": "m",
                "createdAt": null,
            })
        );
    }
}
