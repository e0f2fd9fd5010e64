//! The open-loop pacer: requests issued on a schedule of phases, each at
//! its own rate for its own length of time, whatever the answers do.
//!
//! Every answer is kept with its phase, its intended send time and its
//! latency from that time, so that a caller can cut the run into windows
//! after the fact (the overload experiment's recovery) or fold it into one
//! summary ([`super::open_loop`]). The pacer also reports how well it kept to
//! the schedule (how late it issued requests, how many were in flight), which
//! is how a run shows that the generator was not the limit.
//!
//! Pacing runs on a blocking thread with `std::thread::sleep` (tens of
//! microseconds of slack) rather than tokio's millisecond timer, so that a
//! rate of thousands per second is not sent in millisecond clumps.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::Semaphore;

/// A request issued later than this after its intended time counts as late.
const LATE: Duration = Duration::from_millis(1);

/// How long the end of a run waits for the last answers. Every request has
/// its own deadline, well under this, so only a broken caller hits it.
const DRAIN: Duration = Duration::from_secs(30);

/// One part of a schedule.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Phase {
    /// Requests per second.
    pub rate: f64,
    pub length: Duration,
    /// The phase ends early once it has issued this many.
    pub max_requests: u64,
}

/// One answered request.
#[derive(Debug, Clone)]
pub struct Answered<T> {
    /// Index into the schedule's phases.
    pub phase: usize,
    /// The intended send time, from the schedule's start.
    pub intended: Duration,
    /// From the intended send time to the answer.
    pub latency: Duration,
    /// How late the pacer issued it: `latency - lateness` is the target's
    /// own response time.
    pub lateness: Duration,
    pub answer: T,
}

/// What a paced run saw, and how well the pacer kept to the schedule.
#[derive(Debug)]
pub struct Paced<T> {
    pub answers: Vec<Answered<T>>,
    /// Requests issued.
    pub issued: u64,
    /// Requests issued more than [`LATE`] after their intended time (the
    /// pacer waited for an in-flight slot, or for the CPU).
    pub late: u64,
    /// The latest any request was issued.
    pub max_lateness: Duration,
    /// The most requests in flight at once.
    pub max_in_flight: usize,
}

impl<T> Paced<T> {
    /// Issued requests whose answer never came (the drain gave up).
    pub fn unanswered(&self) -> u64 {
        self.issued.saturating_sub(self.answers.len() as u64)
    }
}

/// When each phase starts and ends, from the schedule's start.
pub fn boundaries(phases: &[Phase]) -> Vec<(Duration, Duration)> {
    let mut start = Duration::ZERO;
    phases
        .iter()
        .map(|phase| {
            let bounds = (start, start + phase.length);
            start += phase.length;
            bounds
        })
        .collect()
}

/// Issues `issue(i)` on the schedule `phases`, starting at `start`, at most
/// `max_in_flight` at once, and waits for the answers. A request's latency
/// runs from its intended send time, so time spent waiting for a free
/// in-flight slot, or for a late pacer, counts against the target.
pub async fn paced<F, Fut, T>(
    start: Instant,
    phases: &[Phase],
    max_in_flight: usize,
    issue: F,
) -> anyhow::Result<Paced<T>>
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    for phase in phases {
        anyhow::ensure!(
            phase.rate.is_finite() && phase.rate > 0.0,
            "an open-loop rate must be positive (got {})",
            phase.rate
        );
    }
    anyhow::ensure!(max_in_flight > 0, "at least one request must be in flight");
    let handle = tokio::runtime::Handle::current();
    let slots = Arc::new(Semaphore::new(max_in_flight));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let max_seen = Arc::new(AtomicUsize::new(0));
    let answers = Arc::new(Mutex::new(Vec::new()));
    let issue = Arc::new(issue);
    let schedule = phases.to_vec();
    let pacer = {
        let (slots, answers) = (slots.clone(), answers.clone());
        let (in_flight, max_seen) = (in_flight.clone(), max_seen.clone());
        tokio::task::spawn_blocking(move || {
            let mut stats = PacerStats::default();
            for (phase_index, (phase, (from, until))) in
                schedule.iter().zip(boundaries(&schedule)).enumerate()
            {
                let period = Duration::from_secs_f64(1.0 / phase.rate);
                for sent in 0..phase.max_requests {
                    let intended = from + period.mul_f64(sent as f64);
                    if intended >= until {
                        break;
                    }
                    let due = start + intended;
                    let now = Instant::now();
                    if due > now {
                        std::thread::sleep(due - now);
                    }
                    let Ok(permit) = handle.block_on(slots.clone().acquire_owned()) else {
                        return stats;
                    };
                    let lateness = due.elapsed();
                    stats.issued_at(lateness);
                    let now_in_flight = in_flight.fetch_add(1, Ordering::Relaxed) + 1;
                    max_seen.fetch_max(now_in_flight, Ordering::Relaxed);
                    let request = issue(stats.issued - 1);
                    let (answers, in_flight) = (answers.clone(), in_flight.clone());
                    handle.spawn(async move {
                        let answer = request.await;
                        let latency = due.elapsed();
                        in_flight.fetch_sub(1, Ordering::Relaxed);
                        answers
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .push(Answered {
                                phase: phase_index,
                                intended,
                                latency,
                                lateness,
                                answer,
                            });
                        // Only once the answer is kept: the drain below
                        // takes every permit back to know that all are in.
                        drop(permit);
                    });
                }
            }
            stats
        })
    };
    let stats = pacer.await?;
    let all = u32::try_from(max_in_flight).unwrap_or(u32::MAX);
    let _drained = tokio::time::timeout(DRAIN, slots.acquire_many(all)).await;
    let answers = std::mem::take(&mut *answers.lock().unwrap_or_else(PoisonError::into_inner));
    Ok(Paced {
        answers,
        issued: stats.issued,
        late: stats.late,
        max_lateness: stats.max_lateness,
        max_in_flight: max_seen.load(Ordering::Relaxed),
    })
}

#[derive(Default)]
struct PacerStats {
    issued: u64,
    late: u64,
    max_lateness: Duration,
}

impl PacerStats {
    fn issued_at(&mut self, lateness: Duration) {
        self.issued += 1;
        self.late += u64::from(lateness > LATE);
        self.max_lateness = self.max_lateness.max(lateness);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phase(rate: f64, millis: u64) -> Phase {
        Phase {
            rate,
            length: Duration::from_millis(millis),
            max_requests: u64::MAX,
        }
    }

    #[test]
    fn phases_follow_each_other() {
        let bounds = boundaries(&[phase(1.0, 100), phase(1.0, 50)]);
        assert_eq!(
            bounds,
            vec![
                (Duration::ZERO, Duration::from_millis(100)),
                (Duration::from_millis(100), Duration::from_millis(150)),
            ]
        );
    }

    #[tokio::test]
    async fn each_phase_issues_at_its_own_rate() {
        let paced = paced(
            Instant::now(),
            &[phase(100.0, 200), phase(500.0, 200)],
            64,
            |index| async move { index },
        )
        .await
        .expect("runs");
        let in_phase = |wanted| {
            paced
                .answers
                .iter()
                .filter(|answered| answered.phase == wanted)
                .count()
        };
        // The schedule fixes the counts exactly: 100/s and 500/s for 200 ms.
        assert_eq!((in_phase(0), in_phase(1)), (20, 100));
        assert_eq!(paced.issued, 120);
        assert_eq!(paced.unanswered(), 0);
        let second = paced
            .answers
            .iter()
            .filter(|answered| answered.phase == 1)
            .map(|answered| answered.intended)
            .min();
        assert_eq!(second, Some(Duration::from_millis(200)));
    }

    #[tokio::test]
    async fn a_phase_stops_at_its_request_budget() {
        let budgeted = Phase {
            max_requests: 5,
            ..phase(1_000.0, 200)
        };
        let paced = paced(Instant::now(), &[budgeted], 8, |_| async {})
            .await
            .expect("runs");
        assert_eq!(paced.issued, 5);
    }

    #[tokio::test]
    async fn waiting_for_an_in_flight_slot_makes_requests_late() {
        // One slot, each request holding it 20 ms, asked for at 200/s.
        let paced = paced(Instant::now(), &[phase(200.0, 100)], 1, |_| async {
            tokio::time::sleep(Duration::from_millis(20)).await;
        })
        .await
        .expect("runs");
        assert_eq!(paced.max_in_flight, 1);
        assert!(paced.late > 0, "{paced:?}");
        assert!(paced.max_lateness > Duration::from_millis(20), "{paced:?}");
    }

    #[tokio::test]
    async fn a_zero_rate_is_refused() {
        let refused = paced(Instant::now(), &[phase(0.0, 100)], 1, |_| async {}).await;
        assert!(refused.is_err());
    }
}
