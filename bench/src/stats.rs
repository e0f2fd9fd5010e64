//! Latency summaries and medians.
//!
//! Every latency of a measured window is kept (a few million `u64` at most:
//! the runs are bounded in count), so percentiles are exact nearest-rank
//! values, not histogram buckets.

use std::time::Duration;

use serde::Serialize;

/// Percentiles of one set of latencies, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Latency {
    pub samples: usize,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
    pub mean_us: f64,
}

impl Latency {
    /// Summarises `nanos` (sorted in place).
    pub fn from_nanos(nanos: &mut [u64]) -> Self {
        if nanos.is_empty() {
            return Self::default();
        }
        nanos.sort_unstable();
        let micros = |value: u64| value as f64 / 1_000.0;
        let total: u128 = nanos.iter().map(|&value| u128::from(value)).sum();
        Self {
            samples: nanos.len(),
            p50_us: micros(nearest_rank(nanos, 0.50)),
            p99_us: micros(nearest_rank(nanos, 0.99)),
            p999_us: micros(nearest_rank(nanos, 0.999)),
            max_us: micros(nanos[nanos.len() - 1]),
            mean_us: total as f64 / nanos.len() as f64 / 1_000.0,
        }
    }

    /// The element-wise median of several summaries (each percentile's
    /// median over the repeats).
    pub fn median_of(runs: &[Latency]) -> Self {
        let pick = |field: fn(&Latency) -> f64| median(runs.iter().map(field).collect());
        Self {
            samples: runs.iter().map(|run| run.samples).sum(),
            p50_us: pick(|run| run.p50_us),
            p99_us: pick(|run| run.p99_us),
            p999_us: pick(|run| run.p999_us),
            max_us: pick(|run| run.max_us),
            mean_us: pick(|run| run.mean_us),
        }
    }
}

/// The nearest-rank percentile of sorted, non-empty `sorted`.
fn nearest_rank(sorted: &[u64], quantile: f64) -> u64 {
    let rank = (quantile * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The median of `values` (the mean of the middle two for an even count);
/// 0 for none.
pub fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len() % 2 == 1 {
        values[middle]
    } else {
        (values[middle - 1] + values[middle]) / 2.0
    }
}

/// `value / baseline`, or `None` when there is no baseline to divide by.
pub fn ratio(value: f64, baseline: f64) -> Option<f64> {
    (baseline > 0.0 && value.is_finite()).then(|| value / baseline)
}

/// Nanoseconds of a duration, saturating.
pub fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank_values() {
        let mut nanos: Vec<u64> = (1..=1000).rev().map(|micros| micros * 1_000).collect();
        let latency = Latency::from_nanos(&mut nanos);
        assert_eq!(latency.samples, 1000);
        assert_eq!(latency.p50_us, 500.0);
        assert_eq!(latency.p99_us, 990.0);
        assert_eq!(latency.p999_us, 999.0);
        assert_eq!(latency.max_us, 1000.0);
        assert_eq!(latency.mean_us, 500.5);
    }

    #[test]
    fn a_single_sample_is_every_percentile() {
        let latency = Latency::from_nanos(&mut [7_000]);
        assert_eq!((latency.p50_us, latency.p999_us), (7.0, 7.0));
    }

    #[test]
    fn no_samples_give_zeros_not_a_panic() {
        assert_eq!(Latency::from_nanos(&mut []), Latency::default());
    }

    #[test]
    fn the_median_of_an_even_count_is_the_middle_mean() {
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(Vec::new()), 0.0);
    }

    #[test]
    fn a_ratio_needs_a_positive_baseline() {
        assert_eq!(ratio(50.0, 100.0), Some(0.5));
        assert_eq!(ratio(50.0, 0.0), None);
    }
}
