//! The one mapping of [`ChatError`] to `tonic::Status`, at the edge of the
//! gRPC layer, and the rate-limit response metadata.
//!
//! Every status carries a `google.rpc.ErrorInfo` with the refusal's
//! [`RefusalReason`](crate::error::RefusalReason) and the domain
//! [`ERROR_DOMAIN`], so clients tell the rules apart without reading the
//! message. Beside it, as before: `google.rpc.BadRequest` field violations
//! (which http-edge turns into the envelope's `errors[]`) and
//! `google.rpc.RetryInfo` where retrying later succeeds.

use std::collections::HashMap;

use chrono::SecondsFormat;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

use crate::domain::{RateQuota, whole_seconds_up};
use crate::error::{ChatError, OVERLOAD_RETRY_AFTER};
use crate::storage::StorageError;

/// `google.rpc.ErrorInfo.domain` of every chat-service error.
pub const ERROR_DOMAIN: &str = "chat.allmine.tv";

/// ErrorInfo metadata: whole seconds (rounded up) until a retry succeeds,
/// beside the exact `RetryInfo`.
pub const RETRY_AFTER_SECONDS: &str = "retry_after_seconds";
/// ErrorInfo metadata: when a timeout ends (RFC 3339, UTC, milliseconds);
/// absent for a permanent ban.
pub const BANNED_UNTIL: &str = "banned_until";

/// Response metadata of sends and rate-limit refusals (the IETF RateLimit
/// fields): messages per window of the reported policy...
pub const RATELIMIT_LIMIT: &str = "ratelimit-limit";
/// ... messages that may be sent now ...
pub const RATELIMIT_REMAINING: &str = "ratelimit-remaining";
/// ... and whole seconds (rounded up) until the whole allowance is back.
pub const RATELIMIT_RESET: &str = "ratelimit-reset";

/// Writes `quota` as the three rate-limit metadata entries.
pub fn insert_rate_limit(metadata: &mut MetadataMap, quota: &RateQuota) {
    metadata.insert(RATELIMIT_LIMIT, MetadataValue::from(quota.limit));
    metadata.insert(RATELIMIT_REMAINING, MetadataValue::from(quota.remaining));
    metadata.insert(RATELIMIT_RESET, MetadataValue::from(quota.reset_seconds()));
}

impl From<ChatError> for Status {
    fn from(error: ChatError) -> Self {
        crate::metrics::record_refusal(&error);
        let reason = error.reason();
        let mut details = ErrorDetails::new();
        let mut info = HashMap::new();
        let mut metadata = MetadataMap::new();
        let (code, message) = match error {
            ChatError::Unauthenticated(why) => (Code::Unauthenticated, why.to_string()),
            ChatError::InvalidArgument(violations) => {
                let message = violations
                    .iter()
                    .map(|violation| format!("{}: {}", violation.field, violation.description))
                    .collect::<Vec<_>>()
                    .join("; ");
                details.set_bad_request(
                    violations
                        .into_iter()
                        .map(|violation| {
                            FieldViolation::new(violation.field, violation.description)
                        })
                        .collect::<Vec<_>>(),
                );
                (Code::InvalidArgument, message)
            }
            ChatError::PermissionDenied(why) => (Code::PermissionDenied, why),
            banned @ ChatError::Banned { until } => {
                if let Some(until) = until {
                    info.insert(
                        BANNED_UNTIL.to_owned(),
                        until.to_rfc3339_opts(SecondsFormat::Millis, true),
                    );
                }
                (Code::PermissionDenied, banned.to_string())
            }
            missing @ ChatError::StreamNotRegistered(_) => (Code::NotFound, missing.to_string()),
            ChatError::NotFound(what) => (Code::NotFound, what),
            taken @ (ChatError::StreamAlreadyRegistered(_) | ChatError::IdempotencyKeyReused) => {
                (Code::AlreadyExists, taken.to_string())
            }
            closed @ ChatError::ChatClosed => (Code::FailedPrecondition, closed.to_string()),
            ChatError::StreamEnded(why) => (Code::FailedPrecondition, why.to_owned()),
            ChatError::RateLimited {
                message,
                retry_after,
                quota,
                ..
            } => {
                details.set_retry_info(Some(retry_after));
                info.insert(
                    RETRY_AFTER_SECONDS.to_owned(),
                    whole_seconds_up(retry_after).to_string(),
                );
                insert_rate_limit(&mut metadata, &quota);
                (Code::ResourceExhausted, message)
            }
            ChatError::LimitReached(why) => (Code::ResourceExhausted, why),
            ChatError::Overloaded => {
                details.set_retry_info(Some(OVERLOAD_RETRY_AFTER));
                info.insert(
                    RETRY_AFTER_SECONDS.to_owned(),
                    whole_seconds_up(OVERLOAD_RETRY_AFTER).to_string(),
                );
                let message = format!(
                    "chat-service is overloaded: retry in {} s",
                    OVERLOAD_RETRY_AFTER.as_secs()
                );
                (Code::Unavailable, message)
            }
            // As tonic answers a message over its decoding limit.
            ChatError::RequestTooLarge { limit_bytes } => (
                Code::OutOfRange,
                format!("the request message is larger than {limit_bytes} bytes"),
            ),
            ChatError::DeadlineExceeded(why) => (Code::DeadlineExceeded, why),
            // Storage details stay in the logs: they may name hosts and paths.
            ChatError::Storage(StorageError::Unavailable(why)) => {
                tracing::warn!(reason = %why, "storage unavailable");
                (
                    Code::Unavailable,
                    "storage is unavailable, retry later".to_owned(),
                )
            }
            ChatError::Storage(other) => {
                tracing::error!(error = %other, "storage failure");
                (Code::Internal, "internal error".to_owned())
            }
        };
        details.set_error_info(reason.as_str(), ERROR_DOMAIN, info);
        Status::with_error_details_and_metadata(code, message, details, metadata)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::error::{RateRule, Violation};

    fn reason_of(status: &Status) -> String {
        let info = status.get_details_error_info().expect("error info");
        assert_eq!(info.domain, ERROR_DOMAIN);
        info.reason
    }

    #[test]
    fn validation_errors_carry_one_field_violation_each() {
        let status = Status::from(ChatError::InvalidArgument(vec![
            Violation::new("stream_id", "must be 24 hexadecimal characters, got 3"),
            Violation::new(
                "content",
                "must not be empty or only whitespace/invisible characters",
            ),
        ]));
        assert_eq!(status.code(), Code::InvalidArgument);
        let bad_request = status
            .get_details_bad_request()
            .expect("bad request details");
        let fields: Vec<_> = bad_request
            .field_violations
            .iter()
            .map(|violation| violation.field.as_str())
            .collect();
        assert_eq!(fields, ["stream_id", "content"]);
        assert_eq!(reason_of(&status), "VALIDATION");
    }

    #[test]
    fn rate_limits_carry_the_retry_delay_reason_and_quota() {
        let status = Status::from(ChatError::RateLimited {
            rule: RateRule::SlowMode,
            message: "slow mode is on".into(),
            retry_after: Duration::from_millis(2500),
            quota: RateQuota {
                limit: 1,
                remaining: 0,
                reset: Duration::from_millis(2500),
            },
        });
        assert_eq!(status.code(), Code::ResourceExhausted);
        let retry = status.get_details_retry_info().expect("retry info");
        assert_eq!(retry.retry_delay, Some(Duration::from_millis(2500)));
        let info = status.get_details_error_info().expect("error info");
        assert_eq!(info.reason, "SLOW_MODE");
        assert_eq!(info.metadata[RETRY_AFTER_SECONDS], "3");
        let metadata = status.metadata();
        assert_eq!(metadata.get(RATELIMIT_LIMIT).expect("limit"), "1");
        assert_eq!(metadata.get(RATELIMIT_REMAINING).expect("remaining"), "0");
        assert_eq!(metadata.get(RATELIMIT_RESET).expect("reset"), "3");
    }

    #[test]
    fn a_timeout_names_its_end_and_a_permanent_ban_does_not() {
        let until = Utc
            .with_ymd_and_hms(2030, 1, 2, 3, 4, 5)
            .single()
            .expect("time");
        let status = Status::from(ChatError::Banned { until: Some(until) });
        assert_eq!(status.code(), Code::PermissionDenied);
        let info = status.get_details_error_info().expect("error info");
        assert_eq!(info.reason, "BANNED");
        assert_eq!(info.metadata[BANNED_UNTIL], "2030-01-02T03:04:05.000Z");
        assert_eq!(
            status.message(),
            "you are banned from this chat until 2030-01-02T03:04:05.000Z"
        );

        let status = Status::from(ChatError::Banned { until: None });
        let info = status.get_details_error_info().expect("error info");
        assert!(!info.metadata.contains_key(BANNED_UNTIL));
    }

    #[test]
    fn an_overloaded_service_says_so_and_when_to_retry() {
        let status = Status::from(ChatError::Overloaded);
        assert_eq!(status.code(), Code::Unavailable);
        assert!(status.message().contains("overloaded"), "{status:?}");
        let retry = status.get_details_retry_info().expect("retry info");
        assert_eq!(retry.retry_delay, Some(OVERLOAD_RETRY_AFTER));
        assert_eq!(reason_of(&status), "OVERLOADED");
    }

    #[test]
    fn storage_internals_are_not_sent_to_clients() {
        let status = Status::from(ChatError::Storage(StorageError::Unavailable(
            "10.0.0.7:9042 refused".into(),
        )));
        assert_eq!(status.code(), Code::Unavailable);
        assert!(!status.message().contains("10.0.0.7"));
        assert_eq!(reason_of(&status), "STORAGE_UNAVAILABLE");
    }
}
