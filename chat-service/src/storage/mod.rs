//! Persistence of chat messages behind one trait, [`MessageStore`], with two
//! implementations chosen by configuration:
//!
//! - [`embedded`]: fjall, an LSM-tree store on local disk; the single-machine
//!   default, no other server needed.
//! - [`scylla`]: ScyllaDB (or any CQL database), for production and scale-out.
//!
//! Both pass the same contract suite (`tests/storage_contract`). Driver errors
//! are translated into [`StorageError`] inside each backend and never leak
//! upward.

use std::sync::Arc;

use async_trait::async_trait;

use chrono::{DateTime, Utc};

use crate::domain::{
    Ban, ChatMessage, MessageId, ModerationEvent, ObjectId, Position, StreamChat, StreamId, UserId,
    UserProfile,
};

pub mod codec;
pub mod embedded;
pub mod idempotency;
mod records;
pub mod scylla;

pub use idempotency::{IdempotencyStore, KeyedAppend};

/// A shareable handle on whichever store the configuration chose.
pub type SharedStore = Arc<dyn ChatStore>;

/// Everything chat-service keeps: messages, the chat state around them and
/// the keys of idempotent sends.
pub trait ChatStore: MessageStore + ChatStateStore + IdempotencyStore {}

impl<T: MessageStore + ChatStateStore + IdempotencyStore> ChatStore for T {}

/// Where chat messages live.
#[async_trait]
pub trait MessageStore: Send + Sync + 'static {
    /// Stores `message` durably: when this returns `Ok`, the message survives
    /// a crash of the process. Appending the same message (same stream,
    /// creation time and id) again is harmless, so callers may retry.
    async fn append(&self, message: &ChatMessage) -> Result<(), StorageError>;

    /// One page of `stream`'s messages, at most `limit`: from the newest
    /// or before a position, newest first; after a position, oldest first.
    async fn page(
        &self,
        stream: &StreamId,
        start: PageStart,
        limit: usize,
    ) -> Result<Vec<ChatMessage>, StorageError>;

    /// The newest `limit` messages of `stream`, newest first.
    async fn newest(
        &self,
        stream: &StreamId,
        limit: usize,
    ) -> Result<Vec<ChatMessage>, StorageError> {
        self.page(stream, PageStart::Newest, limit).await
    }

    /// The message `id` of `stream`, if it exists. Ids carry their creation
    /// second, so this reads only that second of the stream.
    async fn find(
        &self,
        stream: &StreamId,
        id: &MessageId,
    ) -> Result<Option<ChatMessage>, StorageError> {
        const PAGE: usize = 500;
        let second_ms = i64::from(id.object_id().timestamp_seconds()) * 1000;
        let mut after = Position {
            created_ms: second_ms - 1,
            id: ObjectId::from_bytes([0xff; 12]),
        };
        loop {
            let page = self.page(stream, PageStart::After(after), PAGE).await?;
            for message in &page {
                if message.created_at.timestamp_millis() >= second_ms + 1000 {
                    return Ok(None);
                }
                if message.id == *id {
                    return Ok(Some(message.clone()));
                }
            }
            match page.last() {
                Some(last) if page.len() == PAGE => after = last.position(),
                _ => return Ok(None),
            }
        }
    }

    /// Removes a message for good (durably). Removing it twice is harmless.
    async fn delete(&self, message: &ChatMessage) -> Result<(), StorageError>;

    /// Whether the store can serve requests now (for health checks).
    async fn check_health(&self) -> Result<(), StorageError>;
}

/// Where a page of messages starts, and so its direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageStart {
    /// The newest messages, newest first.
    Newest,
    /// Messages strictly before the position, newest first.
    Before(Position),
    /// Messages strictly after the position, oldest first.
    After(Position),
}

/// Streams, bans, slow-mode bookkeeping and sender profiles.
///
/// Admin writes (streams, bans, profiles) are durable when they return.
/// `record_sent` is bookkeeping for slow mode and may be lost in a crash: the
/// worst outcome is one message that slow mode would have delayed.
#[async_trait]
pub trait ChatStateStore: Send + Sync + 'static {
    /// Creates or replaces a stream's record.
    async fn put_stream(&self, stream: &StreamChat) -> Result<(), StorageError>;

    async fn stream(&self, stream: &StreamId) -> Result<Option<StreamChat>, StorageError>;

    /// Creates or replaces the ban of `ban.user_id` in `ban.stream_id`.
    async fn put_ban(&self, ban: &Ban) -> Result<(), StorageError>;

    /// Lifts a ban; lifting an absent ban is not an error.
    async fn remove_ban(&self, stream: &StreamId, user: &UserId) -> Result<(), StorageError>;

    /// The ban of `user` that is active at `now`, if any.
    async fn active_ban(
        &self,
        stream: &StreamId,
        user: &UserId,
        now: DateTime<Utc>,
    ) -> Result<Option<Ban>, StorageError>;

    /// When `user` last sent a message to `stream` (as far as slow mode
    /// needs to know: entries older than the slow-mode interval may be gone).
    async fn last_sent(
        &self,
        stream: &StreamId,
        user: &UserId,
    ) -> Result<Option<DateTime<Utc>>, StorageError>;

    /// Records a send for slow mode; `keep_for` is how long it matters.
    async fn record_sent(
        &self,
        stream: &StreamId,
        user: &UserId,
        at: DateTime<Utc>,
        keep_for: std::time::Duration,
    ) -> Result<(), StorageError>;

    /// Creates or replaces a user's profile.
    async fn put_profile(&self, profile: &UserProfile) -> Result<(), StorageError>;

    async fn profile(&self, user: &UserId) -> Result<Option<UserProfile>, StorageError>;

    /// Records a moderation event (durably) in its stream's order.
    async fn append_event(&self, event: &ModerationEvent) -> Result<(), StorageError>;

    /// Up to `limit` moderation events of `stream` after `after`, oldest first.
    async fn events_after(
        &self,
        stream: &StreamId,
        after: Position,
        limit: usize,
    ) -> Result<Vec<ModerationEvent>, StorageError>;

    /// Publishes this instance's live watermark for the other instances on
    /// the same database (see `live::watermarks`). `false`: this store has
    /// no other writers, so there is nothing to exchange.
    ///
    /// No default body, on purpose: a wrapper around a store (metrics, test
    /// gates) that forgot to forward this would silently turn the exchange
    /// off and let live delivery overtake other instances' appends.
    async fn publish_watermark(&self, watermark: &InstanceWatermark) -> Result<bool, StorageError>;

    /// Every instance's last published watermark (its own included).
    async fn watermarks(&self) -> Result<Vec<InstanceWatermark>, StorageError>;
}

/// One instance's live watermark as published: every append that instance
/// created before `watermark_ms` has finished (stored or failed). `beat`
/// grows with each publication, so that others can tell a live instance
/// from a dead one's last row by their own clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceWatermark {
    pub instance: String,
    pub beat: i64,
    pub watermark_ms: i64,
}

/// What can go wrong in a store, in terms the service can act on.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The store cannot be reached or did not answer in time; retrying later
    /// may succeed.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// Data read back could not be decoded: a bug or a damaged store.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// Anything else the store reported.
    #[error("storage failure: {0}")]
    Internal(String),
}
