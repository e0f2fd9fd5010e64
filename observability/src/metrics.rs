//! A service's Prometheus recorder ([`ServiceMetrics`]) and the listener
//! that serves it ([`MetricsEndpoint`]): `GET /metrics` in the text
//! exposition format, on an address of its own (loopback by default), never
//! on the public port.
//!
//! Each service keeps its own recorder rather than installing the `metrics`
//! crate's global one: when both services run in one process (the
//! end-to-end tests), each endpoint still shows only its own metrics. So
//! every metric is registered through [`ServiceMetrics::with`]; handles
//! used on hot paths are registered once and kept.

use std::convert::Infallible;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::TokioIo;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusRecorder};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tonic::Code;

/// Histogram buckets (seconds) of every `*_seconds` metric: from 0.5 ms (an
/// embedded-store read) to 10 s (twice the edge's default deadline; past
/// that only "too slow" matters).
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How often histogram samples are folded into their buckets. Between
/// scrapes, samples wait in a per-histogram buffer; without this upkeep a
/// service nobody scrapes would grow that buffer without bound.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Scrapes served at once; a scraper is one Prometheus (or two), so more
/// than this is a misbehaving client, and its extra connections are closed.
const MAX_SCRAPE_CONNECTIONS: usize = 8;

/// The time a scraper has to send its request (and to send the next one on
/// a kept-alive connection).
const SCRAPE_HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// The Prometheus text format's content type.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// One service's metrics.
pub struct ServiceMetrics {
    recorder: PrometheusRecorder,
    /// Off in a binary whose `/metrics` is off: nothing is recorded then.
    recording: AtomicBool,
}

impl ServiceMetrics {
    /// A recorder with [`LATENCY_BUCKETS`] for every `*_seconds` histogram,
    /// whose `# HELP` lines `describe` registers; starts the upkeep thread
    /// (one per recorder, for the life of the process: make one per service
    /// and keep it in a static).
    pub fn new(describe: impl FnOnce()) -> Self {
        // Fails only for an empty bucket list, which LATENCY_BUCKETS is not;
        // the fallback (summaries) would still be valid exposition.
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
            .unwrap_or_else(|_| PrometheusBuilder::new())
            .build_recorder();
        let handle = recorder.handle();
        let upkeep = std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(UPKEEP_INTERVAL);
                    handle.run_upkeep();
                }
            });
        if let Err(error) = upkeep {
            tracing::warn!(%error, "cannot start the metrics upkeep thread");
        }
        metrics::with_local_recorder(&recorder, describe);
        Self {
            recorder,
            recording: AtomicBool::new(true),
        }
    }

    /// From now on, metrics register with a recorder that keeps nothing,
    /// so that a service whose `/metrics` is off pays nothing for them. For
    /// a binary's `main`, before the first request: handles registered
    /// earlier keep recording. (Not for `Application`: tests run services
    /// with and without a listener in one process and share the recorder.)
    pub fn stop_recording(&self) {
        self.recording.store(false, Ordering::Relaxed);
    }

    /// Runs `register` with this recorder as the current one: the
    /// `metrics::counter!` (etc.) calls inside register here.
    pub fn with<T>(&self, register: impl FnOnce() -> T) -> T {
        if self.recording.load(Ordering::Relaxed) {
            metrics::with_local_recorder(&self.recorder, register)
        } else {
            metrics::with_local_recorder(&metrics::NoopRecorder, register)
        }
    }

    /// The exposition text of every metric (what `GET /metrics` answers).
    pub fn render(&self) -> String {
        self.recorder.handle().render()
    }
}

/// The `grpc_code` label of a status: the names grpc-ecosystem's
/// interceptors use (Go's `codes.Code` names), the same in both services.
pub fn grpc_code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "Canceled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}

/// Where `/metrics` is served: an address, or off (an empty value or `off`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsAddr(Option<SocketAddr>);

impl MetricsAddr {
    pub const OFF: Self = Self(None);

    pub fn new(addr: SocketAddr) -> Self {
        Self(Some(addr))
    }

    pub fn addr(self) -> Option<SocketAddr> {
        self.0
    }
}

impl FromStr for MetricsAddr {
    type Err = std::net::AddrParseError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let value = value.trim();
        if value.is_empty() || value.eq_ignore_ascii_case("off") {
            return Ok(Self::OFF);
        }
        value.parse().map(Self::new)
    }
}

impl fmt::Display for MetricsAddr {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(addr) => write!(formatter, "{addr}"),
            None => formatter.write_str("off"),
        }
    }
}

/// A bound `/metrics` listener (port 0 allowed: [`Self::local_addr`] says
/// which port).
pub struct MetricsEndpoint {
    listener: TcpListener,
    local_addr: SocketAddr,
}

impl MetricsEndpoint {
    pub async fn bind(addr: SocketAddr) -> io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        Ok(Self {
            listener,
            local_addr,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves `metrics` until `stopping` is cancelled. HTTP/1.1 only: that
    /// is what Prometheus speaks.
    pub async fn serve(self, metrics: &'static ServiceMetrics, stopping: CancellationToken) {
        tracing::info!(addr = %self.local_addr, "metrics listening on /metrics");
        let slots = Arc::new(Semaphore::new(MAX_SCRAPE_CONNECTIONS));
        loop {
            let accepted = tokio::select! {
                () = stopping.cancelled() => return,
                accepted = self.listener.accept() => accepted,
            };
            let Ok((stream, _peer)) = accepted else {
                // Out of descriptors, or a connection gone before accept:
                // wait a little rather than spin on a readable listener.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                continue;
            };
            let stopping = stopping.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| answer(metrics, request));
                let connection = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(SCRAPE_HEADER_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), service);
                tokio::select! {
                    _ = connection => {}
                    () = stopping.cancelled() => {}
                }
                drop(slot);
            });
        }
    }
}

async fn answer(
    metrics: &'static ServiceMetrics,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let response = match (request.method(), request.uri().path()) {
        (&Method::GET, "/metrics") => Response::builder()
            .header(header::CONTENT_TYPE, CONTENT_TYPE)
            .body(Full::new(Bytes::from(metrics.render()))),
        _ => Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body(Full::new(Bytes::from_static(b"only GET /metrics here\n"))),
    };
    // The builder fails only on invalid parts, which these are not.
    Ok(response.unwrap_or_else(|_| Response::new(Full::new(Bytes::new()))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_recording_stops_new_metrics_are_kept_nowhere() {
        let service = ServiceMetrics::new(|| {});
        service
            .with(|| metrics::counter!("kept_total"))
            .increment(1);
        service.stop_recording();
        service
            .with(|| metrics::counter!("dropped_total"))
            .increment(1);
        let text = service.render();
        assert!(text.contains("kept_total 1"), "{text}");
        assert!(!text.contains("dropped_total"), "{text}");
    }

    #[test]
    fn an_empty_or_off_address_disables_the_endpoint() {
        assert_eq!("".parse::<MetricsAddr>(), Ok(MetricsAddr::OFF));
        assert_eq!("off".parse::<MetricsAddr>(), Ok(MetricsAddr::OFF));
        assert_eq!(
            "127.0.0.1:9464"
                .parse::<MetricsAddr>()
                .map(MetricsAddr::addr),
            Ok(Some(SocketAddr::from(([127, 0, 0, 1], 9464))))
        );
        assert!("nine".parse::<MetricsAddr>().is_err());
    }
}
