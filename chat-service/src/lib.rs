//! chat-service: the gRPC service of Allmine live chat.
//!
//! - [`config`]: clap configuration with `CHAT_*` environment fallbacks.
//! - [`startup`]: [`startup::Application`], which binds and serves; shared by
//!   `main` and the tests.
//! - [`transport`]: the accept loop and HTTP/2 settings, connection cap,
//!   deadlines and load shedding (why not tonic's `Server`: see there).
//! - [`auth`]: JWT verification into the caller's [`auth::Identity`].
//! - [`domain`]: ids, message content and messages, parsed once at the
//!   boundary.
//! - [`grpc`]: the `allmine.chat.v1.ChatService` handlers, one file per RPC;
//!   the interceptor, domain ↔ protobuf conversions and the one mapping of
//!   [`error::ChatError`] to `tonic::Status`.
//! - [`live`]: live delivery: per-stream feeds over the store, the
//!   watermark, subscriptions with replay and explicit gaps.
//! - [`rules`]: what a send must pass (open chat, bans, slow mode, burst
//!   limit) and the per-user burst limiter.
//! - [`storage`]: the [`storage::MessageStore`] trait and its backends.
//! - [`lookup`]: store reads a request needs, absent records worded as
//!   refusals once.
//! - [`error`]: [`error::ChatError`], every refusal with its
//!   [`error::RefusalReason`].
//! - [`secret`]: a wrapper that keeps secrets out of logs.
//! - [`telemetry`]: tracing set-up: text or JSON logs, OpenTelemetry spans.
//! - [`metrics`]: the Prometheus metrics and their `/metrics` listener.

pub mod auth;
pub mod config;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod live;
pub mod lookup;
pub mod metrics;
pub mod rules;
pub mod secret;
pub mod startup;
pub mod storage;
pub mod telemetry;
pub mod transport;

pub use config::Config;
pub use startup::{Application, StartupError};
