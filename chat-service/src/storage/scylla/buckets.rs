//! Time buckets: a stream's messages are split into partitions by fixed-width
//! windows of their creation time, so that no partition grows without bound.
//!
//! The arithmetic behind the default width (60 s), for a hot stream at 300
//! messages/s:
//! - a row holds up to 500 characters of content (≤ 2,000 bytes of UTF-8; a
//!   typical chat line is under 100) plus the sender snapshot (ids, names, an
//!   optional photo record: a few hundred bytes) and per-cell overhead;
//! - at a generous 1 KB per row, 300 msg/s × 60 s = 18,000 rows ≈ 18 MB per
//!   partition; even if every message were 500 four-byte characters
//!   (~2.6 KB a row) it is ≈ 47 MB: well under the 100 MB Cassandra warns at.
//! - a 10-minute width would reach 180 MB at 1 KB a row: too large.
//!
//! Quiet streams pay for the narrow width with many small partitions; the
//! bucket index (see `mod.rs`) makes "newest N" read only non-empty buckets,
//! so the cost is bounded by N, not by how long a stream was silent.
//!
//! Each bucket is recorded in the index with its start *and* end, so a later
//! change of width leaves every old message reachable: readers order buckets
//! by their end and never assume a width.

use std::time::Duration;

/// The default bucket width.
pub const DEFAULT_BUCKET: Duration = Duration::from_secs(60);

/// The widest bucket allowed. Readers rely on it: a bucket that can hold a
/// message older than time T ends before T + MAX_BUCKET, which bounds how
/// much of the index a page that starts in the past has to skip.
pub const MAX_BUCKET: Duration = Duration::from_secs(3600);

/// A window `[start_ms, end_ms)` of creation times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Bucket {
    pub start_ms: i64,
    pub end_ms: i64,
}

impl Bucket {
    /// The bucket of width `width_ms` that holds `created_ms`.
    pub fn containing(created_ms: i64, width_ms: i64) -> Self {
        let width_ms = width_ms.max(1);
        // Euclidean division floors toward minus infinity, so times before
        // 1970 fall into the right window too.
        let start_ms = created_ms.div_euclid(width_ms) * width_ms;
        Self {
            start_ms,
            end_ms: start_ms.saturating_add(width_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_time_falls_in_the_window_that_starts_at_or_before_it() {
        let bucket = Bucket::containing(125_000, 60_000);
        assert_eq!(
            bucket,
            Bucket {
                start_ms: 120_000,
                end_ms: 180_000
            }
        );
    }

    #[test]
    fn a_window_start_belongs_to_that_window_and_its_end_to_the_next() {
        assert_eq!(Bucket::containing(60_000, 60_000).start_ms, 60_000);
        assert_eq!(Bucket::containing(59_999, 60_000).start_ms, 0);
    }

    #[test]
    fn times_before_1970_floor_downwards() {
        assert_eq!(Bucket::containing(-1, 60_000).start_ms, -60_000);
    }

    #[test]
    fn the_default_width_keeps_a_hot_stream_partition_under_the_warning_size() {
        let messages_per_second = 300;
        let worst_row_bytes = 2_600;
        let partition_bytes =
            messages_per_second * DEFAULT_BUCKET.as_secs() as usize * worst_row_bytes;
        assert!(partition_bytes < 100 * 1024 * 1024 / 2);
    }
}
