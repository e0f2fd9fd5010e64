//! [`LogThrottle`]: at most one log line per interval for events that an
//! attacker can repeat thousands of times a second (refused connections,
//! shed calls). A line per event would turn each attack into a log flood.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub struct LogThrottle {
    interval: Duration,
    started: Instant,
    /// Milliseconds after `started` when the next line may be written.
    next_ms: AtomicU64,
}

impl LogThrottle {
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            started: Instant::now(),
            next_ms: AtomicU64::new(0),
        }
    }

    /// True at most once per interval, across threads.
    pub fn ready(&self) -> bool {
        let now_ms = millis(self.started.elapsed());
        let next_ms = self.next_ms.load(Ordering::Relaxed);
        now_ms >= next_ms
            && self
                .next_ms
                .compare_exchange(
                    next_ms,
                    now_ms.saturating_add(millis(self.interval)),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_first_of_a_burst_is_logged() {
        let throttle = LogThrottle::new(Duration::from_secs(3600));
        assert!(throttle.ready());
        assert!(!throttle.ready());
        assert!(!throttle.ready());
    }

    #[test]
    fn with_no_interval_every_event_is_logged() {
        let throttle = LogThrottle::new(Duration::ZERO);
        assert!(throttle.ready());
        assert!(throttle.ready());
    }
}
