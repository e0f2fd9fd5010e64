//! `/metrics` on its own listener: the numbers move with sends, refusals and
//! subscriptions. Other tests run at the same time in this process (and the
//! recorder is the process's), so counters are checked for growing by at
//! least what this test did; exact gauges are checked end to end
//! (`e2e/tests/observability`), where nothing else runs.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use allmine_chat_proto::v1::chat_admin_service_client::ChatAdminServiceClient;
use allmine_chat_proto::v1::chat_service_client::ChatServiceClient;
use allmine_chat_proto::v1::{RegisterStreamRequest, SendMessageRequest, SubscribeMessagesRequest};
use allmine_observability::exposition::{Exposition, scrape};
use allmine_test_support::{TokenBuilder, random_object_id};
use chat_service::Application;
use chat_service::metrics::MetricsAddr;
use chat_service::storage::SharedStore;
use chat_service::storage::embedded::EmbeddedStore;
use tonic::Code;
use tonic::transport::Channel;

use crate::helpers::{authorized, channel};
use allmine_test_support::service::test_config;

/// A service with metrics on an ephemeral port.
struct Metered {
    client: ChatServiceClient<Channel>,
    admin: ChatAdminServiceClient<Channel>,
    grpc: SocketAddr,
    metrics: SocketAddr,
    _stop: tokio::sync::oneshot::Sender<()>,
    _data_dir: tempfile::TempDir,
}

async fn spawn_metered() -> Metered {
    chat_service::telemetry::init();
    let data_dir = tempfile::tempdir().expect("a temporary directory");
    let store: SharedStore =
        Arc::new(EmbeddedStore::open(data_dir.path()).expect("the store opens"));
    let mut config = test_config();
    config.metrics_addr = MetricsAddr::new("127.0.0.1:0".parse().expect("an address"));
    let application = Application::build_with_store(config, store)
        .await
        .expect("chat-service starts");
    let metrics = application
        .metrics_addr()
        .expect("metrics are served when an address is set");
    let application_addr = application.local_addr();
    let channel = channel(application_addr).await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(application.run_until_stopped(async {
        let _ = stopped.await;
    }));
    Metered {
        client: ChatServiceClient::new(channel.clone()),
        admin: ChatAdminServiceClient::new(channel),
        grpc: application_addr,
        metrics,
        _stop: stop,
        _data_dir: data_dir,
    }
}

impl Metered {
    async fn scrape(&self) -> Exposition {
        scrape(self.metrics)
            .await
            .expect("the metrics endpoint answers")
    }

    async fn register(&mut self) -> String {
        let stream_id = random_object_id();
        let request = authorized(
            RegisterStreamRequest {
                stream_id: stream_id.clone(),
                owner_id: TokenBuilder::new().user_id(),
            },
            &format!("Bearer {}", TokenBuilder::service().build()),
        );
        self.admin
            .register_stream(request)
            .await
            .expect("the stream registers");
        stream_id
    }

    async fn send(&mut self, stream_id: &str, content: &str, token: Option<&str>) -> Code {
        let message = SendMessageRequest {
            stream_id: stream_id.into(),
            content: content.into(),
            idempotency_key: None,
        };
        let request = match token {
            Some(token) => authorized(message, &format!("Bearer {token}")),
            None => tonic::Request::new(message),
        };
        match self.client.send_message(request).await {
            Ok(_) => Code::Ok,
            Err(status) => status.code(),
        }
    }
}

const SEND: [(&str, &str); 2] = [
    ("grpc_service", "allmine.chat.v1.ChatService"),
    ("grpc_method", "SendMessage"),
];

fn grown(before: &Exposition, after: &Exposition, name: &str, labels: &[(&str, &str)]) -> f64 {
    after.sum(name, labels) - before.sum(name, labels)
}

#[tokio::test]
async fn sends_refusals_and_subscriptions_move_the_numbers() {
    let mut service = spawn_metered().await;
    let stream_id = service.register().await;
    let user = TokenBuilder::new().build();
    let before = service.scrape().await;

    // A subscriber, to see deliveries.
    let request = authorized(
        SubscribeMessagesRequest {
            stream_id: stream_id.clone(),
            after: None,
        },
        &format!("Bearer {user}"),
    );
    let mut events = service
        .client
        .subscribe_messages(request)
        .await
        .expect("subscribes")
        .into_inner();
    let during = service.scrape().await;
    assert!(during.sum("chat_live_subscribers", &[]) >= 1.0);
    assert!(during.sum("chat_live_streams", &[]) >= 1.0);

    for content in ["one", "two"] {
        assert_eq!(
            service.send(&stream_id, content, Some(&user)).await,
            Code::Ok
        );
    }
    for _ in 0..2 {
        tokio::time::timeout(Duration::from_secs(10), events.message())
            .await
            .expect("an event within the timeout")
            .expect("the stream goes on")
            .expect("an event");
    }
    // Refusals, one per reason.
    let unregistered = random_object_id();
    assert_eq!(
        service.send(&unregistered, "hi", Some(&user)).await,
        Code::NotFound
    );
    assert_eq!(
        service.send(&stream_id, "   ", Some(&user)).await,
        Code::InvalidArgument
    );
    assert_eq!(
        service.send(&stream_id, "hi", None).await,
        Code::Unauthenticated
    );
    drop(events);

    let after = service.scrape().await;
    let ok: Vec<_> = SEND.into_iter().chain([("grpc_code", "OK")]).collect();
    assert!(grown(&before, &after, "grpc_server_handled_total", &ok) >= 2.0);
    assert!(grown(&before, &after, "grpc_server_handling_seconds_count", &SEND) >= 5.0);
    assert!(grown(&before, &after, "chat_messages_accepted_total", &[]) >= 2.0);
    for reason in ["not_registered", "invalid", "unauthenticated"] {
        assert!(
            grown(
                &before,
                &after,
                "chat_messages_refused_total",
                &[("reason", reason)]
            ) >= 1.0,
            "{reason}"
        );
    }
    let not_found: Vec<_> = SEND
        .into_iter()
        .chain([("grpc_code", "NotFound")])
        .collect();
    assert!(grown(&before, &after, "grpc_server_handled_total", &not_found) >= 1.0);
    assert!(grown(&before, &after, "chat_live_events_delivered_total", &[]) >= 2.0);
    let append = [("store", "embedded"), ("operation", "append")];
    assert!(
        grown(
            &before,
            &after,
            "chat_store_operation_seconds_count",
            &append
        ) >= 2.0
    );
    // A subscription counts when it ends, as CANCELLED here (the client
    // left); give the server a moment to see the reset.
    let subscribe = [
        ("grpc_method", "SubscribeMessages"),
        ("grpc_code", "Canceled"),
    ];
    let mut ended = after;
    for _ in 0..100 {
        if grown(&before, &ended, "grpc_server_handled_total", &subscribe) >= 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        ended = service.scrape().await;
    }
    assert!(grown(&before, &ended, "grpc_server_handled_total", &subscribe) >= 1.0);
}

#[tokio::test]
async fn ids_never_become_labels() {
    let mut service = spawn_metered().await;
    let stream_id = service.register().await;
    let user = TokenBuilder::new();
    assert_eq!(
        service.send(&stream_id, "hello", Some(&user.build())).await,
        Code::Ok
    );
    let text = service
        .scrape()
        .await
        .samples
        .iter()
        .flat_map(|sample| sample.labels.iter().map(|(_, value)| value.clone()))
        .collect::<Vec<_>>()
        .join(" ");
    assert!(!text.is_empty());
    assert!(!text.contains(&stream_id));
    assert!(!text.contains(&user.user_id()));
}

#[tokio::test]
async fn invented_paths_share_one_series() {
    let service = spawn_metered().await;
    let mut raw = tonic::client::Grpc::new(channel(service.grpc).await);
    for path in [
        "/made.Up/One",
        "/made.Up/Two",
        "/allmine.chat.v1.ChatService/Nope",
    ] {
        raw.ready().await.expect("ready");
        raw.unary::<_, (), _>(
            tonic::Request::new(()),
            path.parse().expect("a path"),
            tonic_prost::ProstCodec::<(), ()>::default(),
        )
        .await
        .expect_err("no such method");
    }
    let scraped = service.scrape().await;
    let names: Vec<_> = scraped
        .samples
        .iter()
        .filter(|sample| sample.name == "grpc_server_handled_total")
        .flat_map(|sample| sample.labels.iter().map(|(_, value)| value.as_str()))
        .collect();
    assert!(
        !names
            .iter()
            .any(|value| value.contains("made.Up") || *value == "Nope")
    );
    // Whatever they were answered (UNIMPLEMENTED, or UNAUTHENTICATED for
    // a method invented under ChatService, which checks tokens first).
    let unknown = [("grpc_service", "unknown"), ("grpc_method", "unknown")];
    assert!(scraped.sum("grpc_server_handled_total", &unknown) >= 3.0);
}
