//! Section 4b: what an audience costs the sender and chat-service, and the
//! target "a send's p99 with 10,000 listeners ≤ 2× its p99 with none".

use std::fmt::Write as _;

use super::{count, micros, millis, row, times};
use crate::stats::ratio;
use crate::suite::{FanoutPoint, Report};

/// Listeners of the "acknowledgments never wait for fan-out" target.
const LISTENERS: usize = 10_000;
/// Send p99 with them at most this many times the p99 with none.
const SEND_P99_RATIO: f64 = 2.0;

fn chat_points(report: &Report) -> impl Iterator<Item = &FanoutPoint> {
    report
        .fanout
        .iter()
        .filter(|point| point.target == "chat-service")
}

pub(super) fn table(out: &mut String, report: &Report) {
    if chat_points(report).next().is_none() {
        return;
    }
    let _ = writeln!(
        out,
        "\n### 4b. What the audience costs: the same sends with nobody listening (same process, just before the subscribers connect) and with N subscribers; chat-service CPU (user + system) per message; delivery from the schedule\n"
    );
    let _ = writeln!(
        out,
        "| transport | subscribers | send p50 ms alone | send p99 ms alone | send p50 ms with them | send p99 ms with them | p99 × alone | chat-service CPU µs/msg alone | with them | µs per copy | from schedule p50 ms | p99 ms | p99.9 ms |"
    );
    let _ = writeln!(out, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    for point in chat_points(report) {
        let alone = point.send_latency_alone;
        let cpu = point
            .cpu
            .iter()
            .find(|cpu| cpu.process.starts_with("chat-service"));
        let extra_per_copy = cpu.and_then(|cpu| {
            let alone = cpu.us_per_message_alone?;
            Some((cpu.us_per_message - alone) / point.subscribers.max(1) as f64)
        });
        let dash = || "–".to_owned();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            point.transport,
            count(point.subscribers),
            alone.map_or_else(dash, |alone| millis(alone.p50_us)),
            alone.map_or_else(dash, |alone| millis(alone.p99_us)),
            millis(point.send_latency.p50_us),
            millis(point.send_latency.p99_us),
            times(alone.and_then(|alone| ratio(point.send_latency.p99_us, alone.p99_us))),
            cpu.and_then(|cpu| cpu.us_per_message_alone)
                .map_or_else(dash, micros),
            cpu.map_or_else(dash, |cpu| micros(cpu.us_per_message)),
            extra_per_copy.map_or_else(dash, |value| format!("{value:.2}")),
            millis(point.latency_from_schedule.p50_us),
            millis(point.latency_from_schedule.p99_us),
            millis(point.latency_from_schedule.p999_us),
        );
    }
}

/// The verdict row of the target.
pub(super) fn targets(out: &mut String, report: &Report) {
    let point = chat_points(report)
        .find(|point| point.transport == "grpc" && point.subscribers == LISTENERS);
    let measured = point.and_then(|point| {
        let alone = point.send_latency_alone?;
        Some((point.send_latency.p99_us, alone.p99_us))
    });
    row(
        out,
        "send p99 with 10,000 gRPC listeners ≤ 2× send p99 with none",
        measured.map(|(with, alone)| {
            format!(
                "{} ms against {} ms ({})",
                millis(with),
                millis(alone),
                times(ratio(with, alone))
            )
        }),
        measured.map(|(with, alone)| with <= SEND_P99_RATIO * alone),
    );
}
