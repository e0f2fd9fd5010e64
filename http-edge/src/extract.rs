//! Extractors whose rejections are [`ApiError`]s, so that a bad header, path,
//! query string or body gets the same envelope as any other error, never
//! axum's plain-text default.

use std::fmt;

use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Path, Query, Request},
    http::{HeaderMap, StatusCode, header, request::Parts},
};
use serde::de::DeserializeOwned;

use crate::{error::ApiError, limits::BodyReadTimeout};

/// The largest request body accepted, in bytes (a message is at most 500
/// characters; this leaves room for JSON escapes and multi-byte text).
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// The caller's token, from `Authorization: Bearer <token>`.
///
/// The edge does not verify it (chat-service does); it only checks the shape
/// so that a request without a token never reaches gRPC. `Debug` hides the
/// token so that it cannot end up in a log. Kept as the header value to
/// forward (`Bearer <token>`), built once.
#[derive(Clone, PartialEq, Eq)]
pub struct BearerToken(String);

const BEARER: &str = "Bearer ";

impl BearerToken {
    /// Parses the value of an `Authorization` header: the scheme `Bearer`
    /// (any case, as RFC 7235 allows), one space, a non-empty token without
    /// whitespace.
    pub fn parse(authorization: &str) -> Result<Self, ApiError> {
        let malformed = || {
            ApiError::Unauthenticated(vec![
                "Authorization header must be 'Bearer <token>'".to_owned(),
            ])
        };
        let (scheme, token) = authorization.trim().split_once(' ').ok_or_else(malformed)?;
        let token = token.trim();
        // The usual case first, in one pass over the bytes: a JWT holds no
        // whitespace, so the checks below would all pass.
        if scheme.eq_ignore_ascii_case("bearer") && is_jwt_shaped(token) {
            return Ok(Self::forwarded(token));
        }
        if !scheme.eq_ignore_ascii_case("bearer")
            || token.is_empty()
            || token.contains(char::is_whitespace)
        {
            return Err(malformed());
        }
        Self::jwt_shaped(token)
    }

    /// A token in the JWS compact form chat-service accepts: three non-empty
    /// base64url segments. Anything else is refused here (401), so that a
    /// flood of junk tokens costs chat-service nothing.
    fn jwt_shaped(token: &str) -> Result<Self, ApiError> {
        if !is_jwt_shaped(token) {
            return Err(ApiError::Unauthenticated(vec![
                "The bearer token must be a JWT (three base64url segments separated by dots)"
                    .to_owned(),
            ]));
        }
        Ok(Self::forwarded(token))
    }

    fn forwarded(token: &str) -> Self {
        let mut value = String::with_capacity(BEARER.len() + token.len());
        value.push_str(BEARER);
        value.push_str(token);
        Self(value)
    }

    /// Parses the value of an [`ACCESS_TOKEN_PARAM`] query parameter: a
    /// non-empty token of visible ASCII characters (what the header form
    /// allows too).
    pub fn from_access_token(token: &str) -> Result<Self, ApiError> {
        if token.is_empty() || !token.bytes().all(|byte| byte.is_ascii_graphic()) {
            return Err(ApiError::Unauthenticated(vec![format!(
                "{ACCESS_TOKEN_PARAM} must be a non-empty token of visible ASCII characters"
            )]));
        }
        Self::jwt_shaped(token)
    }

    /// The header value to forward: `Bearer <token>`.
    pub fn authorization_value(&self) -> &str {
        &self.0
    }
}

/// Three non-empty base64url segments separated by dots.
fn is_jwt_shaped(token: &str) -> bool {
    let mut segments = 1;
    let mut segment_len = 0;
    for byte in token.bytes() {
        match byte {
            b'.' if segment_len > 0 => {
                segments += 1;
                segment_len = 0;
            }
            b'-' | b'_' => segment_len += 1,
            byte if byte.is_ascii_alphanumeric() => segment_len += 1,
            _ => return false,
        }
    }
    segments == 3 && segment_len > 0
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("BearerToken(<redacted>)")
    }
}

impl<S: Send + Sync> FromRequestParts<S> for BearerToken {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let value = parts.headers.get(header::AUTHORIZATION).ok_or_else(|| {
            ApiError::Unauthenticated(vec!["Authorization header is missing".to_owned()])
        })?;
        // A value with bytes outside visible ASCII cannot be `Bearer <token>`.
        let value = value.to_str().map_err(|_| {
            ApiError::Unauthenticated(vec![
                "Authorization header must be 'Bearer <token>'".to_owned(),
            ])
        })?;
        Self::parse(value)
    }
}

/// The query parameter that may carry the token on the event stream route,
/// and only there.
pub const ACCESS_TOKEN_PARAM: &str = "access_token";

/// The caller's token on the event stream route: the `Authorization: Bearer`
/// header, else the [`ACCESS_TOKEN_PARAM`] query parameter.
///
/// Browsers follow a stream with `EventSource`, which cannot send headers, so
/// this route (and no other) also takes a short-lived token in the query
/// string. The header wins when both are given. Only the token's presence and
/// shape are checked here: a repeated parameter is the query parser's 400.
///
/// The token never reaches a log: the request span records the matched route,
/// never the URI, and neither the query parsers nor the 401 echo its value.
#[derive(Debug)]
pub struct EventSourceToken(pub BearerToken);

impl<S: Send + Sync> FromRequestParts<S> for EventSourceToken {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if parts.headers.contains_key(header::AUTHORIZATION) {
            return BearerToken::from_request_parts(parts, state)
                .await
                .map(Self);
        }
        // A query string that does not decode has no token; the query parser
        // reports it once the 401 is out of the way.
        let pairs = Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map(|Query(pairs)| pairs)
            .unwrap_or_default();
        let token = pairs
            .iter()
            .find(|(name, _value)| name == ACCESS_TOKEN_PARAM)
            .ok_or_else(|| {
                ApiError::Unauthenticated(vec![format!(
                    "Authorization header or {ACCESS_TOKEN_PARAM} query parameter is missing"
                )])
            })?;
        BearerToken::from_access_token(&token.1).map(Self)
    }
}

/// The `Last-Event-ID` header, which `EventSource` sends when it reconnects:
/// the cursor of the last event the client received. An empty value is no
/// value (the SSE spec never sends one); a repeated or non-ASCII one is a
/// 400.
#[derive(Debug, Default)]
pub struct LastEventId(pub Option<String>);

/// The header's name.
pub const LAST_EVENT_ID: header::HeaderName = header::HeaderName::from_static("last-event-id");

impl<S: Send + Sync> FromRequestParts<S> for LastEventId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let mut values = parts.headers.get_all(&LAST_EVENT_ID).iter();
        let Some(value) = values.next() else {
            return Ok(Self(None));
        };
        if values.next().is_some() {
            return Err(ApiError::Validation(vec![
                "Last-Event-ID header must be given at most once".to_owned(),
            ]));
        }
        let value = value.to_str().map_err(|_| {
            ApiError::Validation(vec![
                "Last-Event-ID header must be visible ASCII characters".to_owned(),
            ])
        })?;
        Ok(Self(
            Some(value.to_owned()).filter(|cursor| !cursor.is_empty()),
        ))
    }
}

/// The optional `Idempotency-Key` header of a send: 1 to
/// [`MAX_IDEMPOTENCY_KEY_LEN`] visible ASCII characters, at most once; else a
/// 400 naming the header. chat-service checks the same rule on the gRPC
/// field; checking it here keeps the envelope in the client's terms (the
/// header, not the field) and spares chat-service a call it would refuse.
#[derive(Debug, Default)]
pub struct IdempotencyKey(pub Option<String>);

/// The header's name.
pub const IDEMPOTENCY_KEY: header::HeaderName = header::HeaderName::from_static("idempotency-key");

/// The longest key chat-service accepts.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let mut values = parts.headers.get_all(&IDEMPOTENCY_KEY).iter();
        let Some(value) = values.next() else {
            return Ok(Self(None));
        };
        if values.next().is_some() {
            return Err(ApiError::Validation(vec![
                "Idempotency-Key header must be given at most once".to_owned(),
            ]));
        }
        let bytes = value.as_bytes();
        if bytes.is_empty()
            || bytes.len() > MAX_IDEMPOTENCY_KEY_LEN
            || !bytes.iter().all(u8::is_ascii_graphic)
        {
            return Err(ApiError::Validation(vec![format!(
                "Idempotency-Key header must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} visible ASCII characters"
            )]));
        }
        // Visible ASCII: always valid UTF-8.
        Ok(Self(Some(String::from_utf8_lossy(bytes).into_owned())))
    }
}

/// A JSON body: `Content-Type: application/json` (else 415), at most
/// [`MAX_BODY_BYTES`] (else 413), and valid for `T` (else 400 naming the
/// problem and, when known, the field).
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !has_json_content_type(request.headers()) {
            return Err(ApiError::UnsupportedMediaType(vec![
                "Content-Type must be application/json".to_owned(),
            ]));
        }
        let (mut parts, body) = request.into_parts();
        let BodyReadTimeout(deadline) =
            BodyReadTimeout::from_request_parts(&mut parts, state).await?;
        let request = Request::from_parts(parts, body);
        // `Bytes` honours the router's `DefaultBodyLimit`. The whole body
        // must arrive within the deadline: a client that trickles it, or
        // whose body is shorter than its Content-Length, is answered 408
        // instead of holding the request open.
        let body = tokio::time::timeout(deadline, Bytes::from_request(request, state))
            .await
            .map_err(|_| {
                ApiError::RequestTimeout(vec![format!(
                    "The request body must arrive within {} s",
                    deadline.as_secs()
                )])
            })?
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::PayloadTooLarge(vec![format!(
                        "Request body must be at most {MAX_BODY_BYTES} bytes"
                    )])
                } else {
                    ApiError::Validation(vec!["Request body could not be read".to_owned()])
                }
            })?;
        deserialize_json(&body).map(ApiJson)
    }
}

/// Deserializes a whole body, tracking the path so that a type error names the
/// field (`content: invalid type: ...`).
fn deserialize_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        ApiError::Validation(vec![describe_json_error(&path, &inner)])
    })?;
    // Trailing characters after the value make the body invalid JSON.
    deserializer
        .end()
        .map_err(|error| ApiError::Validation(vec![describe_json_error(".", &error)]))?;
    Ok(value)
}

fn describe_json_error(path: &str, error: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let message = error.to_string();
    // serde places an unknown field at its own path ("sender: unknown field
    // `sender`"); the message names it already, so name where it was found.
    let path = if message.starts_with("unknown field") {
        path.rsplit_once('.').map_or(".", |(parent, _field)| parent)
    } else {
        path
    };
    match error.classify() {
        Category::Syntax | Category::Eof | Category::Io => format!("Malformed JSON: {message}"),
        Category::Data if path == "." || path.is_empty() => message,
        Category::Data => format!("{path}: {message}"),
    }
}

/// `application/json`, with or without parameters such as `charset`, or any
/// `application/*+json`.
fn has_json_content_type(headers: &HeaderMap) -> bool {
    let Some(content_type) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
    else {
        return false;
    };
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Path parameters; a rejection (for example invalid percent-encoding) is a
/// 400 envelope instead of axum's plain text.
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(ApiPath(value)),
            // axum answers 500 only for a route/extractor mismatch: our bug.
            Err(rejection) if rejection.status().is_server_error() => {
                Err(ApiError::Internal(rejection.body_text()))
            }
            Err(rejection) => Err(ApiError::Validation(vec![rejection.body_text()])),
        }
    }
}

/// A type a route reads from its query string: it gets every decoded
/// `(name, value)` pair in order, and answers with the value or with every
/// problem it found (the `errors[1..]` of a 400).
///
/// Routes parse their parameters themselves rather than through serde, so
/// that each message names the parameter, and so that unknown and repeated
/// parameters are refused: the query string is as strict as the JSON bodies.
pub trait FromQuery: Sized {
    fn from_query(pairs: Vec<(String, String)>) -> Result<Self, Vec<String>>;
}

/// A query string parsed by `T` (see [`FromQuery`]); a rejection is a 400
/// envelope instead of axum's plain text.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: FromQuery,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        // Decoding into pairs accepts any query string (malformed escapes are
        // kept as they are), so this rejection is not expected in practice.
        let Query(pairs) = Query::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map_err(|rejection| ApiError::Validation(vec![rejection.body_text()]))?;
        T::from_query(pairs)
            .map(ApiQuery)
            .map_err(ApiError::Validation)
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;
    use serde::Deserialize;

    use super::*;

    #[test]
    fn a_bearer_token_is_accepted_in_any_case_of_the_scheme() {
        let token = BearerToken::parse("bearer abc.def.ghi").expect("valid");
        assert_eq!(token.authorization_value(), "Bearer abc.def.ghi");
    }

    #[test]
    fn a_jwt_is_three_non_empty_base64url_segments() {
        for token in ["a.b.c", "aB-_.0.x_-"] {
            assert!(is_jwt_shaped(token), "{token:?}");
        }
        for token in [
            "",
            "a",
            "a.b",
            "a.b.c.d",
            ".b.c",
            "a..c",
            "a.b.",
            "a.b.c.",
            "a.b+.c",
            "a.b.c=",
            "a.b. c",
            "a.b.\u{e9}",
        ] {
            assert!(!is_jwt_shaped(token), "{token:?}");
        }
    }

    #[test]
    fn other_schemes_and_empty_tokens_are_rejected() {
        for header in [
            "Basic dXNlcjpwYXNz",
            "Bearer",
            "Bearer ",
            "Bearer  ",
            "abc",
            "Bearer a b",
        ] {
            assert!(
                BearerToken::parse(header).is_err(),
                "{header:?} must be rejected"
            );
        }
    }

    #[test]
    fn an_access_token_must_be_non_empty_visible_ascii() {
        let token = BearerToken::from_access_token("abc.def-ghi_.x").expect("valid");
        assert_eq!(token.authorization_value(), "Bearer abc.def-ghi_.x");
        for value in ["", "a b", "tab\there", "caf\u{e9}", "line\nbreak"] {
            let error = BearerToken::from_access_token(value).expect_err(value);
            assert!(matches!(error, ApiError::Unauthenticated(_)), "{value:?}");
            assert_eq!(
                error.reasons(),
                ["access_token must be a non-empty token of visible ASCII characters"],
                "the value is not echoed"
            );
        }
    }

    #[test]
    fn only_jwt_shaped_tokens_are_forwarded() {
        for token in [
            "opaque", "a.b", "a.b.c.d", "a..c", ".b.c", "a.b.c=", "a.b+c.d",
        ] {
            let error = BearerToken::parse(&format!("Bearer {token}")).expect_err(token);
            assert!(error.reasons()[0].contains("JWT"), "{token}");
            assert!(BearerToken::from_access_token(token).is_err(), "{token}");
        }
        assert!(BearerToken::parse("Bearer eyJh.eyJz-_.c2ln").is_ok());
    }

    #[test]
    fn debug_never_shows_the_token() {
        let token = BearerToken::parse("Bearer secret.token.signature").expect("valid");
        assert!(!format!("{token:?}").contains("secret"));
    }

    #[test]
    fn json_content_types_are_recognised() {
        let mut headers = HeaderMap::new();
        assert!(!has_json_content_type(&headers));
        for (value, expected) in [
            ("application/json", true),
            ("Application/JSON; charset=utf-8", true),
            ("application/merge-patch+json", true),
            ("text/plain", false),
            ("application/x-www-form-urlencoded", false),
        ] {
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(value));
            assert_eq!(has_json_content_type(&headers), expected, "{value}");
        }
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        content: String,
    }

    fn reason(body: &str) -> String {
        match deserialize_json::<Body>(body.as_bytes()) {
            Err(ApiError::Validation(reasons)) => reasons.join(" | "),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn json_errors_name_the_problem() {
        assert!(reason(r#"{"content": 5}"#).starts_with("content: invalid type: integer `5`"));
        assert!(reason("{}").starts_with("missing field `content`"));
        let unknown = reason(r#"{"content":"a","sender":{}}"#);
        assert!(unknown.starts_with("unknown field `sender`"), "{unknown}");
        assert!(reason("{").starts_with("Malformed JSON: EOF"));
        assert!(reason(r#"{"content":"a"} x"#).starts_with("Malformed JSON: trailing characters"));
    }
}
