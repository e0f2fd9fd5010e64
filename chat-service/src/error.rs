//! The one error type of chat-service, [`ChatError`]: every refusal and
//! failure a call can end with, each with its machine-readable
//! [`RefusalReason`]. The one mapping to `tonic::Status` (with rich details)
//! lives at the edge of the gRPC layer, in `grpc::status`; this module knows
//! nothing of the wire.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::auth::AuthError;
use crate::domain::{RateQuota, StreamId, describe_ban_end};
use crate::storage::StorageError;

/// One invalid request field and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The protobuf field name (`stream_id`, `content`).
    pub field: &'static str,
    pub description: String,
}

impl Violation {
    pub fn new(field: &'static str, description: impl ToString) -> Self {
        Self {
            field,
            description: description.to_string(),
        }
    }
}

/// Collects the invalid fields of one request, so that a client learns of
/// all of them at once (the style of tonic's richer-error `ErrorDetails`:
/// add violations while parsing, then check once).
///
/// ```
/// use chat_service::domain::{StreamId, UserId};
/// use chat_service::error::{ChatError, Violations};
///
/// fn parse(stream_id: &str, user_id: &str) -> Result<(StreamId, UserId), ChatError> {
///     let mut violations = Violations::default();
///     let stream_id = violations.check("stream_id", StreamId::parse(stream_id));
///     let user_id = violations.check("user_id", UserId::parse(user_id));
///     violations.finish(|| Some((stream_id?, user_id?)))
/// }
///
/// assert!(parse("64d15f9e2e6c8f4d5a123000", "64d15f9e2e6c8f4d5a1230b2").is_ok());
/// // Both fields are reported at once.
/// match parse("not-an-id", "nor-this") {
///     Err(ChatError::InvalidArgument(violations)) => assert_eq!(violations.len(), 2),
///     other => panic!("{other:?}"),
/// }
/// ```
#[derive(Debug, Default)]
pub struct Violations(Vec<Violation>);

impl Violations {
    /// The parsed value, or `None` with the field's violation noted.
    pub fn check<T, E: ToString>(
        &mut self,
        field: &'static str,
        parsed: Result<T, E>,
    ) -> Option<T> {
        parsed.map_err(|error| self.add(field, error)).ok()
    }

    /// Notes a violation found without parsing (a rule across fields).
    pub fn add(&mut self, field: &'static str, description: impl ToString) {
        self.0.push(Violation::new(field, description));
    }

    /// What `build` makes of the parsed fields if none was invalid, else
    /// every violation at once. `build` returns `None` only when a field it
    /// needs failed [`check`](Self::check), which noted why.
    pub fn finish<T>(self, build: impl FnOnce() -> Option<T>) -> Result<T, ChatError> {
        if !self.0.is_empty() {
            return Err(ChatError::InvalidArgument(self.0));
        }
        build().ok_or(ChatError::InvalidArgument(Vec::new()))
    }
}

/// Which send rate limit refused a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateRule {
    /// The stream's slow mode: one message per interval per viewer.
    SlowMode,
    /// The per-user burst limit of this instance.
    Burst,
}

#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error("unauthenticated: {0}")]
    Unauthenticated(#[from] AuthError),
    #[error("validation failed")]
    InvalidArgument(Vec<Violation>),
    /// The caller's role does not allow the call (not the sender, owner or a
    /// moderator; not a service).
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// The sender is banned from the stream's chat, until `until` (`None`:
    /// permanently).
    #[error("you are banned from this chat {}", describe_ban_end(*until))]
    Banned { until: Option<DateTime<Utc>> },
    #[error("stream {0} is not registered for chat")]
    StreamNotRegistered(StreamId),
    /// Another record than a stream is missing (a message to delete).
    #[error("not found: {0}")]
    NotFound(String),
    /// A stream's registration names another owner than the existing one.
    #[error("stream {0} is already registered with another owner")]
    StreamAlreadyRegistered(StreamId),
    /// A send reused an idempotency key for other content.
    #[error("this idempotency key was already used for a message with other content")]
    IdempotencyKeyReused,
    /// The stream's chat is closed (it may open again).
    #[error("the chat of this stream is closed")]
    ChatClosed,
    /// The stream has ended: its chat is closed for good. The message says
    /// what was refused.
    #[error("{0}")]
    StreamEnded(&'static str),
    /// Slow mode or the burst limit; retrying after `retry_after` succeeds.
    /// `quota` is the tighter of the sender's limits, for the rate-limit
    /// metadata.
    #[error("rate limited: {message}")]
    RateLimited {
        rule: RateRule,
        message: String,
        retry_after: Duration,
        quota: RateQuota,
    },
    /// A cap on what one connection or one user may hold open (live
    /// subscriptions); the message names the limit. No retry delay: room
    /// comes back when the caller closes something.
    #[error("limit reached: {0}")]
    LimitReached(String),
    /// Too many calls in progress on this instance: shed at once rather than
    /// queued, so that the caller can retry (here or elsewhere) after a second.
    #[error("overloaded")]
    Overloaded,
    /// The call's request message is larger than chat-service accepts.
    #[error("request of more than {limit_bytes} bytes")]
    RequestTooLarge { limit_bytes: usize },
    /// The caller's deadline (`grpc-timeout`) passed, or its request did not
    /// arrive in time.
    #[error("deadline exceeded: {0}")]
    DeadlineExceeded(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// How long a shed caller is told to wait before retrying.
pub const OVERLOAD_RETRY_AFTER: Duration = Duration::from_secs(1);

impl ChatError {
    /// One invalid field.
    pub fn invalid(field: &'static str, description: impl ToString) -> Self {
        Self::InvalidArgument(vec![Violation::new(field, description)])
    }

    /// Which rule refused the call, for clients (`google.rpc.ErrorInfo`) and
    /// metrics.
    pub fn reason(&self) -> RefusalReason {
        match self {
            Self::Unauthenticated(_) => RefusalReason::Unauthenticated,
            Self::InvalidArgument(_) => RefusalReason::Validation,
            Self::PermissionDenied(_) => RefusalReason::PermissionDenied,
            Self::Banned { .. } => RefusalReason::Banned,
            Self::StreamNotRegistered(_) => RefusalReason::StreamNotRegistered,
            Self::NotFound(_) => RefusalReason::NotFound,
            Self::StreamAlreadyRegistered(_) => RefusalReason::StreamAlreadyRegistered,
            Self::IdempotencyKeyReused => RefusalReason::IdempotencyKeyReused,
            Self::ChatClosed => RefusalReason::ChatClosed,
            Self::StreamEnded(_) => RefusalReason::StreamEnded,
            Self::RateLimited {
                rule: RateRule::SlowMode,
                ..
            } => RefusalReason::SlowMode,
            Self::RateLimited {
                rule: RateRule::Burst,
                ..
            } => RefusalReason::BurstLimit,
            Self::LimitReached(_) => RefusalReason::SubscriptionLimit,
            Self::Overloaded => RefusalReason::Overloaded,
            Self::RequestTooLarge { .. } => RefusalReason::RequestTooLarge,
            Self::DeadlineExceeded(_) => RefusalReason::DeadlineExceeded,
            Self::Storage(StorageError::Unavailable(_)) => RefusalReason::StorageUnavailable,
            Self::Storage(_) => RefusalReason::Internal,
        }
    }
}

/// Why a call was refused, one value per rule: the machine-readable answer
/// (`google.rpc.ErrorInfo.reason` over gRPC) that lets a client tell slow
/// mode from a burst limit or a ban without reading English.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefusalReason {
    /// No token, or one that is malformed, badly signed or expired.
    Unauthenticated,
    /// A request field is invalid (`google.rpc.BadRequest` says which).
    Validation,
    /// The caller's role does not allow the call.
    PermissionDenied,
    /// The sender is banned or timed out (`banned_until` says until when).
    Banned,
    /// The stream is not registered for chat.
    StreamNotRegistered,
    /// A message (or other record) named by the request does not exist.
    NotFound,
    /// The stream is registered with another owner.
    StreamAlreadyRegistered,
    /// The idempotency key was used for a message with other content.
    IdempotencyKeyReused,
    /// The stream's chat is closed.
    ChatClosed,
    /// The stream has ended.
    StreamEnded,
    /// Slow mode: one message per interval.
    SlowMode,
    /// The per-user burst limit.
    BurstLimit,
    /// Too many live subscriptions open on the connection or for the user.
    SubscriptionLimit,
    /// The instance sheds load; retry shortly.
    Overloaded,
    /// The request message is too large.
    RequestTooLarge,
    /// The call's deadline passed.
    DeadlineExceeded,
    /// The store cannot be reached; retry later.
    StorageUnavailable,
    /// An internal failure (details only in the logs).
    Internal,
}

impl RefusalReason {
    /// Every reason, for documentation and exhaustive tests.
    pub const ALL: [Self; 18] = [
        Self::Unauthenticated,
        Self::Validation,
        Self::PermissionDenied,
        Self::Banned,
        Self::StreamNotRegistered,
        Self::NotFound,
        Self::StreamAlreadyRegistered,
        Self::IdempotencyKeyReused,
        Self::ChatClosed,
        Self::StreamEnded,
        Self::SlowMode,
        Self::BurstLimit,
        Self::SubscriptionLimit,
        Self::Overloaded,
        Self::RequestTooLarge,
        Self::DeadlineExceeded,
        Self::StorageUnavailable,
        Self::Internal,
    ];

    /// The `google.rpc.ErrorInfo.reason`: UPPER_SNAKE_CASE, as AIP-193 asks.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::Validation => "VALIDATION",
            Self::PermissionDenied => "PERMISSION_DENIED",
            Self::Banned => "BANNED",
            Self::StreamNotRegistered => "STREAM_NOT_REGISTERED",
            Self::NotFound => "NOT_FOUND",
            Self::StreamAlreadyRegistered => "STREAM_ALREADY_REGISTERED",
            Self::IdempotencyKeyReused => "IDEMPOTENCY_KEY_REUSED",
            Self::ChatClosed => "CHAT_CLOSED",
            Self::StreamEnded => "STREAM_ENDED",
            Self::SlowMode => "SLOW_MODE",
            Self::BurstLimit => "BURST_LIMIT",
            Self::SubscriptionLimit => "SUBSCRIPTION_LIMIT",
            Self::Overloaded => "OVERLOADED",
            Self::RequestTooLarge => "REQUEST_TOO_LARGE",
            Self::DeadlineExceeded => "DEADLINE_EXCEEDED",
            Self::StorageUnavailable => "STORAGE_UNAVAILABLE",
            Self::Internal => "INTERNAL",
        }
    }

    /// A short snake_case label for metrics (`refusals{reason="slow_mode"}`).
    pub fn metric_label(self) -> &'static str {
        match self {
            Self::Unauthenticated => "unauthenticated",
            Self::Validation => "invalid",
            Self::PermissionDenied => "permission_denied",
            Self::Banned => "banned",
            Self::StreamNotRegistered => "not_registered",
            Self::NotFound => "not_found",
            Self::StreamAlreadyRegistered => "already_registered",
            Self::IdempotencyKeyReused => "key_reused",
            Self::ChatClosed => "closed",
            Self::StreamEnded => "ended",
            Self::SlowMode => "slow_mode",
            Self::BurstLimit => "burst",
            Self::SubscriptionLimit => "subscription_limit",
            Self::Overloaded => "overloaded",
            Self::RequestTooLarge => "too_large",
            Self::DeadlineExceeded => "deadline",
            Self::StorageUnavailable => "storage_unavailable",
            Self::Internal => "internal",
        }
    }
}

impl std::fmt::Display for RefusalReason {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::UserId;

    #[test]
    fn violations_are_collected_and_reported_together() {
        let mut violations = Violations::default();
        let stream_id = violations.check("stream_id", StreamId::parse("abc"));
        let user_id = violations.check("user_id", UserId::parse("64d15f9e2e6c8f4d5a123456"));
        violations.add("reason", "too long");
        let Err(ChatError::InvalidArgument(found)) =
            violations.finish(|| Some((stream_id?, user_id?)))
        else {
            panic!("two violations expected");
        };
        let fields: Vec<_> = found.iter().map(|violation| violation.field).collect();
        assert_eq!(fields, ["stream_id", "reason"]);
    }

    #[test]
    fn without_violations_the_parsed_request_is_built() {
        let mut violations = Violations::default();
        let user_id = violations.check("user_id", UserId::parse("64d15f9e2e6c8f4d5a123456"));
        assert!(violations.finish(|| user_id).is_ok());
    }

    #[test]
    fn reasons_and_metric_labels_are_distinct_and_well_formed() {
        let mut names = std::collections::HashSet::new();
        let mut labels = std::collections::HashSet::new();
        for reason in RefusalReason::ALL {
            let name = reason.as_str();
            assert!(
                name.chars().all(|c| c.is_ascii_uppercase() || c == '_'),
                "{name}"
            );
            let label = reason.metric_label();
            assert!(
                label.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{label}"
            );
            assert!(names.insert(name), "{name} twice");
            assert!(labels.insert(label), "{label} twice");
        }
    }

    #[test]
    fn a_ban_names_its_end() {
        let permanent = ChatError::Banned { until: None };
        assert_eq!(permanent.reason(), RefusalReason::Banned);
        assert_eq!(
            permanent.to_string(),
            "you are banned from this chat permanently"
        );
    }
}
