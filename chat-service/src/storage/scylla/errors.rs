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

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};
    use std::sync::Arc;
    use std::time::Duration;

    use scylla::errors::{
        BadQuery, BrokenConnectionErrorKind, ConnectionError, ConnectionPoolError, WriteType,
    };
    use scylla::statement::Consistency;

    use super::*;

    fn db(error: DbError) -> ExecutionError {
        ExecutionError::LastAttemptError(RequestAttemptError::DbError(error, "reason".into()))
    }

    fn is_unavailable(error: ExecutionError) -> bool {
        matches!(execution("test", error), StorageError::Unavailable(_))
    }

    #[test]
    fn timeouts_are_unavailable() {
        assert!(is_unavailable(ExecutionError::RequestTimeout(
            Duration::from_secs(2)
        )));
        assert!(is_unavailable(db(DbError::ReadTimeout {
            consistency: Consistency::Quorum,
            received: 1,
            required: 2,
            data_present: false,
        })));
        assert!(is_unavailable(db(DbError::WriteTimeout {
            consistency: Consistency::Quorum,
            received: 1,
            required: 2,
            write_type: WriteType::Simple,
        })));
    }

    #[test]
    fn too_few_replicas_and_overload_are_unavailable() {
        assert!(is_unavailable(db(DbError::Unavailable {
            consistency: Consistency::Quorum,
            required: 2,
            alive: 1,
        })));
        assert!(is_unavailable(db(DbError::Overloaded)));
        assert!(is_unavailable(db(DbError::IsBootstrapping)));
        assert!(is_unavailable(db(DbError::ReadFailure {
            consistency: Consistency::One,
            received: 0,
            required: 1,
            numfailures: 1,
            data_present: false,
        })));
        assert!(is_unavailable(db(DbError::ServerError)));
    }

    #[test]
    fn connection_errors_are_unavailable() {
        let keepalive =
            BrokenConnectionErrorKind::KeepaliveTimeout(IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert!(is_unavailable(ExecutionError::LastAttemptError(
            RequestAttemptError::BrokenConnectionError(keepalive.into())
        )));
        assert!(is_unavailable(ExecutionError::ConnectionPoolError(
            ConnectionPoolError::Broken {
                last_connection_error: ConnectionError::IoError(Arc::new(std::io::Error::from(
                    std::io::ErrorKind::ConnectionRefused
                ))),
            }
        )));
        assert!(is_unavailable(ExecutionError::ConnectionPoolError(
            ConnectionPoolError::Initializing
        )));
        assert!(is_unavailable(ExecutionError::EmptyPlan));
        assert!(is_unavailable(ExecutionError::LastAttemptError(
            RequestAttemptError::UnableToAllocStreamId
        )));
    }

    #[test]
    fn errors_the_database_would_repeat_are_internal() {
        for error in [
            db(DbError::SyntaxError),
            db(DbError::Invalid),
            db(DbError::Unauthorized),
            ExecutionError::BadQuery(BadQuery::TooManyQueriesInBatchStatement(70_000)),
        ] {
            assert!(
                matches!(execution("test", error), StorageError::Internal(_)),
                "must not be retried as if transient"
            );
        }
    }
}
