//! Live fan-out: one sender, N subscribers on one stream, and how long each
//! message takes from the sender's acknowledgment to each subscriber.
//!
//! A run, as the suite drives it:
//! 1. [`Subscribers`] connect (gRPC `SubscribeMessages` streams, shared
//!    [`FanoutPlan::streams_per_connection`] to an HTTP/2 connection; or SSE,
//!    one HTTP/1.1 connection each, as browsers hold them);
//! 2. [`Subscribers::warm_up`] sends a few messages and waits until every
//!    subscriber has them all: every subscription is live before measuring;
//! 3. the suite reads the servers' memory (the subscribers' cost);
//! 4. [`Subscribers::window`] sends messages due at a fixed rate (open loop),
//!    waits until every subscriber has every acknowledged message (or the
//!    drain time is over) and summarises the deliveries.
//!
//! **Delivery latency** runs from the instant the sender's acknowledgment
//! arrived to the instant a subscriber's copy arrived, both taken in this
//! process on the same clock. A copy can arrive before the acknowledgment
//! (chat-service wakes its feed as it answers): that counts as 0. The sender
//! sends each message at its due time on a fixed schedule, with up to 8 in
//! flight; a server that answers too slowly for that delays the next sends,
//! so the latency is also taken from each message's *due* time (no
//! coordinated omission), and the rate the sender achieved is reported
//! beside the rate offered. Every copy is matched to its send by
//! message id; a copy that never arrives is counted as missing, and the suite
//! fails the run on any missing copy, duplicate or subscriber error. An SSE
//! viewer given a `gap` (the edge's "you fell behind, resume from here")
//! stops there: the gap is counted, and the copies it did not get after it
//! are counted apart from the missing ones (every copy delivered or an
//! explicit gap is the contract).

mod grpc;
mod sender;
mod sse;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::task::JoinHandle;

pub use sender::Sender;

use crate::stats::{Latency, nanos};

/// Waits for every subscriber to be live, and for the last copies.
const WARM_UP_MESSAGES: usize = 3;
const WARM_UP_TIMEOUT: Duration = Duration::from_secs(60);

/// A message's id, as text: the key that matches a copy to its send.
type MessageKey = [u8; 24];

fn message_key(id: &str) -> Option<MessageKey> {
    id.as_bytes().try_into().ok()
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct FanoutPlan {
    /// Messages per measured window.
    pub messages: usize,
    /// Messages per second the sender sends (due on a fixed schedule).
    pub rate: f64,
    /// gRPC subscribers per HTTP/2 connection.
    pub streams_per_connection: usize,
    /// How long to wait for the last copies after the last send.
    pub drain: Duration,
}

/// Where the subscribers connect.
#[derive(Debug, Clone)]
pub enum Follow {
    /// `SubscribeMessages` at a chat-service (or the no-op baseline).
    Grpc(std::net::SocketAddr),
    /// `GET …/chat/events` at these http-edges (or the no-op baseline), the
    /// i-th viewer at the (i mod n)-th: the same number at each.
    Sse(Vec<std::net::SocketAddr>),
}

/// What one measured window saw.
#[derive(Debug, Clone, Serialize)]
pub struct WindowOutcome {
    pub messages: usize,
    pub expected: u64,
    pub delivered: u64,
    pub missing: u64,
    /// `gap` events received by SSE viewers (each ends its viewer).
    pub gaps: u64,
    /// Copies not delivered to viewers that had been given a `gap`: not
    /// missing, explained (the viewer would resume from the gap's cursor).
    pub missing_after_gap: u64,
    /// Copies of a message a subscriber had already received, or of no
    /// message of this window.
    pub unexpected: u64,
    pub send_errors: u64,
    pub first_error: Option<String>,
    /// Copies per second, from the first send to the last copy.
    pub deliveries_per_second: f64,
    /// Messages per second the sender achieved (acknowledged messages over
    /// the time from the first due time to the last acknowledgment).
    pub messages_per_second: f64,
    /// From the sender's acknowledgment to each copy's arrival.
    pub latency: Latency,
    /// From each message's due time in the sender's schedule to each copy's
    /// arrival.
    pub latency_from_schedule: Latency,
    /// Each acknowledged send, from its request's start to its
    /// acknowledgment: what the audience costs a sender.
    pub send_latency: Latency,
    /// The same, every sample (for pooling windows).
    #[serde(skip)]
    pub send_nanos: Vec<u64>,
}

/// How long all subscriptions may take to open.
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(60);

/// Waits until every subscriber task has said on `answers` that its
/// subscription is open; stops them all if one fails or time runs out.
async fn wait_ready(
    mut answers: tokio::sync::mpsc::Receiver<Result<(), String>>,
    tasks: &[JoinHandle<()>],
) -> anyhow::Result<()> {
    let all = async {
        for _ in 0..tasks.len() {
            match answers.recv().await {
                Some(Ok(())) => {}
                Some(Err(error)) => anyhow::bail!("a subscription failed: {error}"),
                None => anyhow::bail!("a subscriber ended before subscribing"),
            }
        }
        Ok(())
    };
    let outcome = match tokio::time::timeout(SUBSCRIBE_TIMEOUT, all).await {
        Ok(outcome) => outcome,
        Err(_) => Err(anyhow::anyhow!(
            "{} subscriptions did not all open within {SUBSCRIBE_TIMEOUT:?}",
            tasks.len()
        )),
    };
    if outcome.is_err() {
        tasks.iter().for_each(JoinHandle::abort);
    }
    outcome
}

/// What one subscriber received.
type Receipts = Arc<Mutex<Log>>;

#[derive(Debug, Default)]
struct Log {
    /// Copies received: (message, when).
    copies: Vec<(MessageKey, Instant)>,
    /// Given a `gap` (and stopped there).
    gapped: bool,
}

/// What every subscriber task shares: its receipts, the count of every copy,
/// the gaps, the errors.
#[derive(Clone, Default)]
struct Tally {
    copies: Arc<AtomicU64>,
    gaps: Arc<AtomicU64>,
    errors: Arc<Mutex<Errors>>,
}

#[derive(Debug, Default, Clone)]
struct Errors {
    count: u64,
    first: Option<String>,
}

impl Tally {
    fn copy(&self, receipts: &Receipts, key: MessageKey) {
        let now = Instant::now();
        receipts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .copies
            .push((key, now));
        self.copies.fetch_add(1, Ordering::Relaxed);
    }

    /// The subscriber was given a `gap`: it receives nothing more.
    fn gap(&self, receipts: &Receipts) {
        receipts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .gapped = true;
        self.gaps.fetch_add(1, Ordering::Relaxed);
    }

    fn error(&self, error: String) {
        let mut errors = self.errors.lock().unwrap_or_else(PoisonError::into_inner);
        errors.count += 1;
        errors.first.get_or_insert(error);
    }

    fn errors(&self) -> Errors {
        self.errors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// N open subscriptions to one stream.
pub struct Subscribers {
    receipts: Vec<Receipts>,
    tasks: Vec<JoinHandle<()>>,
    tally: Tally,
    pub connections: usize,
    /// From the first connect to the last subscription's answer.
    pub connect_seconds: f64,
}

impl Subscribers {
    /// Opens `count` subscriptions to `stream_id`.
    pub async fn connect(
        follow: &Follow,
        stream_id: &str,
        count: usize,
        plan: &FanoutPlan,
    ) -> anyhow::Result<Self> {
        let started = Instant::now();
        let tally = Tally::default();
        let receipts: Vec<Receipts> = (0..count).map(|_| Receipts::default()).collect();
        let (tasks, connections) = match follow {
            Follow::Grpc(addr) => {
                grpc::subscribe(
                    *addr,
                    stream_id,
                    &receipts,
                    &tally,
                    plan.streams_per_connection,
                )
                .await?
            }
            Follow::Sse(addrs) => sse::subscribe(addrs, stream_id, &receipts, &tally).await?,
        };
        Ok(Self {
            receipts,
            tasks,
            tally,
            connections,
            connect_seconds: started.elapsed().as_secs_f64(),
        })
    }

    pub fn len(&self) -> usize {
        self.receipts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.receipts.is_empty()
    }

    /// Sends a few messages and waits until every subscriber has them all.
    pub async fn warm_up(&self, sender: &mut Sender) -> anyhow::Result<()> {
        let plan = FanoutPlan {
            messages: WARM_UP_MESSAGES,
            rate: 20.0,
            streams_per_connection: 1,
            drain: WARM_UP_TIMEOUT,
        };
        let outcome = self.window(sender, &plan).await;
        if let Some(error) = self.tally.errors().first {
            anyhow::bail!("a subscriber failed while warming up: {error}");
        }
        anyhow::ensure!(
            outcome.missing == 0 && outcome.gaps == 0 && outcome.send_errors == 0,
            "warming up: {} of {} copies missing after {WARM_UP_TIMEOUT:?}, {} gaps, {} failed sends ({})",
            outcome.missing,
            outcome.expected,
            outcome.gaps,
            outcome.send_errors,
            outcome.first_error.as_deref().unwrap_or("no error"),
        );
        Ok(())
    }

    /// One measured window: `plan.messages` sends at `plan.rate`, then the
    /// wait for every copy (at most `plan.drain`).
    pub async fn window(&self, sender: &mut Sender, plan: &FanoutPlan) -> WindowOutcome {
        self.take_receipts();
        let copies_before = self.tally.copies.load(Ordering::Relaxed);
        let gaps_before = self.tally.gaps.load(Ordering::Relaxed);
        let errors_before = self.tally.errors().count;
        let started = Instant::now();
        let sent = sender.send_paced(plan.messages, plan.rate).await;
        let acknowledged = sent.acknowledged.len() as u64;
        let expected = acknowledged * self.len() as u64;
        // A large audience can take longer than the drain time to reach at
        // all: at least 20 µs per copy (50,000 copies a second, half of what
        // one core was measured to write), so that slow delivery shows as
        // latency, not as missing copies.
        let drain = plan
            .drain
            .max(Duration::from_secs_f64(expected as f64 / 50_000.0));
        let deadline = Instant::now() + drain;
        // A gapped viewer gets nothing more: wait for the others' copies.
        let gapped = || {
            let gapped = self
                .receipts
                .iter()
                .filter(|log| log.lock().unwrap_or_else(PoisonError::into_inner).gapped)
                .count() as u64;
            gapped * acknowledged
        };
        while self.tally.copies.load(Ordering::Relaxed) - copies_before
            < expected.saturating_sub(gapped())
            && Instant::now() < deadline
            && self.tally.errors().count == errors_before
        {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        // Copies still on their way would not be counted; give stragglers
        // (duplicates) a moment to show up.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let receipts = self.take_receipts();
        let errors = self.tally.errors();
        let mut outcome = summarise(&sent, receipts, started, expected);
        outcome.gaps = self.tally.gaps.load(Ordering::Relaxed) - gaps_before;
        outcome.send_errors = sent.errors;
        outcome.first_error = sent.first_error.clone().or_else(|| {
            (errors.count > errors_before)
                .then(|| errors.first.clone())
                .flatten()
        });
        outcome
    }

    /// Errors seen by subscribers since they connected.
    pub fn subscriber_errors(&self) -> (u64, Option<String>) {
        let errors = self.tally.errors();
        (errors.count, errors.first)
    }

    /// Each subscriber's copies since the last call, and whether it has
    /// been given a gap.
    fn take_receipts(&self) -> Vec<Taken> {
        self.receipts
            .iter()
            .map(|receipts| {
                let mut log = receipts.lock().unwrap_or_else(PoisonError::into_inner);
                Taken {
                    copies: std::mem::take(&mut log.copies),
                    gapped: log.gapped,
                }
            })
            .collect()
    }

    /// Closes every subscription (the servers see the streams cancelled).
    pub async fn close(self) {
        for task in &self.tasks {
            task.abort();
        }
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// What the sender sent in a window.
#[derive(Debug, Default)]
pub struct Sent {
    /// Acknowledged messages: (due, acknowledged).
    acknowledged: HashMap<MessageKey, (Instant, Instant)>,
    last_acknowledged: Option<Instant>,
    /// Each acknowledged send's latency, from its request's start.
    send_nanos: Vec<u64>,
    errors: u64,
    first_error: Option<String>,
}

impl Sent {
    fn failed(error: &str) -> Self {
        Self {
            errors: 1,
            first_error: Some(error.to_owned()),
            ..Self::default()
        }
    }
}

/// One subscriber's part of a window.
#[derive(Debug, Default)]
struct Taken {
    copies: Vec<(MessageKey, Instant)>,
    gapped: bool,
}

fn summarise(sent: &Sent, receipts: Vec<Taken>, started: Instant, expected: u64) -> WindowOutcome {
    let mut from_ack = Vec::with_capacity(usize::try_from(expected).unwrap_or(0));
    let mut from_due = Vec::with_capacity(from_ack.capacity());
    let mut unexpected = 0_u64;
    let mut missing_after_gap = 0_u64;
    let mut last_copy = started;
    for Taken { copies, gapped } in receipts {
        let mut seen = std::collections::HashSet::with_capacity(copies.len());
        for (key, at) in copies {
            match sent.acknowledged.get(&key) {
                Some(&(due, acknowledged)) if seen.insert(key) => {
                    from_ack.push(nanos(at.saturating_duration_since(acknowledged)));
                    from_due.push(nanos(at.saturating_duration_since(due)));
                    last_copy = last_copy.max(at);
                }
                _ => unexpected += 1,
            }
        }
        if gapped {
            missing_after_gap += sent.acknowledged.len().saturating_sub(seen.len()) as u64;
        }
    }
    let delivered = from_ack.len() as u64;
    let seconds = (last_copy - started).as_secs_f64();
    let first_due = sent.acknowledged.values().map(|&(due, _)| due).min();
    let sending = match (first_due, sent.last_acknowledged) {
        (Some(first), Some(last)) if last > first => (last - first).as_secs_f64(),
        _ => 0.0,
    };
    WindowOutcome {
        messages: sent.acknowledged.len(),
        expected,
        delivered,
        missing: expected.saturating_sub(delivered + missing_after_gap),
        gaps: 0,
        missing_after_gap,
        unexpected,
        send_errors: 0,
        first_error: None,
        deliveries_per_second: if seconds > 0.0 {
            delivered as f64 / seconds
        } else {
            0.0
        },
        // n messages span n - 1 periods of the schedule.
        messages_per_second: if sending > 0.0 {
            sent.acknowledged.len().saturating_sub(1) as f64 / sending
        } else {
            0.0
        },
        latency: Latency::from_nanos(&mut from_ack),
        latency_from_schedule: Latency::from_nanos(&mut from_due),
        send_latency: Latency::from_nanos(&mut sent.send_nanos.clone()),
        send_nanos: sent.send_nanos.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str) -> MessageKey {
        message_key(&format!("{text:0>24}")).expect("24 bytes")
    }

    #[test]
    fn copies_are_matched_to_sends_by_id_and_counted_once() {
        let start = Instant::now();
        let ms = |value: u64| start + Duration::from_millis(value);
        let mut sent = Sent::default();
        sent.acknowledged.insert(key("a"), (ms(0), ms(2)));
        sent.acknowledged.insert(key("b"), (ms(10), ms(12)));
        let taken = |copies| Taken {
            copies,
            gapped: false,
        };
        let receipts = vec![
            // On time, early (before its ack: 0), and a duplicate.
            taken(vec![
                (key("a"), ms(5)),
                (key("b"), ms(11)),
                (key("a"), ms(6)),
            ]),
            // One copy missing, one of a message nobody sent.
            taken(vec![(key("a"), ms(7)), (key("z"), ms(8))]),
        ];
        let outcome = summarise(&sent, receipts, start, 4);
        assert_eq!(outcome.delivered, 3);
        assert_eq!(outcome.missing, 1);
        assert_eq!(outcome.missing_after_gap, 0);
        assert_eq!(outcome.unexpected, 2);
        assert_eq!(outcome.latency.max_us, 5_000.0);
        assert_eq!(outcome.latency.p50_us, 3_000.0);
        assert_eq!(outcome.latency_from_schedule.max_us, 7_000.0);
    }

    #[test]
    fn copies_a_gapped_viewer_did_not_get_are_not_missing() {
        let start = Instant::now();
        let ms = |value: u64| start + Duration::from_millis(value);
        let mut sent = Sent::default();
        for (name, at) in [("a", 0), ("b", 10), ("c", 20)] {
            sent.acknowledged.insert(key(name), (ms(at), ms(at + 1)));
        }
        let receipts = vec![
            // Given a gap after its first copy.
            Taken {
                copies: vec![(key("a"), ms(3))],
                gapped: true,
            },
            // One copy missing, no gap: missing.
            Taken {
                copies: vec![(key("a"), ms(3)), (key("c"), ms(23))],
                gapped: false,
            },
        ];
        let outcome = summarise(&sent, receipts, start, 6);
        assert_eq!(outcome.delivered, 3);
        assert_eq!(outcome.missing_after_gap, 2);
        assert_eq!(outcome.missing, 1);
    }

    #[test]
    fn only_24_character_ids_are_keys() {
        assert!(message_key("64d15f9e2e6c8f4d5a123000").is_some());
        assert!(message_key("short").is_none());
    }
}
