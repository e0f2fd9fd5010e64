//! What chat-service and http-edge share to be observed (docs/operations.md):
//!
//! - [`logs`]: `LOG_FORMAT=json`, one JSON object per line with the request
//!   id and the trace and span ids.
//! - [`log_writer`]: log lines to standard output in batches, off the
//!   request path (bounded; what happens when full is there).
//! - [`traces`]: the tracing subscriber of a service, with OpenTelemetry
//!   spans, exported over OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
//! - [`propagation`]: the W3C `traceparent` in and out of HTTP headers and
//!   gRPC metadata, so that one trace covers REST → edge → chat-service.
//! - [`exposition`]: reading a scrape back (tests, checks from outside).
//! - [`metrics`]: a service's Prometheus recorder and its `/metrics`
//!   listener, apart from the public port.
//! - [`admission`]: the bounded slots and queue through which both services
//!   admit calls under overload.
//! - [`origins`]: which web origins may call a service from a browser
//!   (CORS), one reading of the setting for both.
//! - [`throttle`]: at most one log line per interval for events a client
//!   can repeat thousands of times a second (shed calls, refused connections).
//!
//! A crate of its own so that both services log, trace, expose metrics and
//! shed load the same way from one copy of the code; each service keeps its
//! own recorder and its own metric names. (Admission and the log throttle
//! are not observation strictly; they live here because these are the only
//! runtime pieces the two services share, and a crate each would cost more
//! than it separates.)

pub mod admission;
pub mod exposition;
pub mod log_writer;
pub mod logs;
pub mod metrics;
pub mod origins;
pub mod propagation;
pub mod throttle;
pub mod traces;
