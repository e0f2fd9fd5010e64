//! Cross-instance live delivery on ScyllaDB, and the write latency its
//! settle window must cover. Two chat-service instances run in this process
//! on one keyspace of the CQL node at `CHAT_SCYLLA_NODES` (default
//! 127.0.0.1:9042), with the given `--settle-ms` and `--poll-ms`:
//!
//! 1. *append*: closed-loop `SendMessage` calls on instance A,
//!    `--concurrency` in flight for `--secs`; each call's latency is an
//!    upper bound on its append's (creation time to stored), which is what
//!    the settle must cover;
//! 2. *cross*: one subscriber on instance B, `--messages` sends on A at
//!    `--rate` per second; each message's delay from its send's start on A
//!    to its arrival on B.
//!
//! Prints one JSON line with p50/p99/p99.9/max (ms) of both. Self-contained
//! on purpose (see `chat-bench-keyed`): a measurement that stays comparable.
//!
//! On the 3-node test cluster (`scripts/cassandra-cluster.sh start`):
//! `CHAT_SCYLLA_NODES=$(scripts/cassandra-cluster.sh contact-points)
//! chat-bench-cross --replication datacenter1:3` (LOCAL_QUORUM, as always).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use allmine_chat_proto::v1 as pb;
use allmine_test_support::backends::scylla_settings;
use allmine_test_support::random_object_id;
use allmine_test_support::service::spawn_service_on;
use chat_service::storage::scylla::{Replication, ScyllaStore};
use clap::Parser;
use pb::chat_event::Event;

#[derive(Debug, Parser)]
struct Args {
    /// `CHAT_LIVE_SETTLE_MS` of both instances.
    #[arg(long, default_value_t = 1_000)]
    settle_ms: u64,
    /// `CHAT_LIVE_POLL_MS` of both instances.
    #[arg(long, default_value_t = 100)]
    poll_ms: u64,
    /// Append phase: sends in flight.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Append phase: measured seconds (0 skips it).
    #[arg(long, default_value_t = 10.0)]
    secs: f64,
    /// Cross phase: messages sent through A.
    #[arg(long, default_value_t = 1_000)]
    messages: usize,
    /// Cross phase: sends per second.
    #[arg(long, default_value_t = 50.0)]
    rate: f64,
    /// Run the cross phase while the append load runs (give `--secs` at
    /// least `--messages` / `--rate`): delivery under load.
    #[arg(long)]
    together: bool,
    /// Replication of the benchmark's keyspace, as `CHAT_SCYLLA_REPLICATION`:
    /// `simple:1` for one node, `datacenter1:3` for the 3-node cluster.
    #[arg(long, default_value = "simple:1", value_parser = Replication::parse)]
    replication: Replication,
}

/// p50/p99/p99.9/max in ms of `samples`.
fn summary(mut samples: Vec<Duration>) -> serde_json::Value {
    samples.sort();
    let at = |quantile: f64| {
        let index = ((samples.len() as f64 * quantile).ceil() as usize).clamp(1, samples.len());
        samples[index - 1].as_secs_f64() * 1e3
    };
    if samples.is_empty() {
        return serde_json::json!({ "count": 0 });
    }
    serde_json::json!({
        "count": samples.len(),
        "p50_ms": at(0.50),
        "p99_ms": at(0.99),
        "p999_ms": at(0.999),
        "max_ms": at(1.0),
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let configure = |config: &mut chat_service::Config| {
        config.burst_viewer_limit = 1_000_000;
        config.burst_privileged_limit = 1_000_000;
        config.live_settle_ms = Some(args.settle_ms);
        config.live_poll_ms = args.poll_ms;
    };
    let settings = chat_service::storage::scylla::ScyllaSettings {
        replication: args.replication.clone(),
        ..scylla_settings(
            &format!("chat_bench_cross_{}", random_object_id()),
            Duration::from_secs(60),
        )
    };
    // Each instance with a database session of its own, as in production.
    let instance_a = Arc::new(
        spawn_service_on(Arc::new(ScyllaStore::connect(&settings).await?), configure).await,
    );
    let instance_b =
        spawn_service_on(Arc::new(ScyllaStore::connect(&settings).await?), configure).await;

    // 1. Append latency under a closed-loop load.
    let load_stream = instance_a.open_stream().await;
    let end = Instant::now() + Duration::from_secs_f64(args.secs);
    let mut slots = Vec::new();
    for _ in 0..args.concurrency {
        let instance_a = Arc::clone(&instance_a);
        let stream = load_stream.clone();
        slots.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            while Instant::now() < end {
                let started = Instant::now();
                match instance_a.send_as_anyone(&stream, "load").await {
                    Ok(_) => latencies.push(started.elapsed()),
                    Err(_) => errors += 1,
                }
            }
            (latencies, errors)
        }));
    }
    let mut appends = Vec::new();
    let mut append_errors = 0;
    if !args.together {
        for slot in slots.drain(..) {
            let (latencies, errors) = slot.await?;
            appends.extend(latencies);
            append_errors += errors;
        }
    }

    // 2. Cross-instance delivery: sends on A, one subscriber on B.
    let stream = instance_a.open_stream().await;
    let mut events = instance_b.subscribe(&stream, None).await;
    let started: Arc<Mutex<Vec<Option<Instant>>>> = Arc::new(Mutex::new(vec![None; args.messages]));
    let sender = {
        let instance_a = Arc::clone(&instance_a);
        let started = Arc::clone(&started);
        let stream = stream.clone();
        let interval = Duration::from_secs_f64(1.0 / args.rate);
        let messages = args.messages;
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            for index in 0..messages {
                ticks.tick().await;
                started.lock().expect("not poisoned")[index] = Some(Instant::now());
                instance_a
                    .send_as_anyone(&stream, &format!("cross {index}"))
                    .await
                    .expect("a send through A");
            }
        })
    };
    let mut delays = Vec::with_capacity(args.messages);
    while delays.len() < args.messages {
        let event = tokio::time::timeout(Duration::from_secs(30), events.message())
            .await??
            .ok_or_else(|| anyhow::anyhow!("the stream on B ended"))?;
        let arrived = Instant::now();
        let Some(Event::Message(message)) = event.event else {
            anyhow::bail!("unexpected event {:?}", event.event);
        };
        let index: usize = message
            .content
            .strip_prefix("cross ")
            .ok_or_else(|| anyhow::anyhow!("unexpected message {}", message.content))?
            .parse()?;
        let sent_at = started.lock().expect("not poisoned")[index]
            .ok_or_else(|| anyhow::anyhow!("message {index} arrived before it was sent"))?;
        delays.push(arrived - sent_at);
    }
    sender.await?;
    for slot in slots {
        let (latencies, errors) = slot.await?;
        appends.extend(latencies);
        append_errors += errors;
    }

    println!(
        "{}",
        serde_json::json!({
            "nodes": settings.nodes,
            "replication": format!("{:?}", args.replication),
            "settle_ms": args.settle_ms,
            "poll_ms": args.poll_ms,
            "append": {
                "concurrency": args.concurrency,
                "secs": args.secs,
                "errors": append_errors,
                "rate_per_s": appends.len() as f64 / args.secs.max(f64::MIN_POSITIVE),
                "latency": summary(appends),
            },
            "cross": {
                "rate_per_s": args.rate,
                "under_load": args.together,
                "delay": summary(delays),
            },
        })
    );
    drop(events);
    instance_b.stop().await;
    if let Ok(instance_a) = Arc::try_unwrap(instance_a) {
        instance_a.stop().await;
    }
    ScyllaStore::connect(&settings)
        .await?
        .drop_keyspace()
        .await?;
    Ok(())
}
