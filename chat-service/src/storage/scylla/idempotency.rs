//! Idempotency keys in ScyllaDB: `idempotency_keys`, one row per (stream,
//! user, key) holding the whole original message, written with a
//! lightweight transaction (`IF NOT EXISTS`) and a TTL equal to the window.
//!
//! The LWT is the one arbiter across instances: of concurrent sends with one
//! key, exactly one inserts the row, and the others read the winner's message
//! from the LWT's answer. Only keyed sends pay for it (a Paxos round, about
//! four round trips instead of one); unkeyed sends stay LWT-free.
//!
//! The key row and the message are two writes, so a crash (or a timeout)
//! between them leaves a key whose message is not stored. Whoever finds a key
//! row (a replay, or a loser of the LWT) therefore writes its message again
//! before answering: the message insert is an idempotent upsert with the
//! message's creation time as its write timestamp, so rewriting an existing
//! message changes nothing, and a moderator's later deletion (a tombstone
//! with a later timestamp) still wins over the rewrite. The rewrite carries
//! what is left of the message's retention TTL (none once it has passed), so
//! it never outlives the original either.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;
use scylla::value::Row;

use super::{ScyllaSettings, ScyllaStore, errors};
use crate::domain::{ChatMessage, IdempotencyKey, StreamId, UserId};
use crate::storage::codec::{decode_message, encode_message};
use crate::storage::{IdempotencyStore, KeyedAppend, MessageStore, StorageError};

pub(super) struct IdempotencyStatements {
    claim: PreparedStatement,
    get: PreparedStatement,
}

impl IdempotencyStatements {
    pub(super) async fn prepare(
        session: &Session,
        settings: &ScyllaSettings,
    ) -> Result<Self, StorageError> {
        let keyspace = &settings.keyspace;
        Ok(Self {
            // Marked idempotent: a retried claim that had in fact been applied
            // finds its own message, which the caller treats as stored.
            claim: super::prepare_statement(
                session,
                settings,
                format!(
                    "INSERT INTO {keyspace}.idempotency_keys (stream_id, user_id, idempotency_key, message) \
                     VALUES (?, ?, ?, ?) IF NOT EXISTS USING TTL ?"
                ),
                true,
            )
            .await?,
            get: super::prepare_statement(
                session,
                settings,
                format!(
                    "SELECT message FROM {keyspace}.idempotency_keys \
                     WHERE stream_id = ? AND user_id = ? AND idempotency_key = ?"
                ),
                true,
            )
            .await?,
        })
    }
}

/// The window as a CQL TTL: whole seconds, at least 1 (0 would mean never).
fn ttl_secs(window: Duration) -> i32 {
    i32::try_from(window.as_secs().max(1)).unwrap_or(i32::MAX)
}

#[async_trait]
impl IdempotencyStore for ScyllaStore {
    async fn keyed_message(
        &self,
        stream: &StreamId,
        user: &UserId,
        key: &IdempotencyKey,
        _now: DateTime<Utc>,
    ) -> Result<Option<ChatMessage>, StorageError> {
        // Expiry is the row's TTL: an expired row is not returned.
        let result = self
            .session
            .execute_unpaged(
                &self.idempotency_statements.get,
                (stream.to_string(), user.to_string(), key.as_str()),
            )
            .await
            .map_err(|error| errors::execution("reading an idempotency key", error))?;
        let rows = result
            .into_rows_result()
            .map_err(|error| errors::rows("idempotency key", error))?;
        let Some((bytes,)) = rows
            .maybe_first_row::<(Vec<u8>,)>()
            .map_err(|error| StorageError::Corrupt(format!("idempotency key row: {error}")))?
        else {
            return Ok(None);
        };
        let message = decode_message(&bytes)?;
        // Completes a send interrupted between its key and its message.
        self.complete_message(&message).await?;
        Ok(Some(message))
    }

    async fn append_keyed(
        &self,
        message: &ChatMessage,
        key: &IdempotencyKey,
        window: Duration,
    ) -> Result<KeyedAppend, StorageError> {
        let result = self
            .session
            .execute_unpaged(
                &self.idempotency_statements.claim,
                (
                    message.stream_id.to_string(),
                    message.sender.id.to_string(),
                    key.as_str(),
                    encode_message(message),
                    ttl_secs(window),
                ),
            )
            .await
            .map_err(|error| errors::execution("claiming an idempotency key", error))?;
        let rows = result
            .into_rows_result()
            .map_err(|error| errors::rows("idempotency claim", error))?;
        // `[applied]` first; when not applied, the existing row's columns
        // follow (which ones, and in which order, differs between ScyllaDB
        // and Cassandra: find `message` by name).
        let message_column = rows
            .column_specs()
            .get_by_name("message")
            .map(|(index, _)| index);
        let row = rows
            .maybe_first_row::<Row>()
            .map_err(|error| StorageError::Corrupt(format!("idempotency claim row: {error}")))?
            .ok_or_else(|| StorageError::Corrupt("idempotency claim: no result row".into()))?;
        let applied = row
            .columns
            .first()
            .and_then(|value| value.as_ref())
            .and_then(|value| value.as_boolean())
            .ok_or_else(|| StorageError::Corrupt("idempotency claim: no [applied]".into()))?;
        if applied {
            self.append(message).await?;
            return Ok(KeyedAppend::Stored);
        }
        let existing_bytes = message_column
            .and_then(|index| row.columns.get(index))
            .and_then(|value| value.as_ref())
            .and_then(|value| value.as_blob())
            .ok_or_else(|| StorageError::Corrupt("idempotency claim: no message".into()))?;
        let existing = decode_message(existing_bytes)?;
        // Completes the winner's send if it was interrupted (or is still
        // under way: the rewrite is the same row either way).
        self.complete_message(&existing).await?;
        if existing.id == message.id {
            // Our own claim, applied by an earlier attempt of this request.
            return Ok(KeyedAppend::Stored);
        }
        Ok(KeyedAppend::Existing(Box::new(existing)))
    }
}
