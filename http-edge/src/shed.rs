//! Shedding before any work: while every slot for a unary call to
//! chat-service is taken and `EDGE_MAX_QUEUED` calls already wait for one, a
//! request that needs one is answered `503` here,
//! before the request span, the access log, the metrics histogram, the
//! route's extractors or its body.
//!
//! Why (BENCHMARKS.md, section 6): under overload, what a refusal costs
//! decides how much CPU is left for the calls admitted. Through the whole
//! router a refusal cost ~35-45 µs of the edge's CPU, a third of an accepted
//! send, plus two log lines; at twice the peak rate the refusals alone took
//! the core, admitted calls queued behind them, and goodput collapsed to
//! 2-15% of the peak. Here a refusal is a look at the semaphore and a small
//! prepared answer. Shed requests are counted
//! (`edge_requests_shed_total{reason="in_flight"}`) and logged at most once
//! a second with the running total, not a line each.
//!
//! The check only looks: a request that passes it still takes its slot in
//! `ChatClient::admit`, which remains the bound (and still sheds when the
//! queue filled in between, or after the queue timeout).
//!
//! Not shed here: what holds no unary slot (event streams have a cap of
//! their own; health checks, the web page and the OpenAPI document call
//! nothing or must always answer); requests with an `Origin` header, whose
//! refusal a browser can only read with the CORS headers that the router's
//! inner layers add; and HTTP/2 requests whose body has not fully arrived:
//! answering those resets their stream, and past a budget of such resets
//! hyper closes the client's whole connection (HTTP/1.1 drains the body
//! instead). Those go the usual way and are refused, without waiting, once
//! their body is read.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use allmine_observability::throttle::LogThrottle;
use axum::{
    body::HttpBody as _,
    extract::Request,
    http::{HeaderValue, Version, header},
    response::Response,
};

use crate::{
    grpc::{self, ChatClient},
    metrics::{self, Shed},
    request_id::{RequestId, X_REQUEST_ID},
};

/// How often a sustained overload is logged.
const LOG_INTERVAL: Duration = Duration::from_secs(1);

/// Requests shed here since start, and the throttle of their log line.
static SHED_TOTAL: AtomicU64 = AtomicU64::new(0);
static LOG: std::sync::LazyLock<LogThrottle> =
    std::sync::LazyLock::new(|| LogThrottle::new(LOG_INTERVAL));

/// The `503` with `Retry-After` to answer at once, when the request needs a
/// unary slot and none is free; `None` to go on. The outermost step of
/// every request (`crate::routes::edge_request`).
pub fn refusal(chat: &ChatClient, request: &Request) -> Option<Response> {
    if !needs_unary_slot(request) || !chat.is_saturated() {
        return None;
    }
    let request_id = RequestId::of(request.headers());
    metrics::shed(Shed::InFlight);
    let shed_total = SHED_TOTAL.fetch_add(1, Ordering::Relaxed) + 1;
    if LOG.ready() {
        tracing::warn!(
            shed_total,
            "overloaded: every unary slot to chat-service is taken; shedding requests with 503"
        );
    }
    let mut response = grpc::overloaded().into_unlogged_response();
    if let Ok(value) = HeaderValue::from_str(request_id.as_str()) {
        response.headers_mut().insert(X_REQUEST_ID, value);
    }
    Some(response)
}

/// Whether the request would take a unary slot and can be refused before
/// anything reads it: the chat API's routes other than the event stream,
/// from a client that is not a browser on another origin, over HTTP/1.x or
/// with no body left to arrive.
fn needs_unary_slot(request: &Request) -> bool {
    let path = request.uri().path();
    path.starts_with("/api/")
        && !path.ends_with("/events")
        && !request.headers().contains_key(header::ORIGIN)
        && (request.version() < Version::HTTP_2 || request.body().is_end_stream())
}

#[cfg(test)]
mod tests {
    use axum::body::Body;

    use super::*;

    fn request(path: &str, origin: Option<&str>) -> Request {
        let mut builder = Request::builder().uri(path);
        if let Some(origin) = origin {
            builder = builder.header(header::ORIGIN, origin);
        }
        builder.body(Body::empty()).expect("a request")
    }

    #[test]
    fn only_api_calls_without_an_origin_are_shed_early() {
        let stream = "/api/v1/live-stream/64d15f9e2e6c8f4d5a123000";
        assert!(needs_unary_slot(&request(
            &format!("{stream}/chat/messages"),
            None
        )));
        assert!(needs_unary_slot(&request(
            &format!("{stream}/chat/bans"),
            None
        )));
        assert!(!needs_unary_slot(&request(
            &format!("{stream}/chat/events"),
            None
        )));
        assert!(!needs_unary_slot(&request(
            &format!("{stream}/chat/messages"),
            Some("https://app.example")
        )));
        for path in ["/healthz", "/readyz", "/", "/openapi.json", "/docs"] {
            assert!(!needs_unary_slot(&request(path, None)), "{path}");
        }
    }

    #[test]
    fn an_http2_request_is_shed_early_only_once_its_body_is_complete() {
        let path = "/api/v1/live-stream/64d15f9e2e6c8f4d5a123000/chat/messages";
        let with_body = |version| {
            Request::builder()
                .uri(path)
                .version(version)
                .body(Body::from(r#"{"content":"hi"}"#))
                .expect("a request")
        };
        assert!(needs_unary_slot(&with_body(Version::HTTP_11)));
        assert!(!needs_unary_slot(&with_body(Version::HTTP_2)));
        let mut empty = request(path, None);
        *empty.version_mut() = Version::HTTP_2;
        assert!(needs_unary_slot(&empty));
    }
}
