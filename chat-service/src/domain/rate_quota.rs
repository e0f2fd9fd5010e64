//! What a sender's rate limit still allows: the three fields of the IETF
//! RateLimit header draft (`RateLimit-Limit`, `RateLimit-Remaining`,
//! `RateLimit-Reset`), which chat-service sends as response metadata on
//! sends and on rate-limit refusals.

use std::time::Duration;

/// The state of one rate-limit policy for one sender in one stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateQuota {
    /// Messages the policy allows per window.
    pub limit: u32,
    /// Messages that may be sent right now without being refused.
    pub remaining: u32,
    /// Until the whole allowance is back (zero: it is).
    pub reset: Duration,
}

impl RateQuota {
    /// `reset` in whole seconds, rounded up: a client that waits this long
    /// finds the allowance back, never a moment early.
    pub fn reset_seconds(&self) -> u64 {
        whole_seconds_up(self.reset)
    }

    /// Of two policies that both apply, the one closest to exhaustion (the
    /// draft's advice when several apply): fewer messages remaining, and on
    /// a tie the longer wait.
    pub fn tighter(self, other: Self) -> Self {
        if (other.remaining, std::cmp::Reverse(other.reset))
            < (self.remaining, std::cmp::Reverse(self.reset))
        {
            other
        } else {
            self
        }
    }
}

/// A duration in whole seconds, rounded up (1.2 s is 2 s).
pub fn whole_seconds_up(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quota(remaining: u32, reset_ms: u64) -> RateQuota {
        RateQuota {
            limit: 20,
            remaining,
            reset: Duration::from_millis(reset_ms),
        }
    }

    #[test]
    fn reset_rounds_up_to_whole_seconds() {
        assert_eq!(quota(0, 0).reset_seconds(), 0);
        assert_eq!(quota(0, 1_000).reset_seconds(), 1);
        assert_eq!(quota(0, 1_001).reset_seconds(), 2);
    }

    #[test]
    fn the_tighter_policy_has_fewer_remaining_then_the_longer_wait() {
        assert_eq!(quota(3, 0).tighter(quota(1, 0)), quota(1, 0));
        assert_eq!(quota(1, 0).tighter(quota(3, 9_000)), quota(1, 0));
        assert_eq!(quota(0, 2_000).tighter(quota(0, 9_000)), quota(0, 9_000));
        assert_eq!(quota(0, 9_000).tighter(quota(0, 2_000)), quota(0, 9_000));
    }
}
