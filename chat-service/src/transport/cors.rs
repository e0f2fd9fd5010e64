//! Cross-origin access for browser gRPC-Web clients (CORS) on the main
//! port, off unless configured: `CHAT_CORS_ALLOWED_ORIGINS`, the same policy
//! as the edge's `EDGE_CORS_ALLOWED_ORIGINS` (comma-separated
//! `scheme://host[:port]`, or `*` alone; empty: no CORS headers, same-origin
//! pages only).
//!
//! gRPC-Web calls are `POST`s with gRPC-Web's own request headers; their
//! status travels in `grpc-status`/`grpc-message` headers when the answer has
//! no body (an error), which a page can read only if they are exposed. The
//! origin rules are kept identical to the edge's (its `cors` module): the
//! crates share no code, and a setting must mean the same on both.

use std::time::Duration;

use http::{HeaderName, HeaderValue, Method, Uri, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

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

/// How long a browser may cache a preflight answer.
pub const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(600);

/// Which web origins may call chat-service's gRPC-Web endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedOrigins {
    /// No CORS headers: same-origin pages only (the default).
    SameOriginOnly,
    /// `*`, set explicitly.
    Any,
    /// Exactly these origins, normalized as browsers send them.
    List(Vec<HeaderValue>),
}

impl AllowedOrigins {
    /// Parses the setting: empty, `*`, or comma-separated origins.
    pub fn parse(text: &str) -> Result<Self, String> {
        let entries: Vec<&str> = text
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .collect();
        if entries.is_empty() {
            return Ok(Self::SameOriginOnly);
        }
        if entries.contains(&"*") {
            return if entries.len() == 1 {
                Ok(Self::Any)
            } else {
                Err("`*` allows every origin and must be given alone".to_owned())
            };
        }
        entries
            .into_iter()
            .map(parse_origin)
            .collect::<Result<_, _>>()
            .map(Self::List)
    }

    /// The layer that applies this policy; `None` for same-origin only.
    pub fn layer(&self) -> Option<CorsLayer> {
        let allow_origin = match self {
            Self::SameOriginOnly => return None,
            Self::Any => AllowOrigin::any(),
            Self::List(origins) => AllowOrigin::list(origins.iter().cloned()),
        };
        Some(
            CorsLayer::new()
                .allow_origin(allow_origin)
                .allow_methods([Method::POST])
                .allow_headers(ALLOWED_HEADERS)
                .expose_headers(EXPOSED_HEADERS)
                .max_age(PREFLIGHT_MAX_AGE),
        )
    }
}

/// One origin as a browser serializes it in `Origin`: lowercase `http` or
/// `https` scheme and host, the port only when given, nothing after it.
fn parse_origin(text: &str) -> Result<HeaderValue, String> {
    let refused = |why: &str| format!("{text:?} is not an origin (scheme://host[:port]): {why}");
    let uri: Uri = text.parse().map_err(|_| refused("not a URL"))?;
    let scheme = uri
        .scheme_str()
        .map(str::to_ascii_lowercase)
        .ok_or_else(|| refused("no scheme"))?;
    if scheme != "http" && scheme != "https" {
        return Err(refused("the scheme must be http or https"));
    }
    let authority = uri.authority().ok_or_else(|| refused("no host"))?;
    if authority.as_str().contains('@') {
        return Err(refused("no user name or password"));
    }
    // `Uri` shows an absent path as "/": compare with the text instead.
    let after_scheme = text.get(scheme.len() + 3..).unwrap_or_default();
    if after_scheme != authority.as_str() {
        return Err(refused(
            "nothing may follow the host and port, not even '/'",
        ));
    }
    let origin = format!("{scheme}://{}", authority.as_str().to_ascii_lowercase());
    HeaderValue::from_str(&origin).map_err(|_| refused("not a valid header value"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_setting_parses_as_the_edges_does() {
        assert_eq!(
            AllowedOrigins::parse(""),
            Ok(AllowedOrigins::SameOriginOnly)
        );
        assert_eq!(AllowedOrigins::parse("*"), Ok(AllowedOrigins::Any));
        assert_eq!(
            AllowedOrigins::parse("HTTPS://App.Example,http://localhost:5173"),
            Ok(AllowedOrigins::List(vec![
                HeaderValue::from_static("https://app.example"),
                HeaderValue::from_static("http://localhost:5173"),
            ]))
        );
        for text in [
            "*,https://a.example",
            "https://a.example/",
            "null",
            "a.example",
        ] {
            assert!(AllowedOrigins::parse(text).is_err(), "{text}");
        }
    }
}
