//! Log lines: human-readable text (the default) or, with `LOG_FORMAT=json`,
//! one JSON object per line:
//!
//! ```json
//! {"timestamp":"2026-11-29T06:00:00.123456Z","level":"INFO","target":"http_edge::request_id",
//!  "message":"request finished","request_id":"3f6c…","trace_id":"4bf9…","span_id":"00f0…",
//!  "fields":{"status":201,"latency_ms":3},"span":{"name":"http_request","method":"POST",…}}
//! ```
//!
//! `request_id` is the innermost request span's, `trace_id` and `span_id`
//! the current span's OpenTelemetry ids (absent outside any span);
//! `fields` are the event's own fields and `span` the fields of the spans
//! it is in (inner ones win). What a line may contain is what the code
//! records: no token is ever recorded in a field or a span, so none can
//! appear.

use std::fmt;

use chrono::{SecondsFormat, Utc};
use opentelemetry::trace::TraceContextExt;
use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{FormatEvent, JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// How log lines are written (`LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// One human-readable line per event (the default).
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    /// `LOG_FORMAT`: `json` (any case) for JSON, anything else for text.
    pub fn from_env() -> Self {
        match std::env::var("LOG_FORMAT") {
            Ok(value) if value.trim().eq_ignore_ascii_case("json") => Self::Json,
            _ => Self::Text,
        }
    }
}

/// The JSON line format. Span fields are kept as JSON by [`JsonFields`],
/// which the layer must use as its field formatter.
#[derive(Debug, Default, Clone, Copy)]
pub struct JsonLines;

impl<S> FormatEvent<S, JsonFields> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        context: &FmtContext<'_, S, JsonFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let metadata = event.metadata();
        let mut fields = Map::new();
        event.record(&mut JsonVisitor(&mut fields));
        let message = fields.remove("message").unwrap_or(Value::Null);

        let mut line = Map::new();
        line.insert(
            "timestamp".into(),
            Utc::now()
                .to_rfc3339_opts(SecondsFormat::Micros, true)
                .into(),
        );
        line.insert("level".into(), metadata.level().as_str().into());
        line.insert("target".into(), metadata.target().into());
        line.insert("message".into(), message);

        let mut span_fields = Map::new();
        if let Some(scope) = context.event_scope() {
            let mut innermost = None;
            for span in scope.from_root() {
                if let Some(formatted) = span.extensions().get::<FormattedFields<JsonFields>>()
                    && let Ok(Value::Object(recorded)) =
                        serde_json::from_str::<Value>(formatted.as_str())
                {
                    span_fields.extend(recorded);
                }
                innermost = Some((span.id(), span.name()));
            }
            if let Some((id, name)) = innermost {
                span_fields.insert("name".into(), name.into());
                if let Some(request_id) = span_fields.remove("request_id") {
                    line.insert("request_id".into(), request_id);
                }
                if let Some((trace_id, span_id)) = otel_ids(&id) {
                    line.insert("trace_id".into(), trace_id.into());
                    line.insert("span_id".into(), span_id.into());
                }
            }
        }
        if !fields.is_empty() {
            line.insert("fields".into(), Value::Object(fields));
        }
        if !span_fields.is_empty() {
            line.insert("span".into(), Value::Object(span_fields));
        }
        let text = serde_json::to_string(&line).map_err(|_| fmt::Error)?;
        writeln!(writer, "{text}")
    }
}

/// The OpenTelemetry trace and span ids of span `id` (hexadecimal), when
/// the OpenTelemetry layer knows it.
fn otel_ids(id: &tracing::span::Id) -> Option<(String, String)> {
    tracing::dispatcher::get_default(|dispatch| {
        let context = tracing_opentelemetry::get_otel_context(id, dispatch)?;
        let span = context.span();
        let span_context = span.span_context();
        span_context.is_valid().then(|| {
            (
                span_context.trace_id().to_string(),
                span_context.span_id().to_string(),
            )
        })
    })
}

/// An event's fields as JSON values.
struct JsonVisitor<'a>(&'a mut Map<String, Value>);

impl Visit for JsonVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().into(), format!("{value:?}").into());
    }
}
