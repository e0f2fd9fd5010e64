//! Newest-50 history reads as a stream grows: `MessageStore::newest(stream,
//! 50)` called directly on each store (there is no ListMessages RPC yet), in
//! this process.
//!
//! One stream is filled in steps (1 000, then up to 100 000, then up to
//! 1 000 000 messages by default); after each step the newest 50 are read
//! back-to-back and timed. The messages are stamped as if the stream had
//! received one every 5 ms (200/s, a busy chat), oldest first, so that the
//! ScyllaDB store spreads them over its 60-second buckets the way a real
//! stream would: 1 000 000 messages span 5 000 s, 84 buckets. Loading goes
//! through `append` (durable group commits on the embedded store), many at
//! a time; a load that overruns its time budget stops early and the point is
//! measured, and reported, at the size reached.

use std::sync::Arc;
use std::time::{Duration, Instant};

use allmine_test_support::random_object_id;
use chat_service::domain::{
    ChatMessage, MessageContent, ObjectIdGenerator, Sender, StreamId, UserId,
};
use chat_service::storage::MessageStore;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use serde::Serialize;

use crate::payload;
use crate::stats::{Latency, nanos};

/// The page size read.
pub const PAGE: usize = 50;

/// Simulated spacing of the messages.
const SPACING_MS: i64 = 5;

/// Distinct senders in the stream.
const SENDERS: usize = 1_000;

/// Messages appended between two checks of the time budget.
const CHUNK: usize = 10_000;

#[derive(Debug, Clone)]
pub struct HistoryPlan {
    /// Stream sizes to measure at, ascending.
    pub sizes: Vec<usize>,
    /// Timed reads at each size (after a short warm-up).
    pub reads: usize,
    /// Appends in flight while loading.
    pub load_concurrency: usize,
    /// Total loading time allowed for this store.
    pub load_budget: Duration,
}

/// One store at one size.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryPoint {
    pub store: String,
    /// Messages the plan asked for.
    pub target_messages: usize,
    /// Messages actually in the stream when read.
    pub messages: usize,
    /// Seconds spent loading up to this size (this step only).
    pub load_seconds: f64,
    /// Read latency of `newest(stream, 50)`.
    pub latency: Latency,
}

/// Fills one stream of `store` step by step and times newest-50 reads.
pub async fn measure(
    store_name: &str,
    store: Arc<dyn MessageStore>,
    plan: &HistoryPlan,
) -> anyhow::Result<Vec<HistoryPoint>> {
    let stream = StreamId::parse(&random_object_id())?;
    let largest = plan.sizes.iter().copied().max().unwrap_or(0);
    let messages = MessageFactory::new(stream, largest)?;
    let started = Instant::now();
    let mut loaded = 0_usize;
    let mut points = Vec::new();
    for &target in &plan.sizes {
        let step_started = Instant::now();
        while loaded < target {
            if started.elapsed() > plan.load_budget {
                break;
            }
            let chunk_end = target.min(loaded + CHUNK);
            futures::stream::iter((loaded..chunk_end).map(Ok::<_, anyhow::Error>))
                .try_for_each_concurrent(plan.load_concurrency, |index| {
                    let store = store.clone();
                    let message = messages.message(index);
                    async move {
                        store.append(&message).await?;
                        Ok(())
                    }
                })
                .await?;
            loaded = chunk_end;
        }
        let load_seconds = step_started.elapsed().as_secs_f64();
        let latency = time_reads(store.as_ref(), &stream, &messages, loaded, plan.reads).await?;
        points.push(HistoryPoint {
            store: store_name.to_owned(),
            target_messages: target,
            messages: loaded,
            load_seconds,
            latency,
        });
        if loaded < target {
            // Out of budget: larger sizes cannot be reached either.
            break;
        }
    }
    Ok(points)
}

/// Reads the newest page `reads` times, checking each answer.
async fn time_reads(
    store: &dyn MessageStore,
    stream: &StreamId,
    messages: &MessageFactory,
    loaded: usize,
    reads: usize,
) -> anyhow::Result<Latency> {
    let expected = PAGE.min(loaded);
    let newest = loaded
        .checked_sub(1)
        .map(|index| messages.created_at(index));
    let warmup = (reads / 10).clamp(1, 50);
    let mut latencies = Vec::with_capacity(reads);
    for round in 0..warmup + reads {
        let started = Instant::now();
        let page = store.newest(stream, PAGE).await?;
        let elapsed = started.elapsed();
        anyhow::ensure!(
            page.len() == expected,
            "newest({PAGE}) returned {} messages, expected {expected}",
            page.len()
        );
        anyhow::ensure!(
            page.first().map(|message| message.created_at) == newest,
            "newest({PAGE}) did not start with the newest message"
        );
        if round >= warmup {
            latencies.push(nanos(elapsed));
        }
    }
    Ok(Latency::from_nanos(&mut latencies))
}

/// Builds message `index` of the stream: deterministic times, fresh ids.
struct MessageFactory {
    stream: StreamId,
    first_ms: i64,
    content: MessageContent,
    senders: Vec<Sender>,
    ids: ObjectIdGenerator,
}

impl MessageFactory {
    fn new(stream: StreamId, count: usize) -> anyhow::Result<Self> {
        let span_ms = i64::try_from(count)?.saturating_mul(SPACING_MS);
        let senders = (0..SENDERS)
            .map(|index| {
                Ok(Sender {
                    username: Some(format!("viewer{index:04}")),
                    name: Some("Bench".to_owned()),
                    surname: Some("User".to_owned()),
                    ..Sender::anonymous(UserId::parse(&random_object_id())?)
                })
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Self {
            stream,
            first_ms: Utc::now().timestamp_millis() - span_ms,
            content: MessageContent::parse(payload::CONTENT)?,
            senders,
            ids: ObjectIdGenerator::new(),
        })
    }

    fn created_at(&self, index: usize) -> DateTime<Utc> {
        let offset = i64::try_from(index).unwrap_or(i64::MAX / SPACING_MS) * SPACING_MS;
        DateTime::from_timestamp_millis(self.first_ms + offset).unwrap_or_default()
    }

    fn message(&self, index: usize) -> ChatMessage {
        let at = self.created_at(index);
        ChatMessage {
            id: self.ids.next(at).into(),
            stream_id: self.stream,
            content: self.content.clone(),
            sender: self.senders[index % self.senders.len()].clone(),
            created_at: at,
            updated_at: at,
        }
    }
}

#[cfg(test)]
mod tests {
    use chat_service::storage::embedded::EmbeddedStore;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn newest_pages_are_timed_at_each_size_of_a_growing_stream() {
        let directory = tempfile_dir();
        let store: Arc<dyn MessageStore> =
            Arc::new(EmbeddedStore::open(&directory).expect("opens"));
        let plan = HistoryPlan {
            sizes: vec![10, 120],
            reads: 20,
            load_concurrency: 16,
            load_budget: Duration::from_secs(60),
        };
        let points = measure("embedded", store, &plan).await.expect("measures");
        assert_eq!(points.len(), 2);
        assert_eq!(points[0].messages, 10);
        assert_eq!(points[1].messages, 120);
        assert_eq!(points[1].latency.samples, 20);
        let _ = std::fs::remove_dir_all(directory);
    }

    fn tempfile_dir() -> std::path::PathBuf {
        std::env::temp_dir().join(format!("chat-bench-history-{}", random_object_id()))
    }
}
