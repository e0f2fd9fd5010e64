//! The single writer thread: group commit of every durable write, and the
//! only place the database is reopened after a fault.
//!
//! Durability uses group commit: the writer takes every write that is
//! waiting, writes them as one batch and syncs the journal once (`fsync`),
//! then acknowledges each. A write is acknowledged only after its sync, so it
//! survives `kill -9`; concurrent sends share the sync's cost instead of
//! paying ~0.15 ms each. Admin writes (streams, bans, profiles, moderation
//! events, deletions) go through the same queue: they are rare, and one
//! writer means a reopen never races a commit.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use fjall::{Keyspace, PersistMode};
use tokio::sync::{mpsc, oneshot};

use super::integrity::ACKNOWLEDGED_KEY;
use super::lifecycle::{Handles, Lifecycle};
use crate::storage::StorageError;

/// How many writes one journal sync may cover. Large enough that a burst
/// shares one sync; small enough that one batch's latency stays short.
const MAX_GROUP: usize = 1024;

/// Bytes a journal entry adds to its key and value (markers, lengths,
/// keyspace id), rounded up: only used to foresee a full disk.
const ENTRY_OVERHEAD: u64 = 32;

/// The keyspace a write goes to, resolved against the database open at
/// commit time (it changes when the store reopens).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Target {
    Messages,
    Events,
    Streams,
    Bans,
    Profiles,
}

impl Target {
    fn keyspace(self, handles: &Handles) -> &Keyspace {
        match self {
            Self::Messages => &handles.messages,
            Self::Events => &handles.state.events,
            Self::Streams => &handles.state.streams,
            Self::Bans => &handles.state.bans,
            Self::Profiles => &handles.state.profiles,
        }
    }
}

/// One durable write: a key set to a value, or removed.
pub(super) struct Write {
    pub(super) target: Target,
    pub(super) key: Vec<u8>,
    /// `None` removes the key.
    pub(super) value: Option<Vec<u8>>,
}

impl Write {
    fn size(&self) -> u64 {
        (self.key.len() + self.value.as_ref().map_or(0, Vec::len)) as u64 + ENTRY_OVERHEAD
    }
}

pub(super) enum Job {
    Write {
        write: Write,
        done: oneshot::Sender<Result<(), StorageError>>,
    },
    /// The health check saw a fault: reopen if it is time.
    Heal,
}

/// The group-commit loop. Ends when the store is dropped (the queue closes).
pub(super) fn run(lifecycle: Arc<Lifecycle>, mut receiver: mpsc::Receiver<Job>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while let Some(first) = receiver.blocking_recv() {
        let mut heal_requested = false;
        let mut take = |job: Job, group: &mut Vec<_>| match job {
            Job::Write { write, done } => group.push((write, done)),
            Job::Heal => heal_requested = true,
        };
        take(first, &mut group);
        while group.len() < MAX_GROUP {
            match receiver.try_recv() {
                Ok(next) => take(next, &mut group),
                Err(_) => break,
            }
        }
        if group.is_empty() {
            if heal_requested {
                let _ = lifecycle.heal();
            }
            continue;
        }

        let outcome = commit(&lifecycle, &group);
        for (_, done) in group.drain(..) {
            // A send error means the caller gave up waiting; the data is
            // committed (or not) all the same.
            let _ = done.send(
                outcome
                    .as_ref()
                    .map(|_| ())
                    .map_err(|error| StorageError::Unavailable(error.clone())),
            );
        }
    }
}

/// Commits one group with a journal sync; the error is the client-safe
/// reason kept in the logs (it becomes UNAVAILABLE).
fn commit(
    lifecycle: &Lifecycle,
    group: &[(Write, oneshot::Sender<Result<(), StorageError>>)],
) -> Result<(), String> {
    lifecycle.heal().map_err(|error| error.to_string())?;
    let incoming: u64 = group.iter().map(|(write, _)| write.size()).sum();
    lifecycle
        .reserve()
        .check(lifecycle.data_dir(), incoming)
        .map_err(|error| error.to_string())?;
    let handles = lifecycle.handles().map_err(|error| error.to_string())?;

    let acknowledged = handles.acknowledged.load(Ordering::Relaxed) + group.len() as u64;
    let mut batch = handles
        .database
        .batch()
        .durability(Some(PersistMode::SyncAll));
    for (write, _) in group {
        let keyspace = write.target.keyspace(&handles);
        match &write.value {
            Some(value) => batch.insert(keyspace, write.key.as_slice(), value.as_slice()),
            None => batch.remove(keyspace, write.key.as_slice()),
        }
    }
    batch.insert(
        &handles.integrity,
        ACKNOWLEDGED_KEY,
        acknowledged.to_be_bytes(),
    );
    match batch.commit() {
        Ok(()) => {
            handles.acknowledged.store(acknowledged, Ordering::Relaxed);
            lifecycle.acknowledge(acknowledged);
            Ok(())
        }
        Err(error) => {
            tracing::error!(%error, group_size = group.len(), "embedded store commit failed");
            lifecycle.record_failure(&error);
            Err(format!("embedded store commit failed: {error}"))
        }
    }
}
