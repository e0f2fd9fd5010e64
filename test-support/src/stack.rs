//! The whole stack for one test: a fresh store of one backend, chat-service
//! on it, and the edge in front (its SSE fan-out on), each on an ephemeral
//! port. Tests speak REST
//! to [`TestApp::edge`] and check the outcome in [`TestApp::service`] (its
//! store, its admin API).

use chat_service::Config;

use crate::TokenBuilder;
use crate::backends::Backend;
use crate::edge::{TestEdge, spawn_edge_with};
use crate::grpc::Admin;
use crate::service::{TestService, spawn_service_for_with};

/// chat-service and the edge in front of it.
pub struct TestApp {
    pub service: TestService,
    pub edge: TestEdge,
}

/// The stack on a fresh store of `backend`.
pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// As [`spawn_app`], with chat-service's configuration adjusted by `adjust`
/// before it starts (a small burst limit, say).
pub async fn spawn_app_with(backend: Backend, adjust: impl FnOnce(&mut Config)) -> TestApp {
    let service = spawn_service_for_with(backend, adjust).await;
    // As deployed: the edge shares one subscription per stream between its
    // SSE clients (http-edge's `fanout`), with a service token of its own.
    let edge = spawn_edge_with(service.addr, |config| {
        config.fanout.upstream_token = Some(
            TokenBuilder::service()
                .build()
                .parse()
                .expect("a JWT-shaped token"),
        );
    })
    .await;
    TestApp { service, edge }
}

impl TestApp {
    /// The admin API, as another Allmine service holds it (the edge does not
    /// expose it).
    pub fn admin(&self) -> Admin {
        self.service.admin()
    }

    /// Registers a new stream with a new owner; returns its id and the owner.
    pub async fn open_stream(&self) -> (String, TokenBuilder) {
        self.service.open_stream_with_owner().await
    }

    /// What the store holds for `stream_id`, newest first.
    pub async fn stored(&self, stream_id: &str) -> Vec<chat_service::domain::ChatMessage> {
        self.service.stored(stream_id).await
    }

    /// Stops chat-service (the edge stops when dropped) and removes what the
    /// store fixture created.
    pub async fn finish(self) {
        self.service.finish().await;
    }
}
