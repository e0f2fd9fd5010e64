//! One stream's live feed on this instance: a task that reads the store past
//! the last delivered position, up to the watermark, and broadcasts what it
//! finds, in order, to every local subscriber.
//!
//! Polling the store (not a message bus) is what makes cross-instance
//! delivery need nothing but the database: a message sent through instance A
//! is read by instance B's feed at its next poll. A local send wakes its own
//! instance's feed at once.

use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, broadcast};
use tokio_util::sync::CancellationToken;

use super::Hub;
use super::encoded::LiveEvent;
pub use super::fanout::Delivered;
use super::fanout::Fanout;
use crate::domain::{ObjectId, Position, StreamEvent, StreamId};
use crate::storage::{PageStart, SharedStore, StorageError};

/// How many events the feed reads from the store per query.
const READ_BATCH: usize = 200;

pub struct Feed {
    pub(super) stream: StreamId,
    fanout: Fanout,
    /// The last position broadcast. Subscribing happens under this lock, so
    /// a subscriber knows exactly where its live part starts.
    last: Mutex<Position>,
    pub(super) wake: Notify,
    /// In `chat_live_streams` while the feed lives.
    _counted: crate::metrics::live::StreamGauge,
}

impl Feed {
    pub(super) fn new(
        stream: StreamId,
        start_after: Position,
        capacity: usize,
        batch: usize,
    ) -> Self {
        Self {
            stream,
            fanout: Fanout::new(batch, capacity),
            last: Mutex::new(start_after),
            wake: Notify::new(),
            _counted: crate::metrics::live::StreamGauge::open(),
        }
    }

    /// A receiver of every event after the returned position.
    pub fn subscribe(&self) -> (broadcast::Receiver<Delivered>, Position) {
        let last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        (self.fanout.subscribe(), *last)
    }

    pub(super) fn subscriber_count(&self) -> usize {
        self.fanout.receiver_count()
    }

    fn last(&self) -> Position {
        *self.last.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The position moves past `events` at once (a subscriber joining from
    /// now on starts after them), then they are sent ([`Fanout::send`]).
    async fn publish(&self, events: Vec<StreamEvent>) {
        let mut encoded = Vec::with_capacity(events.len());
        {
            let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
            for event in events {
                let position = event.position();
                if position <= *last {
                    continue;
                }
                *last = position;
                encoded.push(Arc::new(LiveEvent::encode(event)));
            }
        }
        // No receivers is fine: the feed winds down on its next turn.
        self.fanout.send(&encoded).await;
    }
}

/// The feed's loop; ends when the last subscriber leaves or on shutdown.
/// On shutdown it also leaves the hub, so that its broadcast sender is
/// dropped and every subscription sees the feed close and ends: that is how
/// live subscriptions stop, without each one watching the shutdown token.
pub(super) async fn run(hub: Arc<Hub>, feed: Arc<Feed>, stopping: CancellationToken) {
    follow_store(&hub, &feed, &stopping).await;
    hub.forget(&feed);
}

async fn follow_store(hub: &Arc<Hub>, feed: &Arc<Feed>, stopping: &CancellationToken) {
    loop {
        let watermark_ms = hub.watermark_ms();
        let more = match poll_once(&hub.store, feed, watermark_ms).await {
            Ok(more) => more,
            Err(error) => {
                tracing::warn!(%error, stream_id = %feed.stream, "live feed could not read the store; retrying");
                false
            }
        };
        if hub.release_if_unused(feed) {
            return;
        }
        if more {
            continue;
        }
        tokio::select! {
            () = stopping.cancelled() => return,
            () = feed.wake.notified() => {}
            () = tokio::time::sleep(hub.next_read_in(watermark_ms)) => {}
        }
    }
}

/// Reads and publishes what lies between the last position and the
/// watermark. Returns whether a full batch was read (there may be more).
async fn poll_once(
    store: &SharedStore,
    feed: &Feed,
    watermark_ms: i64,
) -> Result<bool, StorageError> {
    let after = feed.last();
    if after.created_ms >= watermark_ms {
        return Ok(false);
    }
    let (messages, moderation) = futures::try_join!(
        store.page(&feed.stream, PageStart::After(after), READ_BATCH),
        store.events_after(&feed.stream, after, READ_BATCH),
    )?;
    // If a source returned a full batch, events beyond its last one are not
    // known yet: publish only up to there, so the merge stays in order.
    let messages_full = messages.len() == READ_BATCH;
    let moderation_full = moderation.len() == READ_BATCH;
    let mut bound = Position {
        created_ms: watermark_ms,
        id: ObjectId::from_bytes([0; 12]),
    };
    if let Some(last) = messages.last().filter(|_| messages_full) {
        bound = bound.min(last.position());
    }
    if let Some(last) = moderation.last().filter(|_| moderation_full) {
        bound = bound.min(last.position());
    }
    let mut events: Vec<StreamEvent> = messages
        .into_iter()
        .map(StreamEvent::Message)
        .chain(moderation.into_iter().map(StreamEvent::Moderation))
        .filter(|event| {
            let position = event.position();
            position.created_ms < watermark_ms && position <= bound
        })
        .collect();
    events.sort_by_key(StreamEvent::position);
    feed.publish(events).await;
    Ok(messages_full || moderation_full)
}
