//! Chat state in the embedded store: one fjall keyspace per kind of record,
//! each value the store's own versioned record (`storage::records`).
//!
//! Admin writes go through the writer thread and commit with a journal sync
//! (they are rare, and must survive a crash like messages do). Slow-mode
//! bookkeeping is written directly, without a sync: losing it in a crash only
//! lets one message through early.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use fjall::{Database, Keyspace, KeyspaceCreateOptions};

use super::EmbeddedStore;
use super::writer::Target;
use std::ops::Bound;

use crate::domain::{
    Ban, ModerationEvent, ModerationKind, Position, StreamChat, StreamId, UserId, UserProfile,
};
use crate::storage::codec::{key_position, position_key};
use crate::storage::records::Record;
use crate::storage::{ChatStateStore, InstanceWatermark, StorageError};

pub(super) struct StateKeyspaces {
    pub(super) events: Keyspace,
    pub(super) streams: Keyspace,
    pub(super) bans: Keyspace,
    pub(super) last_sent: Keyspace,
    pub(super) profiles: Keyspace,
}

impl StateKeyspaces {
    pub(super) fn open(database: &Database) -> Result<Self, fjall::Error> {
        Ok(Self {
            events: database.keyspace("events", KeyspaceCreateOptions::default)?,
            streams: database.keyspace("streams", KeyspaceCreateOptions::default)?,
            bans: database.keyspace("bans", KeyspaceCreateOptions::default)?,
            last_sent: database.keyspace("last_sent", KeyspaceCreateOptions::default)?,
            profiles: database.keyspace("profiles", KeyspaceCreateOptions::default)?,
        })
    }
}

/// Stream id then user id: one key per user per stream.
fn pair_key(stream: &StreamId, user: &UserId) -> [u8; 24] {
    let mut key = [0u8; 24];
    key[..12].copy_from_slice(stream.as_bytes());
    key[12..].copy_from_slice(user.as_bytes());
    key
}

fn internal(context: &str, error: impl std::fmt::Display) -> StorageError {
    StorageError::Internal(format!("embedded store {context}: {error}"))
}

/// A failed read: I/O trouble is retryable (UNAVAILABLE); a checksum or
/// decoding failure means damaged data.
pub(super) fn read_error(error: fjall::Error) -> StorageError {
    match error {
        fjall::Error::Io(_) | fjall::Error::Storage(fjall::LsmError::Io(_)) => {
            StorageError::Unavailable(format!("embedded store read: {error}"))
        }
        other => StorageError::Corrupt(format!("embedded store read: {other}")),
    }
}

fn corrupt(context: &str, error: impl std::fmt::Display) -> StorageError {
    StorageError::Corrupt(format!("embedded {context} record: {error}"))
}

impl EmbeddedStore {
    /// A point read of one small chat-state record. Inline, not through
    /// `spawn_blocking`: these records are hot (memtable or block cache) and
    /// read in microseconds, while the hop to the blocking pool and back cost
    /// more than the read and capped sends at a third of their throughput
    /// (measured: BENCHMARKS.md, "Profile"). Range scans and syncing writes
    /// keep the hop.
    async fn get(
        &self,
        keyspace: fn(&StateKeyspaces) -> &Keyspace,
        key: &[u8],
    ) -> Result<Option<Vec<u8>>, StorageError> {
        let handles = self.lifecycle.handles()?;
        keyspace(&handles.state)
            .get(key)
            .map(|value| value.map(|bytes| bytes.to_vec()))
            .map_err(read_error)
    }
}

#[async_trait]
impl ChatStateStore for EmbeddedStore {
    async fn put_stream(&self, stream: &StreamChat) -> Result<(), StorageError> {
        let value = stream.encode_record();
        self.write(Target::Streams, stream.id.as_bytes().to_vec(), Some(value))
            .await
    }

    async fn stream(&self, stream: &StreamId) -> Result<Option<StreamChat>, StorageError> {
        let Some(bytes) = self.get(|state| &state.streams, stream.as_bytes()).await? else {
            return Ok(None);
        };
        StreamChat::decode_record(&bytes).map(Some)
    }

    async fn put_ban(&self, ban: &Ban) -> Result<(), StorageError> {
        let value = ban.encode_record();
        let key = pair_key(&ban.stream_id, &ban.user_id).to_vec();
        self.write(Target::Bans, key, Some(value)).await
    }

    async fn remove_ban(&self, stream: &StreamId, user: &UserId) -> Result<(), StorageError> {
        self.write(Target::Bans, pair_key(stream, user).to_vec(), None)
            .await
    }

    async fn active_ban(
        &self,
        stream: &StreamId,
        user: &UserId,
        now: DateTime<Utc>,
    ) -> Result<Option<Ban>, StorageError> {
        let Some(bytes) = self
            .get(|state| &state.bans, &pair_key(stream, user))
            .await?
        else {
            return Ok(None);
        };
        let ban = Ban::decode_record(&bytes)?;
        // Expired timeouts stay on disk until the next ban or unban of the
        // user replaces them; they are simply not active.
        Ok(ban.is_active(now).then_some(ban))
    }

    async fn last_sent(
        &self,
        stream: &StreamId,
        user: &UserId,
    ) -> Result<Option<DateTime<Utc>>, StorageError> {
        let Some(bytes) = self
            .get(|state| &state.last_sent, &pair_key(stream, user))
            .await?
        else {
            return Ok(None);
        };
        let millis: [u8; 8] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| corrupt("last_sent", "not 8 bytes"))?;
        Ok(DateTime::from_timestamp_millis(i64::from_be_bytes(millis)))
    }

    async fn record_sent(
        &self,
        stream: &StreamId,
        user: &UserId,
        at: DateTime<Utc>,
        _keep_for: Duration,
    ) -> Result<(), StorageError> {
        let handles = self.lifecycle.handles()?;
        let lifecycle = self.lifecycle.clone();
        let key = pair_key(stream, user);
        let value = at.timestamp_millis().to_be_bytes();
        tokio::task::spawn_blocking(move || {
            handles.state.last_sent.insert(key, value).map_err(|error| {
                // fjall poisons the database on a failed journal write.
                lifecycle.record_failure(&error);
                StorageError::Unavailable(format!("embedded store write: {error}"))
            })
        })
        .await
        .map_err(|error| internal("write task", error))?
    }

    async fn put_profile(&self, profile: &UserProfile) -> Result<(), StorageError> {
        let value = profile.encode_record();
        self.write(
            Target::Profiles,
            profile.user_id.as_bytes().to_vec(),
            Some(value),
        )
        .await
    }

    async fn append_event(&self, event: &ModerationEvent) -> Result<(), StorageError> {
        let key = position_key(&event.stream_id, &event.position()).to_vec();
        self.write(Target::Events, key, Some(event.kind.encode_record()))
            .await
    }

    async fn events_after(
        &self,
        stream: &StreamId,
        after: Position,
        limit: usize,
    ) -> Result<Vec<ModerationEvent>, StorageError> {
        let handles = self.lifecycle.handles()?;
        let stream = *stream;
        let from = position_key(&stream, &after).to_vec();
        let mut to = [0xffu8; 32];
        to[..12].copy_from_slice(stream.as_bytes());
        tokio::task::spawn_blocking(move || {
            handles
                .state
                .events
                .range((Bound::Excluded(from), Bound::Included(to.to_vec())))
                .take(limit)
                .map(|entry| {
                    let (key, value) = entry.into_inner().map_err(read_error)?;
                    let position = key_position(&key).ok_or_else(|| corrupt("event", "bad key"))?;
                    Ok(ModerationEvent {
                        id: position.id,
                        stream_id: stream,
                        created_at: DateTime::from_timestamp_millis(position.created_ms)
                            .ok_or_else(|| corrupt("event", "time out of range"))?,
                        kind: ModerationKind::decode_record(&value)?,
                    })
                })
                .collect()
        })
        .await
        .map_err(|error| internal("read task", error))?
    }

    async fn profile(&self, user: &UserId) -> Result<Option<UserProfile>, StorageError> {
        let Some(bytes) = self.get(|state| &state.profiles, user.as_bytes()).await? else {
            return Ok(None);
        };
        UserProfile::decode_record(&bytes).map(Some)
    }

    // One process owns an embedded store: no other instance appends to it,
    // so there is no watermark to exchange.
    async fn publish_watermark(
        &self,
        _watermark: &InstanceWatermark,
    ) -> Result<bool, StorageError> {
        Ok(false)
    }

    async fn watermarks(&self) -> Result<Vec<InstanceWatermark>, StorageError> {
        Ok(Vec::new())
    }
}
