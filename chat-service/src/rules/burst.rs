//! The per-user burst limit: at most N messages per window per user per
//! stream (Twitch's default for users is 20 per 30 s), more for the owner and
//! moderators.
//!
//! Implemented with GCRA (the generic cell rate algorithm): one timestamp per
//! (stream, user), the "theoretical arrival time". A user may send `limit`
//! messages at once, then one every `window / limit`; the state is 24 bytes
//! per active sender, and idle entries are swept.
//!
//! The limit is per chat-service instance (in memory). With several
//! instances behind a balancer a user can reach at most `limit × instances`
//! per window; slow mode, which lives in the store, is the cross-instance
//! limit.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::domain::{RateQuota, Role, StreamId, UserId};

/// Sweep idle entries once the map holds this many.
const SWEEP_AT: usize = 100_000;

#[derive(Debug, Clone, Copy)]
pub struct BurstSettings {
    pub window: Duration,
    /// Messages per window for viewers.
    pub viewer_limit: u32,
    /// Messages per window for the owner and moderators.
    pub privileged_limit: u32,
}

impl Default for BurstSettings {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(30),
            viewer_limit: 20,
            privileged_limit: 100,
        }
    }
}

impl BurstSettings {
    /// Messages per window for a sender of `role` (at least one).
    pub fn limit_for(&self, role: Role) -> u32 {
        if role.is_privileged() {
            self.privileged_limit
        } else {
            self.viewer_limit
        }
        .max(1)
    }
}

/// Why a message was refused: when to retry, and the sender's allowance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BurstRefusal {
    pub retry_after: Duration,
    pub quota: RateQuota,
}

pub struct BurstLimiter {
    settings: BurstSettings,
    /// (stream, user) → theoretical arrival time of the next message, as
    /// time since the Unix epoch.
    arrivals: Mutex<HashMap<(StreamId, UserId), Duration>>,
}

/// The GCRA parameters of one sender.
struct Cell {
    limit: u32,
    /// One message's worth of the window.
    interval: Duration,
    /// How far ahead of now the arrival time may run: `limit - 1`
    /// messages' worth, so a burst of exactly `limit` passes.
    tolerance: Duration,
}

impl Cell {
    fn new(settings: &BurstSettings, role: Role) -> Self {
        let limit = settings.limit_for(role);
        let interval = settings.window / limit;
        Self {
            limit,
            interval,
            tolerance: interval * (limit - 1),
        }
    }

    /// The allowance when the arrival time runs `ahead` of now.
    fn quota(&self, ahead: Duration) -> RateQuota {
        let full = self.interval * self.limit;
        let left = full.saturating_sub(ahead);
        // Whole messages: `left` is at most `limit` intervals.
        let remaining = (left.as_nanos() / self.interval.as_nanos().max(1)) as u32;
        RateQuota {
            limit: self.limit,
            remaining: remaining.min(self.limit),
            reset: ahead,
        }
    }
}

impl BurstLimiter {
    pub fn new(settings: BurstSettings) -> Self {
        Self {
            settings,
            arrivals: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one message's allowance and says what is left, or says how long
    /// to wait. `now` is the send's one clock reading (see
    /// `rules::send_policy`).
    pub fn try_acquire(
        &self,
        stream: StreamId,
        user: UserId,
        role: Role,
        now: DateTime<Utc>,
    ) -> Result<RateQuota, BurstRefusal> {
        let cell = Cell::new(&self.settings, role);
        let now = since_epoch(now);
        // A std mutex: held for a few instructions, never across an await.
        let mut arrivals = self.arrivals.lock().unwrap_or_else(|p| p.into_inner());
        if arrivals.len() >= SWEEP_AT {
            arrivals.retain(|_, arrival| *arrival > now);
        }
        let ahead = Self::ahead(&arrivals, &cell, (stream, user), now);
        if ahead > cell.tolerance {
            // Normally a no-op; after the clock stepped back, it re-anchors
            // the arrival time on the capped wait.
            arrivals.insert((stream, user), now + ahead);
            return Err(BurstRefusal {
                retry_after: ahead - cell.tolerance,
                quota: cell.quota(ahead),
            });
        }
        let ahead = ahead + cell.interval;
        arrivals.insert((stream, user), now + ahead);
        Ok(cell.quota(ahead))
    }

    /// What the sender's allowance is at `now`, taking nothing.
    pub fn quota(
        &self,
        stream: StreamId,
        user: UserId,
        role: Role,
        now: DateTime<Utc>,
    ) -> RateQuota {
        let cell = Cell::new(&self.settings, role);
        let now = since_epoch(now);
        let arrivals = self.arrivals.lock().unwrap_or_else(|p| p.into_inner());
        cell.quota(Self::ahead(&arrivals, &cell, (stream, user), now))
    }

    /// How far the sender's arrival time runs ahead of `now`. The wall
    /// clock can step back; capped at a full window's worth, a step back
    /// holds a sender back no longer than an exhausted allowance would.
    fn ahead(
        arrivals: &HashMap<(StreamId, UserId), Duration>,
        cell: &Cell,
        key: (StreamId, UserId),
        now: Duration,
    ) -> Duration {
        arrivals
            .get(&key)
            .map_or(Duration::ZERO, |arrival| arrival.saturating_sub(now))
            .min(cell.interval * cell.limit)
    }
}

/// `at` as time since the Unix epoch (zero before it).
fn since_epoch(at: DateTime<Utc>) -> Duration {
    Duration::from_millis(u64::try_from(at.timestamp_millis()).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> (StreamId, UserId) {
        (
            StreamId::parse("64d15f9e2e6c8f4d5a123000").expect("id"),
            UserId::parse("64d15f9e2e6c8f4d5a123456").expect("id"),
        )
    }

    fn limiter(limit: u32) -> BurstLimiter {
        BurstLimiter::new(BurstSettings {
            window: Duration::from_secs(30),
            viewer_limit: limit,
            privileged_limit: limit * 5,
        })
    }

    #[test]
    fn a_burst_of_exactly_the_limit_passes_and_the_next_waits() {
        let limiter = limiter(20);
        let (stream, user) = ids();
        let now = Utc::now();
        for _ in 0..20 {
            assert!(limiter.try_acquire(stream, user, Role::Viewer, now).is_ok());
        }
        let refusal = limiter
            .try_acquire(stream, user, Role::Viewer, now)
            .expect_err("the 21st waits");
        assert_eq!(refusal.retry_after, Duration::from_millis(1500));
        assert_eq!(refusal.quota.remaining, 0);
    }

    #[test]
    fn allowance_returns_at_the_steady_rate() {
        let limiter = limiter(20);
        let (stream, user) = ids();
        let now = Utc::now();
        for _ in 0..20 {
            assert!(limiter.try_acquire(stream, user, Role::Viewer, now).is_ok());
        }
        let later = now + Duration::from_millis(1500);
        assert!(
            limiter
                .try_acquire(stream, user, Role::Viewer, later)
                .is_ok()
        );
        assert!(
            limiter
                .try_acquire(stream, user, Role::Viewer, later)
                .is_err()
        );
    }

    #[test]
    fn the_quota_counts_down_with_each_message_and_resets_when_the_allowance_is_back() {
        let limiter = limiter(20);
        let (stream, user) = ids();
        let now = Utc::now();
        let untouched = limiter.quota(stream, user, Role::Viewer, now);
        assert_eq!((untouched.limit, untouched.remaining), (20, 20));
        assert_eq!(untouched.reset, Duration::ZERO);
        let first = limiter
            .try_acquire(stream, user, Role::Viewer, now)
            .expect("allowed");
        assert_eq!(first.remaining, 19);
        assert_eq!(first.reset, Duration::from_millis(1500));
        let second = limiter
            .try_acquire(stream, user, Role::Viewer, now)
            .expect("allowed");
        assert_eq!(second.remaining, 18);
        assert_eq!(second.reset, Duration::from_millis(3000));
        // Peeking takes nothing.
        assert_eq!(limiter.quota(stream, user, Role::Viewer, now), second);
        let later = now + Duration::from_millis(1500);
        assert_eq!(
            limiter.quota(stream, user, Role::Viewer, later).remaining,
            19
        );
    }

    #[test]
    fn a_clock_stepping_back_holds_a_sender_no_longer_than_a_window() {
        let limiter = limiter(20);
        let (stream, user) = ids();
        let now = Utc::now();
        assert!(limiter.try_acquire(stream, user, Role::Viewer, now).is_ok());
        let earlier = now - Duration::from_secs(3600);
        let quota = limiter.quota(stream, user, Role::Viewer, earlier);
        assert!(quota.reset <= Duration::from_secs(30), "{quota:?}");
        let refusal = limiter
            .try_acquire(stream, user, Role::Viewer, earlier)
            .expect_err("a whole window ahead");
        assert!(refusal.retry_after <= Duration::from_secs(30));
        let retry = earlier + refusal.retry_after;
        assert!(
            limiter
                .try_acquire(stream, user, Role::Viewer, retry)
                .is_ok()
        );
    }

    #[test]
    fn moderators_get_a_larger_allowance() {
        let limiter = limiter(2);
        let (stream, user) = ids();
        let now = Utc::now();
        for _ in 0..10 {
            assert!(
                limiter
                    .try_acquire(stream, user, Role::Moderator, now)
                    .is_ok()
            );
        }
        assert!(
            limiter
                .try_acquire(stream, user, Role::Moderator, now)
                .is_err()
        );
    }

    #[test]
    fn users_and_streams_have_separate_allowances() {
        let limiter = limiter(1);
        let (stream, user) = ids();
        let other_user = UserId::parse("64d15f9e2e6c8f4d5a123457").expect("id");
        let other_stream = StreamId::parse("64d15f9e2e6c8f4d5a123001").expect("id");
        let now = Utc::now();
        assert!(limiter.try_acquire(stream, user, Role::Viewer, now).is_ok());
        assert!(
            limiter
                .try_acquire(stream, user, Role::Viewer, now)
                .is_err()
        );
        assert!(
            limiter
                .try_acquire(stream, other_user, Role::Viewer, now)
                .is_ok()
        );
        assert!(
            limiter
                .try_acquire(other_stream, user, Role::Viewer, now)
                .is_ok()
        );
    }
}
