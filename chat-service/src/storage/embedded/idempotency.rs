//! Idempotency keys in the embedded store.
//!
//! Atomicity comes from the single writer thread (`writer`): it decides
//! every keyed append of a group (is the key free, in the store or earlier
//! in the same group?) against the database open at commit time, and writes
//! the key record in the same journal batch as the message. A reader
//! therefore sees both or neither, a crash or a reopen after a failed write
//! keeps both or neither, and two concurrent sends with one key cannot both
//! store.
//!
//! Records: `idempotency_keys`, keyed by stream id (12 bytes), user id (12)
//! and the key's text; the value is the record's expiry (ms, 8 bytes) then
//! the whole message (the store's message encoding). Expiry is checked on read;
//! `idempotency_expiry` (expiry ms, sortable, then the record key) lets the
//! writer prune expired records in key order instead of scanning them all.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use fjall::{Database, Keyspace, KeyspaceCreateOptions, OwnedWriteBatch};

use super::lifecycle::{Handles, Lifecycle};

use crate::domain::{ChatMessage, IdempotencyKey, StreamId, UserId};
use crate::storage::codec::{decode_message, encode_message, sortable_millis};
use crate::storage::{KeyedAppend, StorageError};

/// How often the writer looks for expired records. Pruning only reclaims
/// space (expiry is checked on read), so once a minute is plenty.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// At most this many records are pruned at once, so that one pruning pass
/// never holds the writer (and so every send) for long; the rest waits for
/// the next pass.
const PRUNE_BATCH: usize = 10_000;

/// The two keyspaces of one incarnation of the database (they belong to
/// `lifecycle::Handles`, since a reopen replaces them).
pub(super) struct IdempotencyKeyspaces {
    pub(super) records: Keyspace,
    pub(super) expiry: Keyspace,
}

impl IdempotencyKeyspaces {
    pub(super) fn open(database: &Database) -> Result<Self, fjall::Error> {
        Ok(Self {
            records: database.keyspace("idempotency_keys", KeyspaceCreateOptions::default)?,
            expiry: database.keyspace("idempotency_expiry", KeyspaceCreateOptions::default)?,
        })
    }

    /// The live record's message under `key`, if any (point read, inline:
    /// see `EmbeddedStore::get` for why).
    pub(super) fn message(
        &self,
        stream: &StreamId,
        user: &UserId,
        key: &IdempotencyKey,
        now_ms: i64,
    ) -> Result<Option<ChatMessage>, StorageError> {
        let value = self
            .records
            .get(record_key(stream, user, key))
            .map_err(|error| StorageError::Internal(format!("embedded store read: {error}")))?;
        match value {
            Some(value) => live_message(&value, now_ms),
            None => Ok(None),
        }
    }
}

/// A keyed append's record, prepared by the caller, written by the writer.
pub(super) struct KeyClaim {
    record_key: Vec<u8>,
    record_value: Vec<u8>,
    expires_ms: i64,
    created_ms: i64,
}

impl KeyClaim {
    pub(super) fn new(message: &ChatMessage, key: &IdempotencyKey, window: Duration) -> Self {
        let created_ms = message.created_at.timestamp_millis();
        let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
        let expires_ms = created_ms.saturating_add(window_ms);
        let mut record_value = expires_ms.to_be_bytes().to_vec();
        record_value.extend_from_slice(&encode_message(message));
        Self {
            record_key: record_key(&message.stream_id, &message.sender.id, key),
            record_value,
            expires_ms,
            created_ms,
        }
    }

    /// Bytes the claim adds to a batch (record and index key), for the
    /// free-space check.
    pub(super) fn size(&self) -> u64 {
        (2 * self.record_key.len() + self.record_value.len() + 8) as u64
    }
}

fn record_key(stream: &StreamId, user: &UserId, key: &IdempotencyKey) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(24 + key.as_str().len());
    bytes.extend_from_slice(stream.as_bytes());
    bytes.extend_from_slice(user.as_bytes());
    bytes.extend_from_slice(key.as_str().as_bytes());
    bytes
}

fn expiry_key(expires_ms: i64, record_key: &[u8]) -> Vec<u8> {
    let mut bytes = sortable_millis(expires_ms).to_vec();
    bytes.extend_from_slice(record_key);
    bytes
}

fn record_expiry(value: &[u8]) -> Result<i64, StorageError> {
    let millis: [u8; 8] = value
        .get(..8)
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| StorageError::Corrupt("idempotency record too short".into()))?;
    Ok(i64::from_be_bytes(millis))
}

/// The record's message if the record is still live at `now_ms`.
fn live_message(value: &[u8], now_ms: i64) -> Result<Option<ChatMessage>, StorageError> {
    if record_expiry(value)? <= now_ms {
        return Ok(None);
    }
    decode_message(&value[8..]).map(Some)
}

/// The writer's decisions for one group: claims made earlier in the group
/// count as taken, since they commit in the same batch.
pub(super) struct GroupClaims<'a> {
    keyspaces: &'a IdempotencyKeyspaces,
    taken: HashMap<Vec<u8>, Vec<u8>>,
}

impl<'a> GroupClaims<'a> {
    pub(super) fn new(keyspaces: &'a IdempotencyKeyspaces) -> Self {
        Self {
            keyspaces,
            taken: HashMap::new(),
        }
    }

    /// `Stored` if the append should be written (no claim, or a free key);
    /// otherwise the message that already holds the key.
    pub(super) fn decide(&mut self, claim: Option<&KeyClaim>) -> Result<KeyedAppend, String> {
        let Some(claim) = claim else {
            return Ok(KeyedAppend::Stored);
        };
        if let Some(value) = self.taken.get(&claim.record_key) {
            return existing(value, claim.created_ms);
        }
        let stored = self
            .keyspaces
            .records
            .get(&claim.record_key)
            .map_err(|error| format!("reading an idempotency key: {error}"))?;
        if let Some(value) = stored {
            // A live record answers; an expired one is simply replaced.
            if let KeyedAppend::Existing(message) = existing(&value, claim.created_ms)? {
                return Ok(KeyedAppend::Existing(message));
            }
        }
        self.taken
            .insert(claim.record_key.clone(), claim.record_value.clone());
        Ok(KeyedAppend::Stored)
    }

    /// Adds the key record of a claim decided `Stored` to the batch.
    pub(super) fn write(&self, batch: &mut OwnedWriteBatch, claim: &KeyClaim) {
        batch.insert(
            &self.keyspaces.records,
            claim.record_key.clone(),
            claim.record_value.clone(),
        );
        batch.insert(
            &self.keyspaces.expiry,
            expiry_key(claim.expires_ms, &claim.record_key),
            Vec::new(),
        );
    }
}

/// `Existing` with the record's message if it is live at `now_ms`, else
/// `Stored` (the key is free).
fn existing(value: &[u8], now_ms: i64) -> Result<KeyedAppend, String> {
    match live_message(value, now_ms) {
        Ok(Some(message)) => Ok(KeyedAppend::Existing(Box::new(message))),
        Ok(None) => Ok(KeyedAppend::Stored),
        Err(error) => Err(error.to_string()),
    }
}

/// Prunes expired records now and then, from the writer thread, in the
/// database open at the time (it changes when the store reopens).
pub(super) struct Pruner {
    last_run: Instant,
}

impl Pruner {
    pub(super) fn new() -> Self {
        Self {
            last_run: Instant::now(),
        }
    }

    pub(super) fn run_if_due(&mut self, lifecycle: &Lifecycle) {
        if self.last_run.elapsed() < PRUNE_EVERY {
            return;
        }
        self.last_run = Instant::now();
        // While writes are refused the prune would fail too; it waits for
        // the next pass after the reopen.
        if lifecycle.fault().is_some() {
            return;
        }
        let Ok(handles) = lifecycle.handles() else {
            return;
        };
        let now_ms = chrono::Utc::now().timestamp_millis();
        match prune(&handles, now_ms, PRUNE_BATCH) {
            Ok(0) => {}
            Ok(pruned) => tracing::debug!(pruned, "pruned expired idempotency keys"),
            Err(error) => {
                tracing::warn!(%error, "could not prune expired idempotency keys");
                // A failed write poisons the database like a failed commit:
                // the store refuses writes until it has reopened.
                lifecycle.record_failure(&error);
            }
        }
    }
}

/// Removes up to `limit` records that expired by `now_ms`; returns how many
/// index entries it removed. Without a journal sync: a prune lost in a crash
/// is simply done again.
pub(super) fn prune(handles: &Handles, now_ms: i64, limit: usize) -> Result<usize, fjall::Error> {
    let keyspaces = &handles.idempotency;
    let end = expiry_key(now_ms, &[0xff; 1]);
    let mut batch = handles.database.batch();
    let mut removed = 0;
    for entry in keyspaces.expiry.range(..end).take(limit) {
        let index_key = entry.key()?;
        let record_key = &index_key[8..];
        // The key may have been claimed again since: remove the record only
        // if it is the expired one.
        if let Some(value) = keyspaces.records.get(record_key)?
            && record_expiry(&value).is_ok_and(|expires_ms| expires_ms <= now_ms)
        {
            batch.remove(&keyspaces.records, record_key.to_vec());
        }
        batch.remove(&keyspaces.expiry, index_key.to_vec());
        removed += 1;
    }
    if removed > 0 {
        batch.commit()?;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{MessageContent, ObjectIdGenerator, Sender};
    use crate::storage::IdempotencyStore;
    use crate::storage::embedded::EmbeddedStore;

    const T0_MS: i64 = 1_767_225_600_000;

    fn message_at(ids: &ObjectIdGenerator, created_ms: i64) -> ChatMessage {
        let created = chrono::DateTime::from_timestamp_millis(created_ms).expect("time");
        ChatMessage {
            id: ids.next(created).into(),
            stream_id: StreamId::parse("64d15f9e2e6c8f4d5a123000").expect("id"),
            content: MessageContent::parse("hi").expect("content"),
            sender: Sender::anonymous(UserId::parse("64d15f9e2e6c8f4d5a123456").expect("id")),
            created_at: created,
            updated_at: created,
        }
    }

    fn at(millis: i64) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::from_timestamp_millis(millis).expect("time")
    }

    #[tokio::test]
    async fn pruning_removes_expired_records_but_not_a_key_claimed_again() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = EmbeddedStore::open(dir.path()).expect("store");
        let ids = ObjectIdGenerator::new();
        let key = IdempotencyKey::parse("k").expect("key");
        let other = IdempotencyKey::parse("other").expect("key");
        let second = Duration::from_secs(1);

        let expired = message_at(&ids, T0_MS);
        store
            .append_keyed(&expired, &other, second)
            .await
            .expect("append");
        store
            .append_keyed(&expired, &key, second)
            .await
            .expect("append");
        // After its window the key is free, and a new claim replaces the record.
        let reclaimed = message_at(&ids, T0_MS + 10_000);
        let outcome = store
            .append_keyed(&reclaimed, &key, Duration::from_secs(3600))
            .await
            .expect("append");
        assert_eq!(outcome, KeyedAppend::Stored);

        let handles = store.lifecycle.handles().expect("handles");
        let pruned = prune(&handles, T0_MS + 20_000, 100).expect("prune");
        assert_eq!(pruned, 2, "both expired index entries");
        let (stream, user) = (expired.stream_id, expired.sender.id);
        let found = store
            .keyed_message(&stream, &user, &key, at(T0_MS + 20_000))
            .await;
        assert_eq!(found.expect("read"), Some(reclaimed));
        assert!(
            handles
                .idempotency
                .records
                .get(record_key(&stream, &user, &other))
                .expect("read")
                .is_none()
        );
        let again = prune(&handles, T0_MS + 20_000, 100).expect("prune");
        assert_eq!(again, 0);
    }

    #[tokio::test]
    async fn an_expired_record_is_not_returned() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = EmbeddedStore::open(dir.path()).expect("store");
        let ids = ObjectIdGenerator::new();
        let key = IdempotencyKey::parse("k").expect("key");
        let sent = message_at(&ids, T0_MS);
        store
            .append_keyed(&sent, &key, Duration::from_secs(60))
            .await
            .expect("append");
        let (stream, user) = (sent.stream_id, sent.sender.id);
        let within = store
            .keyed_message(&stream, &user, &key, at(T0_MS + 59_999))
            .await;
        assert_eq!(within.expect("read"), Some(sent));
        let after = store
            .keyed_message(&stream, &user, &key, at(T0_MS + 60_000))
            .await;
        assert_eq!(after.expect("read"), None);
    }
}
