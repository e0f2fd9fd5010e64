//! Load shedding: at most `CHAT_MAX_IN_FLIGHT` unary calls run at once on
//! this instance. A call that finds no room waits, if fewer than
//! `CHAT_MAX_QUEUED` are waiting, at most `CHAT_QUEUE_TIMEOUT_MS`; otherwise
//! it is answered at once with UNAVAILABLE and a `RetryInfo` of one second,
//! instead of queueing without bound: under overload, the calls that are
//! admitted stay fast, and the others learn at once that they should retry
//! (http-edge: 503 with `Retry-After`). The bounded queue ([`Admission`])
//! makes a refusal cost no wait (BENCHMARKS.md, section 6).
//!
//! A call is refused only once its request has been read: answering an
//! HTTP/2 request whose body the client is still sending resets the stream,
//! and past 1,024 such resets hyper closes the whole connection (GOAWAY),
//! failing every call on it, the edge's included. (Measured: refusing before
//! the read cost 71,276 failed calls in one overload run.)
//!
//! Not limited: streams that stay open for long by design
//! (`SubscribeMessages`, health `Watch`, reflection), which have caps of
//! their own, and health `Check`, which load balancers and `/readyz` must
//! always get an answer to.
//!
//! A call takes its permit only once its request message has fully
//! arrived (at most [`MAX_REQUEST_BYTES`], within [`REQUEST_BODY_TIMEOUT`]):
//! a client that sends its request slowly holds no permit, so slow senders
//! cannot use up the budget of everyone else.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use allmine_chat_proto::CHAT_SERVICE_NAME;
use allmine_observability::admission::Admission;
use futures::future::BoxFuture;
use http::{Request, Response};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use tokio::sync::OwnedSemaphorePermit;
use tonic::Status;
use tonic::body::Body;
use tower::{Layer, Service};

use crate::error::ChatError;
use allmine_observability::throttle::LogThrottle;

/// The largest unary request accepted. chat-service's requests are a few
/// hundred bytes (a message is at most 500 characters); tonic's general
/// default (4 MiB) would let each of thousands of open streams park
/// megabytes here.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// How long a unary request may take to arrive once its headers have.
/// Generous for any real client (a request is one small frame), short
/// enough that a client trickling bytes is let go.
pub const REQUEST_BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// How often a sustained overload is logged (with the running total).
const LOG_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy)]
pub struct LoadShedSettings {
    /// Unary calls that may run at once on this instance.
    pub max_in_flight: usize,
    /// Calls that may wait for room; more are shed at once.
    pub max_queued: usize,
    /// How long a call may wait for room before it is shed.
    pub queue_timeout: Duration,
}

/// The limiter, shared by every port of the instance (they share the store
/// and the CPU it protects).
#[derive(Clone)]
pub struct LoadShedLayer {
    shared: Arc<Shared>,
}

struct Shared {
    admission: Admission,
    settings: LoadShedSettings,
    /// Calls shed since start (metrics come with a later issue).
    shed: AtomicU64,
    log: LogThrottle,
}

impl LoadShedLayer {
    pub fn new(settings: LoadShedSettings) -> Self {
        Self {
            shared: Arc::new(Shared {
                admission: Admission::new(
                    settings.max_in_flight,
                    settings.max_queued,
                    settings.queue_timeout,
                ),
                settings,
                shed: AtomicU64::new(0),
                log: LogThrottle::new(LOG_INTERVAL),
            }),
        }
    }

    /// How many calls were shed since start.
    pub fn shed_calls(&self) -> u64 {
        self.shared.shed.load(Ordering::Relaxed)
    }
}

impl<S> Layer<S> for LoadShedLayer {
    type Service = LoadShed<S>;

    fn layer(&self, inner: S) -> Self::Service {
        LoadShed {
            inner,
            shared: Arc::clone(&self.shared),
        }
    }
}

#[derive(Clone)]
pub struct LoadShed<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> Service<Request<Body>> for LoadShed<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        if !is_limited(request.uri().path()) {
            return Box::pin(self.inner.call(request));
        }
        // The instance that was polled ready goes into the future; this
        // handle keeps a fresh clone (tower's usual pattern).
        let fresh = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, fresh);
        let shared = Arc::clone(&self.shared);
        Box::pin(async move {
            let request = match whole(request).await {
                Ok(request) => request,
                Err(status) => return Ok(status.into_http()),
            };
            let Some(_permit) = shared.admit().await else {
                return Ok(Status::from(ChatError::Overloaded).into_http());
            };
            // The permit is held until the call has answered.
            inner.call(request).await
        })
    }
}

impl Shared {
    /// A permit, or `None` when the call is shed (the queue full, or its
    /// timeout passed).
    async fn admit(&self) -> Option<OwnedSemaphorePermit> {
        let permit = self.admission.admit().await;
        if permit.is_none() {
            self.count_shed();
        }
        permit
    }

    /// Counts a shed call; logs the running total at most once a second.
    fn count_shed(&self) {
        let shed_total = self.shed.fetch_add(1, Ordering::Relaxed) + 1;
        if self.log.ready() {
            tracing::warn!(
                shed_total,
                max_in_flight = self.settings.max_in_flight,
                max_queued = self.settings.max_queued,
                queue_timeout_ms = self.settings.queue_timeout.as_millis(),
                "overloaded: shedding unary calls with UNAVAILABLE"
            );
        }
    }
}

/// The request with its message fully received (bounded in size and time).
async fn whole(request: Request<Body>) -> Result<Request<Body>, Status> {
    let (parts, body) = request.into_parts();
    let collected = tokio::time::timeout(
        REQUEST_BODY_TIMEOUT,
        Limited::new(body, MAX_REQUEST_BYTES).collect(),
    )
    .await
    .map_err(|_| {
        Status::from(ChatError::DeadlineExceeded(format!(
            "the request did not arrive within {} s",
            REQUEST_BODY_TIMEOUT.as_secs()
        )))
    })?;
    match collected {
        Ok(collected) => Ok(Request::from_parts(
            parts,
            Body::new(Full::new(collected.to_bytes())),
        )),
        Err(error) if error.is::<LengthLimitError>() => {
            Err(Status::from(ChatError::RequestTooLarge {
                limit_bytes: MAX_REQUEST_BYTES,
            }))
        }
        // The client reset the call or the connection broke: nobody reads
        // this answer.
        Err(_) => Err(Status::cancelled("the request was not received")),
    }
}

/// Whether a call to `path` (`/package.Service/Method`) takes a permit.
fn is_limited(path: &str) -> bool {
    let Some((service, method)) = path.strip_prefix('/').and_then(|path| path.split_once('/'))
    else {
        // Not a gRPC path: answered UNIMPLEMENTED by the router, cheaply.
        return false;
    };
    let long_lived_or_probe = service == tonic_health::pb::health_server::SERVICE_NAME
        || service == tonic_reflection::pb::v1::server_reflection_server::SERVICE_NAME
        || service == tonic_reflection::pb::v1alpha::server_reflection_server::SERVICE_NAME
        || (service == CHAT_SERVICE_NAME && method == "SubscribeMessages");
    !long_lived_or_probe
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unary_chat_and_admin_calls_are_limited() {
        assert!(is_limited("/allmine.chat.v1.ChatService/SendMessage"));
        assert!(is_limited("/allmine.chat.v1.ChatService/ListMessages"));
        assert!(is_limited(
            "/allmine.chat.v1.ChatAdminService/RegisterStream"
        ));
    }

    #[test]
    fn subscriptions_probes_and_reflection_are_not() {
        assert!(!is_limited(
            "/allmine.chat.v1.ChatService/SubscribeMessages"
        ));
        assert!(!is_limited("/grpc.health.v1.Health/Check"));
        assert!(!is_limited("/grpc.health.v1.Health/Watch"));
        assert!(!is_limited(
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
        ));
        assert!(!is_limited(
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
        ));
    }
}
