//! Logging and tracing through `tracing` (docs/operations.md): `RUST_LOG`
//! filters (default `info`), `LOG_FORMAT=json` writes one JSON object per
//! line, and spans are OpenTelemetry spans, exported over OTLP when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set. The set-up itself is shared with
//! http-edge (`allmine_observability`).

use allmine_observability::traces::{self, Settings};

/// The service name in exported traces.
pub const SERVICE_NAME: &str = "chat-service";

/// Installs the global subscriber once. Safe to call again (later calls do
/// nothing), which tests rely on. Call it inside the Tokio runtime.
pub fn init() {
    traces::init(Settings::from_env(SERVICE_NAME, "info"));
}

/// Sends the spans not yet exported (before the process exits).
pub fn flush() {
    traces::flush();
}
