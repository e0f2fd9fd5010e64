//! [`Admission`]: how both services decide, under overload, which calls to
//! take on: at most `max_in_flight` run at once, at most `max_queued` more
//! wait for a slot, each for at most `queue_timeout`; anything past that is
//! refused at once.
//!
//! Why a bounded queue and not only a timeout (BENCHMARKS.md, section 6):
//! with a timeout alone, every call past the slots waits the whole timeout
//! before it is refused, and under a sustained overload those waiting calls
//! are a standing queue that every admitted call waits behind too (accepted
//! p99 rose 5-40x the peak's). With the bound, a refusal costs no wait, the
//! queue stays short, and it still absorbs a brief stall of the store (a
//! flush, a pause) without refusing anyone.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Slots for calls, and a bounded queue in front of them.
#[derive(Debug)]
pub struct Admission {
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_queued: usize,
    queue_timeout: Duration,
}

impl Admission {
    pub fn new(max_in_flight: usize, max_queued: usize, queue_timeout: Duration) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(max_in_flight)),
            waiting: AtomicUsize::new(0),
            max_queued,
            queue_timeout,
        }
    }

    /// Whether a call arriving now would be refused at once: every slot
    /// taken and the queue full. A look, not a reservation: callers use it
    /// to refuse before doing any other work, and still [`Self::admit`].
    pub fn is_saturated(&self) -> bool {
        self.slots.available_permits() == 0
            && self.waiting.load(Ordering::Relaxed) >= self.max_queued
    }

    /// A slot, held until the permit is dropped: at once if one is free,
    /// else, with room in the queue, within the queue timeout; `None` when
    /// the call is to be refused.
    pub async fn admit(&self) -> Option<OwnedSemaphorePermit> {
        if let Ok(permit) = Arc::clone(&self.slots).try_acquire_owned() {
            return Some(permit);
        }
        let _waiting = Waiting::enter(&self.waiting, self.max_queued)?;
        tokio::time::timeout(self.queue_timeout, Arc::clone(&self.slots).acquire_owned())
            .await
            .ok()?
            .ok()
    }
}

/// One call counted among those waiting, while it waits.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    /// Counts the call in, unless `max` are waiting already.
    fn enter(waiting: &'a AtomicUsize, max: usize) -> Option<Self> {
        waiting
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |now| {
                (now < max).then_some(now + 1)
            })
            .ok()
            .map(|_| Self(waiting))
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: Duration = Duration::from_secs(3600);

    #[tokio::test]
    async fn past_the_slots_and_the_queue_a_call_is_refused_at_once() {
        let admission = Arc::new(Admission::new(1, 1, LONG));
        let held = admission.admit().await.expect("the one slot");
        assert!(!admission.is_saturated(), "the queue has room");
        let queued = tokio::spawn({
            let admission = Arc::clone(&admission);
            async move { admission.admit().await.is_some() }
        });
        // Until the spawned call is counted in the queue.
        while admission.waiting.load(Ordering::Relaxed) == 0 {
            tokio::task::yield_now().await;
        }
        assert!(admission.is_saturated());
        // Refused without waiting (the queue timeout is an hour).
        assert!(admission.admit().await.is_none());
        drop(held);
        assert!(
            queued.await.expect("the queued call"),
            "the waiter got the slot"
        );
        assert!(!admission.is_saturated());
    }

    #[tokio::test]
    async fn a_queued_call_is_refused_after_the_queue_timeout() {
        let admission = Admission::new(1, 8, Duration::from_millis(20));
        let _held = admission.admit().await.expect("the one slot");
        assert!(admission.admit().await.is_none());
        assert_eq!(
            admission.waiting.load(Ordering::Relaxed),
            0,
            "a call that gave up left the queue"
        );
    }

    #[tokio::test]
    async fn with_no_queue_any_call_past_the_slots_is_refused() {
        let admission = Admission::new(2, 0, LONG);
        let _first = admission.admit().await.expect("a slot");
        assert!(!admission.is_saturated());
        let _second = admission.admit().await.expect("a slot");
        assert!(admission.is_saturated());
        assert!(admission.admit().await.is_none());
    }
}
