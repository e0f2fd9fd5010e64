//! What one answer under overload was: accepted, shed, or failed.
//!
//! The wire contract (README "Limits"): a service that sheds answers at once
//! with gRPC UNAVAILABLE or RESOURCE_EXHAUSTED (with a `google.rpc.RetryInfo`
//! detail), or HTTP 503 or 429 (with `Retry-After`). Anything else, a timeout
//! included, is a failure: the client got neither its message nor a quick
//! "not now".

use http::header::RETRY_AFTER;
use http::{HeaderMap, StatusCode};
use serde::Serialize;
use tonic::Code;
use tonic_types::StatusExt as _;

use crate::load::http::HttpAnswer;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Verdict {
    /// The send succeeded (gRPC OK, HTTP 2xx).
    Accepted,
    /// Refused for load, by the server: the client may retry later.
    Shed,
    /// Anything else.
    Failed,
}

/// One answer, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub verdict: Verdict,
    /// A shed answer said when to retry (RetryInfo, `Retry-After`).
    pub retry_hint: bool,
    /// What a failure was, for the report.
    pub failure: Option<String>,
}

impl Answer {
    fn accepted() -> Self {
        Self {
            verdict: Verdict::Accepted,
            retry_hint: false,
            failure: None,
        }
    }

    fn shed(retry_hint: bool) -> Self {
        Self {
            verdict: Verdict::Shed,
            retry_hint,
            failure: None,
        }
    }

    fn failed(failure: String) -> Self {
        Self {
            verdict: Verdict::Failed,
            retry_hint: false,
            failure: Some(failure),
        }
    }
}

/// A gRPC send's outcome. Only a status the server sent counts as shed:
/// tonic also reports a transport failure (a refused connection, a reset) as
/// UNAVAILABLE, and marks it with the error it came from as its source.
pub fn grpc(result: &Result<usize, tonic::Status>) -> Answer {
    let status = match result {
        Ok(_) => return Answer::accepted(),
        Err(status) => status,
    };
    let from_server = std::error::Error::source(status).is_none();
    let overload = matches!(status.code(), Code::Unavailable | Code::ResourceExhausted);
    if overload && from_server {
        Answer::shed(status.get_details_retry_info().is_some())
    } else {
        let mut failure = format!("{:?}: {}", status.code(), status.message());
        if !from_server {
            // The transport's own words: which error, down to the socket.
            failure.push_str(" (client side");
            let mut source = std::error::Error::source(status);
            while let Some(error) = source {
                failure.push_str(&format!(": {error}"));
                source = error.source();
            }
            failure.push(')');
        }
        Answer::failed(failure)
    }
}

/// An HTTP send's outcome.
pub fn http(result: &Result<HttpAnswer, String>) -> Answer {
    match result {
        Ok(answer) => http_status(answer.status, &answer.headers, &answer.body),
        Err(error) => Answer::failed(error.clone()),
    }
}

fn http_status(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Answer {
    if status.is_success() {
        Answer::accepted()
    } else if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS {
        Answer::shed(headers.contains_key(RETRY_AFTER))
    } else {
        let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
        Answer::failed(format!("HTTP {status}: {text}"))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use bytes::Bytes;
    use http::HeaderValue;
    use tonic::Status;
    use tonic_types::ErrorDetails;

    use super::*;

    fn overloaded(code: Code) -> Status {
        Status::with_error_details(
            code,
            "chat-service is overloaded",
            ErrorDetails::with_retry_info(Some(Duration::from_secs(1))),
        )
    }

    fn answer(status: StatusCode, retry_after: bool) -> Result<HttpAnswer, String> {
        let mut headers = HeaderMap::new();
        if retry_after {
            headers.insert(RETRY_AFTER, HeaderValue::from_static("1"));
        }
        Ok(HttpAnswer {
            status,
            headers,
            body: Bytes::from_static(b"{\"isSuccess\":false}"),
        })
    }

    #[test]
    fn a_grpc_reply_is_accepted() {
        assert_eq!(grpc(&Ok(199)).verdict, Verdict::Accepted);
    }

    #[test]
    fn unavailable_or_resource_exhausted_from_the_server_is_shed_with_its_hint() {
        for code in [Code::Unavailable, Code::ResourceExhausted] {
            let shed = grpc(&Err(overloaded(code)));
            assert_eq!(shed.verdict, Verdict::Shed, "{code:?}");
            assert!(shed.retry_hint, "{code:?}");
        }
    }

    #[test]
    fn a_shed_grpc_answer_without_retry_info_is_still_shed_but_without_a_hint() {
        let shed = grpc(&Err(Status::unavailable("storage is unavailable")));
        assert_eq!(shed, Answer::shed(false));
    }

    #[test]
    fn a_transport_failure_reported_as_unavailable_is_a_failure() {
        let mut status = Status::unavailable("transport error");
        status.set_source(Arc::new(std::io::Error::from(
            std::io::ErrorKind::ConnectionReset,
        )));
        let failed = grpc(&Err(status));
        assert_eq!(failed.verdict, Verdict::Failed);
        assert!(
            failed
                .failure
                .as_deref()
                .is_some_and(|text| text.contains("client side")),
            "{failed:?}"
        );
    }

    #[test]
    fn other_grpc_codes_and_deadlines_are_failures() {
        for status in [
            Status::deadline_exceeded("no answer within 5s"),
            Status::internal("boom"),
            Status::unauthenticated("token has expired"),
        ] {
            assert_eq!(grpc(&Err(status)).verdict, Verdict::Failed);
        }
    }

    #[test]
    fn http_2xx_is_accepted() {
        assert_eq!(
            http(&answer(StatusCode::CREATED, false)).verdict,
            Verdict::Accepted
        );
    }

    #[test]
    fn http_503_and_429_are_shed_and_say_whether_retry_after_came() {
        for status in [
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::TOO_MANY_REQUESTS,
        ] {
            assert_eq!(http(&answer(status, true)), Answer::shed(true));
            assert_eq!(http(&answer(status, false)), Answer::shed(false));
        }
    }

    #[test]
    fn other_http_statuses_and_transport_errors_are_failures() {
        let bad_gateway = http(&answer(StatusCode::BAD_GATEWAY, false));
        assert_eq!(bad_gateway.verdict, Verdict::Failed);
        assert!(
            bad_gateway
                .failure
                .as_deref()
                .is_some_and(|text| text.starts_with("HTTP 502")),
            "{bad_gateway:?}"
        );
        let timeout = http(&Err("no answer within 5s".to_owned()));
        assert_eq!(timeout.verdict, Verdict::Failed);
    }
}
