//! The open fjall database, and how the store comes back after a failed write.
//!
//! What fjall does (3.1, `batch/mod.rs`, `keyspace/mod.rs`, `db.rs`): when a
//! journal write or sync fails, or a background flush or compaction worker
//! fails, it sets the database's poison flag, and from then on every write
//! (batch commit, insert, remove, persist) answers `Error::Poisoned` until the
//! process drops the `Database`; reads keep working. That is deliberate: a
//! failed write can leave half a batch in the journal, and appending after it
//! would bury the half batch mid-file, where recovery stops reading (so every
//! later write would be lost at the next open). There is no "unpoison".
//!
//! So the store reopens: the [`Lifecycle`] keeps the database behind a lock
//! and, once writes failed, marks a [`Fault`]. Writes are then refused with
//! UNAVAILABLE and the health check reports it, until the writer thread (on
//! the next write, or when the health check nudges it, with back-off) drops
//! the database and opens it again. Recovery replays the journal and cuts the
//! incomplete batch at its tail (reported by `integrity`), and a probe write
//! proves the disk takes writes again before the fault is cleared.
//!
//! Nothing acknowledged is lost by a reopen: a send is answered only after
//! its batch's journal sync, so every acknowledged write is in a complete,
//! synced batch that recovery replays. The failed batch was answered
//! UNAVAILABLE: it may or may not survive (if the failure was the sync
//! itself, the bytes can still reach the disk), which is why 503 means
//! "outcome unknown: retry with the same idempotency key".

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use rand::RngCore;

use super::idempotency::IdempotencyKeyspaces;
use super::integrity::{ACKNOWLEDGED_KEY, AcknowledgedRecord, JournalTails, RecoveryReport};
use super::space::{self, Reserve};
use super::state::StateKeyspaces;
use crate::storage::StorageError;

/// The first wait before reopening after a fault, doubled after each failed
/// attempt up to [`MAX_BACKOFF`]: a disk that stays full is not hammered.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// How long a reopen waits for in-flight reads to let go of the old database.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The probe written after a reopen. Larger than a filesystem page, and
/// random (the journal compresses values of 4 KiB and more), so that it needs
/// fresh blocks: a tiny probe could fit in the journal's last partly used
/// page of a still-full disk and declare it healthy.
const PROBE_BYTES: usize = 16 * 1024;

/// Everything open in one incarnation of the database.
pub(super) struct Handles {
    pub(super) database: Database,
    pub(super) messages: Keyspace,
    pub(super) state: StateKeyspaces,
    pub(super) idempotency: IdempotencyKeyspaces,
    pub(super) integrity: Keyspace,
    /// Acknowledged writes: recovered at open, then counted on by the
    /// writer thread (its only writer).
    pub(super) acknowledged: AtomicU64,
}

impl Handles {
    /// Opens (recovering) the database under `data_dir` and reports at WARN
    /// what recovery had to discard.
    fn open(data_dir: &Path) -> Result<(Self, RecoveryReport), StorageError> {
        let database_dir = data_dir.join("fjall");
        let tails = JournalTails::measure(&database_dir);
        let database = Database::builder(&database_dir)
            .open()
            .map_err(|error| open_error(&database_dir, error))?;
        let keyspace = |name: &str| {
            database
                .keyspace(name, KeyspaceCreateOptions::default)
                .map_err(|error| open_error(&database_dir, error))
        };
        let messages = keyspace("messages")?;
        let integrity = keyspace("integrity")?;
        let state =
            StateKeyspaces::open(&database).map_err(|error| open_error(&database_dir, error))?;
        let idempotency = IdempotencyKeyspaces::open(&database)
            .map_err(|error| open_error(&database_dir, error))?;
        let recovered = integrity
            .get(ACKNOWLEDGED_KEY)
            .map_err(|error| open_error(&database_dir, error))?
            .and_then(|bytes| <[u8; 8]>::try_from(bytes.as_ref()).ok())
            .map_or(0, u64::from_be_bytes);
        let report = RecoveryReport {
            discarded_tails: tails.discarded(),
            acknowledged: None,
            recovered,
        };
        let handles = Self {
            database,
            messages,
            state,
            idempotency,
            integrity,
            acknowledged: AtomicU64::new(recovered),
        };
        Ok((handles, report))
    }
}

impl Handles {
    /// Every keyspace the store uses.
    pub(super) fn all_keyspaces(&self) -> [&Keyspace; 9] {
        [
            &self.messages,
            &self.state.events,
            &self.state.streams,
            &self.state.bans,
            &self.state.last_sent,
            &self.state.profiles,
            &self.idempotency.records,
            &self.idempotency.expiry,
            &self.integrity,
        ]
    }
}

fn open_error(database_dir: &Path, error: fjall::Error) -> StorageError {
    let hint = match &error {
        fjall::Error::JournalRecovery(_) => {
            let journals = journal_names(database_dir);
            format!(
                " (a journal batch inside {journals} is damaged: fjall refuses to skip it; \
                 restore the data directory from a backup, or move the damaged journal \
                 aside to accept losing the writes from that point on)"
            )
        }
        fjall::Error::Locked => " (another process has this data directory open)".into(),
        _ => String::new(),
    };
    StorageError::Unavailable(format!(
        "cannot open embedded store in {}: {error:?}{hint}",
        database_dir.display()
    ))
}

fn journal_names(database_dir: &Path) -> String {
    let mut names: Vec<String> = std::fs::read_dir(database_dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "jnl"))
        .map(|path| path.display().to_string())
        .collect();
    names.sort();
    if names.is_empty() {
        "the journal".into()
    } else {
        names.join(", ")
    }
}

/// Why writes are refused, and when to try reopening.
#[derive(Debug)]
struct Fault {
    reason: String,
    since: Instant,
    next_attempt: Instant,
    backoff: Duration,
}

/// The current database, the fault state and the acknowledged-writes record.
pub(super) struct Lifecycle {
    data_dir: PathBuf,
    reserve: Reserve,
    current: RwLock<Option<Arc<Handles>>>,
    fault: Mutex<Option<Fault>>,
    acknowledged: AcknowledgedRecord,
    last_report: Mutex<RecoveryReport>,
    /// Stops the start-up verification scan, which holds the database open.
    scan_cancel: Arc<AtomicBool>,
}

impl Lifecycle {
    /// Opens the database for the first time.
    pub(super) fn open(data_dir: &Path, reserve: Reserve) -> Result<Self, StorageError> {
        let (handles, mut report) = Handles::open(data_dir)?;
        let (acknowledged, previous) = AcknowledgedRecord::open(data_dir);
        report.acknowledged = previous;
        report.log(data_dir);
        acknowledged.store(report.recovered);
        Ok(Self {
            data_dir: data_dir.to_path_buf(),
            reserve,
            current: RwLock::new(Some(Arc::new(handles))),
            fault: Mutex::new(None),
            acknowledged,
            last_report: Mutex::new(report),
            scan_cancel: Arc::new(AtomicBool::new(false)),
        })
    }

    /// The open database, for one operation (held until it ends, so that a
    /// reopen waits for it).
    pub(super) fn handles(&self) -> Result<Arc<Handles>, StorageError> {
        self.current
            .read()
            .ok()
            .and_then(|current| current.clone())
            .ok_or_else(|| StorageError::Unavailable("embedded store is reopening".into()))
    }

    pub(super) fn scan_cancel(&self) -> Arc<AtomicBool> {
        self.scan_cancel.clone()
    }

    pub(super) fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub(super) fn reserve(&self) -> Reserve {
        self.reserve
    }

    pub(super) fn last_report(&self) -> RecoveryReport {
        self.last_report
            .lock()
            .map(|report| report.clone())
            .unwrap_or_default()
    }

    /// Records that `count` writes are acknowledged (after their sync).
    pub(super) fn acknowledge(&self, count: u64) {
        self.acknowledged.store(count);
    }

    /// The fault's reason while writes are refused.
    pub(super) fn fault(&self) -> Option<String> {
        let fault = self.fault.lock().ok()?;
        fault.as_ref().map(|fault| {
            format!(
                "embedded store refuses writes since a write failed {} s ago ({}); \
                 it reopens once writes are possible again",
                fault.since.elapsed().as_secs(),
                fault.reason
            )
        })
    }

    /// Marks the database as failed (fjall has poisoned it, or will).
    pub(super) fn record_failure(&self, error: &fjall::Error) {
        let Ok(mut fault) = self.fault.lock() else {
            return;
        };
        if fault.is_none() {
            tracing::error!(
                %error,
                "embedded store write failed: refusing writes (UNAVAILABLE) and reporting \
                 NOT_SERVING until the store reopens"
            );
            let now = Instant::now();
            *fault = Some(Fault {
                reason: error.to_string(),
                since: now,
                next_attempt: now + FIRST_BACKOFF,
                backoff: FIRST_BACKOFF,
            });
        }
    }

    /// Ok when no fault is pending, or when a due reopen succeeded. Called
    /// by the writer thread only, so reopens never race each other or a
    /// commit.
    pub(super) fn heal(&self) -> Result<(), StorageError> {
        let due = {
            let fault = self
                .fault
                .lock()
                .map_err(|_| StorageError::Internal("fault lock poisoned".into()))?;
            match fault.as_ref() {
                None => return Ok(()),
                Some(fault) => Instant::now() >= fault.next_attempt,
            }
        };
        // Reopening onto a disk that is still full would only fail again.
        // This check is cheap (`statvfs`) and does not back off, so that the
        // store reopens as soon as space is freed.
        self.reserve.check(&self.data_dir, PROBE_BYTES as u64)?;
        space::has_room(&self.data_dir, PROBE_BYTES as u64)?;
        if !due {
            return Err(self.refusal());
        }
        self.reopen()
            .inspect_err(|error| self.back_off(&error.to_string()))
    }

    fn refusal(&self) -> StorageError {
        StorageError::Unavailable(
            self.fault()
                .unwrap_or_else(|| "embedded store refuses writes".into()),
        )
    }

    fn back_off(&self, reason: &str) {
        if let Ok(mut fault) = self.fault.lock()
            && let Some(fault) = fault.as_mut()
        {
            fault.backoff = (fault.backoff * 2).min(MAX_BACKOFF);
            fault.next_attempt = Instant::now() + fault.backoff;
            tracing::warn!(
                %reason,
                retry_in_ms = fault.backoff.as_millis() as u64,
                "embedded store not reopened yet"
            );
        }
    }

    /// Drops the poisoned database, opens it again and proves that it takes
    /// a durable write.
    fn reopen(&self) -> Result<(), StorageError> {
        let old = self
            .current
            .write()
            .map_err(|_| StorageError::Internal("store lock poisoned".into()))?
            .take();
        self.scan_cancel.store(true, Ordering::Relaxed);
        if let Some(old) = old {
            // Reads in flight hold the old handles; the database (and its
            // lock file) closes when the last one lets go.
            let started = Instant::now();
            let mut old = old;
            loop {
                match Arc::try_unwrap(old) {
                    Ok(handles) => {
                        drop(handles);
                        break;
                    }
                    Err(still_shared) if started.elapsed() < DRAIN_TIMEOUT => {
                        old = still_shared;
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(still_shared) => {
                        // Put it back: reads go on, the next attempt retries.
                        if let Ok(mut current) = self.current.write() {
                            *current = Some(still_shared);
                        }
                        return Err(StorageError::Unavailable(
                            "reads of the old database did not finish in time".into(),
                        ));
                    }
                }
            }
        }
        let (handles, mut report) = Handles::open(&self.data_dir)?;
        report.acknowledged = Some(self.acknowledged_so_far(&handles));
        report.log(&self.data_dir);
        let probe = probe(&handles);
        if let Ok(mut last) = self.last_report.lock() {
            *last = report;
        }
        // Reads may use the reopened database even if the probe failed.
        if let Ok(mut current) = self.current.write() {
            *current = Some(Arc::new(handles));
        }
        probe.map_err(|error| {
            StorageError::Unavailable(format!("reopened, but a probe write failed: {error}"))
        })?;
        if let Ok(mut fault) = self.fault.lock()
            && let Some(fault) = fault.take()
        {
            tracing::info!(
                fault_lasted_ms = fault.since.elapsed().as_millis() as u64,
                reason = %fault.reason,
                "embedded store reopened after a write failure: accepting writes again"
            );
        }
        Ok(())
    }

    /// The sidecar's count for a reopen of a database this process wrote:
    /// read back from the file, so that the report compares like with like.
    fn acknowledged_so_far(&self, handles: &Handles) -> u64 {
        let (_, previous) = AcknowledgedRecord::open(&self.data_dir);
        previous.unwrap_or_else(|| handles.acknowledged.load(Ordering::Relaxed))
    }
}

fn probe(handles: &Handles) -> Result<(), fjall::Error> {
    let mut value = vec![0u8; PROBE_BYTES];
    rand::rng().fill_bytes(&mut value);
    let mut batch = handles
        .database
        .batch()
        .durability(Some(PersistMode::SyncAll));
    batch.insert(&handles.integrity, b"probe".to_vec(), value);
    batch.commit()
}
