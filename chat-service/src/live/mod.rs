//! Live delivery: per-stream feeds that turn the store's ordered messages
//! and moderation events into one ordered event stream per subscriber.
//!
//! Order and delivery rules (see README "Reading the chat"):
//! - events of a stream are delivered in position order (time, then id),
//!   each at most once per subscription, each with its cursor;
//! - an event is delivered once the stream's *watermark* has passed it:
//!   every local append created earlier has finished, and (with a shared
//!   database) every other live instance has published that its own appends
//!   created earlier have finished ([`watermarks`]), and the optional
//!   `settle` has elapsed;
//! - a subscriber that falls behind its buffer gets a `Gap` event with the
//!   cursor to resume from, and its stream ends: gaps are never silent;
//! - a subscription ends with UNAUTHENTICATED when its token expires.
//! - open subscriptions are capped per connection and per user
//!   ([`limits`]).

pub mod encoded;
mod expiry;
mod fanout;
mod feed;
mod inflight;
mod lease;
pub mod limits;
pub mod subscription;
pub mod watermarks;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

pub use feed::{Delivered, Feed};
pub use inflight::{InFlight, InFlightGuard};
pub use subscription::{REPLAY_LIMIT, subscribe};

use crate::domain::{
    ChatMessage, IdempotencyKey, MessageContent, ModerationEvent, ModerationKind, ObjectId,
    ObjectIdGenerator, Position, Sender, StreamId,
};
use crate::storage::{KeyedAppend, SharedStore, StorageError};

/// A message to append: everything but its id and creation time, which the
/// hub gives it.
#[derive(Debug, Clone)]
pub struct MessageDraft {
    pub stream_id: StreamId,
    pub content: MessageContent,
    pub sender: Sender,
}

/// What [`Hub::append_message`] did.
#[derive(Debug)]
pub enum Appended {
    /// The message is stored.
    Stored(ChatMessage),
    /// An earlier send with the same idempotency key had stored this
    /// message; nothing new was stored.
    Existing(ChatMessage),
}

/// The longest a history read waits for sends in flight
/// ([`Hub::history_horizon_ms`]): the ScyllaDB statement timeout (2 s) ends
/// any such write by then; a slower one (a stalled disk) no longer holds
/// reads back, at the cost of that one message's place in the join.
pub const HISTORY_WAIT_LIMIT: Duration = Duration::from_secs(2);

/// The longest a send waits for this instance's own lease to be renewed
/// when it has run out (the store did not take its watermark for a lease;
/// see [`lease`]) before it is refused as UNAVAILABLE: renewed, the send
/// goes on. Leaves room for the append itself (2 s statement timeout)
/// within the edge's 5 s deadline.
pub const LEASE_WAIT_LIMIT: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy)]
pub struct LiveSettings {
    /// How long after its creation time an event may still be landing from
    /// another instance. Zero for a store no other instance writes to.
    pub settle: Duration,
    /// How often a feed reads the store when nothing local wakes it.
    pub poll_interval: Duration,
    /// Events buffered per stream for subscribers that are behind.
    pub buffer: usize,
    /// Subscribers of a stream woken at once by an event; the feed yields
    /// to other tasks between such batches ([`fanout`]).
    pub fanout_batch: usize,
}

/// See [`Hub::next_read_in`]; `now_ms` is the clock.
fn next_read_in(
    latest_ms: i64,
    watermark_ms: i64,
    now_ms: i64,
    settings: LiveSettings,
) -> Duration {
    if latest_ms < watermark_ms {
        return settings.poll_interval;
    }
    let settle_ms = i64::try_from(settings.settle.as_millis()).unwrap_or(i64::MAX);
    let poll_ms = i64::try_from(settings.poll_interval.as_millis()).unwrap_or(i64::MAX);
    let due_in_ms = latest_ms
        .saturating_add(settle_ms)
        .saturating_add(1)
        .saturating_sub(now_ms);
    Duration::from_millis(u64::try_from(due_in_ms.clamp(1, poll_ms.max(1))).unwrap_or(1))
}

/// All live feeds of this instance.
pub struct Hub {
    store: SharedStore,
    /// The one id generator of this process, so that ids of messages and
    /// events made here grow with time.
    ids: ObjectIdGenerator,
    settings: LiveSettings,
    inflight: Arc<InFlight>,
    /// What the other instances on the same database have finished.
    remote: watermarks::RemoteWatermark,
    /// Whether those instances still wait for this one's appends.
    own_lease: lease::OwnLease,
    feeds: Mutex<HashMap<StreamId, Arc<Feed>>>,
    stopping: CancellationToken,
}

impl Hub {
    pub fn new(
        store: SharedStore,
        settings: LiveSettings,
        stopping: CancellationToken,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            ids: ObjectIdGenerator::new(),
            settings,
            inflight: Arc::new(InFlight::default()),
            remote: watermarks::RemoteWatermark::default(),
            own_lease: lease::OwnLease::default(),
            feeds: Mutex::new(HashMap::new()),
            stopping,
        })
    }

    /// Starts exchanging live watermarks with the other instances on the
    /// same database, if the store has any ([`watermarks`]). Call before
    /// serving: this instance's first watermark is published on return.
    pub async fn start_watermark_exchange(self: &Arc<Self>) -> Result<(), StorageError> {
        watermarks::start(self).await
    }

    /// Registers a local append in flight; see [`InFlight`]. Also takes
    /// the term of this instance's own lease the append must finish in
    /// ([`Self::finish_append`]), waiting for its renewal if it has run out.
    async fn begin_append(&self) -> Result<(InFlightGuard, lease::Term), StorageError> {
        // The term before the creation time: the append's whole life, from
        // the moment its position exists, lies in the term.
        let term = self.own_lease.term(LEASE_WAIT_LIMIT).await.ok_or_else(|| {
            StorageError::Unavailable(
                "this instance could not publish its live watermark for a lease".into(),
            )
        })?;
        Ok((InFlight::begin(&self.inflight), term))
    }

    /// Ends an append begun with [`Self::begin_append`], once the store has
    /// answered `stored`. A stored append is acknowledged only if this
    /// instance's own lease held throughout: otherwise another instance may
    /// have taken this one for dead and read past the append's position
    /// before it landed, and an acknowledged message would be missing from
    /// its subscribers' live feed (see [`lease`]). It is then refused as
    /// UNAVAILABLE, like a write that timed out: it is in history, and a
    /// retry with its idempotency key returns it.
    fn finish_append<T>(
        &self,
        in_flight: InFlightGuard,
        term: lease::Term,
        stream: &StreamId,
        stored: Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        let fenced = !self
            .own_lease
            .held_through(term, tokio::time::Instant::now());
        drop(in_flight);
        self.notify(stream);
        let stored = stored?;
        if fenced {
            tracing::warn!(stream_id = %stream, "append stored after this instance's live lease lapsed; refused as unavailable");
            return Err(StorageError::Unavailable(
                "this instance's live lease lapsed during the append; it may be in history (never live on other instances): retry with the idempotency key".into(),
            ));
        }
        Ok(stored)
    }

    /// A new id, stamped with `at`.
    fn next_id(&self, at: chrono::DateTime<Utc>) -> ObjectId {
        self.ids.next(at)
    }

    /// Stores a new message in its stream's order and wakes the feed. With
    /// an idempotency key (and how long it holds), the key is claimed with
    /// the message, atomically; if another send holds it, that send's
    /// message is returned instead. Live delivery is held back until the
    /// store has answered (see [`InFlight`]).
    pub async fn append_message(
        &self,
        draft: MessageDraft,
        idempotency: Option<(&IdempotencyKey, Duration)>,
    ) -> Result<Appended, StorageError> {
        let (in_flight, term) = self.begin_append().await?;
        let created_at = in_flight.created_at;
        let message = ChatMessage {
            id: self.next_id(created_at).into(),
            stream_id: draft.stream_id,
            content: draft.content,
            sender: draft.sender,
            created_at,
            updated_at: created_at,
        };
        let stored = match idempotency {
            Some((key, window)) => self.store.append_keyed(&message, key, window).await,
            None => self
                .store
                .append(&message)
                .await
                .map(|()| KeyedAppend::Stored),
        };
        let stored = self.finish_append(in_flight, term, &message.stream_id, stored)?;
        Ok(match stored {
            KeyedAppend::Stored => Appended::Stored(message),
            KeyedAppend::Existing(original) => Appended::Existing(*original),
        })
    }

    /// Stores a moderation event in `stream`'s order and wakes the feed.
    pub async fn record_event(
        &self,
        stream: StreamId,
        kind: ModerationKind,
    ) -> Result<(), StorageError> {
        let (in_flight, term) = self.begin_append().await?;
        let event = ModerationEvent {
            id: self.next_id(in_flight.created_at),
            stream_id: stream,
            created_at: in_flight.created_at,
            kind,
        };
        let stored = self.store.append_event(&event).await;
        self.finish_append(in_flight, term, &stream, stored)
    }

    /// Something new is in the store for `stream`: wake its feed, if any.
    pub fn notify(&self, stream: &StreamId) {
        let feeds = self.feeds.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(feed) = feeds.get(stream) {
            feed.wake.notify_one();
        }
    }

    /// Everything created before this time (ms) may be delivered.
    pub fn watermark_ms(&self) -> i64 {
        let settle_ms = i64::try_from(self.settings.settle.as_millis()).unwrap_or(i64::MAX);
        let settled = Utc::now().timestamp_millis().saturating_sub(settle_ms);
        self.inflight
            .watermark_ms()
            .min(settled)
            .min(self.remote.ms())
    }

    /// Wakes every feed: the remote watermark moved forward.
    fn wake_all(&self) {
        let feeds = self.feeds.lock().unwrap_or_else(|p| p.into_inner());
        for feed in feeds.values() {
            feed.wake.notify_one();
        }
    }

    /// The start of a subscription without a cursor: the position of "now"
    /// at acceptance, after every event created up to the current
    /// millisecond. Returns once the clock has moved past that millisecond,
    /// so a send that starts after the subscriber learns it is accepted is
    /// created after this position (on any instance whose clock agrees with
    /// this one's): it is delivered, and nothing sent before is. The same
    /// start on both stores, whatever the feed's own position (with a
    /// shared database a new feed starts `settle` in the past). Costs the
    /// subscription at most about two milliseconds.
    pub async fn acceptance_position(&self) -> Position {
        let now_ms = Utc::now().timestamp_millis();
        while Utc::now().timestamp_millis() <= now_ms {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        Position {
            created_ms: now_ms,
            id: ObjectId::from_bytes([0xff; 12]),
        }
    }

    /// Waits until every local append created up to now has finished
    /// (stored or failed) and the clock has moved past now; returns that
    /// "now" (ms), the *history horizon*.
    ///
    /// A page of the newest history cut at the horizon (messages created at
    /// or before it) holds no message while an earlier one of this instance
    /// is still on its way to the store: without this, a reader could see a
    /// message whose predecessor lands a moment later, subscribe after it and
    /// never get the predecessor (a gap the join-live recipe would hit under
    /// concurrent sends). Costs a history read about one millisecond, plus
    /// the remaining write time of sends already in flight, at most
    /// [`HISTORY_WAIT_LIMIT`]. Writes made through other instances are not
    /// waited for: that is what `settle` does for live delivery, and too long
    /// a wait for a read.
    pub async fn history_horizon_ms(&self) -> i64 {
        let horizon_ms = Utc::now().timestamp_millis();
        let give_up = tokio::time::Instant::now() + HISTORY_WAIT_LIMIT;
        while self.inflight.watermark_ms() <= horizon_ms && tokio::time::Instant::now() < give_up {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        horizon_ms
    }

    /// How long a feed that has read up to `watermark_ms` waits for the
    /// next read when nothing wakes it: the poll interval, or less when a
    /// local append is at or past that watermark. Such an append becomes
    /// deliverable `settle` + 1 ms after its creation, and the wake its
    /// send gave may have come too early, within its creation millisecond
    /// (the watermark excludes the current millisecond, see
    /// [`InFlight::watermark_ms`]): without this, it would wait a whole
    /// poll interval.
    fn next_read_in(&self, watermark_ms: i64) -> Duration {
        // Held back by other instances' watermarks (or this one's own as
        // published, see `watermarks`): reading again before the exchange
        // moves them would find the same, and the exchange wakes the feed
        // when they move.
        if self.remote.ms() <= self.inflight.latest_ms() {
            return self.settings.poll_interval;
        }
        next_read_in(
            self.inflight.latest_ms(),
            watermark_ms,
            Utc::now().timestamp_millis(),
            self.settings,
        )
    }

    pub fn stopping(&self) -> &CancellationToken {
        &self.stopping
    }

    pub fn store(&self) -> &SharedStore {
        &self.store
    }

    /// The feed of `stream`, started if needed, and a receiver on it.
    pub fn subscribe(
        self: &Arc<Self>,
        stream: StreamId,
    ) -> (tokio::sync::broadcast::Receiver<Delivered>, Position) {
        let mut feeds = self.feeds.lock().unwrap_or_else(|p| p.into_inner());
        let feed = feeds.entry(stream).or_insert_with(|| {
            // A new feed starts below the watermark: what is older is
            // history (replayed from the store), what is newer is live.
            let start_after = Position {
                created_ms: self.watermark_ms() - 1,
                id: ObjectId::from_bytes([0xff; 12]),
            };
            let feed = Arc::new(Feed::new(
                stream,
                start_after,
                self.settings.buffer,
                self.settings.fanout_batch,
            ));
            tokio::spawn(feed::run(
                Arc::clone(self),
                Arc::clone(&feed),
                self.stopping.clone(),
            ));
            feed
        });
        feed.subscribe()
    }

    /// Removes `feed` if nobody listens any more; true if it should stop.
    /// Checked under the lock `subscribe` takes, so that nobody joins a feed
    /// that is stopping.
    fn release_if_unused(&self, feed: &Arc<Feed>) -> bool {
        let feeds = self.feeds.lock().unwrap_or_else(|p| p.into_inner());
        if feed.subscriber_count() > 0 {
            return false;
        }
        Self::remove(feeds, feed);
        true
    }

    /// Removes `feed` from the hub (if it is still the stream's feed).
    fn forget(&self, feed: &Arc<Feed>) {
        Self::remove(self.feeds.lock().unwrap_or_else(|p| p.into_inner()), feed);
    }

    fn remove(
        mut feeds: std::sync::MutexGuard<'_, HashMap<StreamId, Arc<Feed>>>,
        feed: &Arc<Feed>,
    ) {
        if feeds
            .get(&feed.stream)
            .is_some_and(|current| Arc::ptr_eq(current, feed))
        {
            feeds.remove(&feed.stream);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(settle_ms: u64) -> LiveSettings {
        LiveSettings {
            settle: Duration::from_millis(settle_ms),
            poll_interval: Duration::from_millis(100),
            buffer: 16,
            fanout_batch: 64,
        }
    }

    #[test]
    fn a_feed_reads_again_next_millisecond_for_a_local_append_it_could_not_pass_yet() {
        // Settle 0: the append was made in the millisecond the feed read in.
        let wait = next_read_in(1_000, 1_000, 1_000, settings(0));
        assert_eq!(wait, Duration::from_millis(1));
    }

    #[test]
    fn with_a_settle_window_the_read_is_due_when_the_newest_append_settles() {
        let wait = next_read_in(1_000, 980, 1_000, settings(30));
        assert_eq!(wait, Duration::from_millis(31));
        // Never later than the poll interval.
        let wait = next_read_in(1_000, 0, 1_000, settings(1_000));
        assert_eq!(wait, Duration::from_millis(100));
    }

    #[test]
    fn with_nothing_local_pending_the_feed_polls_at_its_interval() {
        let wait = next_read_in(900, 1_000, 1_000, settings(0));
        assert_eq!(wait, Duration::from_millis(100));
    }
}
