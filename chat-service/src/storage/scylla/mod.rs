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
//! collections on the send path, except one LWT for a send that carries an
//! idempotency key (`idempotency.rs`).
//!
//! Reads of the newest N walk the index in window-end order and read whole
//! buckets concurrently, a few at a time, stopping as soon as no remaining
//! bucket can hold a newer message. A stream silent for days costs one index
//! query plus one query per non-empty bucket needed, never a walk over time.

mod buckets;
mod errors;
mod idempotency;
pub mod schema;
mod settings;
mod state;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::future::try_join_all;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::statement::prepared::PreparedStatement;
use scylla::value::{CqlTimestamp, MaybeUnset};

pub use buckets::{Bucket, DEFAULT_BUCKET, MAX_BUCKET};
pub use schema::Replication;
pub use settings::{ConsistencyLevel, ScyllaSettings};

use super::records::Record;
use super::{MessageStore, PageStart, StorageError};
use crate::domain::{
    ChatMessage, MessageContent, MessageId, Position, ProfilePhoto, Sender, StreamId, UserId,
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
    idempotency_statements: idempotency::IdempotencyStatements,
    keyspace: String,
    bucket_width_ms: i64,
    /// Seconds; 0 means no expiry (CQL's own meaning of TTL 0).
    ttl_secs: i32,
    indexed_buckets: Mutex<HashSet<(StreamId, Bucket)>>,
}

struct Statements {
    insert_message: PreparedStatement,
    delete_message: PreparedStatement,
    insert_bucket: PreparedStatement,
    newest_buckets: PreparedStatement,
    buckets_ending_by: PreparedStatement,
    older_buckets: PreparedStatement,
    newer_buckets: PreparedStatement,
    bucket_messages: PreparedStatement,
    bucket_messages_before: PreparedStatement,
    bucket_messages_after: PreparedStatement,
    health: PreparedStatement,
}

/// Which part of the index a page reads, in which order.
#[derive(Debug, Clone, Copy)]
enum IndexQuery {
    /// Window end descending, from the newest.
    Newest,
    /// Window end descending, windows ending at or before this (ms).
    EndingBy(i64),
    /// Window end descending, strictly after this row in that order.
    OlderThan(Bucket),
    /// Window end ascending, strictly after this row in that order.
    NewerThan(Bucket),
}

/// The columns message reads select, in [`MessageRow`]'s order.
const MESSAGE_COLUMNS: &str = "message_id, created_at, updated_at, content, sender_id, sender_username, \
     sender_name, sender_surname, sender_photo, sender_availability";

/// How many index rows one index query reads.
const INDEX_PAGE: i32 = 256;

/// The columns message reads select, in order.
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
        let idempotency_statements =
            idempotency::IdempotencyStatements::prepare(&session, settings).await?;
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
            idempotency_statements,
            keyspace: settings.keyspace.clone(),
            bucket_width_ms: i64::try_from(settings.bucket_width.as_millis()).unwrap_or(i64::MAX),
            ttl_secs: settings
                .ttl
                .map_or(0, |ttl| i32::try_from(ttl.as_secs()).unwrap_or(i32::MAX)),
            indexed_buckets: Mutex::new(HashSet::new()),
        })
    }

    /// Writes `message` (and its bucket's index row) with this TTL
    /// (seconds, 0: none).
    async fn insert_message(
        &self,
        message: &ChatMessage,
        ttl_secs: i32,
    ) -> Result<(), StorageError> {
        let created_ms = message.created_at.timestamp_millis();
        let bucket = Bucket::containing(created_ms, self.bucket_width_ms);
        self.index_bucket(&message.stream_id, bucket).await?;

        let sender = &message.sender;
        let photo = sender.profile_photo.as_ref().map(Record::encode_record);
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
            ttl_secs,
            // The creation time as write timestamp (µs): writing the same
            // message again (a replayed keyed send completing an interrupted
            // one) is then a true no-op, and never outlives a deletion.
            created_ms.saturating_mul(1000),
        );
        self.session
            .execute_unpaged(&self.statements.insert_message, values)
            .await
            .map_err(|error| errors::execution("storing a message", error))?;
        Ok(())
    }

    /// Writes `message` again, as found in an idempotency key, so that it
    /// expires when the original does; a message already past retention is
    /// not brought back.
    async fn complete_message(&self, message: &ChatMessage) -> Result<(), StorageError> {
        if self.ttl_secs == 0 {
            return self.insert_message(message, 0).await;
        }
        // Whole seconds left, rounded down: CQL expiry has second precision,
        // and the rewrite must never outlive the original.
        let age_ms = (chrono::Utc::now() - message.created_at)
            .num_milliseconds()
            .max(0);
        let left_secs = (i64::from(self.ttl_secs) * 1000 - age_ms) / 1000;
        if left_secs <= 0 {
            return Ok(());
        }
        let ttl_secs = i32::try_from(left_secs).unwrap_or(i32::MAX);
        self.insert_message(message, ttl_secs).await
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

    /// One page of the stream's bucket index.
    async fn buckets(
        &self,
        stream: &StreamId,
        query: IndexQuery,
        limit: i32,
    ) -> Result<Vec<Bucket>, StorageError> {
        let statements = &self.statements;
        let stream_id = stream.to_string();
        let result = match query {
            IndexQuery::Newest => {
                self.session
                    .execute_unpaged(&statements.newest_buckets, (stream_id, limit))
                    .await
            }
            IndexQuery::EndingBy(end_ms) => {
                self.session
                    .execute_unpaged(&statements.buckets_ending_by, (stream_id, end_ms, limit))
                    .await
            }
            IndexQuery::OlderThan(last) => {
                self.session
                    .execute_unpaged(
                        &statements.older_buckets,
                        (stream_id, last.end_ms, last.start_ms, limit),
                    )
                    .await
            }
            IndexQuery::NewerThan(last) => {
                self.session
                    .execute_unpaged(
                        &statements.newer_buckets,
                        (stream_id, last.end_ms, last.start_ms, limit),
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

    /// Up to `limit` messages of one bucket: newest first (`Newest`,
    /// `Before`) or oldest first (`After`), beyond the page's position.
    async fn bucket_messages(
        &self,
        stream: &StreamId,
        bucket: Bucket,
        start: PageStart,
        limit: i32,
    ) -> Result<Vec<ChatMessage>, StorageError> {
        let statements = &self.statements;
        let (stream_id, bucket_start) = (stream.to_string(), bucket.start_ms);
        let result = match start {
            PageStart::Newest => {
                self.session
                    .execute_unpaged(
                        &statements.bucket_messages,
                        (stream_id, bucket_start, limit),
                    )
                    .await
            }
            PageStart::Before(position) => {
                self.session
                    .execute_unpaged(
                        &statements.bucket_messages_before,
                        (
                            stream_id,
                            bucket_start,
                            CqlTimestamp(position.created_ms),
                            position.id.to_string(),
                            limit,
                        ),
                    )
                    .await
            }
            PageStart::After(position) => {
                self.session
                    .execute_unpaged(
                        &statements.bucket_messages_after,
                        (
                            stream_id,
                            bucket_start,
                            CqlTimestamp(position.created_ms),
                            position.id.to_string(),
                            limit,
                        ),
                    )
                    .await
            }
        }
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

    /// Newest first: walks the index by window end, descending. A bucket
    /// ending at E holds only messages before E, so once `limit` messages at
    /// or after the next bucket's end are in hand, nothing later can beat them.
    async fn page_backward(
        &self,
        stream: &StreamId,
        start: PageStart,
        limit: usize,
    ) -> Result<Vec<ChatMessage>, StorageError> {
        let row_limit = i32::try_from(limit).unwrap_or(i32::MAX);
        // Before a position P only buckets starting at or before P matter;
        // they end before P + MAX_BUCKET.
        let (mut query, first_start_allowed) = match start {
            PageStart::Before(position) => {
                let guard = i64::try_from(MAX_BUCKET.as_millis()).unwrap_or(i64::MAX);
                (
                    IndexQuery::EndingBy(position.created_ms.saturating_add(guard)),
                    position.created_ms,
                )
            }
            _ => (IndexQuery::Newest, i64::MAX),
        };
        let mut collected: Vec<ChatMessage> = Vec::new();
        loop {
            let page = self.buckets(stream, query, INDEX_PAGE).await?;
            let exhausted = page.len() < INDEX_PAGE as usize;
            let relevant: Vec<Bucket> = page
                .iter()
                .copied()
                .filter(|bucket| bucket.start_ms <= first_start_allowed)
                .collect();
            for round in growing_rounds(&relevant) {
                if is_complete_backward(&collected, limit, round[0].end_ms) {
                    return Ok(finish(collected, limit));
                }
                let fetched = try_join_all(
                    round
                        .iter()
                        .map(|bucket| self.bucket_messages(stream, *bucket, start, row_limit)),
                )
                .await?;
                collected.extend(fetched.into_iter().flatten());
                sort_and_dedup(&mut collected, Direction::Backward);
            }
            match page.last() {
                Some(last) if !exhausted => query = IndexQuery::OlderThan(*last),
                _ => return Ok(finish(collected, limit)),
            }
        }
    }

    /// Oldest first after a position: walks the index by window end,
    /// ascending, reading each index page's buckets in order of their start.
    /// A bucket starting at S holds only messages at or after S, so once
    /// `limit` messages before the next bucket's start are in hand (and before
    /// any unread bucket could start), nothing later can beat them.
    async fn page_forward(
        &self,
        stream: &StreamId,
        position: Position,
        limit: usize,
    ) -> Result<Vec<ChatMessage>, StorageError> {
        let row_limit = i32::try_from(limit).unwrap_or(i32::MAX);
        let guard = i64::try_from(MAX_BUCKET.as_millis()).unwrap_or(i64::MAX);
        let mut query = IndexQuery::NewerThan(Bucket {
            start_ms: i64::MAX,
            end_ms: position.created_ms,
        });
        let mut collected: Vec<ChatMessage> = Vec::new();
        loop {
            let mut page = self.buckets(stream, query, INDEX_PAGE).await?;
            let exhausted = page.len() < INDEX_PAGE as usize;
            let last = page.last().copied();
            // Unread index rows end after `last`, so start after its end
            // minus the widest bucket.
            let unread_start = match (exhausted, last) {
                (false, Some(last)) => last.end_ms.saturating_sub(guard),
                _ => i64::MAX,
            };
            page.sort_by_key(|bucket| (bucket.start_ms, bucket.end_ms));
            for round in page.chunks(BUCKETS_PER_ROUND) {
                if is_complete_forward(&collected, limit, round[0].start_ms.min(unread_start)) {
                    return Ok(finish(collected, limit));
                }
                let fetched = try_join_all(round.iter().map(|bucket| {
                    self.bucket_messages(stream, *bucket, PageStart::After(position), row_limit)
                }))
                .await?;
                collected.extend(fetched.into_iter().flatten());
                sort_and_dedup(&mut collected, Direction::Forward);
            }
            match last {
                Some(last) if !exhausted => {
                    if is_complete_forward(&collected, limit, unread_start) {
                        return Ok(finish(collected, limit));
                    }
                    query = IndexQuery::NewerThan(last);
                }
                _ => return Ok(finish(collected, limit)),
            }
        }
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
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TTL ? AND TIMESTAMP ?"
                ),
                true,
            )
            .await?,
            delete_message: prepare(
                format!(
                    "DELETE FROM {keyspace}.messages WHERE stream_id = ? AND bucket = ? AND created_at = ? AND message_id = ?"
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
            buckets_ending_by: prepare(
                format!(
                    "SELECT bucket_end, bucket FROM {keyspace}.stream_buckets \
                     WHERE stream_id = ? AND bucket_end <= ? LIMIT ?"
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
            newer_buckets: prepare(
                format!(
                    "SELECT bucket_end, bucket FROM {keyspace}.stream_buckets \
                     WHERE stream_id = ? AND (bucket_end, bucket) > (?, ?) \
                     ORDER BY bucket_end ASC, bucket ASC LIMIT ?"
                ),
                true,
            )
            .await?,
            bucket_messages: prepare(
                format!(
                    "SELECT {MESSAGE_COLUMNS} FROM {keyspace}.messages WHERE stream_id = ? AND bucket = ? LIMIT ?"
                ),
                true,
            )
            .await?,
            bucket_messages_before: prepare(
                format!(
                    "SELECT {MESSAGE_COLUMNS} FROM {keyspace}.messages \
                     WHERE stream_id = ? AND bucket = ? AND (created_at, message_id) < (?, ?) LIMIT ?"
                ),
                true,
            )
            .await?,
            bucket_messages_after: prepare(
                format!(
                    "SELECT {MESSAGE_COLUMNS} FROM {keyspace}.messages \
                     WHERE stream_id = ? AND bucket = ? AND (created_at, message_id) > (?, ?) \
                     ORDER BY created_at ASC, message_id ASC LIMIT ?"
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
    let profile_photo = photo
        .map(|bytes| ProfilePhoto::decode_record(&bytes))
        .transpose()?;
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
        self.insert_message(message, self.ttl_secs).await
    }

    async fn page(
        &self,
        stream: &StreamId,
        start: PageStart,
        limit: usize,
    ) -> Result<Vec<ChatMessage>, StorageError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        match start {
            PageStart::After(position) => self.page_forward(stream, position, limit).await,
            PageStart::Newest | PageStart::Before(_) => {
                self.page_backward(stream, start, limit).await
            }
        }
    }

    async fn delete(&self, message: &ChatMessage) -> Result<(), StorageError> {
        // The message lives in a bucket whose window holds its time: find
        // those windows in the index (one, or two after a width change).
        let created_ms = message.created_at.timestamp_millis();
        let after_created = IndexQuery::NewerThan(Bucket {
            start_ms: i64::MAX,
            end_ms: created_ms,
        });
        let candidates = self
            .buckets(&message.stream_id, after_created, INDEX_PAGE)
            .await?;
        let holding = candidates
            .into_iter()
            .filter(|bucket| bucket.start_ms <= created_ms && created_ms < bucket.end_ms);
        for bucket in holding {
            let values = (
                message.stream_id.to_string(),
                bucket.start_ms,
                CqlTimestamp(created_ms),
                message.id.to_string(),
            );
            self.session
                .execute_unpaged(&self.statements.delete_message, values)
                .await
                .map_err(|error| errors::execution("deleting a message", error))?;
        }
        Ok(())
    }

    async fn check_health(&self) -> Result<(), StorageError> {
        self.session
            .execute_unpaged(&self.statements.health, ())
            .await
            .map_err(|error| errors::execution("health check", error))?;
        Ok(())
    }
}

/// Splits buckets into rounds of 1, 2, 4, then [`BUCKETS_PER_ROUND`]: the
/// newest bucket of a busy stream usually holds the whole page, so reading
/// eight at once would mostly read rows that are thrown away (measured in
/// BENCHMARKS.md, "Profile"); quiet streams still reach full concurrency
/// after three rounds.
fn growing_rounds(buckets: &[Bucket]) -> impl Iterator<Item = &[Bucket]> {
    let mut rest = buckets;
    let mut size = 1;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let (round, tail) = rest.split_at(size.min(rest.len()));
        rest = tail;
        size = (size * 2).min(BUCKETS_PER_ROUND);
        Some(round)
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Backward,
    Forward,
}

/// Backward: the `limit`-th newest message collected is at or after
/// `next_end`, and every message of the bucket ending there, or of later
/// buckets in the walk, is older.
fn is_complete_backward(collected: &[ChatMessage], limit: usize, next_end: i64) -> bool {
    collected
        .get(limit - 1)
        .is_some_and(|message| message.created_at.timestamp_millis() >= next_end)
}

/// Forward: the `limit`-th oldest message collected is before `next_start`,
/// where every remaining message is at or after it.
fn is_complete_forward(collected: &[ChatMessage], limit: usize, next_start: i64) -> bool {
    collected
        .get(limit - 1)
        .is_some_and(|message| message.created_at.timestamp_millis() < next_start)
}

fn sort_and_dedup(messages: &mut Vec<ChatMessage>, direction: Direction) {
    match direction {
        Direction::Backward => {
            messages.sort_by_key(|message| std::cmp::Reverse(message.position()))
        }
        Direction::Forward => messages.sort_by_key(ChatMessage::position),
    }
    // One partition may be listed under several index rows (after a change of
    // bucket width); its messages are then read twice.
    messages.dedup_by(|a, b| a.id == b.id);
}

fn finish(mut messages: Vec<ChatMessage>, limit: usize) -> Vec<ChatMessage> {
    messages.truncate(limit);
    messages
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_grow_from_one_bucket_to_the_full_concurrency() {
        let buckets: Vec<Bucket> = (0..20)
            .map(|index| Bucket {
                start_ms: index,
                end_ms: index + 1,
            })
            .collect();
        let sizes: Vec<usize> = growing_rounds(&buckets).map(<[Bucket]>::len).collect();
        assert_eq!(sizes, [1, 2, 4, 8, 5]);
        assert_eq!(growing_rounds(&[]).count(), 0);
    }
}
