//! Translation of driver errors into [`StorageError`], so nothing above the
//! storage layer sees the driver's types.

use scylla::errors::{
    DbError, DeserializationError, ExecutionError, IntoRowsResultError, NewSessionError,
    PrepareError, RequestAttemptError, RowsError,
};

use crate::storage::StorageError;

/// A failed request: unavailability, timeouts and broken connections are
/// retryable (UNAVAILABLE); errors the database would repeat for the same
/// statement are bugs (INTERNAL).
pub fn execution(context: &str, error: ExecutionError) -> StorageError {
    let repeatable = match &error {
        ExecutionError::BadQuery(_) => true,
        ExecutionError::LastAttemptError(RequestAttemptError::DbError(db_error, _)) => {
            is_repeatable(db_error)
        }
        ExecutionError::LastAttemptError(
            RequestAttemptError::SerializationError(_)
            | RequestAttemptError::CqlRequestSerialization(_),
        ) => true,
        _ => false,
    };
    if repeatable {
        StorageError::Internal(format!("{context}: {error}"))
    } else {
        StorageError::Unavailable(format!("{context}: {error}"))
    }
}

fn is_repeatable(error: &DbError) -> bool {
    matches!(
        error,
        DbError::SyntaxError
            | DbError::Invalid
            | DbError::AlreadyExists { .. }
            | DbError::ConfigError
            | DbError::Unauthorized
            | DbError::AuthenticationError
    )
}

pub fn prepare(context: &str, error: PrepareError) -> StorageError {
    StorageError::Unavailable(format!("preparing {context}: {error}"))
}

pub fn connect(error: NewSessionError) -> StorageError {
    StorageError::Unavailable(format!("cannot connect to the CQL cluster: {error}"))
}

pub fn rows(context: &str, error: IntoRowsResultError) -> StorageError {
    StorageError::Internal(format!("{context}: expected rows: {error}"))
}

pub fn typed_rows(context: &str, error: RowsError) -> StorageError {
    StorageError::Corrupt(format!("{context}: unexpected column types: {error}"))
}

pub fn row(context: &str, error: DeserializationError) -> StorageError {
    StorageError::Corrupt(format!("{context}: undecodable row: {error}"))
}
