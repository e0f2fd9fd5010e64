//! What several handlers take from a request alike: the span fields and the
//! id fields they parse.

use tonic::Request;

use crate::domain::{ObjectIdError, StreamId, UserId};
use crate::error::{ChatError, Violations};

/// The caller's `x-request-id` (set by http-edge), for log correlation:
/// borrowed, so that a span field costs no copy.
pub(super) fn request_id<T>(request: &Request<T>) -> &str {
    let id = request
        .metadata()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("-");
    first_chars(id, 128)
}

/// A request's stream id as a span field: unparsed (the span opens before
/// parsing), so bounded.
pub(super) fn stream_field(stream_id: &str) -> &str {
    first_chars(stream_id, 32)
}

/// At most the first `count` characters of `text`.
fn first_chars(text: &str, count: usize) -> &str {
    match text.char_indices().nth(count) {
        Some((end, _)) => &text[..end],
        None => text,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn span_fields_keep_at_most_their_length_in_characters() {
        assert_eq!(stream_field("abc"), "abc");
        let long = "é".repeat(40);
        assert_eq!(stream_field(&long), "é".repeat(32));
        let mut request = Request::new(());
        assert_eq!(request_id(&request), "-");
        let id = "x".repeat(200);
        request
            .metadata_mut()
            .insert("x-request-id", id.parse().expect("ascii"));
        assert_eq!(request_id(&request), "x".repeat(128));
    }
}
