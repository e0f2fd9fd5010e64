//! http-edge's Prometheus metrics (every name and its meaning:
//! docs/operations.md), served on a listener of their own
//! (`EDGE_METRICS_ADDR`), never on the public port. The recorder and the
//! listener are `allmine_observability::metrics`'s; every metric registers
//! through [`with_recorder`].

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex, PoisonError};
use std::time::Instant;

use allmine_observability::metrics::ServiceMetrics;
use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::response::Response;
use metrics::{Gauge, Histogram};

pub const HTTP_REQUEST_DURATION: &str = "http_server_request_duration_seconds";
pub const EVENT_STREAMS_OPEN: &str = "edge_event_streams_open";
pub const EVENT_FEEDS_OPEN: &str = "edge_event_feeds_open";
pub const UPSTREAM_FAILURES: &str = "edge_upstream_failures_total";
pub const REQUESTS_SHED: &str = "edge_requests_shed_total";

/// The `http_route` of a request no route matched: one series for every
/// unknown path, whatever a client invents.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// http-edge's recorder.
pub static METRICS: LazyLock<ServiceMetrics> = LazyLock::new(|| ServiceMetrics::new(describe));

static EVENT_STREAMS: LazyLock<Gauge> =
    LazyLock::new(|| with_recorder(|| metrics::gauge!(EVENT_STREAMS_OPEN)));

static EVENT_FEEDS: LazyLock<Gauge> =
    LazyLock::new(|| with_recorder(|| metrics::gauge!(EVENT_FEEDS_OPEN)));

/// Runs `register` with http-edge's recorder as the current one.
pub fn with_recorder<T>(register: impl FnOnce() -> T) -> T {
    METRICS.with(register)
}

/// One request's `http_server_request_duration_seconds`, labelled with the
/// route template (`/api/v1/live-stream/{streamId}/chat/messages`), never
/// the path: [`RequestTimer::start`] before the request runs,
/// [`RequestTimer::record`] with its response. For an event stream it is
/// the time to the response head, not the stream's life.
pub struct RequestTimer {
    started: Instant,
    method: &'static str,
    route: Option<MatchedPath>,
}

impl RequestTimer {
    pub fn start(request: &Request) -> Self {
        Self {
            started: Instant::now(),
            method: method_label(request.method()),
            route: request.extensions().get::<MatchedPath>().cloned(),
        }
    }

    pub fn record(self, response: &Response) {
        let route = self
            .route
            .as_ref()
            .map_or(UNMATCHED_ROUTE, MatchedPath::as_str);
        let status = response.status().as_u16();
        request_duration(route, self.method, status).record(self.started.elapsed().as_secs_f64());
    }
}

/// The histogram of one (route, method, status), registered on first use
/// and kept: building its key (label strings) and looking it up in the
/// registry on every request cost more than the observation itself. The
/// labels have a small fixed set of values (route templates, standard
/// methods, status codes), so the cache is bounded the same way the series
/// are.
fn request_duration(route: &str, method: &'static str, status: u16) -> Histogram {
    /// Per route template: (method, status, histogram).
    type ByRoute = HashMap<String, Vec<(&'static str, u16, Histogram)>>;
    static HANDLES: LazyLock<Mutex<ByRoute>> = LazyLock::new(Mutex::default);
    let mut handles = HANDLES.lock().unwrap_or_else(PoisonError::into_inner);
    let by_route = match handles.get_mut(route) {
        Some(by_route) => by_route,
        None => handles.entry(route.to_owned()).or_default(),
    };
    if let Some((_, _, histogram)) = by_route
        .iter()
        .find(|(known_method, known_status, _)| *known_method == method && *known_status == status)
    {
        return histogram.clone();
    }
    let histogram = with_recorder(|| {
        metrics::histogram!(
            HTTP_REQUEST_DURATION,
            "http_request_method" => method,
            "http_route" => route.to_owned(),
            "http_response_status_code" => status.to_string(),
        )
    });
    by_route.push((method, status, histogram.clone()));
    histogram
}

/// Standard methods by name; any other as `_OTHER` (OpenTelemetry's
/// convention), so that invented methods cannot add series.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "_OTHER",
    }
}

/// One open event stream in `edge_event_streams_open`, while it lives.
#[derive(Debug)]
pub struct EventStreamGauge(());

impl EventStreamGauge {
    pub fn open() -> Self {
        EVENT_STREAMS.increment(1.0);
        Self(())
    }
}

impl Drop for EventStreamGauge {
    fn drop(&mut self) {
        EVENT_STREAMS.decrement(1.0);
    }
}

/// One shared upstream subscription (a stream's feed, `crate::fanout`) in
/// `edge_event_feeds_open`, while it lives.
#[derive(Debug)]
pub struct FeedGauge(());

impl FeedGauge {
    pub fn open() -> Self {
        EVENT_FEEDS.increment(1.0);
        Self(())
    }
}

impl Drop for FeedGauge {
    fn drop(&mut self) {
        EVENT_FEEDS.decrement(1.0);
    }
}

/// A call to chat-service that failed with `code` (whatever the edge then
/// answers).
pub fn upstream_failure(code: tonic::Code) {
    with_recorder(|| metrics::counter!(UPSTREAM_FAILURES, "grpc_code" => allmine_observability::metrics::grpc_code_name(code)))
        .increment(1);
}

/// Why the edge refused work it could not take on.
#[derive(Debug, Clone, Copy)]
pub enum Shed {
    /// No room among the unary calls in flight within the queue timeout.
    InFlight,
    /// The cap on open event streams.
    EventStreams,
    /// The cap on open connections.
    Connections,
}

/// Counts one refusal in `edge_requests_shed_total{reason}`.
pub fn shed(reason: Shed) {
    let reason = match reason {
        Shed::InFlight => "in_flight",
        Shed::EventStreams => "event_streams",
        Shed::Connections => "connections",
    };
    with_recorder(|| metrics::counter!(REQUESTS_SHED, "reason" => reason)).increment(1);
}

/// `# HELP` lines; the meanings in docs/operations.md say the same.
fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_histogram!(
        HTTP_REQUEST_DURATION,
        Unit::Seconds,
        "Time to answer a request (to the response head), by method, route template and status"
    );
    describe_gauge!(EVENT_STREAMS_OPEN, "Event streams (SSE) open now");
    describe_gauge!(
        EVENT_FEEDS_OPEN,
        "Shared upstream subscriptions (one per stream with SSE clients here) open now"
    );
    describe_counter!(
        UPSTREAM_FAILURES,
        "Calls to chat-service that failed, by gRPC code"
    );
    describe_counter!(
        REQUESTS_SHED,
        "Requests and connections refused at a capacity limit, by limit"
    );
}
