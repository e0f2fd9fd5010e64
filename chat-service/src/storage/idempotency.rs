//! Idempotent sends in the store: a keyed send's message and its key are
//! recorded together, and the first send with a key wins.
//!
//! Scope: (stream, sender, key). The record holds the whole original message,
//! so a replay answers with exactly what the first send answered. Records
//! live for the idempotency window (the `window` given with each append),
//! counted from the message's creation time; after it the key is free again.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StorageError;
use crate::domain::{ChatMessage, IdempotencyKey, StreamId, UserId};

/// What a keyed append did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyedAppend {
    /// The key was free: the message and its key record are stored.
    Stored,
    /// The key already had a message (another send won): that message is
    /// returned and nothing new was stored. Boxed: the common answer,
    /// `Stored`, stays small.
    Existing(Box<ChatMessage>),
}

#[async_trait]
pub trait IdempotencyStore: Send + Sync + 'static {
    /// The message stored under `key` by `user` in `stream`, if its record
    /// is still within its window at `now`. When this returns a message, that
    /// message is stored: a send interrupted between its key record and its
    /// message (possible only where the two are separate writes) is completed
    /// here before the message is returned.
    async fn keyed_message(
        &self,
        stream: &StreamId,
        user: &UserId,
        key: &IdempotencyKey,
        now: DateTime<Utc>,
    ) -> Result<Option<ChatMessage>, StorageError>;

    /// Stores `message` under `key` (scope: its stream and sender) unless
    /// the key already has a live record; atomic against concurrent appends
    /// with the same key, across instances sharing the store. When this
    /// returns `Stored`, the message is durable as with
    /// [`MessageStore::append`](super::MessageStore::append).
    async fn append_keyed(
        &self,
        message: &ChatMessage,
        key: &IdempotencyKey,
        window: Duration,
    ) -> Result<KeyedAppend, StorageError>;
}
