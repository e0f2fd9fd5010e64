//! A scan of every record at start, so that a damaged table file is noticed
//! when the store opens instead of when a read happens to hit it.
//!
//! What fjall checks by itself at open: the version manifest, each table's
//! trailer, metadata block and the index and filter blocks it pins (each
//! block carries a checksum), and that every table the manifest lists
//! exists. It does not read data blocks, and it does not compare the
//! whole-file checksums its manifest records (no API offers that). Reading
//! every record does: each data block's checksum is verified as it is
//! loaded. The scan runs in the background (the service serves meanwhile),
//! stops early when the store closes or reopens, and logs its outcome:
//! INFO when clean, ERROR naming the keyspace when a block is damaged.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use super::lifecycle::Handles;

/// How the start-up scan ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// Every record of every keyspace read back without error.
    Clean { records: u64 },
    /// A read failed: a damaged table file (or an I/O error).
    Damaged { keyspace: String, error: String },
    /// The store closed or reopened first.
    Cancelled,
}

/// The running (or finished) scan.
pub(super) struct Scan {
    cancel: Arc<AtomicBool>,
    outcome: Arc<Mutex<Option<Verification>>>,
    thread: Option<JoinHandle<()>>,
}

impl Scan {
    /// Starts scanning `handles`; `cancel` stops it (a reopen sets it).
    pub(super) fn start(handles: Arc<Handles>, cancel: Arc<AtomicBool>) -> Self {
        let outcome = Arc::new(Mutex::new(None));
        let thread = std::thread::Builder::new()
            .name("embedded-store-verify".into())
            .spawn({
                let cancel = cancel.clone();
                let outcome = outcome.clone();
                move || {
                    let result = scan(&handles, &cancel);
                    drop(handles);
                    if let Ok(mut outcome) = outcome.lock() {
                        *outcome = Some(result);
                    }
                }
            })
            .map_err(|error| tracing::warn!(%error, "cannot start the table verification"))
            .ok();
        Self {
            cancel,
            outcome,
            thread,
        }
    }

    /// The outcome, once the scan has ended.
    pub(super) fn outcome(&self) -> Option<Verification> {
        self.outcome.lock().ok().and_then(|outcome| outcome.clone())
    }
}

impl Drop for Scan {
    fn drop(&mut self) {
        // The scan holds the database open: stop it before the store closes.
        self.cancel.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn scan(handles: &Handles, cancel: &AtomicBool) -> Verification {
    let started = Instant::now();
    let mut records = 0u64;
    for keyspace in handles.all_keyspaces() {
        for entry in keyspace.iter() {
            if records.is_multiple_of(1024) && cancel.load(Ordering::Relaxed) {
                return Verification::Cancelled;
            }
            if let Err(error) = entry.into_inner() {
                let name = keyspace.name().to_string();
                tracing::error!(
                    keyspace = %name,
                    %error,
                    "embedded store: a table file is damaged (a block failed its checksum \
                     or could not be read); reads of the records in it will fail"
                );
                return Verification::Damaged {
                    keyspace: name,
                    error: error.to_string(),
                };
            }
            records += 1;
        }
    }
    tracing::info!(
        records,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "embedded store: every record read back intact"
    );
    Verification::Clean { records }
}
