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

use crate::domain::{ChatMessage, StreamId};

pub mod codec;
pub mod embedded;
pub mod scylla;

/// A shareable handle on whichever store the configuration chose.
pub type SharedStore = Arc<dyn MessageStore>;

/// Where chat messages live.
#[async_trait]
pub trait MessageStore: Send + Sync + 'static {
    /// Stores `message` durably: when this returns `Ok`, the message survives
    /// a crash of the process. Appending the same message (same stream,
    /// creation time and id) again is harmless, so callers may retry.
    async fn append(&self, message: &ChatMessage) -> Result<(), StorageError>;

    /// The newest `limit` messages of `stream`, newest first.
    async fn newest(
        &self,
        stream: &StreamId,
        limit: usize,
    ) -> Result<Vec<ChatMessage>, StorageError>;

    /// Whether the store can serve requests now (for health checks).
    async fn check_health(&self) -> Result<(), StorageError>;
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
