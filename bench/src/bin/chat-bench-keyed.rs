//! What an idempotency key costs a send: a closed-loop gRPC SendMessage run
//! against a running chat-service, with a fresh `idempotency_key` on every
//! request (`--keyed`) or none, so that two runs differ by the key alone.
//! Registers a fresh stream first (chat-service must accept the test
//! secret's tokens and have a burst limit high enough never to refuse).
//! Prints one JSON line.
//!
//! Self-contained on purpose (its own loop, only the suite's payload): a
//! measurement that stays comparable while the suite evolves.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use allmine_chat_bench::payload;
use allmine_chat_proto::v1 as pb;
use allmine_test_support::{TokenBuilder, random_object_id};
use clap::Parser;
use pb::chat_admin_service_client::ChatAdminServiceClient;
use pb::chat_service_client::ChatServiceClient;
use tonic::metadata::AsciiMetadataValue;
use tonic::transport::{Channel, Endpoint};

/// Each request's deadline.
const DEADLINE: Duration = Duration::from_secs(5);

/// Upper bound on the latencies one slot keeps (memory bound).
const MAX_SAMPLES_PER_SLOT: usize = 1_000_000;

#[derive(Debug, Parser)]
struct Args {
    /// chat-service's gRPC address.
    #[arg(long)]
    grpc: SocketAddr,
    /// Requests in flight, one user each.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Measured seconds, after one second of warm-up.
    #[arg(long, default_value_t = 10.0)]
    secs: f64,
    /// A fresh idempotency key on every request.
    #[arg(long)]
    keyed: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let channel = Endpoint::from_shared(format!("http://{}", args.grpc))?
        .tcp_nodelay(true)
        .connect_timeout(DEADLINE)
        .connect()
        .await?;
    let stream_id = register(channel.clone()).await?;
    let authorizations: Vec<AsciiMetadataValue> = payload::viewer_authorizations(args.concurrency)
        .into_iter()
        .map(|value| value.parse())
        .collect::<Result<_, _>>()?;

    let errors = Arc::new(AtomicU64::new(0));
    let warmup_end = Instant::now() + Duration::from_secs(1);
    let end = warmup_end + Duration::from_secs_f64(args.secs);
    let mut slots = Vec::new();
    for (slot, authorization) in authorizations.into_iter().enumerate() {
        let client = ChatServiceClient::new(channel.clone());
        let stream_id = stream_id.clone();
        let errors = errors.clone();
        let keyed = args.keyed;
        slots.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut sent = 0u64;
            while Instant::now() < end {
                sent += 1;
                let mut request = tonic::Request::new(pb::SendMessageRequest {
                    stream_id: stream_id.clone(),
                    content: payload::CONTENT.to_owned(),
                    idempotency_key: keyed.then(|| format!("bench-{slot}-{sent}")),
                });
                request
                    .metadata_mut()
                    .insert("authorization", authorization.clone());
                request.set_timeout(DEADLINE);
                let started = Instant::now();
                let outcome = client.clone().send_message(request).await;
                let measured = started >= warmup_end && Instant::now() < end;
                match outcome {
                    Ok(_) if measured && latencies.len() < MAX_SAMPLES_PER_SLOT => {
                        latencies.push(started.elapsed());
                    }
                    Ok(_) => {}
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for slot in slots {
        latencies.extend(slot.await?);
    }
    latencies.sort_unstable();
    let percentile_us = |fraction: f64| {
        let last = latencies.len().saturating_sub(1);
        let index = ((latencies.len() as f64 * fraction) as usize).min(last);
        latencies
            .get(index)
            .map_or(0.0, |latency| latency.as_secs_f64() * 1e6)
    };
    println!(
        "{}",
        serde_json::json!({
            "keyed": args.keyed,
            "concurrency": args.concurrency,
            "ok": latencies.len(),
            "errors": errors.load(Ordering::Relaxed),
            "req_per_s": latencies.len() as f64 / args.secs,
            "p50_us": percentile_us(0.50),
            "p99_us": percentile_us(0.99),
            "p999_us": percentile_us(0.999),
        })
    );
    Ok(())
}

/// Registers a fresh stream through the admin service.
async fn register(channel: Channel) -> anyhow::Result<String> {
    let stream_id = random_object_id();
    let mut request = tonic::Request::new(pb::RegisterStreamRequest {
        stream_id: stream_id.clone(),
        owner_id: random_object_id(),
    });
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {}", TokenBuilder::service().build()).parse()?,
    );
    ChatAdminServiceClient::new(channel)
        .register_stream(request)
        .await?;
    Ok(stream_id)
}
