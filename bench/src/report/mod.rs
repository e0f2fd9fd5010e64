//! The printed table: markdown, so that the terminal output, `summary.md` and
//! `BENCHMARKS.md` are the same text. Every figure sits beside its ratio to
//! the baseline measured in the same run; the targets close the report.

mod audience;
mod edges;
mod overload;

use std::fmt::Write as _;

use crate::history::HistoryPoint;
use crate::stats::ratio;
use crate::suite::{Point, Report};

const MIB: f64 = 1024.0 * 1024.0;

/// The targets of the benchmark issue.
const SEND_SHARE_OF_NOOP: f64 = 0.5;
const REST_SHARE_OF_GRPC: f64 = 0.5;
const HALF_PEAK_P99_EMBEDDED_US: f64 = 5_000.0;
const HALF_PEAK_P99_CASSANDRA_US: f64 = 20_000.0;
const HISTORY_P99_EMBEDDED_US: f64 = 2_000.0;
/// "Flat": the median read at the largest size at most this many times the
/// median read at the smallest.
const HISTORY_FLAT_RATIO: f64 = 1.5;
const IDLE_RSS_BYTES: f64 = 50.0 * MIB;
const FANOUT_SUBSCRIBERS: usize = 10_000;
const FANOUT_P99_US: f64 = 100_000.0;
const FANOUT_BYTES_PER_SUBSCRIBER: f64 = 20.0 * 1024.0;

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    header(&mut out, report);
    grpc_table(&mut out, report);
    half_peak_table(&mut out, report);
    rest_table(&mut out, report);
    history_table(&mut out, report);
    fanout_table(&mut out, report);
    audience::table(&mut out, report);
    edges::table(&mut out, report);
    memory_table(&mut out, report);
    overload::table(&mut out, report);
    targets_table(&mut out, report);
    if !report.failures.is_empty() {
        let _ = writeln!(out, "\n### Failures\n");
        for failure in &report.failures {
            let _ = writeln!(out, "- {failure}");
        }
    }
    out
}

fn header(out: &mut String, report: &Report) {
    let machine = &report.machine;
    let [one, five, fifteen] = machine.load_average_before;
    let [one_after, five_after, fifteen_after] = report.load_average_after;
    let _ = writeln!(
        out,
        "## Allmine chat benchmarks{}\n",
        if report.smoke {
            " (smoke run: tiny counts, figures meaningless)"
        } else {
            ""
        }
    );
    let _ = writeln!(
        out,
        "- started {} · {} build · {:.0} s in all",
        machine.started_at, machine.build, report.seconds
    );
    let _ = writeln!(
        out,
        "- {} × {} · {:.1} GiB · Linux {}",
        machine.cpus, machine.cpu_model, machine.memory_gib, machine.kernel
    );
    let _ = writeln!(
        out,
        "- load average before {one:.2} / {five:.2} / {fifteen:.2}, after {one_after:.2} / {five_after:.2} / {fifteen_after:.2} (1/5/15 min)"
    );
    let servers = machine
        .server_cpu
        .map_or_else(|| "not pinned".to_owned(), |cpu| format!("core {cpu}"));
    let _ = writeln!(
        out,
        "- servers: {servers}; load generator: cores {}",
        machine.generator_cpus
    );
    let _ = writeln!(
        out,
        "- chat-service and http-edge as built for production, RUST_LOG={} (their logs: logs/ beside results.json)",
        report.server_log_filter
    );
    let _ = writeln!(
        out,
        "- each point: {:.1} s warm-up + {:.1} s measured, median of {} (requests capped at {} per run); chat-service burst limit raised to {} per 30 s",
        report.plan.warmup.as_secs_f64(),
        report.plan.measure.as_secs_f64(),
        report.repeats,
        report.plan.max_requests,
        report.burst_limit
    );
    if !report.server_env.is_empty() {
        let settings: Vec<String> = report
            .server_env
            .iter()
            .map(|(key, value)| format!("{key}={value}"))
            .collect();
        let _ = writeln!(
            out,
            "- extra settings of chat-service and http-edge: {}",
            settings.join(" ")
        );
    }
}

fn grpc_table(out: &mut String, report: &Report) {
    let _ = writeln!(
        out,
        "\n### 1. gRPC SendMessage against the no-op RPC (closed loop, one HTTP/2 connection, one user per slot)\n"
    );
    let _ = writeln!(
        out,
        "| target | in flight | req/s | × no-op | p50 µs | × no-op | p99 µs | × no-op | p99.9 µs | × no-op | reply B | errors |"
    );
    let _ = writeln!(out, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    for point in &report.grpc {
        let baseline = find(&report.grpc, "grpc no-op", point.concurrency);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            short(&point.target),
            point.concurrency,
            rate(point.throughput),
            times(baseline.and_then(|base| ratio(point.throughput, base.throughput))),
            micros(point.latency.p50_us),
            times(baseline.and_then(|base| ratio(point.latency.p50_us, base.latency.p50_us))),
            micros(point.latency.p99_us),
            times(baseline.and_then(|base| ratio(point.latency.p99_us, base.latency.p99_us))),
            micros(point.latency.p999_us),
            times(baseline.and_then(|base| ratio(point.latency.p999_us, base.latency.p999_us))),
            point.reply_bytes,
            point.errors,
        );
    }
}

fn half_peak_table(out: &mut String, report: &Report) {
    let _ = writeln!(
        out,
        "\n### 1b. Latency at half of peak throughput (open loop, from each request's intended send time)\n"
    );
    let _ = writeln!(
        out,
        "| store | peak req/s | offered req/s | achieved | p50 µs | p99 µs | p99.9 µs | no-op p99 µs at that rate | p99 × no-op |"
    );
    let _ = writeln!(out, "|---|--:|--:|--:|--:|--:|--:|--:|--:|");
    for half in &report.half_peak {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            half.store,
            rate(half.peak),
            rate(half.rate),
            rate(half.send.throughput),
            micros(half.send.latency.p50_us),
            micros(half.send.latency.p99_us),
            micros(half.send.latency.p999_us),
            micros(half.noop.latency.p99_us),
            times(ratio(half.send.latency.p99_us, half.noop.latency.p99_us)),
        );
    }
}

fn rest_table(out: &mut String, report: &Report) {
    let _ = writeln!(
        out,
        "\n### 2. REST send through the edge against gRPC-direct send and the no-op axum route (closed loop; HTTP: one keep-alive connection per slot)\n"
    );
    let _ = writeln!(
        out,
        "| target | in flight | req/s | × gRPC direct | × axum no-op | p50 µs | p99 µs | p99.9 µs | p99 × gRPC direct | p99 × axum no-op | reply B | errors |"
    );
    let _ = writeln!(out, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    let concurrencies: Vec<usize> = report
        .rest
        .iter()
        .filter(|point| point.target == "rest no-op axum")
        .map(|point| point.concurrency)
        .collect();
    for concurrency in concurrencies {
        let axum = find(&report.rest, "rest no-op axum", concurrency);
        let direct = find(&report.grpc, "grpc send embedded", concurrency);
        let edge = find(&report.rest, "rest send via edge", concurrency);
        for point in [axum, direct, edge].into_iter().flatten() {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                short(&point.target),
                concurrency,
                rate(point.throughput),
                times(direct.and_then(|base| ratio(point.throughput, base.throughput))),
                times(axum.and_then(|base| ratio(point.throughput, base.throughput))),
                micros(point.latency.p50_us),
                micros(point.latency.p99_us),
                micros(point.latency.p999_us),
                times(direct.and_then(|base| ratio(point.latency.p99_us, base.latency.p99_us))),
                times(axum.and_then(|base| ratio(point.latency.p99_us, base.latency.p99_us))),
                point.reply_bytes,
                point.errors,
            );
        }
    }
}

fn history_table(out: &mut String, report: &Report) {
    let _ = writeln!(
        out,
        "\n### 3. Newest-50 read (`MessageStore::newest(stream, 50)`, in process) as the stream grows\n"
    );
    let _ = writeln!(
        out,
        "| store | messages | load s | reads | p50 µs | p99 µs | p99.9 µs | p50 × smallest | p99 × smallest |"
    );
    let _ = writeln!(out, "|---|--:|--:|--:|--:|--:|--:|--:|--:|");
    for point in &report.history {
        let smallest = smallest_history(&report.history, &point.store);
        let messages = if point.messages < point.target_messages {
            format!(
                "{} (of {}: load budget spent)",
                count(point.messages),
                count(point.target_messages)
            )
        } else {
            count(point.messages)
        };
        let _ = writeln!(
            out,
            "| {} | {} | {:.1} | {} | {} | {} | {} | {} | {} |",
            point.store,
            messages,
            point.load_seconds,
            point.latency.samples,
            micros(point.latency.p50_us),
            micros(point.latency.p99_us),
            micros(point.latency.p999_us),
            times(smallest.and_then(|base| ratio(point.latency.p50_us, base.latency.p50_us))),
            times(smallest.and_then(|base| ratio(point.latency.p99_us, base.latency.p99_us))),
        );
    }
}

fn fanout_table(out: &mut String, report: &Report) {
    if report.fanout.is_empty() {
        return;
    }
    let plan = &report.fanout_plan;
    let _ = writeln!(
        out,
        "\n### 4. Live fan-out: one sender, N subscribers on one stream ({} messages per window due at {}/s, open loop with up to 8 in flight; delivery latency from the sender's acknowledgment to each copy's arrival, and from the message's due time in the schedule; gRPC: {} streams per HTTP/2 connection; SSE: one HTTP/1.1 connection each)\n",
        plan.messages, plan.rate, plan.streams_per_connection
    );
    let _ = writeln!(
        out,
        "| transport | target | subscribers | connections | sent msg/s | copies/s | p50 ms | × no-op | p99 ms | × no-op | p99.9 ms | p99 from schedule ms | × no-op | missing | KiB per idle subscriber | × no-op | peak RSS MiB |"
    );
    let _ = writeln!(
        out,
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|--:|--:|"
    );
    for point in &report.fanout {
        let baseline = report.fanout.iter().find(|other| {
            other.target == "no-op"
                && other.transport == point.transport
                && other.subscribers == point.subscribers
        });
        let per_subscriber: Vec<String> = point
            .memory
            .iter()
            .map(|memory| {
                let kib = memory.per_subscriber_bytes(point.subscribers) / 1024.0;
                if point.memory.len() > 1 {
                    format!("{kib:.1} ({})", memory.process)
                } else {
                    format!("{kib:.1}")
                }
            })
            .collect();
        let own = point
            .memory
            .iter()
            .map(|memory| memory.per_subscriber_bytes(point.subscribers))
            .sum::<f64>();
        let base = baseline.map(|base| {
            base.memory
                .iter()
                .map(|memory| memory.per_subscriber_bytes(base.subscribers))
                .sum::<f64>()
        });
        let peak: u64 = point.memory.iter().map(|memory| memory.peak_bytes).sum();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {:.1} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} |",
            point.transport,
            if point.target == "no-op" {
                "no-op broadcast"
            } else if point.transport == "sse" {
                "http-edge → chat-service (embedded)"
            } else {
                "chat-service (embedded)"
            },
            count(point.subscribers),
            count(point.connections),
            point.messages_per_second,
            rate(point.deliveries_per_second),
            millis(point.latency.p50_us),
            times(baseline.and_then(|base| ratio(point.latency.p50_us, base.latency.p50_us))),
            millis(point.latency.p99_us),
            times(baseline.and_then(|base| ratio(point.latency.p99_us, base.latency.p99_us))),
            millis(point.latency.p999_us),
            millis(point.latency_from_schedule.p99_us),
            times(baseline.and_then(|base| {
                ratio(
                    point.latency_from_schedule.p99_us,
                    base.latency_from_schedule.p99_us,
                )
            })),
            point.missing,
            per_subscriber.join(" + "),
            times(base.and_then(|base| ratio(own, base))),
            peak as f64 / MIB,
        );
    }
}

fn memory_table(out: &mut String, report: &Report) {
    let _ = writeln!(
        out,
        "\n### 5. Resident memory (VmRSS from /proc; under load = peak during the top-concurrency runs)\n"
    );
    let _ = writeln!(
        out,
        "| process | idle MiB | under load MiB | idle × baseline | under load × baseline | baseline |"
    );
    let _ = writeln!(out, "|---|--:|--:|--:|--:|---|");
    for memory in &report.memory {
        let baseline_name = if memory.process.starts_with("chat-service") {
            Some("noop-grpc")
        } else if memory.process == "http-edge" {
            Some("noop-http")
        } else {
            None
        };
        let baseline =
            baseline_name.and_then(|name| report.memory.iter().find(|other| other.process == name));
        let _ = writeln!(
            out,
            "| {} | {:.1} | {:.1} | {} | {} | {} |",
            memory.process,
            memory.idle_bytes as f64 / MIB,
            memory.load_bytes as f64 / MIB,
            times(
                baseline.and_then(|base| ratio(memory.idle_bytes as f64, base.idle_bytes as f64))
            ),
            times(
                baseline.and_then(|base| ratio(memory.load_bytes as f64, base.load_bytes as f64))
            ),
            baseline_name.unwrap_or("(is a baseline)"),
        );
    }
}

fn targets_table(out: &mut String, report: &Report) {
    let _ = writeln!(out, "\n### Targets\n");
    let _ = writeln!(out, "| target | measured | status |");
    let _ = writeln!(out, "|---|---|---|");
    let top = report
        .grpc
        .iter()
        .map(|point| point.concurrency)
        .max()
        .unwrap_or(0);

    let share = ratio_of(
        &report.grpc,
        "grpc send embedded",
        &report.grpc,
        "grpc no-op",
        top,
    );
    row(
        out,
        &format!("gRPC send (embedded) ≥ 50% of the no-op RPC's throughput at {top} in flight"),
        share.map(|share| format!("{:.0}%", share * 100.0)),
        share.map(|share| share >= SEND_SHARE_OF_NOOP),
    );
    let rest = ratio_of(
        &report.rest,
        "rest send via edge",
        &report.grpc,
        "grpc send embedded",
        top,
    );
    row(
        out,
        &format!("REST send through the edge ≥ 50% of gRPC-direct send at {top} in flight"),
        rest.map(|share| format!("{:.0}%", share * 100.0)),
        rest.map(|share| share >= REST_SHARE_OF_GRPC),
    );
    for (store, limit) in [
        ("embedded", HALF_PEAK_P99_EMBEDDED_US),
        ("cassandra", HALF_PEAK_P99_CASSANDRA_US),
    ] {
        let half = report.half_peak.iter().find(|half| half.store == store);
        row(
            out,
            &format!(
                "p99 send latency at half of peak < {} ms ({store})",
                limit / 1000.0
            ),
            half.map(|half| {
                format!(
                    "{} µs at {} req/s",
                    micros(half.send.latency.p99_us),
                    rate(half.rate)
                )
            }),
            half.map(|half| half.send.latency.p99_us < limit),
        );
    }
    let embedded: Vec<&HistoryPoint> = report
        .history
        .iter()
        .filter(|point| point.store == "embedded")
        .collect();
    if let (Some(first), Some(last)) = (embedded.first(), embedded.last()) {
        let flat = ratio(last.latency.p50_us, first.latency.p50_us);
        row(
            out,
            &format!(
                "newest-50 p99 < 2 ms on the embedded store at {} messages",
                count(last.target_messages)
            ),
            Some(format!(
                "{} µs at {} messages",
                micros(last.latency.p99_us),
                count(last.messages)
            )),
            Some(
                last.latency.p99_us < HISTORY_P99_EMBEDDED_US
                    && last.messages == last.target_messages,
            ),
        );
        row(
            out,
            &format!(
                "… and flat from {} (median at the largest ≤ {HISTORY_FLAT_RATIO}× the smallest)",
                count(first.messages)
            ),
            flat.map(|flat| format!("{flat:.2}×")),
            flat.map(|flat| flat <= HISTORY_FLAT_RATIO),
        );
    }
    let fanout = report.fanout.iter().find(|point| {
        point.transport == "grpc"
            && point.target == "chat-service"
            && point.subscribers == FANOUT_SUBSCRIBERS
    });
    // The stricter of the two latencies: from the schedule, which also
    // counts any slowing of the sender.
    row(
        out,
        "10,000 gRPC subscribers on one stream: p99 delivery < 100 ms",
        fanout.map(|point| {
            format!(
                "{} ms from the schedule ({} ms from the ack) at {:.1} msg/s",
                millis(point.latency_from_schedule.p99_us),
                millis(point.latency.p99_us),
                point.messages_per_second
            )
        }),
        fanout
            .map(|point| point.latency_from_schedule.p99_us < FANOUT_P99_US && point.missing == 0),
    );
    let per_subscriber = fanout.map(|point| {
        point
            .memory
            .iter()
            .map(|memory| memory.per_subscriber_bytes(point.subscribers))
            .sum::<f64>()
    });
    row(
        out,
        "… and < 20 KiB of memory each",
        per_subscriber.map(|bytes| format!("{:.1} KiB", bytes / 1024.0)),
        per_subscriber.map(|bytes| bytes < FANOUT_BYTES_PER_SUBSCRIBER),
    );
    audience::targets(out, report);
    edges::targets(out, report);
    overload::targets(out, report);
    for memory in report
        .memory
        .iter()
        .filter(|memory| memory.process.starts_with("chat-service"))
    {
        row(
            out,
            &format!("{} idle RSS < 50 MB", memory.process),
            Some(format!("{:.1} MiB", memory.idle_bytes as f64 / MIB)),
            Some((memory.idle_bytes as f64) < IDLE_RSS_BYTES),
        );
    }
}

fn row(out: &mut String, target: &str, measured: Option<String>, met: Option<bool>) {
    let status = match met {
        Some(true) => "met",
        Some(false) => "**missed**",
        None => "not measured",
    };
    let _ = writeln!(
        out,
        "| {target} | {} | {status} |",
        measured.unwrap_or_else(|| "–".to_owned())
    );
}

fn ratio_of(
    points: &[Point],
    target: &str,
    baselines: &[Point],
    baseline: &str,
    concurrency: usize,
) -> Option<f64> {
    let value = find(points, target, concurrency)?;
    let base = find(baselines, baseline, concurrency)?;
    ratio(value.throughput, base.throughput)
}

fn find<'a>(points: &'a [Point], target: &str, concurrency: usize) -> Option<&'a Point> {
    points
        .iter()
        .find(|point| point.target == target && point.concurrency == concurrency)
}

fn smallest_history<'a>(points: &'a [HistoryPoint], store: &str) -> Option<&'a HistoryPoint> {
    points.iter().find(|point| point.store == store)
}

/// Table labels: `grpc send embedded` → `send, embedded`.
fn short(target: &str) -> String {
    match target {
        "grpc no-op" => "no-op RPC".to_owned(),
        "grpc send embedded" => "SendMessage, embedded (gRPC direct)".to_owned(),
        "grpc send cassandra" => "SendMessage, Cassandra".to_owned(),
        "rest no-op axum" => "no-op axum route".to_owned(),
        "rest send via edge" => "REST send via edge → embedded".to_owned(),
        other => other.to_owned(),
    }
}

fn times(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_owned(), |value| format!("{value:.2}×"))
}

fn micros(value: f64) -> String {
    if value < 100.0 {
        format!("{value:.1}")
    } else {
        count(value.round() as usize)
    }
}

/// Microseconds shown as milliseconds.
fn millis(micros: f64) -> String {
    let value = micros / 1_000.0;
    if value < 10.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.1}")
    }
}

fn rate(value: f64) -> String {
    count(value.round() as usize)
}

/// `1234567` → `1,234,567`.
fn count(value: usize) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_get_thousands_separators() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1_234_567), "1,234,567");
    }

    #[test]
    fn small_latencies_keep_a_decimal() {
        assert_eq!(micros(42.25), "42.2");
        assert_eq!(micros(1234.4), "1,234");
    }
}
