//! One stream's shared feed at this edge: the one upstream `SubscribeMessages`
//! and the ring of its recent events, encoded once.
//!
//! The upstream task reads chat-service as fast as it sends and appends each
//! event to the ring; it never waits for a client. Clients read the ring at
//! their own pace (see [`super::client`]): nothing is queued per client. The
//! ring holds the last `capacity` events; together with `boundary` (the
//! position after which every event is in the ring or still to come) it
//! decides which resumes the edge serves itself.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use allmine_chat_proto::v1::ChatEvent;
use tokio::sync::{Notify, watch};
use tonic::Streaming;

use super::{
    Fanout,
    frame::{self, Encoded, Frame},
    position::Position,
};
use crate::{error::ApiError, event_stream::Shutdown};

/// Why a feed ended; each client, once it has read what the ring held
/// before the end, ends as this says.
#[derive(Debug, Clone)]
pub enum FeedEnd {
    /// chat-service ended the subscription (its shutdown): clients end
    /// without a last event, as with the relay, and reconnect.
    Completed,
    /// The upstream failed: clients get this `error` event.
    Failed(bytes::Bytes),
    /// chat-service sent the feed a gap (it fell behind there): each client
    /// gets a `gap` at its own last cursor.
    Gap(String),
    /// The edge is stopping: clients end at once.
    Shutdown,
}

/// The ring and the feed's life, under one lock.
pub struct Ring {
    frames: VecDeque<Arc<Frame>>,
    /// The sequence number of `frames[0]`; numbers grow by one per frame.
    front_seq: u64,
    capacity: usize,
    /// Every event positioned after this is in `frames` or still to come:
    /// the upstream's start, then the position of the last frame evicted.
    boundary: Position,
    pub end: Option<FeedEnd>,
    /// Clients attached now; at zero the feed lingers, then retires.
    clients: usize,
    /// Removed from the registry: attach elsewhere.
    retired: bool,
}

impl Ring {
    /// The sequence number the next frame will have.
    pub fn head_seq(&self) -> u64 {
        self.front_seq + self.frames.len() as u64
    }

    pub fn front_seq(&self) -> u64 {
        self.front_seq
    }

    /// The frame numbered `seq`, if the ring still holds it.
    pub fn get(&self, seq: u64) -> Option<&Arc<Frame>> {
        let index = usize::try_from(seq.checked_sub(self.front_seq)?).ok()?;
        self.frames.get(index)
    }

    fn push(&mut self, frame: Frame) {
        if self.frames.len() == self.capacity
            && let Some(evicted) = self.frames.pop_front()
        {
            self.front_seq += 1;
            self.boundary = evicted.position;
        }
        self.frames.push_back(Arc::new(frame));
    }
}

/// One stream's feed.
pub struct Feed {
    pub stream_id: String,
    ring: Mutex<Ring>,
    /// The head sequence number, for clients waiting for the next frame.
    head: watch::Sender<u64>,
    /// Wakes the upstream task when the last client leaves.
    idle: Notify,
}

impl Feed {
    /// A feed whose upstream starts after `start`, with `first` attached.
    pub fn new(stream_id: String, start: Position, capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            stream_id,
            ring: Mutex::new(Ring {
                frames: VecDeque::new(),
                front_seq: 0,
                capacity: capacity.max(1),
                boundary: start,
                end: None,
                clients: 0,
                retired: false,
            }),
            head: watch::Sender::new(0),
            idle: Notify::new(),
        })
    }

    pub fn lock(&self) -> MutexGuard<'_, Ring> {
        self.ring
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Attaches a client that has seen everything up to `after`: the
    /// sequence number of the first frame it needs, or `None` when the ring
    /// no longer covers `after` (or the feed is over) and the client must be
    /// served another way.
    pub fn attach(&self, after: Position) -> Option<u64> {
        let mut ring = self.lock();
        if ring.retired || ring.end.is_some() || after < ring.boundary {
            return None;
        }
        let skipped = ring.frames.partition_point(|frame| frame.position <= after);
        ring.clients += 1;
        Some(ring.front_seq + skipped as u64)
    }

    /// A client left.
    pub fn detach(&self) {
        let mut ring = self.lock();
        ring.clients = ring.clients.saturating_sub(1);
        if ring.clients == 0 {
            self.idle.notify_one();
        }
    }

    /// Whether the feed has no client, and if so marks it retired (the
    /// caller holds the registry's lock and removes it).
    pub fn retire_if_idle(&self) -> bool {
        let mut ring = self.lock();
        if ring.clients == 0 {
            ring.retired = true;
        }
        ring.retired
    }

    pub fn retire(&self) {
        self.lock().retired = true;
    }

    /// Something for clients waiting on the head.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.head.subscribe()
    }

    /// Ends the feed: clients finish what the ring holds, then end as `end`
    /// says.
    pub fn end(&self, end: FeedEnd) {
        let head = {
            let mut ring = self.lock();
            ring.end.get_or_insert(end);
            ring.head_seq()
        };
        // A change, even at the same head, wakes every waiting client.
        self.head.send_modify(|seen| *seen = head);
    }

    #[cfg(test)]
    pub fn publish_for_tests(&self, frame: Frame) {
        self.publish(frame);
    }

    fn publish(&self, frame: Frame) {
        let head = {
            let mut ring = self.lock();
            ring.push(frame);
            ring.head_seq()
        };
        self.head.send_replace(head);
    }
}

/// What the clients of a feed are told when chat-service refuses or ends
/// the feed's subscription: a refusal of the edge's own token (expired,
/// revoked) is not theirs, and is a 503 for them (logged as an error).
pub fn upstream_error(error: ApiError) -> ApiError {
    match error {
        ApiError::Unauthenticated(_) | ApiError::PermissionDenied(_) => {
            tracing::error!(%error, "chat-service refused the edge's EDGE_UPSTREAM_TOKEN");
            ApiError::Unavailable("chat-service refused the edge's upstream token".to_owned())
        }
        other => other,
    }
}

/// Reads the upstream subscription into the feed until it ends, the edge
/// stops, or the feed has had no client for the linger time.
pub async fn run(
    feed: Arc<Feed>,
    mut upstream: Streaming<ChatEvent>,
    fanout: Fanout,
    shutdown: Shutdown,
    linger: Duration,
) {
    let _counted = crate::metrics::FeedGauge::open();
    let mut retire_at: Option<tokio::time::Instant> = None;
    let mut linger_place = None;
    let mut relayed = 0_u64;
    let ended = loop {
        let lingering = async {
            match retire_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            received = upstream.message() => match received {
                Ok(Some(event)) => match frame::encode(event) {
                    Ok(Encoded::Frame(frame)) => {
                        if frame.is_gap {
                            let reason = "the edge's feed of this stream fell behind chat-service: resume from this cursor".to_owned();
                            break FeedEnd::Gap(reason);
                        }
                        relayed += 1;
                        feed.publish(frame);
                    }
                    Ok(Encoded::Unknown) => {
                        tracing::debug!("skipped an event of an unknown type");
                    }
                    Err(error) => {
                        error.log();
                        break FeedEnd::Failed(frame::error(&error));
                    }
                },
                Ok(None) => break FeedEnd::Completed,
                Err(status) => {
                    let error = upstream_error(ApiError::from(status));
                    error.log();
                    break FeedEnd::Failed(frame::error(&error));
                }
            },
            () = feed.idle.notified() => {
                if feed.lock().clients == 0 {
                    // Lingering is bounded (EDGE_MAX_LINGERING_FEEDS): with
                    // no place free, the feed closes now. A feed already
                    // lingering keeps its place.
                    linger_place = linger_place.take().or_else(|| fanout.linger_place());
                    let wait = if linger_place.is_some() { linger } else { Duration::ZERO };
                    retire_at = Some(tokio::time::Instant::now() + wait);
                }
            }
            () = lingering => {
                if fanout.retire_if_idle(&feed) {
                    tracing::info!(stream_id = %feed.stream_id, relayed, "shared feed closed: no client left");
                    return;
                }
                retire_at = None;
                linger_place = None;
            }
            () = shutdown.cancelled() => break FeedEnd::Shutdown,
        }
    };
    tracing::info!(stream_id = %feed.stream_id, relayed, ?ended, "shared feed ended");
    fanout.remove(&feed);
    feed.end(ended);
}
