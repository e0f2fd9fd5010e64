//! One client cannot hurt another: chat-service's transport and admission
//! limits, each attacked as a hostile client would, on a real server.
//!
//! - [`transport`]: reset floods, oversized headers, the connection cap,
//!   silent connections;
//! - [`shedding`]: the in-flight limit and its UNAVAILABLE answers;
//! - [`subscriptions`]: the subscription caps, and subscribers that do not
//!   read.

mod shedding;
mod subscriptions;
mod transport;

use std::time::Duration;

use allmine_chat_proto::CHAT_SERVICE_NAME;
use allmine_chat_proto::v1 as pb;
use allmine_chat_proto::v1::chat_service_client::ChatServiceClient;
use tonic::transport::Channel;
use tonic::{Status, Streaming};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::helpers::{TestService, authorized, spawn_service_with};

/// How long a test waits for something that must happen (a hang detector,
/// not a speed assertion).
const WAIT: Duration = Duration::from_secs(15);

/// The HTTP/2 path of a ChatService method.
fn path(method: &str) -> String {
    format!("/{CHAT_SERVICE_NAME}/{method}")
}

/// A service with no burst limit and immediate live delivery, adjusted.
async fn spawn(adjust: impl FnOnce(&mut chat_service::Config)) -> TestService {
    spawn_service_with(|config| {
        relaxed(config);
        adjust(config);
    })
    .await
}

/// Settings that keep the chat rules out of the way of these tests.
fn relaxed(config: &mut chat_service::Config) {
    config.burst_viewer_limit = 100_000;
    config.live_settle_ms = Some(0);
    config.live_poll_ms = 50;
}

/// `future`'s output, or a failure naming `what` after [`WAIT`].
async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing within {WAIT:?}"))
}

/// Subscribes to `stream` as the holder of `token`.
async fn subscribe(
    client: &mut ChatServiceClient<Channel>,
    stream: &str,
    token: &str,
) -> Result<Streaming<pb::ChatEvent>, Status> {
    let request = authorized(
        pb::SubscribeMessagesRequest {
            stream_id: stream.into(),
            after: None,
        },
        &format!("Bearer {token}"),
    );
    client
        .subscribe_messages(request)
        .await
        .map(tonic::Response::into_inner)
}

/// The overall health status, as a load balancer asks it.
async fn health(channel: Channel) -> Result<ServingStatus, Status> {
    HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map(|response| response.into_inner().status())
}

/// Waits (bounded) until the service reports SERVING: its store check
/// runs once at start.
async fn until_serving(channel: Channel) {
    within("SERVING", async {
        while health(channel.clone()).await.ok() != Some(ServingStatus::Serving) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}
