//! What several handlers take from a request alike: the span fields and the
//! id fields they parse.

use tonic::Request;

use crate::domain::{ObjectIdError, StreamId, UserId};
use crate::error::{ChatError, Violations};

/// The caller's `x-request-id` (set by http-edge), for log correlation.
pub(super) fn request_id<T>(request: &Request<T>) -> String {
    request
        .metadata()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("-")
        .chars()
        .take(128)
        .collect()
}

/// A request's stream id as a span field: unparsed (the span opens before
/// parsing), so bounded.
pub(super) fn stream_field(stream_id: &str) -> String {
    stream_id.chars().take(32).collect()
}

/// Parses one id field, naming it in the violation.
pub(super) fn parse_id<T>(
    field: &'static str,
    text: &str,
    parse: impl Fn(&str) -> Result<T, ObjectIdError>,
) -> Result<T, ChatError> {
    parse(text).map_err(|error| ChatError::invalid(field, error))
}

/// The stream and user a request names (`UnbanUser`, `AddModerator`,
/// `RemoveModerator`), every invalid one reported at once.
pub(super) fn parse_stream_and_user(
    stream_id: &str,
    user_id: &str,
) -> Result<(StreamId, UserId), ChatError> {
    let mut violations = Violations::default();
    let stream_id = violations.check("stream_id", StreamId::parse(stream_id));
    let user_id = violations.check("user_id", UserId::parse(user_id));
    violations.finish(|| Some((stream_id?, user_id?)))
}
