//! [`CallMetricsLayer`]: every gRPC call's RED metrics and its span.
//!
//! - `grpc_server_handled_total{grpc_service,grpc_method,grpc_code}` and
//!   `grpc_server_handling_seconds{grpc_service,grpc_method}`, named as
//!   grpc-ecosystem's interceptors name them. The code is read from the
//!   response headers for a trailers-only answer (every refusal), else from
//!   the trailers at the end of the body; so a streaming call counts when
//!   its stream ends, and one whose client went away counts as CANCELLED.
//! - `chat_messages_accepted_total`: SendMessage answered OK, except an
//!   idempotent replay (`idempotent-replayed: true`), which stored nothing.
//! - The span `grpc_request`, a child of the caller's W3C trace context
//!   when the call carries one (http-edge injects it): one trace covers
//!   REST → edge → chat-service → store. Handlers' spans nest inside it.
//! - SendMessage calls run with `metrics::refusal::IN_SEND_MESSAGE` set, so
//!   that a refusal is counted by reason where the error becomes a status.
//!
//! Labels are bounded: a path that is not an RPC this server serves is
//! `unknown`/`unknown` (any other path would be a new series per path a
//! client invents).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use std::collections::HashMap;
use std::sync::{LazyLock, OnceLock};

use allmine_chat_proto::{CHAT_SERVICE_NAME, FILE_DESCRIPTOR_SET, IDEMPOTENT_REPLAYED_METADATA};
use allmine_observability::metrics::grpc_code_name;
use allmine_observability::propagation;
use http::{HeaderMap, Request, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use metrics::{Counter, Histogram};
use prost::Message as _;
use prost_types::FileDescriptorSet;
use tonic::Code;
use tonic::body::Body;
use tower::{Layer, Service};
use tracing::Instrument;

use crate::metrics::refusal::IN_SEND_MESSAGE;
use crate::metrics::{GRPC_HANDLED, GRPC_HANDLING_SECONDS, MESSAGES_ACCEPTED, with_recorder};

/// One RPC as labels, with its metric handles, registered on first use:
/// looked up once per call by its path, so that recording a call neither
/// copies its labels nor looks its series up again (that cost ~6,000
/// instructions per send, BENCHMARKS.md "Lean send path").
struct Rpc {
    service: String,
    method: String,
    /// `grpc_server_handled_total`, by status code (indexed by its number).
    handled: [OnceLock<Counter>; STATUS_CODES],
    seconds: OnceLock<Histogram>,
}

/// gRPC status codes: 0 (OK) to 16 (UNAUTHENTICATED).
const STATUS_CODES: usize = 17;

impl Rpc {
    fn new(service: &str, method: &str) -> Self {
        Self {
            service: service.to_owned(),
            method: method.to_owned(),
            handled: std::array::from_fn(|_| OnceLock::new()),
            seconds: OnceLock::new(),
        }
    }

    fn handled(&self, code: Code) -> &Counter {
        let index = usize::try_from(i32::from(code)).unwrap_or(0) % STATUS_CODES;
        self.handled[index].get_or_init(|| {
            with_recorder(|| {
                metrics::counter!(
                    GRPC_HANDLED,
                    "grpc_service" => self.service.clone(),
                    "grpc_method" => self.method.clone(),
                    "grpc_code" => grpc_code_name(code),
                )
            })
        })
    }

    fn seconds(&self) -> &Histogram {
        self.seconds.get_or_init(|| {
            with_recorder(|| {
                metrics::histogram!(
                    GRPC_HANDLING_SECONDS,
                    "grpc_service" => self.service.clone(),
                    "grpc_method" => self.method.clone(),
                )
            })
        })
    }
}

/// The RPCs this server serves, by path without its leading `/`
/// (`service/method`), from the descriptor sets it serves reflection from:
/// the only names that may become labels.
static KNOWN_RPCS: LazyLock<HashMap<String, Rpc>> = LazyLock::new(|| {
    let mut known = HashMap::new();
    let mut add = |service: &str, method: &str| {
        known.insert(format!("{service}/{method}"), Rpc::new(service, method));
    };
    for encoded in [FILE_DESCRIPTOR_SET, tonic_health::pb::FILE_DESCRIPTOR_SET] {
        let Ok(set) = FileDescriptorSet::decode(encoded) else {
            continue;
        };
        for file in set.file {
            let package = file.package().to_owned();
            for service in file.service {
                let name = format!("{package}.{}", service.name());
                for method in service.method {
                    add(&name, method.name());
                }
            }
        }
    }
    for reflection in [
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    ] {
        add(reflection, "ServerReflectionInfo");
    }
    known
});

/// Every path that is not a known RPC.
static UNKNOWN_RPC: LazyLock<Rpc> = LazyLock::new(|| Rpc::new(UNKNOWN, UNKNOWN));

/// The label of every path that is not a known RPC.
const UNKNOWN: &str = "unknown";

/// The longest `x-request-id` recorded on the span (what the edge sends).
const MAX_REQUEST_ID_LEN: usize = 128;

#[derive(Debug, Clone, Copy, Default)]
pub struct CallMetricsLayer;

impl<S> Layer<S> for CallMetricsLayer {
    type Service = CallMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CallMetrics { inner }
    }
}

#[derive(Debug, Clone)]
pub struct CallMetrics<S> {
    inner: S,
}

impl<S> Service<Request<Body>> for CallMetrics<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        // The clone that was made ready is the one to call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let call = Call::of(request.uri().path());
        let span = call.span(request.headers());
        let is_send = call.is_send_message();
        Box::pin(async move {
            let started = Instant::now();
            // Called inside the scope: the auth interceptor and the load
            // shedding refuse from within `call` itself.
            let response = IN_SEND_MESSAGE
                .scope(is_send, async move { inner.call(request).await })
                .instrument(span)
                .await?;
            let outcome = Outcome {
                call,
                started,
                replayed: response
                    .headers()
                    .get(IDEMPOTENT_REPLAYED_METADATA)
                    .is_some_and(|value| value == "true"),
            };
            match grpc_code(response.headers()) {
                Some(code) => {
                    outcome.record(code);
                    Ok(response)
                }
                None => Ok(response.map(|body| {
                    Body::new(Observed {
                        body,
                        outcome: Some(outcome),
                    })
                })),
            }
        })
    }
}

/// Which RPC a call is, as labels.
#[derive(Clone, Copy)]
struct Call {
    rpc: &'static Rpc,
}

impl std::fmt::Debug for Call {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{}/{}", self.rpc.service, self.rpc.method)
    }
}

impl Call {
    /// `/package.Service/Method`; anything this server does not serve is
    /// `unknown`, `unknown`.
    fn of(path: &str) -> Self {
        let rpc = KNOWN_RPCS
            .get(path.trim_start_matches('/'))
            .unwrap_or(&*UNKNOWN_RPC);
        Self { rpc }
    }

    fn service(&self) -> &'static str {
        &self.rpc.service
    }

    fn method(&self) -> &'static str {
        &self.rpc.method
    }

    fn is_send_message(&self) -> bool {
        self.service() == CHAT_SERVICE_NAME && self.method() == "SendMessage"
    }

    /// The call's span, continuing the caller's trace if it sent one. Its
    /// name in traces is the RPC's (`otel.name`); few fields, since text
    /// logs print them on every line of the call.
    fn span(&self, headers: &HeaderMap) -> tracing::Span {
        let span = tracing::info_span!(
            "grpc_request",
            otel.name = %format_args!("{}/{}", self.service(), self.method()),
            otel.kind = "server",
            request_id = tracing::field::Empty,
        );
        if let Some(request_id) = headers
            .get("x-request-id")
            .and_then(|value| value.to_str().ok())
            .filter(|id| id.len() <= MAX_REQUEST_ID_LEN)
        {
            span.record("request_id", request_id);
        }
        propagation::continue_trace(&span, headers);
        span
    }
}

/// What is recorded when the call's status is known.
#[derive(Debug)]
struct Outcome {
    call: Call,
    started: Instant,
    replayed: bool,
}

impl Outcome {
    fn record(self, code: Code) {
        let accepted = code == Code::Ok && !self.replayed && self.call.is_send_message();
        let elapsed = self.started.elapsed().as_secs_f64();
        let rpc = self.call.rpc;
        rpc.handled(code).increment(1);
        rpc.seconds().record(elapsed);
        if accepted {
            MESSAGES_ACCEPTED_COUNTER.increment(1);
        }
    }
}

/// `chat_messages_accepted_total`, registered once.
static MESSAGES_ACCEPTED_COUNTER: LazyLock<Counter> =
    LazyLock::new(|| with_recorder(|| metrics::counter!(MESSAGES_ACCEPTED)));

/// A response body that records the call when its trailers pass, or when
/// it ends or is dropped without them.
struct Observed {
    body: Body,
    outcome: Option<Outcome>,
}

impl HttpBody for Observed {
    type Data = <Body as HttpBody>::Data;
    type Error = <Body as HttpBody>::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref() {
                    let code = grpc_code(trailers).unwrap_or(Code::Unknown);
                    if let Some(outcome) = self.outcome.take() {
                        outcome.record(code);
                    }
                }
            }
            Poll::Ready(Some(Err(_))) | Poll::Ready(None) => {
                if let Some(outcome) = self.outcome.take() {
                    outcome.record(Code::Unknown);
                }
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for Observed {
    fn drop(&mut self) {
        // The client left (or the connection broke) before the status.
        if let Some(outcome) = self.outcome.take() {
            outcome.record(Code::Cancelled);
        }
    }
}

fn grpc_code(headers: &HeaderMap) -> Option<Code> {
    headers
        .get("grpc-status")
        .map(|value| Code::from_bytes(value.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_known_rpc_keeps_its_names() {
        let call = Call::of("/allmine.chat.v1.ChatService/SendMessage");
        assert_eq!(call.service(), CHAT_SERVICE_NAME);
        assert_eq!(call.method(), "SendMessage");
        assert!(call.is_send_message());
    }

    #[test]
    fn every_served_rpc_is_known() {
        for path in [
            "/allmine.chat.v1.ChatAdminService/RegisterStream",
            "/allmine.chat.v1.ChatService/SubscribeMessages",
            "/grpc.health.v1.Health/Check",
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        ] {
            assert_ne!(Call::of(path).service(), UNKNOWN, "{path}");
        }
    }

    #[test]
    fn invented_paths_share_one_label() {
        for path in [
            "/evil.Service/Method",
            "/",
            "/allmine.chat.v1.ChatService/Nope",
            "/allmine.chat.v1.ChatService/SendMessage/more",
            "nonsense",
        ] {
            let call = Call::of(path);
            assert_eq!(
                (call.service(), call.method()),
                (UNKNOWN, UNKNOWN),
                "{path}"
            );
        }
    }
}
