//! The suite's harness: test-support's edge ([`allmine_test_support::edge`])
//! in front of this suite's scripted fake chat-service, plus the constants
//! every test shares. The envelope checks and REST paths are test-support's,
//! re-exported under the names the tests import.

use std::{net::SocketAddr, time::Duration};

use http_edge::Config;

pub use allmine_test_support::edge::{TestEdge, spawn_edge, spawn_edge_with};
pub use allmine_test_support::rest::{
    ErrorReply, assert_rfc3339_millis_utc, ban_path, bans_path, events_path, expect_error,
    message_item_path, message_path, moderator_path,
};
pub use allmine_test_support::unused_addr as reserve_unused_port;

use crate::fake_chat::FakeChatServer;

/// A well-formed stream id (chat-service would accept it).
pub const STREAM_ID: &str = "64d15f9e2e6c8f4d5a123000";
/// The edge never verifies tokens, so any opaque string will do.
pub const TOKEN: &str = "header.payload.signature";
/// [`TOKEN`] as a header, for raw requests.
pub const AUTHORIZED: (&str, &str) = ("authorization", "Bearer header.payload.signature");
/// The JSON content type, for raw requests.
pub const JSON: (&str, &str) = ("content-type", "application/json");

/// The edge in front of a fresh fake chat-service.
pub struct TestApp {
    pub edge: TestEdge,
    pub chat: FakeChatServer,
}

impl TestApp {
    /// Asserts that no call at all reached the fake chat-service.
    pub fn assert_nothing_forwarded(&self) {
        assert_eq!(self.chat.call_count(), 0, "chat-service was called");
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// The edge in front of a fresh fake chat-service, configured by `adjust`.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
    let chat = FakeChatServer::start().await;
    let edge = spawn_edge_with(chat.addr, adjust).await;
    TestApp { edge, chat }
}

/// An edge pointed at `chat_service`, with this gRPC deadline.
pub async fn spawn_edge_with_timeout(chat_service: SocketAddr, grpc_timeout: Duration) -> TestEdge {
    spawn_edge_with(chat_service, |config| {
        config.grpc_timeout_ms = u64::try_from(grpc_timeout.as_millis()).expect("a small timeout");
    })
    .await
}
