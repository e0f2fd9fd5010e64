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
//!
//! A committed group is answered by one task on the runtime the store was
//! opened in, not by the writer thread waking each sender: every wake from
//! this thread is an `eventfd` write that can switch the core to the async
//! worker and back (one switch per send when both share a core, as in the
//! benchmark); one task wakes the worker once, and it then runs the group's
//! handlers back to back.
//!
//! Keyed sends are decided here too: a claim (`idempotency::KeyClaim`) rides
//! with its message, is checked against the keys in the database open at
//! commit time and the keys claimed earlier in the same group, and its record
//! joins the message in the same batch. So concurrent sends with one key
//! store exactly one message, and a crash or a reopen keeps both or neither.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use fjall::{Keyspace, PersistMode};
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot};

use super::idempotency::{GroupClaims, KeyClaim, Pruner};
use super::integrity::ACKNOWLEDGED_KEY;
use super::lifecycle::{Handles, Lifecycle};
use crate::storage::{KeyedAppend, StorageError};

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
        /// Set for a keyed send: the write is made only if its key is free;
        /// otherwise the answer is the message that holds the key.
        claim: Option<KeyClaim>,
        done: oneshot::Sender<Result<KeyedAppend, StorageError>>,
    },
    /// The health check saw a fault: reopen if it is time.
    Heal,
}

/// A write waiting in the current group.
struct Pending {
    write: Write,
    claim: Option<KeyClaim>,
    done: oneshot::Sender<Result<KeyedAppend, StorageError>>,
}

impl Pending {
    fn size(&self) -> u64 {
        self.write.size() + self.claim.as_ref().map_or(0, KeyClaim::size)
    }
}

/// Each write's answer, once the group's commit succeeded: `Stored`, the
/// message that already holds its key, or why its key could not be decided.
type Decisions = Vec<Result<KeyedAppend, String>>;

/// One group's answers, each sent to its waiting caller when the value is
/// dropped: normally inside the task that [`answer`] spawns, else (a
/// runtime that is shutting down drops the task unpolled) wherever it is
/// dropped, so no caller is ever left without its answer.
struct Answers(Vec<(Answer, AppendResult)>);

/// What a caller of the writer waits for: its write's outcome.
type AppendResult = Result<KeyedAppend, StorageError>;

/// Where that caller waits for it.
type Answer = oneshot::Sender<AppendResult>;

impl Drop for Answers {
    fn drop(&mut self) {
        for (done, answer) in self.0.drain(..) {
            // A send error means the caller gave up waiting; the data is
            // committed all the same.
            let _ = done.send(answer);
        }
    }
}

/// Sends a group's answers from a task on `runtime` (one wake of the async
/// worker), or from here without one.
fn answer(runtime: Option<&Handle>, answers: Answers) {
    match runtime {
        Some(runtime) => {
            runtime.spawn(async move { drop(answers) });
        }
        None => drop(answers),
    }
}

/// The group-commit loop. Ends when the store is dropped (the queue closes).
pub(super) fn run(
    lifecycle: Arc<Lifecycle>,
    mut receiver: mpsc::Receiver<Job>,
    runtime: Option<Handle>,
) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    let mut pruner = Pruner::new();
    while let Some(first) = receiver.blocking_recv() {
        let mut heal_requested = false;
        let mut take = |job: Job, group: &mut Vec<_>| match job {
            Job::Write { write, claim, done } => group.push(Pending { write, claim, done }),
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

        let answers = match commit(&lifecycle, &group) {
            Ok(decisions) => group
                .drain(..)
                .zip(decisions)
                .map(|(pending, decision)| (pending.done, decision.map_err(StorageError::Internal)))
                .collect(),
            Err(error) => group
                .drain(..)
                .map(|pending| (pending.done, Err(StorageError::Unavailable(error.clone()))))
                .collect(),
        };
        answer(runtime.as_ref(), Answers(answers));
        pruner.run_if_due(&lifecycle);
    }
}

/// Commits one group with a journal sync; the error is the client-safe
/// reason kept in the logs (it becomes UNAVAILABLE).
fn commit(lifecycle: &Lifecycle, group: &[Pending]) -> Result<Decisions, String> {
    lifecycle.heal().map_err(|error| error.to_string())?;
    let incoming: u64 = group.iter().map(Pending::size).sum();
    lifecycle
        .reserve()
        .check(lifecycle.data_dir(), incoming)
        .map_err(|error| error.to_string())?;
    let handles = lifecycle.handles().map_err(|error| error.to_string())?;

    // Keys are checked in the database open now (after any reopen), so a
    // claim committed before a fault still holds its key afterwards.
    let mut claims = GroupClaims::new(&handles.idempotency);
    let decisions: Decisions = group
        .iter()
        .map(|pending| claims.decide(pending.claim.as_ref()))
        .collect();
    let mut batch = handles
        .database
        .batch()
        .durability(Some(PersistMode::SyncAll));
    let mut written = 0u64;
    for (pending, decision) in group.iter().zip(&decisions) {
        if decision != &Ok(KeyedAppend::Stored) {
            continue;
        }
        let write = &pending.write;
        let keyspace = write.target.keyspace(&handles);
        match &write.value {
            Some(value) => batch.insert(keyspace, write.key.as_slice(), value.as_slice()),
            None => batch.remove(keyspace, write.key.as_slice()),
        }
        if let Some(claim) = &pending.claim {
            claims.write(&mut batch, claim);
        }
        written += 1;
    }
    // Replays store nothing, so they are not counted; a group of replays
    // still commits (the unchanged count, with a sync) so that no answer goes
    // out before a journal sync.
    let acknowledged = handles.acknowledged.load(Ordering::Relaxed) + written;
    batch.insert(
        &handles.integrity,
        ACKNOWLEDGED_KEY,
        acknowledged.to_be_bytes(),
    );
    match batch.commit() {
        Ok(()) => {
            handles.acknowledged.store(acknowledged, Ordering::Relaxed);
            lifecycle.acknowledge(acknowledged);
            Ok(decisions)
        }
        Err(error) => {
            tracing::error!(%error, group_size = group.len(), "embedded store commit failed");
            lifecycle.record_failure(&error);
            Err(format!("embedded store commit failed: {error}"))
        }
    }
}
