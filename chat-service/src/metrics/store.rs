//! [`TimedStore`]: any store, with the duration of each of its operations in
//! `chat_store_operation_seconds{store,operation}`. A wrapper rather than
//! timing inside each backend, so that both backends are measured the same
//! way and neither knows about metrics. When traces are exported, each call
//! is also a span (`store append`, …), the last hop of a request's trace.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use metrics::Histogram;
use tracing::Instrument;

use super::{STORE_OPERATION_SECONDS, with_recorder};
use crate::domain::{
    Ban, ChatMessage, IdempotencyKey, MessageId, ModerationEvent, Position, StreamChat, StreamId,
    UserId, UserProfile,
};
use crate::storage::{
    ChatStateStore, IdempotencyStore, InstanceWatermark, KeyedAppend, MessageStore, PageStart,
    SharedStore, StorageError,
};

/// The operations timed: one per store method.
#[derive(Debug, Clone, Copy)]
enum Operation {
    Append,
    Page,
    Newest,
    Find,
    Delete,
    CheckHealth,
    PutStream,
    Stream,
    PutBan,
    RemoveBan,
    ActiveBan,
    LastSent,
    RecordSent,
    PutProfile,
    Profile,
    AppendEvent,
    EventsAfter,
    KeyedMessage,
    AppendKeyed,
}

impl Operation {
    const ALL: [Self; 19] = [
        Self::Append,
        Self::Page,
        Self::Newest,
        Self::Find,
        Self::Delete,
        Self::CheckHealth,
        Self::PutStream,
        Self::Stream,
        Self::PutBan,
        Self::RemoveBan,
        Self::ActiveBan,
        Self::LastSent,
        Self::RecordSent,
        Self::PutProfile,
        Self::Profile,
        Self::AppendEvent,
        Self::EventsAfter,
        Self::KeyedMessage,
        Self::AppendKeyed,
    ];

    /// The `operation` label: the method's name.
    fn label(self) -> &'static str {
        match self {
            Self::Append => "append",
            Self::Page => "page",
            Self::Newest => "newest",
            Self::Find => "find",
            Self::Delete => "delete",
            Self::CheckHealth => "check_health",
            Self::PutStream => "put_stream",
            Self::Stream => "stream",
            Self::PutBan => "put_ban",
            Self::RemoveBan => "remove_ban",
            Self::ActiveBan => "active_ban",
            Self::LastSent => "last_sent",
            Self::RecordSent => "record_sent",
            Self::PutProfile => "put_profile",
            Self::Profile => "profile",
            Self::AppendEvent => "append_event",
            Self::EventsAfter => "events_after",
            Self::KeyedMessage => "keyed_message",
            Self::AppendKeyed => "append_keyed",
        }
    }
}

/// Any store, timed; `store` is the label (`embedded`, `scylla`).
pub struct TimedStore {
    inner: SharedStore,
    store: &'static str,
    /// One histogram per operation (indexed by [`Operation`]), registered
    /// once: store calls are on every send's path.
    histograms: Vec<Histogram>,
}

impl TimedStore {
    pub fn new(inner: SharedStore, store: &'static str) -> Self {
        let histograms = with_recorder(|| {
            Operation::ALL
                .iter()
                .map(|operation| {
                    metrics::histogram!(STORE_OPERATION_SECONDS, "store" => store, "operation" => operation.label())
                })
                .collect()
        });
        Self {
            inner,
            store,
            histograms,
        }
    }

    fn record(&self, operation: Operation, started: Instant) {
        if let Some(histogram) = self.histograms.get(operation as usize) {
            histogram.record(started.elapsed().as_secs_f64());
        }
    }
}

/// Awaits `$call`, timed as `$operation`, in a span of its own when traces
/// are exported (so that a trace reaches the store; without an exporter the
/// span would cost and show nothing).
macro_rules! timed {
    ($self:ident, $operation:ident, $call:expr) => {{
        let started = Instant::now();
        let result = $call
            .instrument(store_span($self.store, Operation::$operation))
            .await;
        $self.record(Operation::$operation, started);
        result
    }};
}

fn store_span(store: &'static str, operation: Operation) -> tracing::Span {
    if allmine_observability::traces::exporting() {
        tracing::info_span!(
            "store_operation",
            otel.name = %format_args!("store {}", operation.label()),
            store,
        )
    } else {
        tracing::Span::none()
    }
}

#[async_trait]
impl MessageStore for TimedStore {
    async fn append(&self, message: &ChatMessage) -> Result<(), StorageError> {
        timed!(self, Append, self.inner.append(message))
    }

    async fn page(
        &self,
        stream: &StreamId,
        start: PageStart,
        limit: usize,
    ) -> Result<Vec<ChatMessage>, StorageError> {
        timed!(self, Page, self.inner.page(stream, start, limit))
    }

    async fn newest(
        &self,
        stream: &StreamId,
        limit: usize,
    ) -> Result<Vec<ChatMessage>, StorageError> {
        timed!(self, Newest, self.inner.newest(stream, limit))
    }

    async fn find(
        &self,
        stream: &StreamId,
        id: &MessageId,
    ) -> Result<Option<ChatMessage>, StorageError> {
        timed!(self, Find, self.inner.find(stream, id))
    }

    async fn delete(&self, message: &ChatMessage) -> Result<(), StorageError> {
        timed!(self, Delete, self.inner.delete(message))
    }

    async fn check_health(&self) -> Result<(), StorageError> {
        timed!(self, CheckHealth, self.inner.check_health())
    }
}

#[async_trait]
impl ChatStateStore for TimedStore {
    async fn put_stream(&self, stream: &StreamChat) -> Result<(), StorageError> {
        timed!(self, PutStream, self.inner.put_stream(stream))
    }

    async fn stream(&self, stream: &StreamId) -> Result<Option<StreamChat>, StorageError> {
        timed!(self, Stream, self.inner.stream(stream))
    }

    async fn put_ban(&self, ban: &Ban) -> Result<(), StorageError> {
        timed!(self, PutBan, self.inner.put_ban(ban))
    }

    async fn remove_ban(&self, stream: &StreamId, user: &UserId) -> Result<(), StorageError> {
        timed!(self, RemoveBan, self.inner.remove_ban(stream, user))
    }

    async fn active_ban(
        &self,
        stream: &StreamId,
        user: &UserId,
        now: DateTime<Utc>,
    ) -> Result<Option<Ban>, StorageError> {
        timed!(self, ActiveBan, self.inner.active_ban(stream, user, now))
    }

    async fn last_sent(
        &self,
        stream: &StreamId,
        user: &UserId,
    ) -> Result<Option<DateTime<Utc>>, StorageError> {
        timed!(self, LastSent, self.inner.last_sent(stream, user))
    }

    async fn record_sent(
        &self,
        stream: &StreamId,
        user: &UserId,
        at: DateTime<Utc>,
        keep_for: Duration,
    ) -> Result<(), StorageError> {
        timed!(
            self,
            RecordSent,
            self.inner.record_sent(stream, user, at, keep_for)
        )
    }

    async fn put_profile(&self, profile: &UserProfile) -> Result<(), StorageError> {
        timed!(self, PutProfile, self.inner.put_profile(profile))
    }

    async fn profile(&self, user: &UserId) -> Result<Option<UserProfile>, StorageError> {
        timed!(self, Profile, self.inner.profile(user))
    }

    async fn append_event(&self, event: &ModerationEvent) -> Result<(), StorageError> {
        timed!(self, AppendEvent, self.inner.append_event(event))
    }

    async fn events_after(
        &self,
        stream: &StreamId,
        after: Position,
        limit: usize,
    ) -> Result<Vec<ModerationEvent>, StorageError> {
        timed!(
            self,
            EventsAfter,
            self.inner.events_after(stream, after, limit)
        )
    }

    // The live watermark exchange runs every 50 ms per instance: forwarded
    // untimed, so that it does not drown the operations clients cause.
    async fn publish_watermark(&self, watermark: &InstanceWatermark) -> Result<bool, StorageError> {
        self.inner.publish_watermark(watermark).await
    }

    async fn watermarks(&self) -> Result<Vec<InstanceWatermark>, StorageError> {
        self.inner.watermarks().await
    }
}

#[async_trait]
impl IdempotencyStore for TimedStore {
    async fn keyed_message(
        &self,
        stream: &StreamId,
        user: &UserId,
        key: &IdempotencyKey,
        now: DateTime<Utc>,
    ) -> Result<Option<ChatMessage>, StorageError> {
        timed!(
            self,
            KeyedMessage,
            self.inner.keyed_message(stream, user, key, now)
        )
    }

    async fn append_keyed(
        &self,
        message: &ChatMessage,
        key: &IdempotencyKey,
        window: Duration,
    ) -> Result<KeyedAppend, StorageError> {
        timed!(
            self,
            AppendKeyed,
            self.inner.append_keyed(message, key, window)
        )
    }
}
