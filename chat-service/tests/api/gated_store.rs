//! A store whose message appends wait at a gate the test opens: a way to
//! hold a call inside chat-service for as long as a test needs, without
//! relying on timing.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::sync::Arc;

use async_trait::async_trait;
use chat_service::domain::{
    Ban, ChatMessage, IdempotencyKey, ModerationEvent, Position, StreamChat, StreamId, UserId,
    UserProfile,
};
use chat_service::storage::{
    ChatStateStore, IdempotencyStore, InstanceWatermark, KeyedAppend, MessageStore, PageStart,
    SharedStore, StorageError,
};
use chrono::{DateTime, Utc};
use tokio::sync::watch;

/// Open or closed; appends wait while it is closed.
#[derive(Clone)]
pub struct Gate {
    open: Arc<watch::Sender<bool>>,
    /// Appends waiting at the gate now.
    waiting: Arc<watch::Sender<usize>>,
}

impl Gate {
    pub fn new() -> Self {
        Self {
            open: Arc::new(watch::Sender::new(true)),
            waiting: Arc::new(watch::Sender::new(0)),
        }
    }

    pub fn close(&self) {
        self.open.send_replace(false);
    }

    pub fn open(&self) {
        self.open.send_replace(true);
    }

    /// Resolves once `count` appends wait at the gate.
    pub async fn until_waiting(&self, count: usize) {
        let mut waiting = self.waiting.subscribe();
        waiting
            .wait_for(|waiting| *waiting >= count)
            .await
            .expect("the gate lives");
    }

    async fn pass(&self) {
        let mut open = self.open.subscribe();
        if *open.borrow_and_update() {
            return;
        }
        self.waiting.send_modify(|waiting| *waiting += 1);
        open.wait_for(|open| *open).await.expect("the gate lives");
        self.waiting.send_modify(|waiting| *waiting -= 1);
    }
}

/// `inner`, with message appends held at `gate`.
pub fn gated(inner: SharedStore, gate: Gate) -> SharedStore {
    Arc::new(GatedStore {
        inner,
        gate,
        publishes: Gate::new(),
    })
}

/// `inner`, with message appends held at `appends` and the publishes of the
/// instance's live watermark at `publishes` (an instance cut off from the
/// store's watermark table while its appends still land).
pub fn gated_with_publishes(inner: SharedStore, appends: Gate, publishes: Gate) -> SharedStore {
    Arc::new(GatedStore {
        inner,
        gate: appends,
        publishes,
    })
}

struct GatedStore {
    inner: SharedStore,
    gate: Gate,
    publishes: Gate,
}

#[async_trait]
impl MessageStore for GatedStore {
    async fn append(&self, message: &ChatMessage) -> Result<(), StorageError> {
        self.gate.pass().await;
        self.inner.append(message).await
    }

    async fn page(
        &self,
        stream: &StreamId,
        start: PageStart,
        limit: usize,
    ) -> Result<Vec<ChatMessage>, StorageError> {
        self.inner.page(stream, start, limit).await
    }

    async fn delete(&self, message: &ChatMessage) -> Result<(), StorageError> {
        self.inner.delete(message).await
    }

    async fn check_health(&self) -> Result<(), StorageError> {
        self.inner.check_health().await
    }
}

#[async_trait]
impl ChatStateStore for GatedStore {
    async fn put_stream(&self, stream: &StreamChat) -> Result<(), StorageError> {
        self.inner.put_stream(stream).await
    }

    async fn stream(&self, stream: &StreamId) -> Result<Option<StreamChat>, StorageError> {
        self.inner.stream(stream).await
    }

    async fn put_ban(&self, ban: &Ban) -> Result<(), StorageError> {
        self.inner.put_ban(ban).await
    }

    async fn remove_ban(&self, stream: &StreamId, user: &UserId) -> Result<(), StorageError> {
        self.inner.remove_ban(stream, user).await
    }

    async fn active_ban(
        &self,
        stream: &StreamId,
        user: &UserId,
        now: DateTime<Utc>,
    ) -> Result<Option<Ban>, StorageError> {
        self.inner.active_ban(stream, user, now).await
    }

    async fn last_sent(
        &self,
        stream: &StreamId,
        user: &UserId,
    ) -> Result<Option<DateTime<Utc>>, StorageError> {
        self.inner.last_sent(stream, user).await
    }

    async fn record_sent(
        &self,
        stream: &StreamId,
        user: &UserId,
        at: DateTime<Utc>,
        keep_for: std::time::Duration,
    ) -> Result<(), StorageError> {
        self.inner.record_sent(stream, user, at, keep_for).await
    }

    async fn put_profile(&self, profile: &UserProfile) -> Result<(), StorageError> {
        self.inner.put_profile(profile).await
    }

    async fn profile(&self, user: &UserId) -> Result<Option<UserProfile>, StorageError> {
        self.inner.profile(user).await
    }

    async fn append_event(&self, event: &ModerationEvent) -> Result<(), StorageError> {
        self.inner.append_event(event).await
    }

    async fn events_after(
        &self,
        stream: &StreamId,
        after: Position,
        limit: usize,
    ) -> Result<Vec<ModerationEvent>, StorageError> {
        self.inner.events_after(stream, after, limit).await
    }

    async fn publish_watermark(&self, watermark: &InstanceWatermark) -> Result<bool, StorageError> {
        self.publishes.pass().await;
        self.inner.publish_watermark(watermark).await
    }

    async fn watermarks(&self) -> Result<Vec<InstanceWatermark>, StorageError> {
        self.inner.watermarks().await
    }
}

#[async_trait]
impl IdempotencyStore for GatedStore {
    async fn keyed_message(
        &self,
        stream: &StreamId,
        user: &UserId,
        key: &IdempotencyKey,
        now: DateTime<Utc>,
    ) -> Result<Option<ChatMessage>, StorageError> {
        self.inner.keyed_message(stream, user, key, now).await
    }

    async fn append_keyed(
        &self,
        message: &ChatMessage,
        key: &IdempotencyKey,
        window: std::time::Duration,
    ) -> Result<KeyedAppend, StorageError> {
        self.gate.pass().await;
        self.inner.append_keyed(message, key, window).await
    }
}
