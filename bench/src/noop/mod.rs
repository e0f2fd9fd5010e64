//! The baselines: servers on the same stacks as chat-service and http-edge
//! that do no work, so that what they reach is the ceiling of the transport
//! (and of this machine and load generator), measured in the same run.
//!
//! - [`grpc`]: tonic, `allmine.chat.v1.ChatService/SendMessage` answering a
//!   canned message at once.
//! - [`http`]: axum, a POST route that parses the JSON body and answers 201
//!   with a canned ~340-byte message.
//! - [`live`]: the fan-out both share: while anybody follows the chat
//!   (gRPC `SubscribeMessages`, or the SSE route), each send is broadcast.

pub mod grpc;
pub mod http;
pub mod live;

/// Resolves on SIGTERM or Ctrl-C: the suite stops its servers with SIGTERM.
pub async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut terminate) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
