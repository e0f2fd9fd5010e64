//! chat-service's Prometheus metrics (every name and its meaning:
//! docs/operations.md), served on a listener of their own
//! (`CHAT_METRICS_ADDR`), never on the gRPC port.
//!
//! - [`refusal`]: `chat_messages_refused_total{reason}`, counted where a
//!   `ChatError` becomes a `Status`.
//! - [`store`]: [`TimedStore`], a store that times every operation of the
//!   store it wraps.
//! - [`live`]: subscriptions, followed streams, deliveries and gaps.
//!
//! The gRPC RED metrics are a tower layer beside the other transport
//! layers (`transport::metrics`).
//!
//! The recorder and the listener are `allmine_observability::metrics`'s;
//! every metric registers through [`with_recorder`].

pub mod live;
pub mod refusal;
pub mod store;

use std::sync::LazyLock;

use allmine_observability::metrics::ServiceMetrics;

pub use allmine_observability::metrics::{MetricsAddr, MetricsEndpoint};
pub use refusal::record_refusal;
pub use store::TimedStore;

pub const GRPC_HANDLED: &str = "grpc_server_handled_total";
pub const GRPC_HANDLING_SECONDS: &str = "grpc_server_handling_seconds";
pub const MESSAGES_ACCEPTED: &str = "chat_messages_accepted_total";
pub const MESSAGES_REFUSED: &str = "chat_messages_refused_total";
pub const STORE_OPERATION_SECONDS: &str = "chat_store_operation_seconds";
pub const STORE_UP: &str = "chat_store_up";
pub const LIVE_SUBSCRIBERS: &str = "chat_live_subscribers";
pub const LIVE_STREAMS: &str = "chat_live_streams";
pub const LIVE_EVENTS_DELIVERED: &str = "chat_live_events_delivered_total";
pub const LIVE_GAPS: &str = "chat_live_gaps_total";

/// chat-service's recorder.
pub static METRICS: LazyLock<ServiceMetrics> = LazyLock::new(|| ServiceMetrics::new(describe));

/// Runs `register` with chat-service's recorder as the current one.
pub fn with_recorder<T>(register: impl FnOnce() -> T) -> T {
    METRICS.with(register)
}

/// Whether the store answers: `chat_store_up` 1 or 0.
pub fn store_up(up: bool) {
    with_recorder(|| metrics::gauge!(STORE_UP)).set(if up { 1.0 } else { 0.0 });
}

/// `# HELP` lines; the meanings in docs/operations.md say the same.
fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        GRPC_HANDLED,
        "gRPC calls completed, by service, method and status code (streams count when they end)"
    );
    describe_histogram!(
        GRPC_HANDLING_SECONDS,
        Unit::Seconds,
        "Time from a call's arrival to its status (to the end of the stream for streaming calls)"
    );
    describe_counter!(
        MESSAGES_ACCEPTED,
        "Messages stored by SendMessage (idempotent replays excluded)"
    );
    describe_counter!(MESSAGES_REFUSED, "SendMessage calls refused, by reason");
    describe_histogram!(
        STORE_OPERATION_SECONDS,
        Unit::Seconds,
        "Duration of store operations, by store and operation"
    );
    describe_gauge!(
        STORE_UP,
        "1 while the store answers health checks, 0 while it does not"
    );
    describe_gauge!(LIVE_SUBSCRIBERS, "Open live subscriptions");
    describe_gauge!(LIVE_STREAMS, "Streams followed by a live feed");
    describe_counter!(
        LIVE_EVENTS_DELIVERED,
        "Events handed to live subscribers (replayed and live)"
    );
    describe_counter!(
        LIVE_GAPS,
        "Gap events sent: a subscriber fell behind or its replay was too long"
    );
}
