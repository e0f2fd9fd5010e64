//! The embedded store: fjall, a pure-Rust LSM-tree, on local disk.
//!
//! Why fjall over redb: chat is append-heavy and read-newest. An LSM tree
//! turns appends into sequential journal writes, and on this machine fjall
//! commits durable groups about 2.6x faster than redb (ceilings.md: ~220k/s vs
//! ~83k/s in groups of 64) while a newest-N read stays one reverse range scan.
//!
//! Durability: every durable write goes through one writer thread that
//! commits waiting writes as one batch with one journal sync (`writer`), and
//! answers only after that sync. A keyed send's key record is decided and
//! written by that writer in the same batch as its message (`idempotency`).
//! Faults: a full disk or a failed write makes
//! the store refuse writes with UNAVAILABLE and report unhealthy until it has
//! reopened its database (`lifecycle`, `space`). Integrity: each open reports
//! at WARN what fjall discarded from damaged journal tails and whether
//! acknowledged writes are missing (`integrity`), and a background scan
//! reads every record once so that a damaged table file shows at start
//! (`verify`).

use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;

use async_trait::async_trait;
use fjall::PersistMode;
use tokio::sync::{mpsc, oneshot};

mod idempotency;
mod integrity;
mod lifecycle;
mod space;
mod state;
mod verify;
mod writer;

pub use integrity::RecoveryReport;
pub use space::{DEFAULT_MIN_FREE_BYTES, Reserve};
pub use verify::Verification;

use super::codec::{MESSAGE_KEY_LEN, decode_message, encode_message, message_key, position_key};
use super::{IdempotencyStore, KeyedAppend, MessageStore, PageStart, StorageError};
use crate::domain::{ChatMessage, IdempotencyKey, StreamId, UserId};
use idempotency::KeyClaim;
use lifecycle::Lifecycle;
use state::read_error;
use writer::{Job, Target, Write};

/// How many writes may wait for the writer. When full, senders wait their
/// turn (backpressure) instead of growing memory.
const QUEUE_CAPACITY: usize = 8192;

/// Chat messages and chat state in a fjall database under a data directory.
pub struct EmbeddedStore {
    lifecycle: Arc<Lifecycle>,
    // `Option` so that `Drop` can close the queue before joining the writer.
    queue: Option<mpsc::Sender<Job>>,
    writer: Option<JoinHandle<()>>,
    /// The start-up scan of every record (`verify`).
    scan: Option<verify::Scan>,
}

impl EmbeddedStore {
    /// Opens (or creates) the store in `data_dir`, recovering its journal,
    /// with the default free-space reserve.
    pub fn open(data_dir: &Path) -> Result<Self, StorageError> {
        Self::open_with_reserve(data_dir, Reserve::Default)
    }

    /// As [`EmbeddedStore::open`], keeping `reserve` free on the filesystem.
    pub fn open_with_reserve(data_dir: &Path, reserve: Reserve) -> Result<Self, StorageError> {
        std::fs::create_dir_all(data_dir).map_err(|error| {
            StorageError::Unavailable(format!(
                "cannot create data directory {}: {error}",
                data_dir.display()
            ))
        })?;
        let lifecycle = Arc::new(Lifecycle::open(data_dir, reserve)?);
        let (queue, receiver) = mpsc::channel(QUEUE_CAPACITY);
        let writer = std::thread::Builder::new()
            .name("embedded-store-writer".into())
            .spawn({
                let lifecycle = lifecycle.clone();
                // The runtime the store is opened in answers each group (see
                // `writer`); none outside one (tools), then the writer does.
                let runtime = tokio::runtime::Handle::try_current().ok();
                move || writer::run(lifecycle, receiver, runtime)
            })
            .map_err(|error| StorageError::Internal(format!("cannot start writer: {error}")))?;
        let scan = verify::Scan::start(lifecycle.handles()?, lifecycle.scan_cancel());
        Ok(Self {
            lifecycle,
            queue: Some(queue),
            writer: Some(writer),
            scan: Some(scan),
        })
    }

    /// How the start-up verification scan ended, once it has.
    pub fn verification(&self) -> Option<Verification> {
        self.scan.as_ref().and_then(verify::Scan::outcome)
    }

    /// Writes the messages held in memory (and in the journal) out to table
    /// files and waits for it: before copying the data directory, and for
    /// tests that need table files.
    pub fn flush(&self) -> Result<(), StorageError> {
        let handles = self.lifecycle.handles()?;
        handles
            .messages
            .rotate_memtable_and_wait()
            .map_err(|error| StorageError::Unavailable(format!("embedded store flush: {error}")))
    }

    /// What the latest open (or reopen) recovered and discarded.
    pub fn recovery_report(&self) -> RecoveryReport {
        self.lifecycle.last_report()
    }

    /// One durable write through the writer thread; returns after its sync.
    async fn write(
        &self,
        target: Target,
        key: Vec<u8>,
        value: Option<Vec<u8>>,
    ) -> Result<(), StorageError> {
        self.submit(Write { target, key, value }, None)
            .await
            .map(|_| ())
    }

    /// Hands one write (with the key it claims, for a keyed send) to the
    /// writer thread and waits for its commit.
    async fn submit(
        &self,
        write: Write,
        claim: Option<KeyClaim>,
    ) -> Result<KeyedAppend, StorageError> {
        let queue = self
            .queue
            .as_ref()
            .ok_or_else(|| StorageError::Unavailable("store is closing".into()))?;
        let (done, committed) = oneshot::channel();
        let job = Job::Write { write, claim, done };
        queue
            .send(job)
            .await
            .map_err(|_| StorageError::Unavailable("embedded store writer stopped".into()))?;
        committed
            .await
            .map_err(|_| StorageError::Unavailable("embedded store writer stopped".into()))?
    }

    /// Asks the writer to reopen the database if a fault is pending.
    fn nudge_writer(&self) {
        if let Some(queue) = &self.queue {
            // A full queue means writes are coming: they try the reopen.
            let _ = queue.try_send(Job::Heal);
        }
    }
}

#[async_trait]
impl IdempotencyStore for EmbeddedStore {
    async fn keyed_message(
        &self,
        stream: &StreamId,
        user: &UserId,
        key: &IdempotencyKey,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<ChatMessage>, StorageError> {
        let handles = self.lifecycle.handles()?;
        handles
            .idempotency
            .message(stream, user, key, now.timestamp_millis())
    }

    async fn append_keyed(
        &self,
        message: &ChatMessage,
        key: &IdempotencyKey,
        window: std::time::Duration,
    ) -> Result<KeyedAppend, StorageError> {
        let write = Write {
            target: Target::Messages,
            key: message_key(message).to_vec(),
            value: Some(encode_message(message)),
        };
        self.submit(write, Some(KeyClaim::new(message, key, window)))
            .await
    }
}

impl Drop for EmbeddedStore {
    fn drop(&mut self) {
        // Closing the queue lets the writer finish what is queued and exit;
        // joining makes sure the database is closed before anyone reopens it.
        drop(self.scan.take());
        drop(self.queue.take());
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

#[async_trait]
impl MessageStore for EmbeddedStore {
    async fn append(&self, message: &ChatMessage) -> Result<(), StorageError> {
        self.write(
            Target::Messages,
            message_key(message).to_vec(),
            Some(encode_message(message)),
        )
        .await
    }

    async fn page(
        &self,
        stream: &StreamId,
        start: PageStart,
        limit: usize,
    ) -> Result<Vec<ChatMessage>, StorageError> {
        let handles = self.lifecycle.handles()?;
        let stream = *stream;
        let prefix = *stream.as_bytes();
        // The stream's keys are `prefix ++ 20 bytes`; these bound the range.
        let mut stream_end = [0xffu8; MESSAGE_KEY_LEN];
        stream_end[..12].copy_from_slice(&prefix);
        // fjall reads may touch disk: keep them off the async workers.
        tokio::task::spawn_blocking(move || {
            let messages = &handles.messages;
            let decode = |entry: fjall::Guard| {
                let (_key, value) = entry.into_inner().map_err(read_error)?;
                decode_message(&value)
            };
            match start {
                PageStart::Newest => messages
                    .prefix(prefix)
                    .rev()
                    .take(limit)
                    .map(decode)
                    .collect(),
                PageStart::Before(position) => {
                    let bound = position_key(&stream, &position);
                    messages
                        .range(prefix.to_vec()..bound.to_vec())
                        .rev()
                        .take(limit)
                        .map(decode)
                        .collect()
                }
                PageStart::After(position) => {
                    let bound = position_key(&stream, &position);
                    messages
                        .range((
                            Bound::Excluded(bound.to_vec()),
                            Bound::Included(stream_end.to_vec()),
                        ))
                        .take(limit)
                        .map(decode)
                        .collect()
                }
            }
        })
        .await
        .map_err(|error| StorageError::Internal(format!("read task failed: {error}")))?
    }

    async fn delete(&self, message: &ChatMessage) -> Result<(), StorageError> {
        self.write(Target::Messages, message_key(message).to_vec(), None)
            .await
    }

    /// Unhealthy while writes are refused (a pending fault, a nearly full
    /// disk) or the writer is gone. A fault also nudges the writer to try
    /// reopening, so the store heals without traffic.
    async fn check_health(&self) -> Result<(), StorageError> {
        match &self.queue {
            Some(queue) if !queue.is_closed() => {}
            _ => {
                return Err(StorageError::Unavailable(
                    "embedded store writer stopped".into(),
                ));
            }
        }
        if let Some(fault) = self.lifecycle.fault() {
            self.nudge_writer();
            return Err(StorageError::Unavailable(fault));
        }
        let lifecycle = self.lifecycle.clone();
        tokio::task::spawn_blocking(move || {
            lifecycle.reserve().check(lifecycle.data_dir(), 0)?;
            // A background flush or compaction that failed has poisoned the
            // database: the next write would fail. `persist` answers
            // `Poisoned` then, and otherwise costs nothing (the journal's
            // buffer is flushed after every write).
            let handles = lifecycle.handles()?;
            handles
                .database
                .persist(PersistMode::Buffer)
                .map_err(|error| {
                    lifecycle.record_failure(&error);
                    StorageError::Unavailable(format!("embedded store cannot write: {error}"))
                })
        })
        .await
        .map_err(|error| StorageError::Internal(format!("health task failed: {error}")))?
        .inspect_err(|_| self.nudge_writer())
    }
}
