//! The overload experiment (BENCHMARKS.md section 6): does a service under
//! twice the load it can carry keep serving what it can, refuse the rest
//! quickly, and come back at once when the load drops?
//!
//! Against one target (gRPC `SendMessage`, or the REST send through
//! http-edge):
//!
//! 1. **Peak**: closed loop at 64 in flight, as sections 1 and 2 measure it:
//!    throughput and p99.
//! 2. One open-loop schedule ([`crate::load::schedule`]), latency from each
//!    request's intended send time:
//!    - **baseline**: a warm-up, then half of peak (the "normal" p99 that
//!      recovery is judged against);
//!    - **overload**: twice the peak rate (`--overload-factor`) for 20 s
//!      (`--overload-secs`), with up to 8,192 requests in flight so that the
//!      generator is never what holds requests back;
//!    - **recovery**: straight back to half of peak for 5 s, cut into
//!      250 ms windows by intended send time.
//!
//! Each answer is accepted, shed or failed ([`answer`]); [`analysis`] turns
//! them into goodput against peak, the p99 of accepted sends against peak's,
//! how fast refusals came, and when the service was back to normal. The
//! CPU each watched process used in each phase shows what saturated.

pub mod analysis;
pub mod answer;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::load::grpc::GrpcSend;
use crate::load::http::HttpRequest;
use crate::load::pool::HttpPool;
use crate::load::schedule::{self, Answered, Phase};
use crate::load::{Plan, RunOutcome};
use crate::process::cpu_seconds;
use crate::suite::{grpc_closed, http_closed};
use analysis::{Criteria, PhaseSummary, Sample, Window};
use answer::Answer;

/// Users taking turns in the open-loop schedule, as in section 1b.
const USERS: usize = 64;

/// The schedule's phases, in order, after the warm-up (0).
const BASELINE: usize = 1;
const OVERLOAD: usize = 2;
const RECOVERY: usize = 3;

#[derive(Debug, Clone, Copy, Serialize)]
pub struct OverloadPlan {
    /// The closed-loop peak run: its concurrency and window.
    pub peak_concurrency: usize,
    pub peak: Plan,
    /// Rates as multiples of the peak throughput.
    pub baseline_factor: f64,
    pub overload_factor: f64,
    pub recovery_factor: f64,
    /// Warm-up at the baseline rate, then the three phases.
    pub warmup: Duration,
    pub baseline: Duration,
    pub overload: Duration,
    pub recovery: Duration,
    /// Recovery windows.
    pub window: Duration,
    pub max_in_flight: usize,
    /// The rates are multiples of this instead of the measured peak: for
    /// A/B runs of two settings at the same offered load on a machine whose
    /// measured peak drifts. The criteria still compare with the measured
    /// peak.
    pub rate_base: Option<f64>,
}

impl OverloadPlan {
    /// The experiment: 2× peak for 20 s, half of peak around it.
    pub fn full() -> Self {
        Self {
            peak_concurrency: 64,
            peak: Plan {
                warmup: Duration::from_secs(1),
                measure: Duration::from_secs(4),
                max_requests: 2_000_000,
            },
            baseline_factor: 0.5,
            overload_factor: 2.0,
            recovery_factor: 0.5,
            warmup: Duration::from_secs(1),
            baseline: Duration::from_secs(4),
            overload: Duration::from_secs(20),
            recovery: Duration::from_secs(5),
            window: Duration::from_millis(250),
            max_in_flight: 8_192,
            rate_base: None,
        }
    }

    /// A second or two of each, to check that everything runs.
    pub fn smoke() -> Self {
        Self {
            peak: Plan {
                warmup: Duration::from_millis(200),
                measure: Duration::from_millis(500),
                max_requests: 2_000_000,
            },
            warmup: Duration::from_millis(200),
            baseline: Duration::from_millis(500),
            overload: Duration::from_secs(1),
            recovery: Duration::from_secs(1),
            ..Self::full()
        }
    }
}

/// What the experiment drives.
#[derive(Clone)]
pub enum OverloadTarget {
    /// `ChatService/SendMessage` over one HTTP/2 connection.
    Grpc(SocketAddr),
    /// The REST send, one HTTP/1.1 connection per request in flight.
    Http(HttpRequest),
}

/// A process whose CPU use is read at each phase boundary.
#[derive(Debug, Clone)]
pub struct Watched {
    pub name: String,
    pub pid: u32,
}

/// CPU one process used in each phase, in cores (1.0 = one core busy).
#[derive(Debug, Clone, Serialize)]
pub struct PhaseCpu {
    pub process: String,
    pub baseline: f64,
    pub overload: f64,
    pub recovery: f64,
}

/// How well the generator kept to the schedule.
#[derive(Debug, Clone, Serialize)]
pub struct PacerReport {
    pub issued: u64,
    /// Issued more than 1 ms after their intended time.
    pub late: u64,
    pub max_lateness_ms: f64,
    pub max_in_flight: usize,
    /// Issued but never answered (the drain gave up): counted as failures.
    pub unanswered: u64,
    /// HTTP connections opened (REST only).
    pub connections: Option<u64>,
}

/// One run of the experiment against one target.
#[derive(Debug, Clone, Serialize)]
pub struct OverloadRun {
    pub peak: RunOutcome,
    pub baseline: PhaseSummary,
    pub overload: PhaseSummary,
    pub recovery: PhaseSummary,
    /// The recovery phase, window by window.
    pub windows: Vec<Window>,
    pub criteria: Criteria,
    pub pacer: PacerReport,
    pub cpu: Vec<PhaseCpu>,
}

/// Runs the experiment against `target`, sending to `stream_id`; reads the
/// CPU use of `watch` (and of this process, the generator) per phase.
pub async fn run(
    target: &OverloadTarget,
    stream_id: &str,
    plan: &OverloadPlan,
    watch: &[Watched],
) -> anyhow::Result<OverloadRun> {
    let peak = match target {
        OverloadTarget::Grpc(addr) => {
            grpc_closed(*addr, stream_id, plan.peak_concurrency, plan.peak).await?
        }
        OverloadTarget::Http(request) => {
            http_closed(request.clone(), plan.peak_concurrency, plan.peak).await?
        }
    };
    anyhow::ensure!(
        peak.ok > 0,
        "the peak run completed no request (first error: {})",
        peak.first_error.as_deref().unwrap_or("none")
    );
    let phases = schedule_of(plan, plan.rate_base.unwrap_or(peak.throughput));
    let mut watched = watch.to_vec();
    watched.push(Watched {
        name: "chat-bench (generator)".to_owned(),
        pid: std::process::id(),
    });
    // Clients first (connections, tokens), so that the schedule starts on
    // time.
    let client = match target {
        OverloadTarget::Grpc(addr) => {
            Client::Grpc(GrpcSend::connect(*addr, stream_id, USERS).await?)
        }
        OverloadTarget::Http(request) => Client::Http(Arc::new(
            HttpPool::connect(request.clone(), USERS, plan.peak_concurrency).await?,
        )),
    };
    let start = Instant::now() + Duration::from_millis(50);
    let cpu = tokio::spawn(cpu_at_boundaries(start, phases.clone(), watched.clone()));
    let (answers, pacer) = match client {
        Client::Grpc(sender) => {
            let paced = schedule::paced(start, &phases, plan.max_in_flight, move |index| {
                let sender = sender.clone();
                async move { answer::grpc(&sender.call(index as usize).await) }
            })
            .await?;
            let pacer = pacer_report(&paced, None);
            (paced.answers, pacer)
        }
        Client::Http(pool) => {
            let caller = pool.clone();
            let paced = schedule::paced(start, &phases, plan.max_in_flight, move |index| {
                let pool = caller.clone();
                async move { answer::http(&pool.call(index as usize).await) }
            })
            .await?;
            let pacer = pacer_report(&paced, Some(pool.dialed()));
            (paced.answers, pacer)
        }
    };
    let cpu = cpu.await??;
    Ok(analyse(
        peak,
        &phases,
        plan.window,
        answers,
        pacer,
        &watched,
        &cpu,
    ))
}

/// The open-loop schedule's client, connected.
enum Client {
    Grpc(Arc<GrpcSend>),
    Http(Arc<HttpPool>),
}

/// Warm-up and baseline at the baseline rate, then overload, then recovery,
/// each a multiple of `base`.
fn schedule_of(plan: &OverloadPlan, base: f64) -> Vec<Phase> {
    let phase = |factor: f64, length| Phase {
        rate: (base * factor).max(1.0),
        length,
        max_requests: u64::MAX,
    };
    vec![
        phase(plan.baseline_factor, plan.warmup),
        phase(plan.baseline_factor, plan.baseline),
        phase(plan.overload_factor, plan.overload),
        phase(plan.recovery_factor, plan.recovery),
    ]
}

fn pacer_report(paced: &schedule::Paced<Answer>, connections: Option<u64>) -> PacerReport {
    PacerReport {
        issued: paced.issued,
        late: paced.late,
        max_lateness_ms: paced.max_lateness.as_secs_f64() * 1_000.0,
        max_in_flight: paced.max_in_flight,
        unanswered: paced.unanswered(),
        connections,
    }
}

/// Each watched process's CPU time at the start of the schedule and at
/// the end of each phase.
async fn cpu_at_boundaries(
    start: Instant,
    phases: Vec<Phase>,
    watched: Vec<Watched>,
) -> anyhow::Result<Vec<Vec<f64>>> {
    let read = || -> anyhow::Result<Vec<f64>> {
        watched
            .iter()
            .map(|process| cpu_seconds(process.pid))
            .collect()
    };
    tokio::time::sleep_until(start.into()).await;
    let mut readings = vec![read()?];
    for (_, until) in schedule::boundaries(&phases) {
        tokio::time::sleep_until((start + until).into()).await;
        readings.push(read()?);
    }
    Ok(readings)
}

fn analyse(
    peak: RunOutcome,
    phases: &[Phase],
    window: Duration,
    answers: Vec<Answered<Answer>>,
    pacer: PacerReport,
    watched: &[Watched],
    cpu: &[Vec<f64>],
) -> OverloadRun {
    let mut by_phase: Vec<Vec<Sample>> = vec![Vec::new(); phases.len()];
    for answered in answers {
        by_phase[answered.phase].push(Sample {
            intended: answered.intended,
            latency: answered.latency,
            response: answered.latency.saturating_sub(answered.lateness),
            answer: answered.answer,
        });
    }
    let summary = |index: usize| {
        analysis::summarize(&by_phase[index], phases[index].rate, phases[index].length)
    };
    let (baseline, overload, recovery) = (summary(BASELINE), summary(OVERLOAD), summary(RECOVERY));
    let bounds = schedule::boundaries(phases);
    let (recovery_from, recovery_until) = bounds[RECOVERY];
    let windows = analysis::windows(&by_phase[RECOVERY], recovery_from, recovery_until, window);
    let criteria = Criteria {
        goodput_share: crate::stats::ratio(overload.accepted_per_second, peak.throughput),
        p99_over_peak: (overload.accepted > 0)
            .then(|| crate::stats::ratio(overload.accepted_latency.p99_us, peak.latency.p99_us))
            .flatten(),
        recovered_after: analysis::recovered_after(&windows, baseline.accepted_latency.p99_us),
    };
    let used = |process: usize, phase: usize| {
        let spent = cpu[phase + 1][process] - cpu[phase][process];
        spent / phases[phase].length.as_secs_f64().max(f64::EPSILON)
    };
    let cpu = watched
        .iter()
        .enumerate()
        .map(|(process, watched)| PhaseCpu {
            process: watched.name.clone(),
            baseline: used(process, BASELINE),
            overload: used(process, OVERLOAD),
            recovery: used(process, RECOVERY),
        })
        .collect();
    OverloadRun {
        peak,
        baseline,
        overload,
        recovery,
        windows,
        criteria,
        pacer,
        cpu,
    }
}
