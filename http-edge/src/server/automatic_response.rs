//! hyper's automatic error responses, in the envelope.
//!
//! A request hyper cannot parse (a malformed `Content-Length`, a request
//! line or headers over its buffer) never reaches the router: hyper answers
//! it by itself with a bare `400`, `414` or `431` head and closes the
//! connection, and has no hook to change that answer. The edge's own
//! responses always carry `x-request-id`; hyper's never do. So a response
//! head of status 4xx without that header, written on a client connection,
//! is one of hyper's, and is replaced here, byte for byte on the wire, by the
//! same status with the documented envelope, a fresh request id and
//! `connection: close` (hyper closes the connection after it anyway).

use axum::http::StatusCode;

use crate::{error::ApiError, request_id::RequestId};

/// The envelope response to write instead of `written`, when `written` is
/// the start of one of hyper's automatic error responses.
pub fn replacement(written: &[u8]) -> Option<Vec<u8>> {
    let head = automatic_head(written)?;
    let status = head_status(head)?;
    let error = match status {
        StatusCode::BAD_REQUEST => ApiError::Validation(vec![
            "The request is not valid HTTP (request line, header syntax or Content-Length)"
                .to_owned(),
        ]),
        StatusCode::URI_TOO_LONG => ApiError::UriTooLong(vec![format!(
            "The request line must be at most {} bytes",
            super::MAX_REQUEST_HEAD_BYTES
        )]),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => ApiError::HeadersTooLarge(vec![format!(
            "The request line and headers must be at most {} bytes in all",
            super::MAX_REQUEST_HEAD_BYTES
        )]),
        _ => return None,
    };
    error.log();
    Some(closing_response(&error))
}

/// `error` as a whole HTTP/1.1 response written straight to a socket, for
/// answers given outside the router: its status, the envelope, a fresh
/// request id, its `Allmine-Error-Reason`, `Retry-After` when the error has
/// one, and `connection: close`.
pub fn closing_response(error: &ApiError) -> Vec<u8> {
    let status = error.status_code();
    let body = error.envelope_json();
    let reason = status.canonical_reason().unwrap_or("Error");
    let retry_after = error
        .retry_after()
        .map(|delay| {
            format!(
                "retry-after: {}\r\n",
                crate::error::retry_after_seconds(delay)
            )
        })
        .unwrap_or_default();
    let mut response = format!(
        "HTTP/1.1 {} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{retry_after}{}: {}\r\nx-request-id: {}\r\nconnection: close\r\n\r\n",
        status.as_u16(),
        body.len(),
        crate::error::ERROR_REASON_HEADER,
        error.reason(),
        RequestId::generate(),
    )
    .into_bytes();
    response.extend_from_slice(&body);
    response
}

/// The head in `written` if it is a whole HTTP/1.1 4xx response head
/// without `x-request-id`.
fn automatic_head(written: &[u8]) -> Option<&[u8]> {
    if !written.starts_with(b"HTTP/1.1 4") {
        return None;
    }
    let end = written
        .windows(4)
        .position(|window| window == b"\r\n\r\n")?;
    let head = &written[..end + 2];
    let has_request_id = head
        .split(|byte| *byte == b'\n')
        .any(|line| line.to_ascii_lowercase().starts_with(b"x-request-id:"));
    (!has_request_id).then_some(head)
}

fn head_status(head: &[u8]) -> Option<StatusCode> {
    let code = head.get(9..12)?;
    StatusCode::from_bytes(code).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(bytes: &[u8]) -> String {
        String::from_utf8(bytes.to_vec()).expect("UTF-8")
    }

    #[test]
    fn a_bare_431_becomes_the_envelope() {
        let bare = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: Sun, 29 Nov 2026 03:00:00 GMT\r\n\r\n";
        let replaced = text(&replacement(bare).expect("replaced"));
        assert!(replaced.starts_with("HTTP/1.1 431 "), "{replaced}");
        assert!(replaced.contains("\r\nx-request-id: "), "{replaced}");
        assert!(replaced.contains("\r\nconnection: close\r\n"), "{replaced}");
        assert!(
            replaced.contains("\r\nallmine-error-reason: HEADERS_TOO_LARGE\r\n"),
            "{replaced}"
        );
        let (head, body) = replaced.split_once("\r\n\r\n").expect("a head and a body");
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let json: serde_json::Value = serde_json::from_str(body).expect("JSON");
        assert_eq!(json["statusCode"], 431);
        assert_eq!(json["errors"][0], "Request header fields too large");
    }

    #[test]
    fn bare_400_and_414_are_replaced_too() {
        for (bare, status) in [
            (
                &b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n"[..],
                "400",
            ),
            (
                &b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\n\r\n"[..],
                "414",
            ),
        ] {
            let replaced = text(&replacement(bare).expect("replaced"));
            assert!(
                replaced.starts_with(&format!("HTTP/1.1 {status} ")),
                "{replaced}"
            );
            assert!(
                replaced.contains(&format!("\"statusCode\":{status}")),
                "{replaced}"
            );
        }
    }

    #[test]
    fn the_edges_own_responses_are_left_alone() {
        let own = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\nX-Request-Id: abc\r\ncontent-length: 2\r\n\r\n{}";
        assert!(replacement(own).is_none());
        let success = b"HTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n";
        assert!(replacement(success).is_none());
        // Body bytes (chunked SSE, JSON) never start with a status line.
        assert!(replacement(b"1a\r\nHTTP/1.1 400 \r\n\r\n").is_none());
        // An incomplete head is not guessed at.
        assert!(replacement(b"HTTP/1.1 431 Request Header").is_none());
    }
}
