//! Free space on the embedded store's filesystem, and the reserve kept free.
//!
//! Why a reserve: a journal write that hits ENOSPC poisons the fjall database
//! (see `lifecycle`), and an LSM tree needs room to flush and compact. Refusing
//! writes while less than the reserve is free answers UNAVAILABLE cleanly,
//! before anything is half-written; the poison-and-reopen path stays as the
//! fallback for what the check cannot foresee (another process filling the
//! disk between check and write, quotas, I/O errors).

use std::path::Path;

use crate::storage::StorageError;

/// The reserve when none is configured: 8 MiB, but never more than 1/64 of
/// the filesystem, so that a small filesystem (a test's tmpfs, a small
/// volume) is not refused from the start.
pub const DEFAULT_MIN_FREE_BYTES: u64 = 8 * 1024 * 1024;

/// How much free space writes must leave on the filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reserve {
    /// [`DEFAULT_MIN_FREE_BYTES`], capped at 1/64 of the filesystem.
    Default,
    /// Exactly this many bytes; 0 turns the check off (write until the
    /// filesystem says no, and rely on reopening after the failed write).
    Bytes(u64),
}

/// The filesystem's free and total space, as an unprivileged process sees it.
#[derive(Debug, Clone, Copy)]
pub struct Space {
    pub available: u64,
    pub total: u64,
}

impl Space {
    pub fn of(path: &Path) -> std::io::Result<Self> {
        let stats = rustix::fs::statvfs(path)?;
        Ok(Self {
            available: stats.f_bavail.saturating_mul(stats.f_frsize),
            total: stats.f_blocks.saturating_mul(stats.f_frsize),
        })
    }
}

impl Reserve {
    /// The bytes to keep free on a filesystem of `total` bytes.
    pub fn bytes(self, total: u64) -> u64 {
        match self {
            Self::Default => DEFAULT_MIN_FREE_BYTES.min(total / 64),
            Self::Bytes(bytes) => bytes,
        }
    }

    /// Ok when writing `incoming` more bytes to the filesystem of `path`
    /// still leaves the reserve free. A failed `statvfs` does not refuse:
    /// the write itself will tell.
    pub fn check(self, path: &Path, incoming: u64) -> Result<(), StorageError> {
        if self == Self::Bytes(0) {
            return Ok(());
        }
        let Ok(space) = Space::of(path) else {
            return Ok(());
        };
        let reserve = self.bytes(space.total);
        if space.available >= reserve.saturating_add(incoming) {
            Ok(())
        } else {
            Err(StorageError::Unavailable(format!(
                "disk nearly full: {} bytes free on the filesystem of {}, \
                 writes keep {reserve} bytes free",
                space.available,
                path.display()
            )))
        }
    }
}

/// Ok when `bytes` are free on the filesystem of `path`, whatever the
/// reserve (used before reopening: a reopen needs room for its probe).
pub fn has_room(path: &Path, bytes: u64) -> Result<(), StorageError> {
    match Space::of(path) {
        Ok(space) if space.available < bytes => Err(StorageError::Unavailable(format!(
            "disk full: {} bytes free on the filesystem of {}",
            space.available,
            path.display()
        ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_reserve_is_capped_on_small_filesystems() {
        assert_eq!(Reserve::Default.bytes(16 * 1024 * 1024), 256 * 1024);
        assert_eq!(
            Reserve::Default.bytes(100 * 1024 * 1024 * 1024),
            DEFAULT_MIN_FREE_BYTES
        );
        assert_eq!(Reserve::Bytes(0).bytes(1 << 40), 0);
    }

    #[test]
    fn a_write_larger_than_the_free_space_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let space = Space::of(dir.path()).expect("statvfs");
        assert!(Reserve::Bytes(1).check(dir.path(), 1).is_ok());
        let too_much = space.available.saturating_add(1 << 30);
        let refused = Reserve::Bytes(1).check(dir.path(), too_much);
        assert!(matches!(refused, Err(StorageError::Unavailable(_))));
        // No reserve: the write itself will tell.
        assert!(Reserve::Bytes(0).check(dir.path(), too_much).is_ok());
    }
}
