//! The load generator: drives one target with a fixed number of request slots
//! (closed loop) or at a fixed rate (open loop), and measures what came back.
//!
//! - [`closed_loop`]: `N` slots, each sending its next request as soon as the
//!   previous one answered (wrk's and ghz's model): throughput at concurrency
//!   `N`, and the latency at that load.
//! - [`open_loop`]: requests at a fixed rate whatever the answers do (wrk2's
//!   model): the latency at a given throughput, measured from each request's
//!   *intended* send time, so that a stall is not hidden by the generator
//!   waiting for it (coordinated omission). Its pacer, [`schedule::paced`],
//!   also runs schedules of several rates (the overload experiment).
//!
//! Both are bounded in time (warm-up + measured window) and in count
//! ([`Plan::max_requests`]), and every request has its own deadline.
//! Targets: [`grpc`] (SendMessage over one HTTP/2 connection), [`http`]
//! (HTTP/1.1, one keep-alive connection per slot) and [`pool`] (HTTP/1.1 for
//! open-loop runs: a connection per request in flight).

pub mod grpc;
pub mod http;
pub mod pool;
pub mod schedule;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::stats::{Latency, nanos};
use schedule::Phase;

/// How long a run lasts and how many requests it may send.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Plan {
    /// Requests sent before the measured window, not counted.
    pub warmup: Duration,
    /// The measured window.
    pub measure: Duration,
    /// Upper bound on requests in the measured window.
    pub max_requests: u64,
}

/// One request slot: a user, a connection.
pub trait Caller: Send + 'static {
    /// Sends one request; `Ok` carries the size of the reply's body.
    fn call(&mut self) -> impl Future<Output = Result<usize, String>> + Send;
}

/// What one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct RunOutcome {
    /// Successful requests in the measured window.
    pub ok: u64,
    /// Failed requests, warm-up included.
    pub errors: u64,
    pub first_error: Option<String>,
    /// Length of the measured window actually used.
    pub seconds: f64,
    /// `ok / seconds`.
    pub throughput: f64,
    pub latency: Latency,
    /// Size of a reply body (protobuf or JSON bytes).
    pub reply_bytes: usize,
}

/// Collects what the slots or requests saw.
#[derive(Default)]
struct Recorder {
    latencies: Vec<u64>,
    errors: u64,
    first_error: Option<String>,
    reply_bytes: usize,
    last_done: Option<Instant>,
}

impl Recorder {
    fn error(&mut self, error: String) {
        self.errors += 1;
        self.first_error.get_or_insert(error);
    }

    fn merge(&mut self, other: Recorder) {
        self.latencies.extend(other.latencies);
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.reply_bytes = self.reply_bytes.max(other.reply_bytes);
        self.last_done = self.last_done.max(other.last_done);
    }

    fn finish(mut self, measure_from: Instant, plan: &Plan) -> RunOutcome {
        let seconds = match self.last_done {
            Some(last) if last > measure_from => (last - measure_from).as_secs_f64(),
            _ => plan.measure.as_secs_f64(),
        };
        let ok = self.latencies.len() as u64;
        RunOutcome {
            ok,
            errors: self.errors,
            first_error: self.first_error,
            seconds,
            throughput: ok as f64 / seconds.max(f64::EPSILON),
            latency: Latency::from_nanos(&mut self.latencies),
            reply_bytes: self.reply_bytes,
        }
    }
}

/// Takes one request from the run's budget; `false` once it is spent.
fn take_one(budget: &AtomicU64) -> bool {
    budget
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
            left.checked_sub(1)
        })
        .is_ok()
}

/// Runs every caller in its own task, each sending back to back, for the
/// plan's warm-up and measured window. Counts a request when it both started
/// and finished inside the measured window.
pub async fn closed_loop<C: Caller>(callers: Vec<C>, plan: Plan) -> RunOutcome {
    let measure_from = Instant::now() + plan.warmup;
    let end = measure_from + plan.measure;
    let budget = Arc::new(AtomicU64::new(plan.max_requests));
    let slots: Vec<_> = callers
        .into_iter()
        .map(|mut caller| {
            let budget = budget.clone();
            tokio::spawn(async move {
                let mut record = Recorder::default();
                loop {
                    let sent = Instant::now();
                    if sent >= end {
                        break;
                    }
                    let measured = sent >= measure_from;
                    if measured && !take_one(&budget) {
                        break;
                    }
                    let result = caller.call().await;
                    let done = Instant::now();
                    match result {
                        Err(error) => record.error(error),
                        Ok(bytes) if measured && done <= end => {
                            record.latencies.push(nanos(done - sent));
                            record.reply_bytes = bytes;
                            record.last_done = Some(done);
                        }
                        Ok(_) => {}
                    }
                }
                record
            })
        })
        .collect();
    let mut total = Recorder::default();
    for slot in slots {
        match slot.await {
            Ok(record) => total.merge(record),
            Err(error) => total.error(format!("a load slot failed: {error}")),
        }
    }
    total.finish(measure_from, &plan)
}

/// Sends `issue(i)` at `rate` per second for the plan's warm-up and measured
/// window, at most `max_in_flight` at once (see [`schedule::paced`]): the
/// latency runs from each request's intended send time.
pub async fn open_loop<F, Fut>(
    rate: f64,
    plan: Plan,
    max_in_flight: usize,
    issue: F,
) -> anyhow::Result<RunOutcome>
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<usize, String>> + Send + 'static,
{
    const MEASURED: usize = 1;
    let phases = [
        Phase {
            rate,
            length: plan.warmup,
            max_requests: u64::MAX,
        },
        Phase {
            rate,
            length: plan.measure,
            max_requests: plan.max_requests,
        },
    ];
    let start = Instant::now();
    let paced = schedule::paced(start, &phases, max_in_flight, issue).await?;
    let mut record = Recorder::default();
    for answered in paced.answers {
        match answered.answer {
            Err(error) => record.error(error),
            Ok(bytes) if answered.phase == MEASURED => {
                record.latencies.push(nanos(answered.latency));
                record.reply_bytes = bytes;
            }
            Ok(_) => {}
        }
    }
    // An open-loop run's window is the schedule's, not the last answer's.
    let measure_from = start + plan.warmup;
    record.last_done = Some(measure_from + plan.measure);
    Ok(record.finish(measure_from, &plan))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Sleeper(Duration);

    impl Caller for Sleeper {
        async fn call(&mut self) -> Result<usize, String> {
            tokio::time::sleep(self.0).await;
            Ok(1)
        }
    }

    fn plan(measure_ms: u64, max_requests: u64) -> Plan {
        Plan {
            warmup: Duration::from_millis(20),
            measure: Duration::from_millis(measure_ms),
            max_requests,
        }
    }

    #[tokio::test]
    async fn a_closed_loop_counts_requests_per_slot_in_the_window() {
        let callers = (0..4).map(|_| Sleeper(Duration::from_millis(5))).collect();
        let outcome = closed_loop(callers, plan(200, u64::MAX)).await;
        assert_eq!(outcome.errors, 0);
        // 4 slots × ~200 ms / ~5 ms each; timers are coarse, so loosely.
        assert!((60..=170).contains(&outcome.ok), "{outcome:?}");
        assert!(outcome.latency.p50_us >= 5_000.0);
    }

    #[tokio::test]
    async fn a_closed_loop_stops_at_its_request_budget() {
        let callers = (0..4).map(|_| Sleeper(Duration::from_millis(1))).collect();
        let outcome = closed_loop(callers, plan(2_000, 10)).await;
        assert_eq!(outcome.ok, 10);
        assert!(outcome.seconds < 1.0, "{outcome:?}");
    }

    #[tokio::test]
    async fn an_open_loop_sends_at_its_rate() {
        let outcome = open_loop(500.0, plan(400, u64::MAX), 64, |_| async { Ok(1) })
            .await
            .expect("runs");
        assert_eq!(outcome.errors, 0);
        assert!((170..=210).contains(&outcome.ok), "{outcome:?}");
        assert!((outcome.throughput - 500.0).abs() < 60.0, "{outcome:?}");
    }

    #[tokio::test]
    async fn an_open_loop_counts_the_wait_for_a_stalled_target() {
        // One request in flight at a time, each taking 20 ms, asked for at
        // 200/s: the queue grows, and the latency must show it.
        let outcome = open_loop(200.0, plan(200, u64::MAX), 1, |_| async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok(1)
        })
        .await
        .expect("runs");
        assert!(outcome.latency.max_us > 60_000.0, "{outcome:?}");
    }
}
