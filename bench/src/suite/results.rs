//! What the suite measured, as written to `results.json` and rendered by
//! [`crate::report`].

use serde::Serialize;

use super::OverloadPoint;
use crate::fanout::{FanoutPlan, WindowOutcome};
use crate::history::HistoryPoint;
use crate::load::{Plan, RunOutcome};
use crate::machine::Machine;
use crate::overload::OverloadPlan;
use crate::stats::{Latency, median};

/// One target at one concurrency: every repeat, and their medians.
#[derive(Debug, Clone, Serialize)]
pub struct Point {
    pub target: String,
    pub concurrency: usize,
    /// Median throughput over the repeats, requests per second.
    pub throughput: f64,
    /// Each percentile's median over the repeats.
    pub latency: Latency,
    pub errors: u64,
    pub reply_bytes: usize,
    pub runs: Vec<RunOutcome>,
}

impl Point {
    pub(super) fn new(target: &str, concurrency: usize, runs: Vec<RunOutcome>) -> Self {
        let latencies: Vec<Latency> = runs.iter().map(|run| run.latency).collect();
        Self {
            target: target.to_owned(),
            concurrency,
            throughput: median(runs.iter().map(|run| run.throughput).collect()),
            latency: Latency::median_of(&latencies),
            errors: runs.iter().map(|run| run.errors).sum(),
            reply_bytes: runs.iter().map(|run| run.reply_bytes).max().unwrap_or(0),
            runs,
        }
    }
}

/// An open-loop comparison at half of a store's peak.
#[derive(Debug, Clone, Serialize)]
pub struct HalfPeak {
    pub store: String,
    /// The store's best median closed-loop throughput.
    pub peak: f64,
    /// The rate offered: half of `peak`.
    pub rate: f64,
    pub send: Point,
    pub noop: Point,
}

/// Resident memory of one process.
#[derive(Debug, Clone, Serialize)]
pub struct Memory {
    pub process: String,
    pub idle_bytes: u64,
    /// Peak during the top-concurrency runs.
    pub load_bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub smoke: bool,
    pub machine: Machine,
    pub load_average_after: [f64; 3],
    pub seconds: f64,
    pub plan: Plan,
    pub repeats: usize,
    pub burst_limit: u32,
    pub server_log_filter: String,
    pub grpc: Vec<Point>,
    pub rest: Vec<Point>,
    pub half_peak: Vec<HalfPeak>,
    pub history: Vec<HistoryPoint>,
    pub fanout_plan: FanoutPlan,
    pub fanout: Vec<FanoutPoint>,
    /// SSE viewers through several edges, fan-out tree and relay
    /// (section 4c).
    pub edge_fanout: Vec<FanoutPoint>,
    pub overload_plan: OverloadPlan,
    pub overload: Vec<OverloadPoint>,
    /// Extra settings of chat-service and http-edge (`--server-env`).
    pub server_env: Vec<(String, String)>,
    pub memory: Vec<Memory>,
    /// What went wrong; the run fails when this is not empty.
    pub failures: Vec<String>,
}

/// One fan-out point: a target with N subscribers.
#[derive(Debug, Clone, Serialize)]
pub struct FanoutPoint {
    /// `grpc` or `sse`.
    pub transport: String,
    /// `no-op` (the baseline) or `chat-service` (through the edge for SSE);
    /// for section 4c [`EDGE_TREE`] or [`EDGE_RELAY`].
    ///
    /// [`EDGE_TREE`]: super::EDGE_TREE
    /// [`EDGE_RELAY`]: super::EDGE_RELAY
    pub target: String,
    pub subscribers: usize,
    /// What was asked for: more than `subscribers` when the open-file limit
    /// of the generator held it back.
    pub requested_subscribers: usize,
    /// Edges the SSE viewers were spread over (section 4c; else 0 or 1).
    pub edges: usize,
    pub connections: usize,
    pub connect_seconds: f64,
    /// Median over the windows.
    pub deliveries_per_second: f64,
    /// Each percentile's median over the windows.
    pub latency: Latency,
    pub latency_from_schedule: Latency,
    /// Median over the windows of the rate the sender achieved.
    pub messages_per_second: f64,
    /// Copies never delivered to a viewer that was not given a `gap`.
    pub missing: u64,
    /// `gap` events the viewers were given (each ends its viewer).
    pub gaps: u64,
    /// Copies not delivered after a viewer's `gap` (explained, not missing).
    pub missing_after_gap: u64,
    pub unexpected: u64,
    pub errors: u64,
    /// chat-service's `chat_live_subscribers`, scraped from its `/metrics`
    /// with every viewer connected: after the warm-up and in the middle of
    /// each window (section 4c).
    pub live_subscribers: Vec<f64>,
    /// Every send of every window, from its request's start to its
    /// acknowledgment, with the subscribers listening.
    pub send_latency: Latency,
    /// The same sends in the same server before any subscriber connected
    /// (chat-service only): the baseline of "acknowledgments never wait for
    /// fan-out".
    pub send_latency_alone: Option<Latency>,
    /// CPU each server used per message sent, with the subscribers and
    /// (chat-service) before they connected.
    pub cpu: Vec<FanoutCpu>,
    /// Resident memory of each server, before the subscribers connected,
    /// with them connected and idle, and at the peak of the windows.
    pub memory: Vec<FanoutMemory>,
    pub windows: Vec<WindowOutcome>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FanoutCpu {
    pub process: String,
    /// Median over the windows of CPU time (user + system) per message.
    pub us_per_message: f64,
    /// The same with no subscriber, when measured.
    pub us_per_message_alone: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FanoutMemory {
    pub process: String,
    pub before_bytes: u64,
    pub subscribed_bytes: u64,
    pub peak_bytes: u64,
}

impl FanoutMemory {
    /// What each idle subscriber added to the process's resident memory.
    pub fn per_subscriber_bytes(&self, subscribers: usize) -> f64 {
        self.subscribed_bytes.saturating_sub(self.before_bytes) as f64 / subscribers.max(1) as f64
    }
}
