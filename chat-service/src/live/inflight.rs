//! Local appends that have a creation time but are not stored yet.
//!
//! The live feed must not pass a position that a message still on its way to
//! the store will take. Each local send takes its creation time from here,
//! under the same lock that records it as in flight, so the feed can never
//! see a time pass while an earlier message is unaccounted for.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use crate::domain::truncate_to_millis;

#[derive(Debug, Default)]
pub struct InFlight {
    /// Creation millis → how many appends with that time are in flight.
    pending: Mutex<BTreeMap<i64, usize>>,
    /// The newest creation time handed out (ms).
    latest_ms: AtomicI64,
}

/// Marks one append as in flight until dropped.
#[must_use = "the append counts as in flight until this is dropped"]
pub struct InFlightGuard {
    registry: Arc<InFlight>,
    created_ms: i64,
    pub created_at: DateTime<Utc>,
}

impl InFlight {
    /// A creation time for a new message, recorded as in flight.
    pub fn begin(registry: &Arc<Self>) -> InFlightGuard {
        let mut pending = registry.pending.lock().unwrap_or_else(|p| p.into_inner());
        let created_at = truncate_to_millis(Utc::now());
        let created_ms = created_at.timestamp_millis();
        *pending.entry(created_ms).or_default() += 1;
        registry.latest_ms.fetch_max(created_ms, Ordering::Relaxed);
        InFlightGuard {
            registry: Arc::clone(registry),
            created_ms,
            created_at,
        }
    }

    /// Whether any local append is still in flight.
    pub fn has_pending(&self) -> bool {
        !self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
    }

    /// The creation time (ms) of the newest local append, finished or not.
    pub fn latest_ms(&self) -> i64 {
        self.latest_ms.load(Ordering::Relaxed)
    }

    /// Every message created before this time (ms) has finished its append
    /// (stored or failed): the local part of the watermark.
    pub fn watermark_ms(&self) -> i64 {
        let pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        // Read the clock under the lock: a `begin` either happened before
        // (and is in `pending`) or will read a time at or after this one.
        let now_ms = Utc::now().timestamp_millis();
        pending
            .keys()
            .next()
            .copied()
            .map_or(now_ms, |oldest| oldest.min(now_ms))
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        let mut pending = self
            .registry
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(count) = pending.get_mut(&self.created_ms) {
            *count -= 1;
            if *count == 0 {
                pending.remove(&self.created_ms);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watermark_stays_at_the_oldest_pending_append() {
        let registry = Arc::new(InFlight::default());
        let first = InFlight::begin(&registry);
        std::thread::sleep(std::time::Duration::from_millis(3));
        let second = InFlight::begin(&registry);
        assert_eq!(registry.watermark_ms(), first.created_at.timestamp_millis());
        drop(first);
        assert_eq!(
            registry.watermark_ms(),
            second.created_at.timestamp_millis()
        );
        drop(second);
        assert!(registry.watermark_ms() >= Utc::now().timestamp_millis() - 1000);
    }
}
