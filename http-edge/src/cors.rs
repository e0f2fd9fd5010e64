//! Cross-origin access for browser apps (CORS), off unless configured.
//!
//! `EDGE_CORS_ALLOWED_ORIGINS` lists the web origins that may call the edge
//! from a browser (`https://app.example,https://www.example`), or is `*` for
//! any origin. Unset or empty: no CORS headers at all, so browsers allow
//! same-origin pages only, as before.
//!
//! For an allowed origin, a preflight (`OPTIONS` with
//! `Access-Control-Request-Method`) succeeds on every path, for the methods
//! the routes use and the headers a client sends ([`ALLOWED_HEADERS`]); every
//! response, refusals included, grants the origin and exposes the headers a
//! client reads ([`EXPOSED_HEADERS`]). The setting is read as chat-service's
//! gRPC-Web one is, by one parser ([`allmine_observability::origins`]).

pub use allmine_observability::origins::AllowedOrigins;
use axum::http::{HeaderName, Method, header};
use tower_http::cors::CorsLayer;

use crate::{
    error::ERROR_REASON_HEADER,
    rate_limit::{RATELIMIT_LIMIT, RATELIMIT_REMAINING, RATELIMIT_RESET},
    routes::messages::IDEMPOTENT_REPLAYED,
};

/// Request headers a browser app may send.
pub const ALLOWED_HEADERS: [HeaderName; 5] = [
    header::AUTHORIZATION,
    header::CONTENT_TYPE,
    HeaderName::from_static("idempotency-key"),
    HeaderName::from_static("last-event-id"),
    // The edge takes the caller's request id when it is sane.
    HeaderName::from_static("x-request-id"),
];

/// Response headers a browser app may read (beyond the CORS-safelisted
/// ones).
pub const EXPOSED_HEADERS: [HeaderName; 8] = [
    HeaderName::from_static("x-request-id"),
    header::RETRY_AFTER,
    RATELIMIT_LIMIT,
    RATELIMIT_REMAINING,
    RATELIMIT_RESET,
    IDEMPOTENT_REPLAYED,
    ERROR_REASON_HEADER,
    header::WWW_AUTHENTICATE,
];

/// The layer that lets `origins` call the API; `None` for same-origin only.
pub fn layer(origins: &AllowedOrigins) -> Option<CorsLayer> {
    origins.layer(
        &[Method::GET, Method::POST, Method::PUT, Method::DELETE],
        &ALLOWED_HEADERS,
        &EXPOSED_HEADERS,
    )
}
