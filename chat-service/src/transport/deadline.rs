//! The caller's deadline (`grpc-timeout`), enforced as tonic's `Server` did
//! before chat-service served HTTP/2 itself: when it passes before the call
//! has answered, the handler is dropped and the caller gets
//! DEADLINE_EXCEEDED. http-edge sends one with every unary call so that
//! chat-service stops working on calls nobody waits for any more. The wait
//! for a load-shedding permit counts against it (this layer is outside).

use std::convert::Infallible;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use http::{Request, Response};
use tonic::Status;
use tonic::body::Body;
use tower::{Layer, Service};

use crate::error::ChatError;

/// Wraps a service in [`Deadline`].
#[derive(Debug, Clone, Copy, Default)]
pub struct DeadlineLayer;

impl<S> Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Deadline { inner }
    }
}

#[derive(Debug, Clone)]
pub struct Deadline<S> {
    inner: S,
}

impl<S, B> Service<Request<B>> for Deadline<S>
where
    S: Service<Request<B>, Response = Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let deadline = request
            .headers()
            .get("grpc-timeout")
            .and_then(|value| value.to_str().ok())
            .and_then(parse_grpc_timeout);
        let response = self.inner.call(request);
        match deadline {
            None => Box::pin(response),
            Some(deadline) => Box::pin(async move {
                match tokio::time::timeout(deadline, response).await {
                    Ok(response) => response,
                    Err(_) => Ok(Status::from(ChatError::DeadlineExceeded(format!(
                        "the call's deadline ({} ms) passed",
                        deadline.as_millis()
                    )))
                    .into_http()),
                }
            }),
        }
    }
}

/// A `grpc-timeout` value: at most 8 digits and a unit (`H`, `M`, `S`, `m`,
/// `u`, `n`), as the gRPC over HTTP/2 spec says. Anything else is ignored,
/// as tonic ignored it.
fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let unit_at = value.len().checked_sub(1)?;
    let (digits, unit) = (value.get(..unit_at)?, value.get(unit_at..)?);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount * 3_600),
        "M" => Duration::from_secs(amount * 60),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unit_of_the_spec_is_read() {
        assert_eq!(parse_grpc_timeout("2H"), Some(Duration::from_secs(7_200)));
        assert_eq!(parse_grpc_timeout("3M"), Some(Duration::from_secs(180)));
        assert_eq!(parse_grpc_timeout("5S"), Some(Duration::from_secs(5)));
        assert_eq!(
            parse_grpc_timeout("4999m"),
            Some(Duration::from_millis(4_999))
        );
        assert_eq!(parse_grpc_timeout("7u"), Some(Duration::from_micros(7)));
        assert_eq!(parse_grpc_timeout("9n"), Some(Duration::from_nanos(9)));
    }

    #[test]
    fn malformed_values_are_ignored() {
        for value in ["", "S", "5", "5s", "-5S", "123456789S", "5 S", "5é"] {
            assert_eq!(parse_grpc_timeout(value), None, "{value:?}");
        }
    }
}
