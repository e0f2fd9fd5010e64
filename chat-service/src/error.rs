//! The one error type of chat-service, [`ChatError`], and its single mapping to
//! `tonic::Status` with rich details (`google.rpc.BadRequest` field
//! violations) that http-edge turns into the envelope's `errors[]`.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

use crate::auth::AuthError;
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

#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error("unauthenticated: {0}")]
    Unauthenticated(#[from] AuthError),
    #[error("validation failed")]
    InvalidArgument(Vec<Violation>),
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("already exists: {0}")]
    AlreadyExists(String),
    /// The request is valid but the chat's state does not allow it (a
    /// closed chat, an ended stream).
    #[error("failed precondition: {0}")]
    FailedPrecondition(String),
    /// Slow mode or the burst limit; retrying after `retry_after` succeeds.
    #[error("rate limited: {message}")]
    RateLimited {
        message: String,
        retry_after: std::time::Duration,
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
pub const OVERLOAD_RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

impl ChatError {
    /// One invalid field.
    pub fn invalid(field: &'static str, description: impl ToString) -> Self {
        Self::InvalidArgument(vec![Violation::new(field, description)])
    }
}

impl From<ChatError> for Status {
    fn from(error: ChatError) -> Self {
        crate::metrics::record_refusal(&error);
        match error {
            ChatError::Unauthenticated(reason) => Status::unauthenticated(reason.to_string()),
            ChatError::InvalidArgument(violations) => {
                let message = violations
                    .iter()
                    .map(|violation| format!("{}: {}", violation.field, violation.description))
                    .collect::<Vec<_>>()
                    .join("; ");
                let details = ErrorDetails::with_bad_request(
                    violations
                        .into_iter()
                        .map(|violation| {
                            FieldViolation::new(violation.field, violation.description)
                        })
                        .collect::<Vec<_>>(),
                );
                Status::with_error_details(Code::InvalidArgument, message, details)
            }
            ChatError::PermissionDenied(reason) => Status::permission_denied(reason),
            ChatError::NotFound(reason) => Status::not_found(reason),
            ChatError::AlreadyExists(reason) => Status::already_exists(reason),
            ChatError::FailedPrecondition(reason) => Status::failed_precondition(reason),
            ChatError::RateLimited {
                message,
                retry_after,
            } => Status::with_error_details(
                Code::ResourceExhausted,
                message,
                ErrorDetails::with_retry_info(Some(retry_after)),
            ),
            ChatError::LimitReached(reason) => Status::resource_exhausted(reason),
            ChatError::Overloaded => Status::with_error_details(
                Code::Unavailable,
                format!(
                    "chat-service is overloaded: retry in {} s",
                    OVERLOAD_RETRY_AFTER.as_secs()
                ),
                ErrorDetails::with_retry_info(Some(OVERLOAD_RETRY_AFTER)),
            ),
            // As tonic answers a message over its decoding limit.
            ChatError::RequestTooLarge { limit_bytes } => Status::out_of_range(format!(
                "the request message is larger than {limit_bytes} bytes"
            )),
            ChatError::DeadlineExceeded(reason) => Status::deadline_exceeded(reason),
            // Storage details stay in the logs: they may name hosts and paths.
            ChatError::Storage(StorageError::Unavailable(reason)) => {
                tracing::warn!(%reason, "storage unavailable");
                Status::unavailable("storage is unavailable, retry later")
            }
            ChatError::Storage(other) => {
                tracing::error!(error = %other, "storage failure");
                Status::internal("internal error")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }

    #[test]
    fn rate_limits_carry_the_retry_delay() {
        let status = Status::from(ChatError::RateLimited {
            message: "slow mode is on".into(),
            retry_after: std::time::Duration::from_millis(2500),
        });
        assert_eq!(status.code(), Code::ResourceExhausted);
        let retry = status.get_details_retry_info().expect("retry info");
        assert_eq!(
            retry.retry_delay,
            Some(std::time::Duration::from_millis(2500))
        );
    }

    #[test]
    fn an_overloaded_service_says_so_and_when_to_retry() {
        let status = Status::from(ChatError::Overloaded);
        assert_eq!(status.code(), Code::Unavailable);
        assert!(status.message().contains("overloaded"), "{status:?}");
        let retry = status.get_details_retry_info().expect("retry info");
        assert_eq!(retry.retry_delay, Some(OVERLOAD_RETRY_AFTER));
    }

    #[test]
    fn storage_internals_are_not_sent_to_clients() {
        let status = Status::from(ChatError::Storage(StorageError::Unavailable(
            "10.0.0.7:9042 refused".into(),
        )));
        assert_eq!(status.code(), Code::Unavailable);
        assert!(!status.message().contains("10.0.0.7"));
    }
}
