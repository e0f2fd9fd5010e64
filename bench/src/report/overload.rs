//! Section 6: the overload experiment, one row per repeat (the spread is
//! the point on a shared machine), and its three targets judged on the
//! median of the repeats.

use std::fmt::Write as _;

use super::{count, millis, rate, row, times};
use crate::overload::analysis::{
    GOODPUT_SHARE_OF_PEAK, NORMAL_P99_OVER_BASELINE, P99_OVER_PEAK, RECOVERY_SECONDS,
};
use crate::overload::{OverloadRun, PhaseCpu};
use crate::stats::median;
use crate::suite::{OVERLOAD_GRPC, OVERLOAD_REST, Report};

pub(super) fn table(out: &mut String, report: &Report) {
    if report.overload.is_empty() {
        return;
    }
    let plan = &report.overload_plan;
    let _ = writeln!(
        out,
        "\n### 6. Overload: {}× the peak send rate for {} s (peak: closed loop at {} in flight; then one open-loop schedule, latency from each request's intended send time: {} s at {}× peak, {} s at {}× peak, {} s at {}× peak, up to {} requests in flight; fresh processes and store per run)\n",
        plan.overload_factor,
        plan.overload.as_secs_f64(),
        plan.peak_concurrency,
        plan.baseline.as_secs_f64(),
        plan.baseline_factor,
        plan.overload.as_secs_f64(),
        plan.overload_factor,
        plan.recovery.as_secs_f64(),
        plan.recovery_factor,
        count(plan.max_in_flight),
    );
    if let Some(base) = plan.rate_base {
        let _ = writeln!(
            out,
            "Rates here are multiples of {} req/s given by hand (`--overload-rate-base`), not of each run's measured peak; the × columns still compare with the measured peak.\n",
            rate(base)
        );
    }
    let _ = writeln!(
        out,
        "| target | run | load avg | peak req/s | peak p99 ms | offered req/s | goodput req/s | × peak | accepted p50 ms | accepted p99 ms | × peak p99 | shed | … with retry hint | shed p50 / p99 ms | failed | p99 before ms | back to normal after s | CPU under overload (cores) |"
    );
    let _ = writeln!(
        out,
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|"
    );
    for point in &report.overload {
        let run = &point.run;
        let overload = &run.overload;
        let _ = writeln!(
            out,
            "| {} | {} | {:.1} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} / {} | {} | {} | {} | {} |",
            label(&point.target),
            point.repeat,
            point.load_average_before[0],
            rate(run.peak.throughput),
            millis(run.peak.latency.p99_us),
            rate(overload.offered_rate),
            rate(overload.accepted_per_second),
            times(run.criteria.goodput_share),
            millis(overload.accepted_latency.p50_us),
            millis(overload.accepted_latency.p99_us),
            times(run.criteria.p99_over_peak),
            count(overload.shed as usize),
            count(overload.shed_with_retry_hint as usize),
            millis(overload.shed_latency.p50_us),
            millis(overload.shed_latency.p99_us),
            count(overload.failed as usize),
            millis(run.baseline.accepted_latency.p99_us),
            run.criteria
                .recovered_after
                .map_or_else(|| "not within the run".to_owned(), |s| format!("{s:.2}")),
            cpu(&run.cpu),
        );
    }
    notes(out, report);
}

/// What else a reader needs: failures, and whether the generator kept up.
fn notes(out: &mut String, report: &Report) {
    let _ = writeln!(
        out,
        "\nBack to normal: the first {} ms window (by intended send time) after the overload from which every window has no refusal, no failure and a p99 within {NORMAL_P99_OVER_BASELINE}× the p99 before the overload.",
        report.overload_plan.window.as_millis()
    );
    for point in &report.overload {
        let run = &point.run;
        let pacer = &run.pacer;
        let mut said = Vec::new();
        if let Some(failure) = &run.overload.first_failure {
            said.push(format!("first failure under overload: {failure}"));
        }
        if let Some(failure) = &run.recovery.first_failure {
            said.push(format!(
                "{} failed in recovery, first: {failure}",
                count(run.recovery.failed as usize)
            ));
        }
        if run.recovery.shed > 0 {
            said.push(format!(
                "{} shed in recovery",
                count(run.recovery.shed as usize)
            ));
        }
        said.push(format!(
            "response time from the actual send under overload: accepted p99 {} ms, shed p99 {} ms",
            millis(run.overload.accepted_response.p99_us),
            millis(run.overload.shed_response.p99_us),
        ));
        said.push(format!(
            "generator: {} requests, {} issued > 1 ms late (latest {:.1} ms), at most {} in flight{}",
            count(pacer.issued as usize),
            count(pacer.late as usize),
            pacer.max_lateness_ms,
            count(pacer.max_in_flight),
            pacer
                .connections
                .map(|dialed| format!(", {} connections opened", count(dialed as usize)))
                .unwrap_or_default()
        ));
        let _ = writeln!(
            out,
            "- {} run {}: {}.",
            label(&point.target),
            point.repeat,
            said.join("; ")
        );
    }
}

pub(super) fn targets(out: &mut String, report: &Report) {
    for target in [OVERLOAD_GRPC, OVERLOAD_REST] {
        let runs: Vec<&OverloadRun> = report
            .overload
            .iter()
            .filter(|point| point.target == target)
            .map(|point| &point.run)
            .collect();
        if runs.is_empty() {
            continue;
        }
        let name = label(target);
        let goodput = criterion(&runs, |run| run.criteria.goodput_share);
        row(
            out,
            &format!(
                "overload, {name}: goodput at {}× peak ≥ {:.0}% of peak",
                report.overload_plan.overload_factor,
                GOODPUT_SHARE_OF_PEAK * 100.0
            ),
            Some(each(&goodput, |share| format!("{:.0}%", share * 100.0))),
            Some(median_of(&goodput, 0.0) >= GOODPUT_SHARE_OF_PEAK),
        );
        let p99 = criterion(&runs, |run| run.criteria.p99_over_peak);
        row(
            out,
            &format!("… p99 of accepted sends ≤ {P99_OVER_PEAK}× the p99 at peak"),
            Some(each(&p99, |ratio| format!("{ratio:.2}×"))),
            Some(median_of(&p99, f64::INFINITY) <= P99_OVER_PEAK),
        );
        let recovery = criterion(&runs, |run| run.criteria.recovered_after);
        row(
            out,
            &format!("… back to normal ≤ {RECOVERY_SECONDS} s after"),
            Some(each(&recovery, |seconds| format!("{seconds:.2} s"))),
            Some(median_of(&recovery, f64::INFINITY) <= RECOVERY_SECONDS),
        );
    }
}

/// One value per run; `None` when it could not be measured (nothing
/// accepted, never back to normal).
fn criterion(
    runs: &[&OverloadRun],
    value: impl Fn(&OverloadRun) -> Option<f64>,
) -> Vec<Option<f64>> {
    runs.iter().map(|run| value(run)).collect()
}

fn each(values: &[Option<f64>], show: impl Fn(f64) -> String) -> String {
    let shown: Vec<String> = values
        .iter()
        .map(|value| value.map_or_else(|| "–".to_owned(), &show))
        .collect();
    let measured: Vec<Option<f64>> = values.iter().copied().filter(Option::is_some).collect();
    if values.len() > 1 && measured.len() == values.len() {
        let median = median_of(&measured, f64::NAN);
        format!("{} (median {})", shown.join(", "), show(median))
    } else {
        shown.join(", ")
    }
}

/// The median, a value that could not be measured counting as `worst`.
fn median_of(values: &[Option<f64>], worst: f64) -> f64 {
    median(values.iter().map(|value| value.unwrap_or(worst)).collect())
}

fn cpu(processes: &[PhaseCpu]) -> String {
    processes
        .iter()
        .map(|process| format!("{} {:.2}", process.process, process.overload))
        .collect::<Vec<_>>()
        .join(", ")
}

fn label(target: &str) -> &str {
    match target {
        OVERLOAD_GRPC => "gRPC direct → embedded",
        OVERLOAD_REST => "REST via edge → embedded",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_that_could_not_be_measured_counts_as_the_worst() {
        assert_eq!(median_of(&[Some(1.0), None, Some(3.0)], f64::INFINITY), 3.0);
        assert!(median_of(&[None, None, Some(1.0)], f64::INFINITY).is_infinite());
        assert_eq!(median_of(&[None, None, Some(1.0)], 0.0), 0.0);
    }

    #[test]
    fn each_run_is_shown_with_the_median_when_all_were_measured() {
        let shown = each(&[Some(0.5), Some(2.5), Some(1.5)], |value| {
            format!("{value:.1}")
        });
        assert_eq!(shown, "0.5, 2.5, 1.5 (median 1.5)");
        let shown = each(&[Some(0.5), None], |value| format!("{value:.1}"));
        assert_eq!(shown, "0.5, –");
    }
}
