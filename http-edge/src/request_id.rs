//! Request ids and the per-request tracing span.
//!
//! Every request gets an `x-request-id`: the caller's, when it is sane, else a
//! fresh UUID v4. It is echoed on every response (errors included), forwarded
//! to chat-service as gRPC metadata, and recorded on the request's span so that
//! the edge's and chat-service's logs can be joined.

use std::{fmt, time::Instant};

use axum::{
    extract::{FromRequestParts, MatchedPath, Request},
    http::{HeaderName, HeaderValue, request::Parts},
    middleware::Next,
    response::Response,
};
use tracing::Instrument;

use crate::error::ApiError;

/// The header (and gRPC metadata key) that carries the id.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest caller-supplied id reused; longer ones are replaced.
const MAX_LEN: usize = 128;

/// A request id that is safe to log, to put in a header and in gRPC metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(String);

impl RequestId {
    /// Accepts a caller's id of 1 to 128 characters from `[A-Za-z0-9._:-]`:
    /// anything else could forge log lines or break metadata, and is replaced.
    pub fn parse(candidate: &str) -> Option<Self> {
        let sane = !candidate.is_empty()
            && candidate.len() <= MAX_LEN
            && candidate.bytes().all(|byte| {
                byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b':')
            });
        sane.then(|| Self(candidate.to_owned()))
    }

    /// The caller's `x-request-id` when it is sane, else a fresh one.
    pub fn of(headers: &axum::http::HeaderMap) -> Self {
        headers
            .get(&X_REQUEST_ID)
            .and_then(|value| value.to_str().ok())
            .and_then(Self::parse)
            .unwrap_or_else(Self::generate)
    }

    /// A fresh UUID v4.
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Self>().cloned().ok_or_else(|| {
            ApiError::Internal("the request-id middleware is not installed".to_owned())
        })
    }
}

/// Middleware: picks the request id, runs the request inside its span, logs
/// the outcome and echoes the id.
pub async fn request_context(mut request: Request, next: Next) -> Response {
    let request_id = RequestId::of(request.headers());
    request.extensions_mut().insert(request_id.clone());

    // The matched route (`/api/v1/live-stream/{streamId}/...`) keeps log
    // cardinality low; unknown paths fall back to the raw path. Never the
    // URI: its query string may hold a token (`access_token` on the event
    // stream).
    let route = request.extensions().get::<MatchedPath>().map_or_else(
        || request.uri().path().to_owned(),
        |matched| matched.as_str().to_owned(),
    );
    let span = tracing::info_span!(
        "http_request",
        request_id = %request_id,
        method = %request.method(),
        route = %route,
        // Recorded by the handlers that know them: the stream, the user a
        // moderation route acts on (the caller is only known to chat-service),
        // the message deleted.
        stream_id = tracing::field::Empty,
        target_user_id = tracing::field::Empty,
        message_id = tracing::field::Empty,
    );
    allmine_observability::propagation::continue_trace(&span, request.headers());

    let started = Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    span.in_scope(|| {
        tracing::info!(
            status = response.status().as_u16(),
            latency_ms,
            "request finished"
        );
    });

    // `parse` and `generate` only produce visible ASCII, so this cannot fail;
    // a failure would only lose the echo, never the response.
    if let Ok(value) = HeaderValue::from_str(request_id.as_str()) {
        response.headers_mut().insert(X_REQUEST_ID, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sane_id_is_reused() {
        let id = RequestId::parse("req-123_abc.def:9").expect("sane");
        assert_eq!(id.as_str(), "req-123_abc.def:9");
    }

    #[test]
    fn empty_long_or_odd_ids_are_refused() {
        assert!(RequestId::parse("").is_none());
        assert!(RequestId::parse(&"a".repeat(MAX_LEN + 1)).is_none());
        assert!(RequestId::parse("two words").is_none());
        assert!(RequestId::parse("line\nbreak").is_none());
    }

    #[test]
    fn a_generated_id_is_a_uuid_v4() {
        let id = RequestId::generate();
        let uuid = uuid::Uuid::parse_str(id.as_str()).expect("a uuid");
        assert_eq!(uuid.get_version_num(), 4);
    }
}
