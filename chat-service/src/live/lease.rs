//! This instance's own lease, as its peers judge it: the fence that keeps an
//! append from being acknowledged after a peer may have stopped waiting for
//! it.
//!
//! A peer stops counting this instance once its published `beat` has not
//! moved for [`super::watermarks::LEASE`] ([`super::watermarks`]); from then
//! on the peer's feeds pass every position up to the peer's own clock,
//! including positions of this instance's appends still in flight. Such an
//! append lands after the peer read past it: in history, never live there.
//! That is harmless only if the send is not acknowledged, so this instance
//! keeps the same lease on itself and refuses (UNAVAILABLE, retry with the
//! idempotency key) an append during which it may have lapsed.
//!
//! Why it is exact: a peer takes this instance for dead only at the start
//! of a watermark read R with R − (when it first saw the beat) > LEASE. It
//! first saw that beat after the beat's publish began, and a quorum read
//! sees at least the newest publish acknowledged before R began. So at R
//! every publish acknowledged so far began more than LEASE ago: this
//! instance's own lease (publish start + [`OWN_LEASE`] ≤ LEASE, renewed on
//! each acknowledgment) had run out at R. The peer's feed passes an append
//! created at `c` only after such an R that began after `c`, and before the
//! append landed: inside the append's life. An append whose whole life lies
//! in one unbroken lease term therefore cannot have been passed over.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// How long after a publish began this instance counts itself alive: the
/// peers' lease minus a margin for the scheduling of the two clocks' reads.
pub const OWN_LEASE: Duration = super::watermarks::LEASE.saturating_sub(Duration::from_millis(100));

/// A term of the lease: an append taken in one is acknowledged only if the
/// lease held without a break until its store answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Term(u64);

#[derive(Debug, Default)]
pub struct OwnLease {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// No exchange (a store with no other writers): nobody ever passes this
    /// instance's appends, the lease always holds.
    exchanging: bool,
    /// The lease runs until then; `None` before the first publish and after
    /// leaving.
    held_until: Option<Instant>,
    /// Grows at every break of the lease.
    term: u64,
    /// Published "nothing more from me": the lease never holds again.
    left: bool,
}

impl OwnLease {
    /// A publish of this instance's watermark that began at `began` was
    /// acknowledged at `acked`: the lease runs until `began` + [`OWN_LEASE`].
    /// If it had run out before `acked`, a new term begins.
    pub fn renewed(&self, began: Instant, acked: Instant) {
        let mut state = self.lock();
        if state.left {
            return;
        }
        state.exchanging = true;
        if state.held_until.is_none_or(|until| acked >= until) {
            state.term += 1;
        }
        let until = began + OWN_LEASE;
        state.held_until = Some(state.held_until.map_or(until, |held| held.max(until)));
    }

    /// This instance is leaving (about to publish that it appends nothing
    /// more): no append finishing from now on is acknowledged.
    pub fn give_up(&self) {
        let mut state = self.lock();
        state.left = true;
        state.held_until = None;
        state.term += 1;
    }

    /// The current term if the lease holds at `now`.
    pub fn term_at(&self, now: Instant) -> Option<Term> {
        let state = self.lock();
        if !state.exchanging {
            return Some(Term(0));
        }
        state
            .held_until
            .filter(|until| now < *until)
            .map(|_| Term(state.term))
    }

    /// Whether the lease has held without a break from `term`'s start (when
    /// it was taken) until `now`.
    pub fn held_through(&self, term: Term, now: Instant) -> bool {
        self.term_at(now) == Some(term)
    }

    /// The current term, waiting (at most `limit`) for the exchange to renew
    /// a lease that has run out; `None` if it is not renewed in time.
    pub async fn term(&self, limit: Duration) -> Option<Term> {
        let give_up = Instant::now() + limit;
        loop {
            let now = Instant::now();
            if let Some(term) = self.term_at(now) {
                return Some(term);
            }
            if now >= give_up || self.lock().left {
                return None;
            }
            // Only while the exchange cannot publish: it renews within one
            // interval once the store answers again.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(count: u64) -> Duration {
        Duration::from_millis(count)
    }

    #[test]
    fn without_an_exchange_the_lease_always_holds() {
        let lease = OwnLease::default();
        let term = lease.term_at(Instant::now()).expect("held");
        assert!(lease.held_through(term, Instant::now() + ms(3_600_000)));
    }

    #[test]
    fn renewed_in_time_the_term_goes_on() {
        let lease = OwnLease::default();
        let start = Instant::now();
        assert_eq!(lease.term_at(start), Some(Term(0)));
        lease.renewed(start, start + ms(5));
        let term = lease.term_at(start + ms(10)).expect("held");
        // Publishes every 50 ms, each acknowledged before the lease ends.
        for round in 1..100 {
            let began = start + ms(50) * round;
            lease.renewed(began, began + ms(400));
        }
        assert!(lease.held_through(term, start + ms(50) * 100));
    }

    #[test]
    fn an_append_spanning_a_lapse_is_not_held_through_even_once_renewed() {
        let lease = OwnLease::default();
        let start = Instant::now();
        lease.renewed(start, start + ms(5));
        let term = lease.term_at(start + ms(100)).expect("held");
        // No publish acknowledged for longer than the lease: peers may have
        // passed the append's position.
        assert!(!lease.held_through(term, start + OWN_LEASE));
        // A publish begun before the lapse but acknowledged after it renews
        // the lease, in a new term: the append is still refused.
        lease.renewed(start + ms(1_000), start + OWN_LEASE + ms(10));
        assert!(!lease.held_through(term, start + OWN_LEASE + ms(20)));
        // An append taken in the new term is fine.
        let next = lease.term_at(start + OWN_LEASE + ms(20)).expect("held");
        assert_ne!(next, term);
        assert!(lease.held_through(next, start + OWN_LEASE + ms(500)));
    }

    #[test]
    fn the_lease_counts_from_the_publish_start_not_its_answer() {
        let lease = OwnLease::default();
        let start = Instant::now();
        // A slow publish: begun at `start`, acknowledged 1.5 s later.
        lease.renewed(start, start + ms(1_500));
        let term = lease.term_at(start + ms(1_500)).expect("held");
        assert!(lease.held_through(term, start + OWN_LEASE - ms(1)));
        assert!(!lease.held_through(term, start + OWN_LEASE));
    }

    #[test]
    fn after_leaving_nothing_is_held() {
        let lease = OwnLease::default();
        let start = Instant::now();
        lease.renewed(start, start);
        let term = lease.term_at(start).expect("held");
        lease.give_up();
        assert!(!lease.held_through(term, start + ms(1)));
        lease.renewed(start + ms(50), start + ms(60));
        assert_eq!(lease.term_at(start + ms(70)), None);
    }

    #[tokio::test]
    async fn a_send_waits_for_a_renewal_bounded() {
        let lease = OwnLease::default();
        let long_ago = Instant::now() - ms(10_000);
        lease.renewed(long_ago, long_ago);
        assert_eq!(lease.term(ms(20)).await, None);
        lease.renewed(Instant::now(), Instant::now());
        assert!(lease.term(ms(20)).await.is_some());
    }
}
