//! The public REST API as tests see it: its paths, and the checks every
//! error answer shares (the documented envelope
//! `{isSuccess, statusCode, data, errors[], timestamp}`).

use reqwest::Response;
use reqwest::header::HeaderMap;
use serde_json::Value;

/// `POST` sends, `GET` lists.
pub fn message_path(stream_id: &str) -> String {
    format!("/api/v1/live-stream/{stream_id}/chat/messages")
}

/// One message: `DELETE` deletes it.
pub fn message_item_path(stream_id: &str, message_id: &str) -> String {
    format!("/api/v1/live-stream/{stream_id}/chat/messages/{message_id}")
}

/// The live chat, as Server-Sent Events; `query` without its `?`.
pub fn events_path(stream_id: &str, query: &str) -> String {
    with_query(
        format!("/api/v1/live-stream/{stream_id}/chat/events"),
        query,
    )
}

/// `POST` bans a user.
pub fn bans_path(stream_id: &str) -> String {
    format!("/api/v1/live-stream/{stream_id}/chat/bans")
}

/// `DELETE` lifts a ban.
pub fn ban_path(stream_id: &str, user_id: &str) -> String {
    format!("/api/v1/live-stream/{stream_id}/chat/bans/{user_id}")
}

/// `PUT` appoints a moderator, `DELETE` removes one.
pub fn moderator_path(stream_id: &str, user_id: &str) -> String {
    format!("/api/v1/live-stream/{stream_id}/chat/moderators/{user_id}")
}

/// `path?query`, or `path` when the query is empty.
pub fn with_query(path: String, query: &str) -> String {
    if query.is_empty() {
        path
    } else {
        format!("{path}?{query}")
    }
}

/// An error answer whose envelope passed every shape check.
#[derive(Debug)]
pub struct ErrorReply {
    pub headers: HeaderMap,
    pub errors: Vec<String>,
    pub body: String,
}

/// Asserts `status` and the documented envelope (JSON, exactly its five
/// keys, `isSuccess` false, `statusCode` the status, `data` null, the
/// timestamp in UTC with milliseconds, `errors` a list of strings).
pub async fn expect_error_envelope(response: Response, status: u16) -> ErrorReply {
    let headers = response.headers().clone();
    let actual = response.status().as_u16();
    let body = response.text().await.expect("a body");
    assert_eq!(actual, status, "{body}");
    let content_type = headers
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    assert!(
        content_type.starts_with("application/json"),
        "content type {content_type:?}"
    );

    let json: Value = serde_json::from_str(&body).expect("a JSON body");
    let object = json.as_object().expect("an object");
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["data", "errors", "isSuccess", "statusCode", "timestamp"],
        "{body}"
    );
    assert_eq!(json["isSuccess"], Value::Bool(false));
    assert_eq!(json["statusCode"], Value::from(status));
    assert_eq!(json["data"], Value::Null);
    assert_rfc3339_millis_utc(json["timestamp"].as_str().expect("a timestamp string"));

    let errors = json["errors"]
        .as_array()
        .expect("errors is an array")
        .iter()
        .map(|error| error.as_str().expect("each error is a string").to_owned())
        .collect();
    ErrorReply {
        headers,
        errors,
        body,
    }
}

/// [`expect_error_envelope`] whose first error is the status's `phrase`.
pub async fn expect_error(response: Response, status: u16, phrase: &str) -> ErrorReply {
    let reply = expect_error_envelope(response, status).await;
    assert_eq!(
        reply.errors.first().map(String::as_str),
        Some(phrase),
        "{}",
        reply.body
    );
    reply
}

/// [`expect_error_envelope`], returning only its `errors`.
pub async fn expect_envelope(response: Response, status: u16) -> Vec<String> {
    expect_error_envelope(response, status).await.errors
}

/// `2026-01-15T10:30:00.000Z`: RFC 3339, UTC as `Z`, exactly milliseconds.
pub fn assert_rfc3339_millis_utc(text: &str) {
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|_| panic!("{text:?} is not RFC 3339"));
    assert!(
        parse_api_time(text).is_some(),
        "{text:?} is not an API time"
    );
    let bytes = text.as_bytes();
    assert_eq!(bytes.len(), 24, "{text:?} has milliseconds and Z");
    assert_eq!(bytes[19], b'.', "{text:?} has milliseconds");
    assert!(text.ends_with('Z'), "{text:?} is in UTC");
}

/// The `Retry-After` header of a response, in whole seconds.
pub fn retry_after_secs(response: &Response) -> u64 {
    response
        .headers()
        .get("retry-after")
        .expect("a Retry-After header")
        .to_str()
        .expect("an ASCII Retry-After")
        .parse()
        .expect("Retry-After in whole seconds")
}

/// Milliseconds since the epoch of an API time (`2026-01-15T10:30:00.123Z`,
/// RFC 3339 in UTC with exactly three fraction digits); `None` for any other
/// shape.
pub fn parse_api_time(text: &str) -> Option<i64> {
    let time = chrono::DateTime::parse_from_rfc3339(text).ok()?;
    let bytes = text.as_bytes();
    let shape_ok = bytes.len() == 24 && bytes[10] == b'T' && bytes[19] == b'.' && bytes[23] == b'Z';
    shape_ok.then(|| time.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_times_parse_to_epoch_milliseconds() {
        assert_eq!(parse_api_time("1970-01-01T00:00:00.000Z"), Some(0));
        assert_eq!(
            parse_api_time("2026-01-15T10:30:00.123Z"),
            Some(1_768_473_000_123)
        );
        assert_eq!(
            parse_api_time("2024-03-01T00:00:00.000Z"),
            Some(1_709_251_200_000)
        );
        assert_eq!(parse_api_time("2026-01-15T10:30:00Z"), None);
        assert_eq!(parse_api_time("2026-01-15 10:30:00.123Z"), None);
        assert_eq!(parse_api_time("2026-01-15T10:30:00.123+00:00"), None);
        assert_eq!(parse_api_time("2026-02-30T10:30:00.123Z"), None);
    }

    #[test]
    fn a_query_is_appended_only_when_there_is_one() {
        assert_eq!(events_path("s", ""), "/api/v1/live-stream/s/chat/events");
        assert_eq!(
            events_path("s", "after=c"),
            "/api/v1/live-stream/s/chat/events?after=c"
        );
    }
}
