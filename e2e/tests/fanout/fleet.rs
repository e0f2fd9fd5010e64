//! chat-service (embedded store, `/metrics` on an ephemeral port) and any
//! number of edges with the fan-out on, for one test at a time.

use std::net::SocketAddr;
use std::time::Duration;

use allmine_observability::exposition::scrape;
use allmine_observability::metrics::MetricsAddr;
use allmine_test_support::backends::{Backend, StoreFixture};
use allmine_test_support::edge::{TestEdge, spawn_edge_with};
use allmine_test_support::grpc::{Admin, channel};
use allmine_test_support::sse::SseReader;
use allmine_test_support::{TEST_SECRET, TokenBuilder, random_object_id};
use tokio::sync::{Mutex, MutexGuard, oneshot};

/// The longest wait for something that must happen (a hang bound).
pub const HANG: Duration = Duration::from_secs(20);

/// One test at a time: the gauges are the process's.
static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

pub struct Fleet {
    pub chat: SocketAddr,
    metrics: SocketAddr,
    _stop: oneshot::Sender<()>,
    _fixture: StoreFixture,
    _turn: MutexGuard<'static, ()>,
}

impl Fleet {
    /// chat-service, with `adjust` applied to its configuration.
    pub async fn start(adjust: impl FnOnce(&mut chat_service::Config)) -> Self {
        let turn = ONE_AT_A_TIME.lock().await;
        let fixture = StoreFixture::new(Backend::Embedded);
        let store = fixture.open().await;
        let mut config = chat_service::Config::with_secret(TEST_SECRET);
        config.grpc_addr = "127.0.0.1:0".parse().expect("an address");
        config.metrics_addr = MetricsAddr::new("127.0.0.1:0".parse().expect("an address"));
        config.burst_viewer_limit = 100_000;
        config.burst_privileged_limit = 100_000;
        config.live_settle_ms = Some(0);
        config.live_poll_ms = 50;
        adjust(&mut config);
        let chat = chat_service::Application::build_with_store(config, store)
            .await
            .expect("chat-service starts");
        let (stop, stopped) = oneshot::channel::<()>();
        let fleet = Self {
            chat: chat.local_addr(),
            metrics: chat.metrics_addr().expect("chat-service metrics"),
            _stop: stop,
            _fixture: fixture,
            _turn: turn,
        };
        tokio::spawn(chat.run_until_stopped(async {
            let _ = stopped.await;
        }));
        fleet
    }

    /// An edge with the fan-out on (and `adjust` applied).
    pub async fn edge(&self, adjust: impl FnOnce(&mut http_edge::Config)) -> TestEdge {
        spawn_edge_with(self.chat, |config| {
            config.fanout.upstream_token = Some(
                TokenBuilder::service()
                    .build()
                    .parse()
                    .expect("a JWT-shaped token"),
            );
            config.fanout.feed_linger_ms = 200;
            adjust(config);
        })
        .await
    }

    /// A newly registered stream.
    pub async fn stream(&self) -> String {
        let stream_id = random_object_id();
        Admin::new(channel(self.chat).await, TokenBuilder::service().build())
            .register(&stream_id, &random_object_id())
            .await;
        stream_id
    }

    /// chat-service's `chat_live_subscribers`, scraped from its `/metrics`.
    pub async fn live_subscribers(&self) -> f64 {
        scrape(self.metrics)
            .await
            .expect("chat-service's /metrics answers")
            .sum("chat_live_subscribers", &[])
    }

    /// Waits (bounded) until chat-service counts `expected` subscriptions.
    pub async fn expect_live_subscribers(&self, expected: f64) {
        let deadline = tokio::time::Instant::now() + HANG;
        loop {
            let now = self.live_subscribers().await;
            if now == expected {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "chat_live_subscribers is {now}, expected {expected}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// An SSE client of `stream` on `edge`, with `headers` besides its token.
pub async fn follow(
    edge: &TestEdge,
    stream: &str,
    token: &str,
    headers: &[(&str, &str)],
) -> SseReader {
    let authorization = format!("Bearer {token}");
    let mut all = vec![("authorization", authorization.as_str())];
    all.extend_from_slice(headers);
    let response = edge.events(stream, "", &all).await;
    assert_eq!(response.status().as_u16(), 200);
    SseReader::with_read_timeout(response, HANG)
}

/// Sends `content` through `edge`; 201.
pub async fn send(edge: &TestEdge, stream: &str, token: &str, content: &str) {
    let response = edge.send(stream, token, content).await;
    assert_eq!(response.status().as_u16(), 201, "{content}");
}

/// The next `count` events as (id, content); each must be a message.
pub async fn messages(reader: &mut SseReader, count: usize) -> Vec<(String, String)> {
    let mut seen = Vec::new();
    for _ in 0..count {
        let event = reader.next_event().await.expect("the stream is open");
        assert_eq!(event.event.as_deref(), Some("message"), "{event:?}");
        let content = event.json()["content"]
            .as_str()
            .expect("a message's content")
            .to_owned();
        seen.push((event.id.expect("an id"), content));
    }
    seen
}

/// Only the contents.
pub fn contents(messages: &[(String, String)]) -> Vec<&str> {
    messages
        .iter()
        .map(|(_, content)| content.as_str())
        .collect()
}
