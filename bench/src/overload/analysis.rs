//! From the answers of an overload run to its figures: each phase's
//! summary, the recovery phase cut into windows, when the service was back
//! to normal, and the three criteria.

use std::time::Duration;

use serde::Serialize;

use super::answer::{Answer, Verdict};
use crate::stats::{Latency, nanos};

/// Goodput under overload must stay at least this share of peak.
pub const GOODPUT_SHARE_OF_PEAK: f64 = 0.8;
/// The p99 of accepted sends under overload, at most this many times the
/// p99 at peak.
pub const P99_OVER_PEAK: f64 = 4.0;
/// Back to normal within this many seconds after the overload.
pub const RECOVERY_SECONDS: f64 = 2.0;
/// A recovery window is normal when its p99 is at most this many times the
/// p99 measured at the same rate before the overload.
pub const NORMAL_P99_OVER_BASELINE: f64 = 2.0;

/// One answered request.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Intended send time, from the schedule's start.
    pub intended: Duration,
    /// From the intended send time to the answer.
    pub latency: Duration,
    /// From the actual send to the answer (the target's response time,
    /// without the generator's lateness).
    pub response: Duration,
    pub answer: Answer,
}

/// What one phase's requests (by intended send time) got.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseSummary {
    /// Requests per second asked for.
    pub offered_rate: f64,
    pub seconds: f64,
    pub answered: u64,
    pub accepted: u64,
    /// Goodput: accepted sends per second of the phase.
    pub accepted_per_second: f64,
    pub accepted_latency: Latency,
    /// The same, from each request's actual send: what the target took.
    pub accepted_response: Latency,
    pub shed: u64,
    /// Shed answers that said when to retry.
    pub shed_with_retry_hint: u64,
    /// How fast a refusal came, from the intended send time...
    pub shed_latency: Latency,
    /// ... and from the actual send.
    pub shed_response: Latency,
    pub failed: u64,
    pub first_failure: Option<String>,
}

pub fn summarize<'a>(
    samples: impl IntoIterator<Item = &'a Sample>,
    offered_rate: f64,
    length: Duration,
) -> PhaseSummary {
    let (mut accepted, mut shed) = (Vec::new(), Vec::new());
    let (mut accepted_response, mut shed_response) = (Vec::new(), Vec::new());
    let (mut shed_with_retry_hint, mut failed) = (0, 0);
    let mut first_failure = None;
    for sample in samples {
        match sample.answer.verdict {
            Verdict::Accepted => {
                accepted.push(nanos(sample.latency));
                accepted_response.push(nanos(sample.response));
            }
            Verdict::Shed => {
                shed.push(nanos(sample.latency));
                shed_response.push(nanos(sample.response));
                shed_with_retry_hint += u64::from(sample.answer.retry_hint);
            }
            Verdict::Failed => {
                failed += 1;
                if first_failure.is_none() {
                    first_failure.clone_from(&sample.answer.failure);
                }
            }
        }
    }
    let seconds = length.as_secs_f64();
    let accepted_count = accepted.len() as u64;
    PhaseSummary {
        offered_rate,
        seconds,
        answered: accepted_count + shed.len() as u64 + failed,
        accepted: accepted_count,
        accepted_per_second: accepted_count as f64 / seconds.max(f64::EPSILON),
        accepted_latency: Latency::from_nanos(&mut accepted),
        accepted_response: Latency::from_nanos(&mut accepted_response),
        shed: shed.len() as u64,
        shed_with_retry_hint,
        shed_latency: Latency::from_nanos(&mut shed),
        shed_response: Latency::from_nanos(&mut shed_response),
        failed,
        first_failure,
    }
}

/// A slice of the recovery phase, by intended send time.
#[derive(Debug, Clone, Serialize)]
pub struct Window {
    /// Its start, in seconds after the overload ended.
    pub from_seconds: f64,
    pub accepted: u64,
    pub shed: u64,
    pub failed: u64,
    /// Of its accepted sends, from their intended send time.
    pub p99_us: f64,
}

impl Window {
    /// No refusal, no failure, and a p99 close to the one before the
    /// overload at the same rate. A window with no answer at all has nothing
    /// wrong in it (tiny rates in the smoke run).
    pub fn is_normal(&self, baseline_p99_us: f64) -> bool {
        self.shed == 0
            && self.failed == 0
            && self.p99_us <= NORMAL_P99_OVER_BASELINE * baseline_p99_us
    }
}

/// Cuts `[from, until)` into windows of `width` and summarises each.
pub fn windows<'a>(
    samples: impl IntoIterator<Item = &'a Sample>,
    from: Duration,
    until: Duration,
    width: Duration,
) -> Vec<Window> {
    if width.is_zero() || until <= from {
        return Vec::new();
    }
    let count = (until - from).as_nanos().div_ceil(width.as_nanos());
    let count = usize::try_from(count).unwrap_or(usize::MAX);
    let mut latencies: Vec<Vec<u64>> = vec![Vec::new(); count];
    let mut tallies = vec![(0_u64, 0_u64); count];
    for sample in samples {
        if sample.intended < from || sample.intended >= until {
            continue;
        }
        let index = usize::try_from((sample.intended - from).as_nanos() / width.as_nanos())
            .unwrap_or(usize::MAX)
            .min(count - 1);
        match sample.answer.verdict {
            Verdict::Accepted => latencies[index].push(nanos(sample.latency)),
            Verdict::Shed => tallies[index].0 += 1,
            Verdict::Failed => tallies[index].1 += 1,
        }
    }
    latencies
        .into_iter()
        .zip(tallies)
        .enumerate()
        .map(|(index, (mut accepted, (shed, failed)))| Window {
            from_seconds: width.as_secs_f64() * index as f64,
            accepted: accepted.len() as u64,
            shed,
            failed,
            p99_us: Latency::from_nanos(&mut accepted).p99_us,
        })
        .collect()
}

/// When the service was back to normal: the start of the first window
/// from which every later window is normal. `None` when the last one is
/// not (it did not recover within the recovery phase).
pub fn recovered_after(windows: &[Window], baseline_p99_us: f64) -> Option<f64> {
    let abnormal_tail = windows
        .iter()
        .rposition(|window| !window.is_normal(baseline_p99_us));
    match abnormal_tail {
        None => windows.first().map(|window| window.from_seconds),
        Some(last_bad) => windows.get(last_bad + 1).map(|window| window.from_seconds),
    }
}

/// The three criteria for one run.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Criteria {
    /// Goodput under overload ÷ peak throughput.
    pub goodput_share: Option<f64>,
    /// p99 of accepted sends under overload ÷ p99 at peak.
    pub p99_over_peak: Option<f64>,
    /// Seconds after the overload until back to normal.
    pub recovered_after: Option<f64>,
}

impl Criteria {
    pub fn goodput_met(&self) -> bool {
        self.goodput_share
            .is_some_and(|share| share >= GOODPUT_SHARE_OF_PEAK)
    }

    pub fn p99_met(&self) -> bool {
        self.p99_over_peak
            .is_some_and(|ratio| ratio <= P99_OVER_PEAK)
    }

    pub fn recovery_met(&self) -> bool {
        self.recovered_after
            .is_some_and(|seconds| seconds <= RECOVERY_SECONDS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(intended_ms: u64, latency_ms: u64, verdict: Verdict) -> Sample {
        Sample {
            intended: Duration::from_millis(intended_ms),
            latency: Duration::from_millis(latency_ms),
            response: Duration::from_millis(latency_ms / 2),
            answer: Answer {
                verdict,
                retry_hint: verdict == Verdict::Shed,
                failure: (verdict == Verdict::Failed).then(|| "Internal: boom".to_owned()),
            },
        }
    }

    fn window(shed: u64, failed: u64, p99_us: f64) -> Window {
        Window {
            from_seconds: 0.0,
            accepted: 10,
            shed,
            failed,
            p99_us,
        }
    }

    #[test]
    fn a_phase_summary_counts_each_verdict_and_rates_goodput_over_the_phase() {
        let samples = [
            sample(0, 5, Verdict::Accepted),
            sample(1, 7, Verdict::Accepted),
            sample(2, 1, Verdict::Shed),
            sample(3, 5_000, Verdict::Failed),
        ];
        let summary = summarize(&samples, 4.0, Duration::from_secs(2));
        assert_eq!(
            (
                summary.answered,
                summary.accepted,
                summary.shed,
                summary.failed
            ),
            (4, 2, 1, 1)
        );
        assert_eq!(summary.accepted_per_second, 1.0);
        assert_eq!(summary.shed_with_retry_hint, 1);
        assert_eq!(summary.accepted_latency.p99_us, 7_000.0);
        assert_eq!(summary.shed_latency.p99_us, 1_000.0);
        assert_eq!(summary.accepted_response.p99_us, 3_000.0);
        assert_eq!(summary.first_failure.as_deref(), Some("Internal: boom"));
    }

    #[test]
    fn windows_go_by_intended_send_time_not_by_answer_time() {
        // Sent in the first window, answered two seconds later: it belongs
        // to the first window.
        let samples = [
            sample(1_000, 2_000, Verdict::Accepted),
            sample(1_300, 1, Verdict::Shed),
            sample(1_600, 1, Verdict::Failed),
            sample(999, 1, Verdict::Failed),
        ];
        let cut = windows(
            &samples,
            Duration::from_millis(1_000),
            Duration::from_millis(2_000),
            Duration::from_millis(250),
        );
        assert_eq!(cut.len(), 4);
        assert_eq!((cut[0].accepted, cut[0].p99_us), (1, 2_000_000.0));
        assert_eq!((cut[1].shed, cut[1].failed), (1, 0));
        assert_eq!((cut[2].shed, cut[2].failed), (0, 1));
        assert_eq!(cut[3].from_seconds, 0.75);
    }

    #[test]
    fn a_window_is_normal_without_refusals_or_failures_and_within_twice_the_baseline_p99() {
        assert!(window(0, 0, 2_000.0).is_normal(1_000.0));
        assert!(!window(0, 0, 2_001.0).is_normal(1_000.0));
        assert!(!window(1, 0, 10.0).is_normal(1_000.0));
        assert!(!window(0, 1, 10.0).is_normal(1_000.0));
    }

    #[test]
    fn recovery_is_the_start_of_the_normal_tail() {
        let mut cut = vec![
            window(5, 0, 1.0),
            window(0, 0, 900.0),
            window(0, 0, 5_000.0),
            window(0, 0, 900.0),
            window(0, 0, 900.0),
        ];
        for (index, window) in cut.iter_mut().enumerate() {
            window.from_seconds = 0.25 * index as f64;
        }
        // The normal second window does not count: the third is slow again.
        assert_eq!(recovered_after(&cut, 1_000.0), Some(0.75));
        // Normal from the start.
        assert_eq!(recovered_after(&cut[3..], 1_000.0), Some(0.75));
        // Still abnormal at the end: not recovered.
        assert_eq!(recovered_after(&cut[..3], 1_000.0), None);
        assert_eq!(recovered_after(&[], 1_000.0), None);
    }

    #[test]
    fn the_criteria_need_a_measurement() {
        let measured = Criteria {
            goodput_share: Some(0.8),
            p99_over_peak: Some(4.0),
            recovered_after: Some(2.0),
        };
        assert!(measured.goodput_met() && measured.p99_met() && measured.recovery_met());
        let missed = Criteria {
            goodput_share: Some(0.79),
            p99_over_peak: Some(4.1),
            recovered_after: None,
        };
        assert!(!missed.goodput_met() && !missed.p99_met() && !missed.recovery_met());
    }
}
