//! The ScyllaDB store (any CQL database speaking protocol v4: ScyllaDB in
//! production, Apache Cassandra 5 in the test suite).
//!
//! Data model (see `schema.rs`): `messages` is partitioned by
//! `(stream_id, bucket)` (a time window, `buckets.rs`), clustered newest
//! first by `(created_at, message_id)`; `stream_buckets` indexes each stream's
//! non-empty buckets by window end, newest first.
//!
//! Writes: the bucket's index row first, then the message, both idempotent
//! (same key, same values), so the driver may retry them. A reader therefore
//! never misses a message whose index row is absent; an index row without a
//! message (a crash in between) is harmless. Each instance remembers which
//! buckets it has indexed, so a hot stream writes its index row once per
//! bucket, not once per message. Only non-null columns are written: unknown
//! sender fields are left unset (no tombstones). No LWT, counters or
//! collections on the send path.
//!
//! Reads of the newest N walk the index in window-end order and read whole
//! buckets concurrently, a few at a time, stopping as soon as no remaining
//! bucket can hold a newer message. A stream silent for days costs one index
//! query plus one query per non-empty bucket needed, never a walk over time.

mod buckets;
mod errors;
pub mod schema;
mod settings;
mod state;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use allmine_chat_proto::v1 as pb;
use async_trait::async_trait;
use futures::future::try_join_all;
use prost::Message;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::statement::prepared::PreparedStatement;
use scylla::value::{CqlTimestamp, MaybeUnset};

pub use buckets::{Bucket, DEFAULT_BUCKET};
pub use schema::Replication;
pub use settings::{ConsistencyLevel, ScyllaSettings};

use super::{MessageStore, StorageError};
use crate::domain::{
    ChatMessage, MessageContent, MessageId, ProfilePhoto, Sender, StreamId, UserId,
};

/// How many buckets one read fetches at once.
const BUCKETS_PER_ROUND: usize = 8;

/// Forget indexed buckets beyond this many (memory bound); forgetting only
/// costs one redundant idempotent index write.
const MAX_REMEMBERED_BUCKETS: usize = 100_000;

/// Chat messages in a CQL database.
pub struct ScyllaStore {
    session: Arc<Session>,
    statements: Statements,
    state_statements: state::StateStatements,
    keyspace: String,
    bucket_width_ms: i64,
    /// Seconds; 0 means no expiry (CQL's own meaning of TTL 0).
    ttl_secs: i32,
    indexed_buckets: Mutex<HashSet<(StreamId, Bucket)>>,
}

struct Statements {
    insert_message: PreparedStatement,
    insert_bucket: PreparedStatement,
    newest_buckets: PreparedStatement,
    older_buckets: PreparedStatement,
    bucket_messages: PreparedStatement,
    health: PreparedStatement,
}

/// The columns `bucket_messages` selects, in order.
type MessageRow = (
    String,
    CqlTimestamp,
    CqlTimestamp,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<Vec<u8>>,
    Option<String>,
);

impl ScyllaStore {
    /// Connects (retrying until `settings.connect_timeout`), applies the
    /// schema and prepares every statement once.
    pub async fn connect(settings: &ScyllaSettings) -> Result<Self, StorageError> {
        if !schema::is_valid_keyspace(&settings.keyspace) {
            return Err(StorageError::Internal(format!(
                "invalid keyspace name '{}'",
                settings.keyspace
            )));
        }
        let session = Arc::new(connect_with_retry(settings).await?);
        for statement in schema::statements(&settings.keyspace, &settings.replication) {
            session
                .query_unpaged(statement, ())
                .await
                .map_err(|error| errors::execution("applying the schema", error))?;
        }
        let statements = Statements::prepare(&session, settings).await?;
        let state_statements = state::StateStatements::prepare(&session, settings).await?;
        tracing::info!(
            keyspace = %settings.keyspace,
            nodes = ?settings.nodes,
            consistency = ?settings.consistency,
            "connected to the CQL cluster"
        );
        Ok(Self {
            session,
            statements,
            state_statements,
            keyspace: settings.keyspace.clone(),
            bucket_width_ms: i64::try_from(settings.bucket_width.as_millis()).unwrap_or(i64::MAX),
            ttl_secs: settings
                .ttl
                .map_or(0, |ttl| i32::try_from(ttl.as_secs()).unwrap_or(i32::MAX)),
            indexed_buckets: Mutex::new(HashSet::new()),
        })
    }

    /// Drops this store's keyspace and everything in it. For tests and
    /// tooling; never called by the service.
    pub async fn drop_keyspace(&self) -> Result<(), StorageError> {
        self.session
            .query_unpaged(format!("DROP KEYSPACE IF EXISTS {}", self.keyspace), ())
            .await
            .map_err(|error| errors::execution("dropping the keyspace", error))?;
        Ok(())
    }

    async fn index_bucket(&self, stream: &StreamId, bucket: Bucket) -> Result<(), StorageError> {
        let key = (*stream, bucket);
        if self.remembers(&key) {
            return Ok(());
        }
        // Index rows outlive their messages by one window, so no index row
        // expires before the last message it points to.
        let ttl = if self.ttl_secs == 0 {
            0
        } else {
            self.ttl_secs
                .saturating_add(i32::try_from(self.bucket_width_ms / 1000).unwrap_or(i32::MAX))
        };
        self.session
            .execute_unpaged(
                &self.statements.insert_bucket,
                (stream.to_string(), bucket.end_ms, bucket.start_ms, ttl),
            )
            .await
            .map_err(|error| errors::execution("indexing a bucket", error))?;
        let mut remembered = self
            .indexed_buckets
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if remembered.len() >= MAX_REMEMBERED_BUCKETS {
            remembered.clear();
        }
        remembered.insert(key);
        Ok(())
    }

    fn remembers(&self, key: &(StreamId, Bucket)) -> bool {
        self.indexed_buckets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(key)
    }

    /// One page of the stream's index: buckets ordered by end, newest first,
    /// strictly after `after` when given.
    async fn buckets(
        &self,
        stream: &StreamId,
        after: Option<Bucket>,
        limit: i32,
    ) -> Result<Vec<Bucket>, StorageError> {
        let result = match after {
            None => {
                self.session
                    .execute_unpaged(&self.statements.newest_buckets, (stream.to_string(), limit))
                    .await
            }
            Some(last) => {
                self.session
                    .execute_unpaged(
                        &self.statements.older_buckets,
                        (stream.to_string(), last.end_ms, last.start_ms, limit),
                    )
                    .await
            }
        }
        .map_err(|error| errors::execution("reading the bucket index", error))?;
        let rows = result
            .into_rows_result()
            .map_err(|error| errors::rows("bucket index", error))?;
        rows.rows::<(i64, i64)>()
            .map_err(|error| errors::typed_rows("bucket index", error))?
            .map(|row| {
                row.map(|(end_ms, start_ms)| Bucket { start_ms, end_ms })
                    .map_err(|error| errors::row("bucket index", error))
            })
            .collect()
    }

    /// The newest `limit` messages of one bucket, newest first.
    async fn bucket_messages(
        &self,
        stream: &StreamId,
        bucket: Bucket,
        limit: i32,
    ) -> Result<Vec<ChatMessage>, StorageError> {
        let result = self
            .session
            .execute_unpaged(
                &self.statements.bucket_messages,
                (stream.to_string(), bucket.start_ms, limit),
            )
            .await
            .map_err(|error| errors::execution("reading messages", error))?;
        let rows = result
            .into_rows_result()
            .map_err(|error| errors::rows("messages", error))?;
        rows.rows::<MessageRow>()
            .map_err(|error| errors::typed_rows("messages", error))?
            .map(|row| {
                let row = row.map_err(|error| errors::row("messages", error))?;
                decode_row(*stream, row)
            })
            .collect()
    }
}

async fn connect_with_retry(settings: &ScyllaSettings) -> Result<Session, StorageError> {
    let deadline = tokio::time::Instant::now() + settings.connect_timeout;
    loop {
        let mut builder = SessionBuilder::new()
            .known_nodes(&settings.nodes)
            .connection_timeout(Duration::from_secs(5));
        if let Some((user, password)) = &settings.credentials {
            builder = builder.user(user, password.expose());
        }
        match builder.build().await {
            Ok(session) => return Ok(session),
            Err(error) if tokio::time::Instant::now() < deadline => {
                tracing::warn!(%error, nodes = ?settings.nodes, "CQL cluster not reachable yet; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(error) => return Err(errors::connect(error)),
        }
    }
}

impl Statements {
    async fn prepare(session: &Session, settings: &ScyllaSettings) -> Result<Self, StorageError> {
        let keyspace = &settings.keyspace;
        let prepare =
            |cql: String, idempotent: bool| prepare_statement(session, settings, cql, idempotent);
        Ok(Self {
            insert_message: prepare(
                format!(
                    "INSERT INTO {keyspace}.messages (stream_id, bucket, created_at, message_id, content, updated_at, \
                     sender_id, sender_username, sender_name, sender_surname, sender_photo, sender_availability) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TTL ?"
                ),
                true,
            )
            .await?,
            insert_bucket: prepare(
                format!(
                    "INSERT INTO {keyspace}.stream_buckets (stream_id, bucket_end, bucket) VALUES (?, ?, ?) USING TTL ?"
                ),
                true,
            )
            .await?,
            newest_buckets: prepare(
                format!(
                    "SELECT bucket_end, bucket FROM {keyspace}.stream_buckets WHERE stream_id = ? LIMIT ?"
                ),
                true,
            )
            .await?,
            older_buckets: prepare(
                format!(
                    "SELECT bucket_end, bucket FROM {keyspace}.stream_buckets \
                     WHERE stream_id = ? AND (bucket_end, bucket) < (?, ?) LIMIT ?"
                ),
                true,
            )
            .await?,
            bucket_messages: prepare(
                format!(
                    "SELECT message_id, created_at, updated_at, content, sender_id, sender_username, sender_name, \
                     sender_surname, sender_photo, sender_availability FROM {keyspace}.messages \
                     WHERE stream_id = ? AND bucket = ? LIMIT ?"
                ),
                true,
            )
            .await?,
            health: prepare("SELECT release_version FROM system.local".into(), true).await?,
        })
    }
}

/// Prepares `cql` once with the configured consistency and timeout.
async fn prepare_statement(
    session: &Session,
    settings: &ScyllaSettings,
    cql: String,
    idempotent: bool,
) -> Result<PreparedStatement, StorageError> {
    let mut statement = session
        .prepare(cql.clone())
        .await
        .map_err(|error| errors::prepare(&cql, error))?;
    statement.set_consistency(settings.consistency.into());
    statement.set_is_idempotent(idempotent);
    statement.set_request_timeout(Some(settings.request_timeout));
    Ok(statement)
}

fn decode_row(stream: StreamId, row: MessageRow) -> Result<ChatMessage, StorageError> {
    let (
        id,
        created_at,
        updated_at,
        content,
        sender_id,
        username,
        name,
        surname,
        photo,
        availability,
    ) = row;
    let corrupt = |what: &str| StorageError::Corrupt(format!("message row: invalid {what}"));
    let profile_photo = match photo {
        Some(bytes) => Some(ProfilePhoto::from(
            pb::ProfilePhoto::decode(bytes.as_slice()).map_err(|_| corrupt("sender_photo"))?,
        )),
        None => None,
    };
    Ok(ChatMessage {
        id: MessageId::parse(&id).map_err(|_| corrupt("message_id"))?,
        stream_id: stream,
        content: MessageContent::parse(&content).map_err(|_| corrupt("content"))?,
        sender: Sender {
            id: UserId::parse(&sender_id).map_err(|_| corrupt("sender_id"))?,
            username,
            name,
            surname,
            profile_photo,
            availability_status: availability,
        },
        created_at: chrono::DateTime::from_timestamp_millis(created_at.0)
            .ok_or_else(|| corrupt("created_at"))?,
        updated_at: chrono::DateTime::from_timestamp_millis(updated_at.0)
            .ok_or_else(|| corrupt("updated_at"))?,
    })
}

/// `Some` as a set value, `None` as unset: an unknown field writes nothing.
fn set_or_unset<T>(value: Option<T>) -> MaybeUnset<T> {
    value.map_or(MaybeUnset::Unset, MaybeUnset::Set)
}

#[async_trait]
impl MessageStore for ScyllaStore {
    async fn append(&self, message: &ChatMessage) -> Result<(), StorageError> {
        let created_ms = message.created_at.timestamp_millis();
        let bucket = Bucket::containing(created_ms, self.bucket_width_ms);
        self.index_bucket(&message.stream_id, bucket).await?;

        let sender = &message.sender;
        let photo = sender
            .profile_photo
            .clone()
            .map(|photo| pb::ProfilePhoto::from(photo).encode_to_vec());
        let values = (
            message.stream_id.to_string(),
            bucket.start_ms,
            CqlTimestamp(created_ms),
            message.id.to_string(),
            message.content.as_str(),
            CqlTimestamp(message.updated_at.timestamp_millis()),
            sender.id.to_string(),
            set_or_unset(sender.username.as_deref()),
            set_or_unset(sender.name.as_deref()),
            set_or_unset(sender.surname.as_deref()),
            set_or_unset(photo),
            set_or_unset(sender.availability_status.as_deref()),
            self.ttl_secs,
        );
        self.session
            .execute_unpaged(&self.statements.insert_message, values)
            .await
            .map_err(|error| errors::execution("storing a message", error))?;
        Ok(())
    }

    async fn newest(
        &self,
        stream: &StreamId,
        limit: usize,
    ) -> Result<Vec<ChatMessage>, StorageError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let row_limit = i32::try_from(limit).unwrap_or(i32::MAX);
        let mut collected: Vec<ChatMessage> = Vec::new();
        let mut last_bucket = None;
        loop {
            let page = self.buckets(stream, last_bucket, row_limit).await?;
            let exhausted = page.len() < limit;
            for round in page.chunks(BUCKETS_PER_ROUND) {
                if is_complete(&collected, limit, round[0].end_ms) {
                    return Ok(finish(collected, limit));
                }
                let fetched = try_join_all(
                    round
                        .iter()
                        .map(|bucket| self.bucket_messages(stream, *bucket, row_limit)),
                )
                .await?;
                collected.extend(fetched.into_iter().flatten());
                sort_newest_first(&mut collected);
                last_bucket = round.last().copied();
            }
            if exhausted || last_bucket.is_none() {
                return Ok(finish(collected, limit));
            }
        }
    }

    async fn check_health(&self) -> Result<(), StorageError> {
        self.session
            .execute_unpaged(&self.statements.health, ())
            .await
            .map_err(|error| errors::execution("health check", error))?;
        Ok(())
    }
}

/// Whether the newest `limit` messages are known: the `limit`-th newest
/// collected message is at or after `next_end`, the end of the next bucket
/// to read, and every message in that bucket or later ones is older.
fn is_complete(collected: &[ChatMessage], limit: usize, next_end: i64) -> bool {
    collected
        .get(limit - 1)
        .is_some_and(|message| message.created_at.timestamp_millis() >= next_end)
}

fn sort_newest_first(messages: &mut Vec<ChatMessage>) {
    messages.sort_by_key(|message| std::cmp::Reverse((message.created_at, message.id)));
    // One partition may be listed under several index rows (after a change of
    // bucket width); its messages are then read twice.
    messages.dedup_by(|a, b| a.id == b.id);
}

fn finish(mut messages: Vec<ChatMessage>, limit: usize) -> Vec<ChatMessage> {
    messages.truncate(limit);
    messages
}
