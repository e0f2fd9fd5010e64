//! What opening the embedded store recovered, and what it had to discard.
//!
//! fjall replays its journal at open and, in its only recovery mode
//! (`TolerateCorruptTail`), cuts an incomplete or unreadable batch at the end
//! of a journal file silently (a `debug` line at most). After a crash during
//! a write that is right: the cut batch was never acknowledged. But the same
//! cut also hides damage to the tail (a truncated file, a lost page), and our
//! tail holds acknowledged messages, since a send is answered only after its
//! journal sync. Two independent checks make that loss visible:
//!
//! - **Bytes**: before fjall opens, the end of each journal file's content is
//!   measured (files are preallocated with zeros, so the content ends at the
//!   last non-zero byte); after the open, whatever fjall cut beyond its new
//!   length is reported per file.
//! - **Acknowledged writes**: every durable group commit also writes a running
//!   count of acknowledged writes into the `integrity` keyspace, in the same
//!   atomic batch, and, once the sync succeeded, into a small sidecar file
//!   (`acknowledged-writes` beside the database; not synced: it survives a
//!   process crash, and after an OS crash it can only lag, never lead). At
//!   open, a sidecar ahead of the recovered count means acknowledged writes
//!   are missing, and how many.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// The key of the acknowledged-writes count in the `integrity` keyspace.
pub(super) const ACKNOWLEDGED_KEY: &[u8] = b"acknowledged-writes";

/// The sidecar's file name, in the data directory.
const SIDECAR: &str = "acknowledged-writes";

/// What one open of the store found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Journal files whose tail fjall discarded, with the bytes cut.
    pub discarded_tails: Vec<(PathBuf, u64)>,
    /// Acknowledged writes according to the sidecar (None: no sidecar yet).
    pub acknowledged: Option<u64>,
    /// Acknowledged writes the recovered database holds.
    pub recovered: u64,
}

impl RecoveryReport {
    /// Acknowledged writes the sidecar knows of that the database lacks.
    pub fn lost_acknowledged_writes(&self) -> u64 {
        self.acknowledged.map_or(0, |acknowledged| {
            acknowledged.saturating_sub(self.recovered)
        })
    }

    pub fn discarded_bytes(&self) -> u64 {
        self.discarded_tails.iter().map(|(_, bytes)| bytes).sum()
    }

    /// Says at WARN what was lost or cut; nothing when the open was clean.
    pub fn log(&self, data_dir: &Path) {
        let lost = self.lost_acknowledged_writes();
        for (file, bytes) in &self.discarded_tails {
            if lost == 0 {
                tracing::warn!(
                    journal = %file.display(),
                    discarded_bytes = bytes,
                    "embedded store: discarded a damaged or incomplete journal tail; \
                     it held no acknowledged write (expected after a crash during a write)"
                );
            } else {
                tracing::warn!(
                    journal = %file.display(),
                    discarded_bytes = bytes,
                    "embedded store: discarded a damaged journal tail"
                );
            }
        }
        if lost > 0 {
            tracing::warn!(
                data_dir = %data_dir.display(),
                lost_acknowledged_writes = lost,
                acknowledged = self.acknowledged,
                recovered = self.recovered,
                "embedded store: acknowledged writes are missing after recovery \
                 (journal damaged or truncated); the newest {lost} acknowledged \
                 messages or admin writes are lost"
            );
        }
    }
}

/// The end of each journal file's content, measured before fjall opens.
pub(super) struct JournalTails(Vec<(PathBuf, u64)>);

impl JournalTails {
    /// Measures every `*.jnl` in `database_dir` (none if it does not exist).
    pub(super) fn measure(database_dir: &Path) -> Self {
        let Ok(entries) = std::fs::read_dir(database_dir) else {
            return Self(Vec::new());
        };
        let mut tails = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|extension| extension == "jnl") {
                match content_end(&path) {
                    Ok(end) => tails.push((path, end)),
                    Err(error) => tracing::warn!(
                        journal = %path.display(),
                        %error,
                        "cannot measure journal file before recovery"
                    ),
                }
            }
        }
        tails.sort();
        Self(tails)
    }

    /// The bytes of content fjall cut from each file during the open.
    pub(super) fn discarded(&self) -> Vec<(PathBuf, u64)> {
        self.0
            .iter()
            .filter_map(|(path, end)| {
                // A file gone since (a sealed journal flushed and deleted)
                // was replayed whole first.
                let length = std::fs::metadata(path).ok()?.len();
                (*end > length).then(|| (path.clone(), end - length))
            })
            .collect()
    }
}

/// The offset just past the last non-zero byte of `path`.
///
/// A batch may end in a zero byte, which makes this an underestimate by a
/// few bytes: it never reports a cut where there was none.
pub(super) fn content_end(path: &Path) -> std::io::Result<u64> {
    const CHUNK: u64 = 64 * 1024;
    let mut file = File::open(path)?;
    let length = file.metadata()?.len();
    // fjall preallocates 64 MiB with `set_len`, a hole on most filesystems:
    // start scanning where the written data ends, not at the file's end.
    let mut end = data_end(&file, length).unwrap_or(length);
    let mut buffer = vec![0u8; CHUNK as usize];
    while end > 0 {
        let start = end.saturating_sub(CHUNK);
        let chunk = &mut buffer[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(chunk)?;
        if let Some(last) = chunk.iter().rposition(|byte| *byte != 0) {
            return Ok(start + last as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

/// The end of the file's last data extent (`SEEK_DATA`/`SEEK_HOLE`); None
/// where the filesystem cannot tell.
fn data_end(file: &File, length: u64) -> Option<u64> {
    use rustix::fs::{SeekFrom, seek};
    let mut position = 0;
    let mut end = 0;
    while position < length {
        let data = match seek(file, SeekFrom::Data(position)) {
            Ok(data) => data,
            // No data after `position`.
            Err(rustix::io::Errno::NXIO) => break,
            Err(_) => return None,
        };
        let hole = seek(file, SeekFrom::Hole(data)).ok()?;
        end = hole;
        position = hole;
    }
    Some(end.min(length))
}

/// The sidecar record of acknowledged writes.
pub(super) struct AcknowledgedRecord {
    file: Option<File>,
}

impl AcknowledgedRecord {
    /// Opens (or creates) the sidecar in `data_dir`; returns it and the count
    /// it held. Failing to open it only disables the check.
    pub(super) fn open(data_dir: &Path) -> (Self, Option<u64>) {
        let path = data_dir.join(SIDECAR);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path);
        let file = match file {
            Ok(file) => file,
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "cannot open the acknowledged-writes record");
                return (Self { file: None }, None);
            }
        };
        let mut bytes = [0u8; 8];
        let previous = file
            .read_exact_at(&mut bytes, 0)
            .ok()
            .map(|()| u64::from_be_bytes(bytes));
        (Self { file: Some(file) }, previous)
    }

    /// Records that `count` writes have been acknowledged (in place: no
    /// allocation, so it works on a full disk too).
    pub(super) fn store(&self, count: u64) {
        if let Some(file) = &self.file
            && let Err(error) = file.write_all_at(&count.to_be_bytes(), 0)
        {
            tracing::debug!(%error, "cannot update the acknowledged-writes record");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ends_after_the_last_non_zero_byte() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("1.jnl");
        let mut bytes = vec![7u8; 100_000];
        bytes.extend(std::iter::repeat_n(0u8, 200_000));
        std::fs::write(&path, &bytes).expect("write");
        assert_eq!(content_end(&path).expect("measure"), 100_000);
        std::fs::write(&path, [0u8; 10]).expect("write");
        assert_eq!(content_end(&path).expect("measure"), 0);
        // Preallocated the way fjall does it: a hole after the content.
        std::fs::write(&path, [9u8; 100]).expect("write");
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("open");
        file.set_len(64 * 1024 * 1024).expect("preallocate");
        assert_eq!(content_end(&path).expect("measure"), 100);
    }

    #[test]
    fn a_sidecar_ahead_of_the_database_counts_the_lost_writes() {
        let report = RecoveryReport {
            discarded_tails: vec![],
            acknowledged: Some(300),
            recovered: 290,
        };
        assert_eq!(report.lost_acknowledged_writes(), 10);
        let lagging = RecoveryReport {
            acknowledged: Some(280),
            ..report
        };
        assert_eq!(lagging.lost_acknowledged_writes(), 0);
    }

    #[test]
    fn the_sidecar_keeps_its_count_across_opens() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (record, previous) = AcknowledgedRecord::open(dir.path());
        assert_eq!(previous, None);
        record.store(42);
        drop(record);
        let (_record, previous) = AcknowledgedRecord::open(dir.path());
        assert_eq!(previous, Some(42));
    }
}
