//! Section 4c: SSE viewers through several edges, the fan-out tree against
//! the relay, and the SSE targets of issue 15 ("20,000 SSE viewers through
//! 2 edges: p99 delivery < 100 ms from the schedule; every copy delivered or
//! an explicit gap; < 8 KiB per idle viewer at the edge"; chat-service's CPU
//! per message flat as viewers grow).

use std::fmt::Write as _;

use super::{MIB, count, micros, millis, row};
use crate::stats::ratio;
use crate::suite::{EDGE_RELAY, EDGE_TREE, FanoutPoint, Report};

const VIEWERS: usize = 20_000;
const P99_FROM_SCHEDULE_US: f64 = 100_000.0;
const BYTES_PER_IDLE_VIEWER: f64 = 8.0 * 1024.0;
/// "Flat": chat-service's CPU per message at the most viewers at most this
/// many times its CPU per message at the fewest.
const CHAT_CPU_FLAT_RATIO: f64 = 1.5;

fn is_edge(process: &str) -> bool {
    process.starts_with("http-edge")
}

fn is_chat(process: &str) -> bool {
    process.starts_with("chat-service")
}

fn mode(point: &FanoutPoint) -> &'static str {
    if point.target == EDGE_TREE {
        "tree (EDGE_UPSTREAM_TOKEN)"
    } else if point.target == EDGE_RELAY {
        "relay (no token)"
    } else {
        "?"
    }
}

/// Viewers, with what was asked when the open-file limit held them back.
fn viewers(point: &FanoutPoint) -> String {
    if point.requested_subscribers > point.subscribers {
        format!(
            "{} (of {} asked: open-file limit)",
            count(point.subscribers),
            count(point.requested_subscribers)
        )
    } else {
        count(point.subscribers)
    }
}

fn per_edge(point: &FanoutPoint) -> usize {
    (point.subscribers / point.edges.max(1)).max(1)
}

/// Each edge's resident memory per idle viewer, in bytes.
fn edge_bytes_per_viewer(point: &FanoutPoint) -> Vec<f64> {
    point
        .memory
        .iter()
        .filter(|memory| is_edge(&memory.process))
        .map(|memory| memory.per_subscriber_bytes(per_edge(point)))
        .collect()
}

/// The edges' CPU per message, summed over the edges.
fn edges_cpu(point: &FanoutPoint) -> f64 {
    point
        .cpu
        .iter()
        .filter(|cpu| is_edge(&cpu.process))
        .map(|cpu| cpu.us_per_message)
        .sum()
}

fn chat_cpu(point: &FanoutPoint) -> Option<(f64, Option<f64>)> {
    point
        .cpu
        .iter()
        .find(|cpu| is_chat(&cpu.process))
        .map(|cpu| (cpu.us_per_message, cpu.us_per_message_alone))
}

fn live_subscribers(point: &FanoutPoint) -> String {
    let mut seen: Vec<String> = point
        .live_subscribers
        .iter()
        .map(|value| format!("{value:.0}"))
        .collect();
    seen.dedup();
    if seen.is_empty() {
        "–".to_owned()
    } else {
        seen.join(", ")
    }
}

pub(super) fn table(out: &mut String, report: &Report) {
    let points = &report.edge_fanout;
    let Some(first) = points.first() else {
        return;
    };
    let plan = &report.fanout_plan;
    let _ = writeln!(
        out,
        "\n### 4c. SSE viewers through {} http-edges on one stream: the fan-out tree (one upstream subscription per edge) against the relay (one per viewer); {} messages per window due at {}/s, gRPC sender straight to chat-service, open loop; latency from each message's due time in the schedule and from its acknowledgment to each copy's arrival\n",
        first.edges, plan.messages, plan.rate
    );
    let _ = writeln!(
        out,
        "| mode | viewers | chat_live_subscribers | sent msg/s | copies expected | delivered | gaps | not delivered after a gap | missing | schedule p50 ms | p99 ms | p99.9 ms | ack p50 ms | p99 ms | p99.9 ms | connect s |"
    );
    let _ = writeln!(
        out,
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
    );
    for point in points {
        let expected: u64 = point.windows.iter().map(|window| window.expected).sum();
        let delivered: u64 = point.windows.iter().map(|window| window.delivered).sum();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.1} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} |",
            mode(point),
            viewers(point),
            live_subscribers(point),
            point.messages_per_second,
            count(usize::try_from(expected).unwrap_or(usize::MAX)),
            count(usize::try_from(delivered).unwrap_or(usize::MAX)),
            point.gaps,
            point.missing_after_gap,
            point.missing,
            millis(point.latency_from_schedule.p50_us),
            millis(point.latency_from_schedule.p99_us),
            millis(point.latency_from_schedule.p999_us),
            millis(point.latency.p50_us),
            millis(point.latency.p99_us),
            millis(point.latency.p999_us),
            point.connect_seconds,
        );
    }
    let _ = writeln!(
        out,
        "\nWhat it costs: CPU (each thread's time on a CPU from /proc/<pid>/task/*/schedstat over the window, all threads) per message sent; memory per idle viewer = (RSS with the viewers connected, after 3 warm-up messages − RSS before) ÷ viewers of that edge.\n"
    );
    let _ = writeln!(
        out,
        "| mode | viewers | chat-service µs/msg alone | with viewers | edges µs/msg (sum) | edge µs per copy | edge KiB per idle viewer (each edge) | edges peak RSS MiB | send p99 ms alone | with viewers |"
    );
    let _ = writeln!(out, "|---|--:|--:|--:|--:|--:|---|--:|--:|--:|");
    for point in points {
        let dash = || "–".to_owned();
        let chat = chat_cpu(point);
        let edges = edges_cpu(point);
        let kib: Vec<String> = edge_bytes_per_viewer(point)
            .iter()
            .map(|bytes| format!("{:.1}", bytes / 1024.0))
            .collect();
        let peak: u64 = point
            .memory
            .iter()
            .filter(|memory| is_edge(&memory.process))
            .map(|memory| memory.peak_bytes)
            .sum();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {:.2} | {} | {:.1} | {} | {} |",
            mode(point),
            viewers(point),
            chat.and_then(|(_, alone)| alone).map_or_else(dash, micros),
            chat.map_or_else(dash, |(with, _)| micros(with)),
            micros(edges),
            edges / point.subscribers.max(1) as f64,
            kib.join(" / "),
            peak as f64 / MIB,
            point
                .send_latency_alone
                .map_or_else(dash, |alone| millis(alone.p99_us)),
            millis(point.send_latency.p99_us),
        );
    }
}

/// The verdict rows of the SSE targets, on the tree's points.
pub(super) fn targets(out: &mut String, report: &Report) {
    let tree: Vec<&FanoutPoint> = report
        .edge_fanout
        .iter()
        .filter(|point| point.target == EDGE_TREE)
        .collect();
    let largest = tree.iter().max_by_key(|point| point.subscribers).copied();
    let smallest = tree.iter().min_by_key(|point| point.subscribers).copied();
    let label = largest.map_or_else(
        || format!("{} SSE viewers", count(VIEWERS)),
        |point| format!("{} SSE viewers", viewers(point)),
    );
    row(
        out,
        &format!(
            "{} SSE viewers through 2 edges (tree): p99 delivery < 100 ms from the schedule",
            count(VIEWERS)
        ),
        largest.map(|point| {
            format!(
                "{} ms from the schedule ({} ms from the ack), {label}, {} edges, {:.1} msg/s",
                millis(point.latency_from_schedule.p99_us),
                millis(point.latency.p99_us),
                point.edges,
                point.messages_per_second
            )
        }),
        largest.map(|point| {
            point.subscribers >= VIEWERS
                && point.latency_from_schedule.p99_us < P99_FROM_SCHEDULE_US
        }),
    );
    row(
        out,
        "… every copy delivered or an explicit gap",
        largest.map(|point| {
            let expected: u64 = point.windows.iter().map(|window| window.expected).sum();
            format!(
                "{} copies expected: {} missing, {} gaps ({} copies after them)",
                count(usize::try_from(expected).unwrap_or(usize::MAX)),
                point.missing,
                point.gaps,
                point.missing_after_gap
            )
        }),
        largest.map(|point| point.missing == 0 && point.errors == 0),
    );
    let worst = largest.and_then(|point| edge_bytes_per_viewer(point).into_iter().reduce(f64::max));
    row(
        out,
        "… < 8 KiB per idle viewer at the edge",
        worst.map(|bytes| format!("{:.1} KiB (the larger edge)", bytes / 1024.0)),
        worst.map(|bytes| bytes < BYTES_PER_IDLE_VIEWER),
    );
    row(
        out,
        "… chat-service counts one subscription per edge (chat_live_subscribers, from its /metrics)",
        largest.map(live_subscribers),
        largest.map(|point| {
            !point.live_subscribers.is_empty()
                && point
                    .live_subscribers
                    .iter()
                    .all(|&seen| (seen - point.edges as f64).abs() < f64::EPSILON)
        }),
    );
    let flat = smallest
        .zip(largest)
        .filter(|(small, large)| small.subscribers < large.subscribers)
        .and_then(|(small, large)| {
            let (small_cpu, _) = chat_cpu(small)?;
            let (large_cpu, _) = chat_cpu(large)?;
            Some((small, small_cpu, large, large_cpu))
        });
    row(
        out,
        &format!(
            "… chat-service CPU per message flat as viewers grow (at the most ≤ {CHAT_CPU_FLAT_RATIO}× at the fewest)"
        ),
        flat.map(|(small, small_cpu, large, large_cpu)| {
            format!(
                "{} µs at {} viewers, {} µs at {} ({})",
                micros(small_cpu),
                count(small.subscribers),
                micros(large_cpu),
                count(large.subscribers),
                super::times(ratio(large_cpu, small_cpu))
            )
        }),
        flat.map(|(_, small_cpu, _, large_cpu)| {
            ratio(large_cpu, small_cpu).is_some_and(|ratio| ratio <= CHAT_CPU_FLAT_RATIO)
        }),
    );
}
