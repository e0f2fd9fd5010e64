//! The stack under observation: the process-wide telemetry (set up once,
//! exporting to the in-process receiver, logging JSON into memory) and
//! one chat-service with the edge in front, each with `/metrics` on an
//! ephemeral port.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use allmine_chat_proto::v1::RegisterStreamRequest;
use allmine_chat_proto::v1::chat_admin_service_client::ChatAdminServiceClient;
use allmine_observability::exposition::{Exposition, scrape};
use allmine_observability::logs::LogFormat;
use allmine_observability::metrics::MetricsAddr;
use allmine_observability::traces::{self, Settings};
use allmine_test_support::backends::{Backend, StoreFixture};
use allmine_test_support::{TEST_SECRET, TokenBuilder, random_object_id};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tracing_subscriber::fmt::writer::BoxMakeWriter;

use crate::receiver::{self, ReceivedSpan, Receiver};

/// What the process's telemetry has produced so far.
pub struct Observed {
    receiver: Receiver,
    logs: Arc<Mutex<Vec<u8>>>,
    /// Runs the receiver and the exporter's connection for the life of the
    /// process (each test has a runtime of its own, gone when it ends).
    _runtime: tokio::runtime::Runtime,
}

/// The telemetry, set up by the first test that asks.
pub fn observed() -> &'static Observed {
    static OBSERVED: OnceLock<Observed> = OnceLock::new();
    OBSERVED.get_or_init(|| {
        // A thread of its own: a runtime cannot be started from a test's.
        std::thread::spawn(|| {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            let receiver = Receiver::default();
            let logs = Arc::new(Mutex::new(Vec::new()));
            runtime.block_on(async {
                let addr = receiver::start(receiver.clone()).await;
                let sink = Arc::clone(&logs);
                let writer = BoxMakeWriter::new(move || LogSink(Arc::clone(&sink)));
                traces::init(
                    Settings::from_env("e2e-observability", "info")
                        .filter("info,chat_service=debug,http_edge=debug")
                        .format(LogFormat::Json)
                        .otlp_endpoint(format!("http://{addr}"))
                        .writer(writer),
                );
            });
            Observed {
                receiver,
                logs,
                _runtime: runtime,
            }
        })
        .join()
        .unwrap()
    })
}

impl Observed {
    /// The spans of `trace_id`, once both services' are exported (the
    /// exporter batches: flushed here; bounded wait).
    pub async fn spans_of(&self, trace_id: &str) -> Vec<ReceivedSpan> {
        for _ in 0..100 {
            tokio::task::spawn_blocking(traces::flush).await.unwrap();
            let spans: Vec<_> = self
                .receiver
                .spans
                .lock()
                .unwrap()
                .iter()
                .filter(|span| span.trace_id == trace_id)
                .cloned()
                .collect();
            if spans.iter().any(|span| span.name == "http_request")
                && spans.iter().any(|span| span.name.ends_with("/SendMessage"))
                && spans.iter().any(|span| span.name == "store append")
            {
                return spans;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the spans of {trace_id} were not exported in time");
    }

    pub fn raw_logs(&self) -> String {
        String::from_utf8_lossy(&self.logs.lock().unwrap()).into_owned()
    }

    /// Every line logged so far, each parsed (a line that is not a JSON
    /// object fails the test).
    pub fn log_lines(&self) -> Vec<Value> {
        self.raw_logs()
            .lines()
            .map(|line| {
                let value: Value = serde_json::from_str(line)
                    .unwrap_or_else(|error| panic!("not JSON ({error}): {line}"));
                assert!(value.is_object(), "{line}");
                value
            })
            .collect()
    }
}

struct LogSink(Arc<Mutex<Vec<u8>>>);

impl Write for LogSink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Held by each test for its whole run: the recorders are the process's,
/// so the tests' exact counts hold only one test at a time.
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    SERIAL.lock().await
}

/// chat-service and the edge, both with metrics on ephemeral ports.
pub struct Stack {
    pub client: reqwest::Client,
    edge: SocketAddr,
    chat_grpc: SocketAddr,
    chat_metrics: SocketAddr,
    edge_metrics: SocketAddr,
    _stops: (oneshot::Sender<()>, oneshot::Sender<()>),
    _fixture: StoreFixture,
}

impl Stack {
    pub async fn start() -> Self {
        let fixture = StoreFixture::new(Backend::Embedded);
        let store = fixture.open().await;
        let ephemeral = || MetricsAddr::new("127.0.0.1:0".parse().unwrap());

        let mut config = chat_service::Config::with_secret(TEST_SECRET);
        config.grpc_addr = "127.0.0.1:0".parse().unwrap();
        config.metrics_addr = ephemeral();
        let chat = chat_service::Application::build_with_store(config, store)
            .await
            .expect("chat-service starts");
        let chat_grpc = chat.local_addr();
        let chat_metrics = chat.metrics_addr().expect("chat-service metrics");
        let (chat_stop, chat_stopped) = oneshot::channel::<()>();
        tokio::spawn(chat.run_until_stopped(async {
            let _ = chat_stopped.await;
        }));

        let mut config = http_edge::Config::with_defaults(
            "127.0.0.1:0".parse().unwrap(),
            format!("http://{chat_grpc}").parse().unwrap(),
        );
        config.metrics_addr = ephemeral();
        let edge = http_edge::Application::build(config)
            .await
            .expect("the edge starts");
        let edge_addr = edge.local_addr();
        let edge_metrics = edge.metrics_addr().expect("edge metrics");
        let (edge_stop, edge_stopped) = oneshot::channel::<()>();
        tokio::spawn(edge.run_until_stopped(async {
            let _ = edge_stopped.await;
        }));
        Self {
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap(),
            edge: edge_addr,
            chat_grpc,
            chat_metrics,
            edge_metrics,
            _stops: (chat_stop, edge_stop),
            _fixture: fixture,
        }
    }

    pub fn edge_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.edge)
    }

    /// Registers a new stream, as the stream service would.
    pub async fn register(&self) -> String {
        let stream_id = random_object_id();
        let mut admin = ChatAdminServiceClient::connect(format!("http://{}", self.chat_grpc))
            .await
            .unwrap();
        let mut request = tonic::Request::new(RegisterStreamRequest {
            stream_id: stream_id.clone(),
            owner_id: TokenBuilder::new().user_id(),
        });
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {}", TokenBuilder::service().build())
                .parse()
                .unwrap(),
        );
        admin.register_stream(request).await.unwrap();
        stream_id
    }

    /// `POST`s a message through the edge; returns the status.
    pub async fn send(&self, stream_id: &str, token: &str, content: &str) -> u16 {
        self.client
            .post(self.edge_url(&format!("/api/v1/live-stream/{stream_id}/chat/messages")))
            .bearer_auth(token)
            .json(&json!({ "content": content }))
            .send()
            .await
            .expect("the edge answers")
            .status()
            .as_u16()
    }

    /// chat-service's and the edge's metrics, scraped now.
    pub async fn scrape_both(&self) -> (Exposition, Exposition) {
        (
            scrape(self.chat_metrics)
                .await
                .expect("chat-service's metrics"),
            scrape(self.edge_metrics).await.expect("the edge's metrics"),
        )
    }

    /// Scrapes until `done` holds (bounded: the last scrape is returned
    /// for the caller's assertions either way).
    pub async fn scrape_until(
        &self,
        done: impl Fn(&(Exposition, Exposition)) -> bool,
    ) -> (Exposition, Exposition) {
        let mut scraped = self.scrape_both().await;
        for _ in 0..200 {
            if done(&scraped) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            scraped = self.scrape_both().await;
        }
        scraped
    }
}
