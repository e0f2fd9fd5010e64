//! `/metrics` on its own listener, and the trace context passed on to
//! chat-service. Other tests run at the same time in this process (the
//! recorder is the process's), so counters are checked for growing by at
//! least what this test did; exact gauges are checked end to end
//! (`e2e/tests/observability`).

use std::net::SocketAddr;

use allmine_observability::exposition::{Exposition, scrape};
use allmine_observability::metrics::MetricsAddr;
use http_edge::{Application, Config};
use serde_json::json;
use tokio::sync::oneshot;
use tonic::Status;

use crate::fake_chat::{FakeChatServer, rpc};
use crate::helpers::{STREAM_ID, TOKEN, events_path, message_path};

/// An edge with metrics on an ephemeral port, before a fake chat-service.
struct Metered {
    base: String,
    metrics: SocketAddr,
    chat: FakeChatServer,
    client: reqwest::Client,
    _stop: oneshot::Sender<()>,
}

async fn spawn_metered(adjust: impl FnOnce(&mut Config)) -> Metered {
    // Trace context is passed on only when traces are exported: an
    // exporter to a port nothing answers on (its batches are dropped).
    // Logs stay off unless RUST_LOG asks for them.
    allmine_observability::traces::init(
        allmine_observability::traces::Settings::from_env("http-edge", "off")
            .otlp_endpoint("http://127.0.0.1:9"),
    );
    let chat = FakeChatServer::start().await;
    let mut config = Config::with_defaults(
        "127.0.0.1:0".parse().expect("an address"),
        format!("http://{}", chat.addr).parse().expect("a URL"),
    );
    config.metrics_addr = MetricsAddr::new("127.0.0.1:0".parse().expect("an address"));
    adjust(&mut config);
    let application = Application::build(config).await.expect("the edge builds");
    let base = format!("http://{}", application.local_addr());
    let metrics = application
        .metrics_addr()
        .expect("metrics are served when an address is set");
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(application.run_until_stopped(async {
        let _ = stopped.await;
    }));
    Metered {
        base,
        metrics,
        chat,
        client: reqwest::Client::new(),
        _stop: stop,
    }
}

impl Metered {
    async fn scrape(&self) -> Exposition {
        scrape(self.metrics)
            .await
            .expect("the metrics endpoint answers")
    }

    async fn send(&self, headers: &[(&str, &str)]) -> u16 {
        let mut request = self
            .client
            .post(format!("{}{}", self.base, message_path(STREAM_ID)))
            .bearer_auth(TOKEN)
            .json(&json!({ "content": "hello" }));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request
            .send()
            .await
            .expect("the edge answers")
            .status()
            .as_u16()
    }
}

fn grown(before: &Exposition, after: &Exposition, name: &str, labels: &[(&str, &str)]) -> f64 {
    after.sum(name, labels) - before.sum(name, labels)
}

#[tokio::test]
async fn requests_are_measured_by_route_template_and_status() {
    let edge = spawn_metered(|_| {}).await;
    let before = edge.scrape().await;
    let sent = edge.send(&[]).await;
    assert_eq!(sent, 201);
    let unknown = edge
        .client
        .get(format!("{}/no/such/path/a1b2c3d4", edge.base))
        .send()
        .await
        .expect("the edge answers");
    assert_eq!(unknown.status().as_u16(), 404);
    edge.chat
        .fail_with(Status::not_found("stream not registered"));
    assert_eq!(edge.send(&[]).await, 404);

    let after = edge.scrape().await;
    let duration = "http_server_request_duration_seconds_count";
    let route = "/api/v1/live-stream/{streamId}/chat/messages";
    for status in ["201", "404"] {
        let labels = [
            ("http_request_method", "POST"),
            ("http_route", route),
            ("http_response_status_code", status),
        ];
        assert!(grown(&before, &after, duration, &labels) >= 1.0, "{status}");
    }
    let unmatched = [
        ("http_request_method", "GET"),
        ("http_route", "unmatched"),
        ("http_response_status_code", "404"),
    ];
    assert!(grown(&before, &after, duration, &unmatched) >= 1.0);
    let not_found = [("grpc_code", "NotFound")];
    assert!(grown(&before, &after, "edge_upstream_failures_total", &not_found) >= 1.0);
    // Never a raw path or an id.
    let labels: Vec<_> = after
        .samples
        .iter()
        .flat_map(|sample| sample.labels.iter().map(|(_, value)| value.as_str()))
        .collect();
    assert!(!labels.iter().any(|value| value.contains("a1b2c3d4")));
    assert!(!labels.iter().any(|value| value.contains(STREAM_ID)));
}

#[tokio::test]
async fn event_streams_are_counted_and_the_cap_sheds() {
    let edge = spawn_metered(|config| config.limits.max_event_streams = 1).await;
    let before = edge.scrape().await;
    let open = || {
        edge.client
            .get(format!("{}{}", edge.base, events_path(STREAM_ID, "")))
            .bearer_auth(TOKEN)
            .send()
    };
    let first = open().await.expect("the edge answers");
    assert_eq!(first.status().as_u16(), 200);
    assert!(edge.scrape().await.sum("edge_event_streams_open", &[]) >= 1.0);
    let second = open().await.expect("the edge answers");
    assert_eq!(second.status().as_u16(), 503);
    let after = edge.scrape().await;
    let shed = [("reason", "event_streams")];
    assert!(grown(&before, &after, "edge_requests_shed_total", &shed) >= 1.0);
    drop(first);
}

#[tokio::test]
async fn the_callers_trace_continues_in_the_grpc_call() {
    let edge = spawn_metered(|_| {}).await;
    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    let caller_span = "b7ad6b7169203331";
    let traceparent = format!("00-{trace_id}-{caller_span}-01");
    assert_eq!(edge.send(&[("traceparent", &traceparent)]).await, 201);
    let calls = edge.chat.calls::<rpc::SendMessage>();
    let forwarded = calls
        .last()
        .and_then(|call| call.metadata_str("traceparent"))
        .expect("the call carries a traceparent")
        .to_owned();
    let parts: Vec<_> = forwarded.split('-').collect();
    assert_eq!(parts.len(), 4, "{forwarded}");
    assert_eq!(parts[1], trace_id, "the same trace");
    // The parent is the edge's own span for the request, not the caller's.
    assert_ne!(parts[2], caller_span);
    assert_eq!(parts[3], "01", "still sampled");

    // Without one, the edge starts a trace of its own.
    assert_eq!(edge.send(&[]).await, 201);
    let calls = edge.chat.calls::<rpc::SendMessage>();
    let started = calls
        .last()
        .and_then(|call| call.metadata_str("traceparent"))
        .expect("the call carries a traceparent");
    assert!(!started.contains(trace_id));
}
