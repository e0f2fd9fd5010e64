//! Logging and tracing through `tracing` (docs/operations.md): `RUST_LOG`
//! filters, `LOG_FORMAT=json` writes one JSON object per line, and spans are
//! OpenTelemetry spans, exported over OTLP when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set. The edge continues a caller's
//! `traceparent` (`request_id`) and passes the trace on to chat-service
//! (`grpc`). The set-up itself is shared with chat-service
//! (`allmine_observability`).

use allmine_observability::traces::{self, Settings};

/// The service name in exported traces.
pub const SERVICE_NAME: &str = "http-edge";

/// Installs the global subscriber. `default_filter` applies when `RUST_LOG`
/// is unset or unparsable. A second call is a no-op rather than an error,
/// so that every test may call it. Call it inside the Tokio runtime.
pub fn init(default_filter: &str) {
    traces::init(Settings::from_env(SERVICE_NAME, default_filter));
}

/// Sends the spans not yet exported (before the process exits).
pub fn flush() {
    traces::flush();
}
