//! Request-level bounds checked before a request reaches its handler: the
//! size of the request target and of the headers, and the time a client has
//! to send its body.
//!
//! Sizes are checked here, with the envelope, for anything hyper accepted
//! (up to [`crate::server::MAX_REQUEST_HEAD_BYTES`]); a request over the
//! documented limits is never forwarded to chat-service, so an oversized
//! token costs nobody else anything.

use std::time::Duration;

use axum::{
    extract::{FromRequestParts, Request},
    http::{HeaderMap, request::Parts},
    middleware::Next,
    response::{IntoResponse, Response},
};

use crate::error::ApiError;

/// The longest request target (path and query) accepted.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// The longest value of any one header, `Authorization` included (a JWT is
/// well under 2 KiB; browsers cap cookies at 4 KiB).
pub const MAX_HEADER_VALUE_BYTES: usize = 8 * 1024;
/// The most header bytes (names and values) one request may carry.
pub const MAX_HEADERS_BYTES: usize = 32 * 1024;

/// Middleware: refuses a request whose target or headers are over the
/// limits (414, 431), before any extractor or gRPC call sees it.
pub async fn check_request_head(request: Request, next: Next) -> Response {
    let target_bytes = request
        .uri()
        .path_and_query()
        .map_or(0, |target| target.as_str().len());
    if target_bytes > MAX_URI_BYTES {
        return ApiError::UriTooLong(vec![format!(
            "The request target must be at most {MAX_URI_BYTES} bytes, got {target_bytes}"
        )])
        .into_response();
    }
    if let Err(error) = check_headers(request.headers()) {
        return error.into_response();
    }
    next.run(request).await
}

fn check_headers(headers: &HeaderMap) -> Result<(), ApiError> {
    let mut total = 0_usize;
    for (name, value) in headers {
        if value.len() > MAX_HEADER_VALUE_BYTES {
            return Err(ApiError::HeadersTooLarge(vec![format!(
                "The {name} header must be at most {MAX_HEADER_VALUE_BYTES} bytes, got {}",
                value.len()
            )]));
        }
        total += name.as_str().len() + value.len();
    }
    if total > MAX_HEADERS_BYTES {
        return Err(ApiError::HeadersTooLarge(vec![format!(
            "The request headers must be at most {MAX_HEADERS_BYTES} bytes in all, got {total}"
        )]));
    }
    Ok(())
}

/// How long a client has to send a whole request body (an extension the
/// router installs; read by the body extractor).
#[derive(Debug, Clone, Copy)]
pub struct BodyReadTimeout(pub Duration);

impl<S: Send + Sync> FromRequestParts<S> for BodyReadTimeout {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Self>().copied().ok_or_else(|| {
            ApiError::Internal("the body read timeout extension is not installed".to_owned())
        })
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn a_header_over_its_limit_is_named() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "authorization",
            HeaderValue::from_str(&format!("Bearer {}", "a".repeat(MAX_HEADER_VALUE_BYTES)))
                .expect("a header value"),
        );
        let error = check_headers(&headers).expect_err("too large");
        assert_eq!(error.status_code().as_u16(), 431);
        assert!(error.reasons()[0].contains("authorization"), "{error:?}");
    }

    #[test]
    fn many_headers_within_their_own_limit_can_be_too_many_in_all() {
        let mut headers = HeaderMap::new();
        for index in 0..5 {
            headers.insert(
                axum::http::HeaderName::from_bytes(format!("x-filler-{index}").as_bytes())
                    .expect("a header name"),
                HeaderValue::from_str(&"b".repeat(MAX_HEADER_VALUE_BYTES)).expect("a value"),
            );
        }
        let error = check_headers(&headers).expect_err("too large in all");
        assert!(error.reasons()[0].contains("in all"), "{error:?}");
        let mut headers = HeaderMap::new();
        headers.insert("x-filler", HeaderValue::from_static("fine"));
        assert!(check_headers(&headers).is_ok());
    }
}
