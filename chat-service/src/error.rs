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
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<ChatError> for Status {
    fn from(error: ChatError) -> Self {
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
            Violation::new("content", "must not be empty or only whitespace"),
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
    fn storage_internals_are_not_sent_to_clients() {
        let status = Status::from(ChatError::Storage(StorageError::Unavailable(
            "10.0.0.7:9042 refused".into(),
        )));
        assert_eq!(status.code(), Code::Unavailable);
        assert!(!status.message().contains("10.0.0.7"));
    }
}
