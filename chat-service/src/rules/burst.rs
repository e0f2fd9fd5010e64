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
use std::time::{Duration, Instant};

use crate::domain::{Role, StreamId, UserId};

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

pub struct BurstLimiter {
    settings: BurstSettings,
    /// (stream, user) → theoretical arrival time of the next message.
    arrivals: Mutex<HashMap<(StreamId, UserId), Instant>>,
}

impl BurstLimiter {
    pub fn new(settings: BurstSettings) -> Self {
        Self {
            settings,
            arrivals: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one message's allowance, or says how long to wait.
    pub fn try_acquire(
        &self,
        stream: StreamId,
        user: UserId,
        role: Role,
        now: Instant,
    ) -> Result<(), Duration> {
        let limit = if role.is_privileged() {
            self.settings.privileged_limit
        } else {
            self.settings.viewer_limit
        }
        .max(1);
        let interval = self.settings.window / limit;
        // How far ahead of `now` the arrival time may run: `limit - 1`
        // messages' worth, so a burst of exactly `limit` passes.
        let tolerance = interval * (limit - 1);

        // A std mutex: held for a few instructions, never across an await.
        let mut arrivals = self.arrivals.lock().unwrap_or_else(|p| p.into_inner());
        if arrivals.len() >= SWEEP_AT {
            arrivals.retain(|_, arrival| *arrival > now);
        }
        let arrival = arrivals
            .get(&(stream, user))
            .copied()
            .unwrap_or(now)
            .max(now);
        let ahead = arrival - now;
        if ahead > tolerance {
            return Err(ahead - tolerance);
        }
        arrivals.insert((stream, user), arrival + interval);
        Ok(())
    }
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
        let now = Instant::now();
        for _ in 0..20 {
            assert!(limiter.try_acquire(stream, user, Role::Viewer, now).is_ok());
        }
        let wait = limiter
            .try_acquire(stream, user, Role::Viewer, now)
            .expect_err("the 21st waits");
        assert_eq!(wait, Duration::from_millis(1500));
    }

    #[test]
    fn allowance_returns_at_the_steady_rate() {
        let limiter = limiter(20);
        let (stream, user) = ids();
        let now = Instant::now();
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
    fn moderators_get_a_larger_allowance() {
        let limiter = limiter(2);
        let (stream, user) = ids();
        let now = Instant::now();
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
        let now = Instant::now();
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
