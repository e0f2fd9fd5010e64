//! A service's tracing subscriber: log lines (text or JSON, see
//! [`crate::logs`]) filtered by `RUST_LOG`, and OpenTelemetry spans (every
//! span at INFO or above).
//!
//! OpenTelemetry is on only when `OTEL_EXPORTER_OTLP_ENDPOINT` is set: spans
//! are then batched over OTLP/gRPC, log lines carry trace and span ids, and
//! the edge passes the trace on to chat-service. Without it there is no
//! OpenTelemetry layer at all, so no cost: building an OpenTelemetry span
//! for every tracing span cost ~20% of the REST send throughput in the
//! benchmark even with nothing exported (docs/operations.md).

use std::sync::OnceLock;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use tracing_subscriber::fmt::format::JsonFields;

use crate::logs::{JsonLines, LogFormat};

/// The standard variable that turns the exporter on (`http://host:4317`).
pub const OTLP_ENDPOINT_VARIABLE: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

/// How to set tracing up; [`Settings::from_env`] reads the standard
/// variables.
pub struct Settings {
    service_name: &'static str,
    default_filter: String,
    /// Used instead of `RUST_LOG` when set.
    filter: Option<String>,
    format: LogFormat,
    otlp_endpoint: Option<String>,
    ansi: bool,
    writer: BoxMakeWriter,
}

impl Settings {
    /// `RUST_LOG` (else `default_filter`), `LOG_FORMAT`,
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`; lines to standard output, in colour
    /// only on a terminal, written in batches off the calling thread
    /// ([`crate::log_writer`]).
    pub fn from_env(service_name: &'static str, default_filter: &str) -> Self {
        use std::io::IsTerminal;
        Self {
            service_name,
            default_filter: default_filter.to_owned(),
            filter: None,
            format: LogFormat::from_env(),
            otlp_endpoint: std::env::var(OTLP_ENDPOINT_VARIABLE)
                .ok()
                .filter(|endpoint| !endpoint.trim().is_empty()),
            ansi: std::io::stdout().is_terminal(),
            writer: BoxMakeWriter::new(crate::log_writer::BufferedStdout),
        }
    }

    pub fn format(mut self, format: LogFormat) -> Self {
        self.format = format;
        self
    }

    /// Filters log lines with `directives`, whatever `RUST_LOG` says.
    pub fn filter(mut self, directives: &str) -> Self {
        self.filter = Some(directives.to_owned());
        self
    }

    /// Exports spans to this OTLP/gRPC endpoint.
    pub fn otlp_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.otlp_endpoint = Some(endpoint.into());
        self
    }

    /// Writes log lines through `writer` instead of standard output.
    pub fn writer(mut self, writer: BoxMakeWriter) -> Self {
        self.writer = writer;
        self.ansi = false;
        self
    }
}

static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();
static INSTALLED: OnceLock<()> = OnceLock::new();

/// Installs the global subscriber. A second call does nothing (the first
/// wins), which tests that start several services rely on. Must run inside
/// a Tokio runtime when an OTLP endpoint is set (the exporter's channel
/// lives on it).
pub fn init(settings: Settings) {
    if INSTALLED.set(()).is_err() {
        return;
    }
    let filter = match &settings.filter {
        Some(directives) => EnvFilter::new(directives),
        None => EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| EnvFilter::new(&settings.default_filter)),
    };
    let spans = settings
        .otlp_endpoint
        .as_deref()
        .and_then(|endpoint| exporting_tracer(settings.service_name, endpoint))
        .map(|tracer| {
            // Spans are traced at INFO whatever `RUST_LOG` says: it chooses
            // what is logged, not what a trace shows.
            tracing_opentelemetry::layer()
                .with_tracer(tracer)
                .with_tracked_inactivity(false)
                .with_filter(LevelFilter::INFO)
        });
    let registry = tracing_subscriber::registry().with(spans);
    // Fails only when another subscriber is installed already: keep it.
    let _already_installed = match settings.format {
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_target(false)
                    .with_ansi(settings.ansi)
                    .with_writer(settings.writer)
                    .with_filter(filter),
            )
            .try_init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .fmt_fields(JsonFields::new())
                    .event_format(JsonLines)
                    .with_writer(settings.writer)
                    .with_filter(filter),
            )
            .try_init(),
    };
    if let Some(endpoint) = &settings.otlp_endpoint {
        tracing::info!(%endpoint, "exporting traces over OTLP");
    }
}

/// A tracer whose spans are batched to `endpoint`, and the W3C propagator;
/// `None` (logged) when the exporter cannot be built.
fn exporting_tracer(service_name: &'static str, endpoint: &str) -> Option<SdkTracer> {
    let exporter = match SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()
    {
        Ok(exporter) => exporter,
        Err(error) => {
            eprintln!("cannot export traces to {endpoint}: {error}");
            return None;
        }
    };
    let resource = Resource::builder_empty()
        .with_service_name(service_name)
        .build();
    let provider = SdkTracerProvider::builder()
        .with_resource(resource)
        .with_batch_exporter(exporter)
        .build();
    let tracer = provider.tracer(service_name);
    let _first = PROVIDER.set(provider);
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    Some(tracer)
}

/// Whether spans are exported (work done only for traces, such as extra
/// spans, can be skipped otherwise).
pub fn exporting() -> bool {
    PROVIDER.get().is_some()
}

/// Sends the spans still batched and writes the log lines still buffered
/// (at shutdown; tests, before they look).
pub fn flush() {
    crate::log_writer::flush();
    if let Some(provider) = PROVIDER.get()
        && let Err(error) = provider.force_flush()
    {
        tracing::warn!(%error, "cannot flush the trace exporter");
    }
}
