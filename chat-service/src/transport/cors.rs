//! Cross-origin access for browser gRPC-Web clients (CORS) on the main
//! port, off unless configured: `CHAT_CORS_ALLOWED_ORIGINS`, the same policy
//! as the edge's `EDGE_CORS_ALLOWED_ORIGINS` (comma-separated
//! `scheme://host[:port]`, or `*` alone; empty: no CORS headers, same-origin
//! pages only).
//!
//! gRPC-Web calls are `POST`s with gRPC-Web's own request headers; their
//! status travels in `grpc-status`/`grpc-message` headers when the answer has
//! no body (an error), which a page can read only if they are exposed. The
//! setting is read as the edge's is, by one parser
//! ([`allmine_observability::origins`]).

pub use allmine_observability::origins::AllowedOrigins;
use http::{HeaderName, Method, header};
use tower_http::cors::CorsLayer;

/// Request headers a browser gRPC-Web client sends: gRPC-Web's own, the
/// token, and the request id.
pub const ALLOWED_HEADERS: [HeaderName; 6] = [
    header::AUTHORIZATION,
    header::CONTENT_TYPE,
    HeaderName::from_static("x-grpc-web"),
    HeaderName::from_static("x-user-agent"),
    HeaderName::from_static("grpc-timeout"),
    HeaderName::from_static("x-request-id"),
];

/// Response headers a browser client must read: the status of an answer
/// without a body, and the metadata chat-service sends.
pub const EXPOSED_HEADERS: [HeaderName; 8] = [
    HeaderName::from_static("grpc-status"),
    HeaderName::from_static("grpc-message"),
    HeaderName::from_static("grpc-status-details-bin"),
    HeaderName::from_static("x-request-id"),
    HeaderName::from_static("idempotent-replayed"),
    HeaderName::from_static("ratelimit-limit"),
    HeaderName::from_static("ratelimit-remaining"),
    HeaderName::from_static("ratelimit-reset"),
];

/// The layer that lets `origins` make gRPC-Web calls; `None` for
/// same-origin only.
pub fn layer(origins: &AllowedOrigins) -> Option<CorsLayer> {
    origins.layer(&[Method::POST], &ALLOWED_HEADERS, &EXPOSED_HEADERS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_web_calls_are_granted_only_with_origins_configured() {
        assert!(layer(&AllowedOrigins::SameOriginOnly).is_none());
        let origins = AllowedOrigins::parse("https://app.example").expect("an origin");
        assert!(layer(&origins).is_some());
    }
}
