//! One SSE client of a shared feed: what it has not read yet is the ring
//! from its sequence number on; it has no task and no queue of its own (its
//! response body polls it, as chat-service's subscriptions are polled).
//!
//! - It skips what is at or before its start (its cursor, or its acceptance
//!   cursor): frames are in position order, so this is exact.
//! - It is *lagging* when, once it has caught up with the feed, it falls more
//!   than [`Limits::event_buffer`] frames behind the head, or (while still
//!   replaying from the ring) the frame it needs has been evicted: it gets a
//!   `gap` at the cursor of the last event it was given, and ends (the
//!   relay's contract).
//! - It ends when its token expires: `error` with the 401 envelope's errors,
//!   at the token's `valid_until` or before any frame created after it,
//!   whichever comes first, so nothing created after that is delivered.
//!
//! [`Limits::event_buffer`]: crate::config::Limits::event_buffer

use std::{collections::VecDeque, convert::Infallible, pin::Pin, sync::Arc, time::Duration};

use bytes::Bytes;
use tokio::{sync::watch, time::Sleep};

use super::{
    feed::{Feed, FeedEnd},
    frame,
    position::Position,
};
use crate::{
    error::ApiError,
    event_stream::{Shutdown, StreamSlot},
};

/// Frames taken from the ring per lock.
const BATCH: usize = 64;

/// What ends a client's stream, with what chat-service says for it.
const TOKEN_EXPIRED: &str = "token has expired";

pub struct Client {
    feed: Arc<Feed>,
    next_seq: u64,
    /// Frames at or before this are not for this client.
    after: Position,
    /// Where this client resumes: the last event it was given, else its start.
    last_cursor: String,
    caught_up: bool,
    buffer: u64,
    valid_until_ms: i64,
    expires: tokio::time::Instant,
    head: watch::Receiver<u64>,
    pending: VecDeque<Bytes>,
    /// Sent after `pending`, then the stream ends.
    last_word: Option<Option<Bytes>>,
    shutdown: Shutdown,
    keep_alive: Duration,
    /// Fires after `keep_alive` without a frame; pushed later by each frame.
    /// One timer per client for its life, as is `expiry`: a new `sleep` per
    /// wait was two timer registrations per copy (5-6% of an edge's samples
    /// with 10,000 viewers, BENCHMARKS.md 4c; an A/B was within the noise).
    idle: Pin<Box<Sleep>>,
    expiry: Pin<Box<Sleep>>,
    delivered: u64,
    _slot: StreamSlot,
}

/// Where a client starts and until when it may read.
pub struct Start {
    pub seq: u64,
    pub after: Position,
    pub cursor: String,
    pub valid_until_ms: i64,
    pub expires: tokio::time::Instant,
}

impl Client {
    /// A client attached to `feed` (see [`Feed::attach`]).
    pub fn new(feed: Arc<Feed>, start: Start, slot: StreamSlot, shutdown: Shutdown) -> Self {
        let head = feed.watch();
        Self {
            feed,
            next_seq: start.seq,
            after: start.after,
            last_cursor: start.cursor,
            caught_up: false,
            buffer: slot.buffer() as u64,
            valid_until_ms: start.valid_until_ms,
            expires: start.expires,
            head,
            pending: VecDeque::new(),
            last_word: None,
            shutdown,
            keep_alive: slot.keep_alive(),
            idle: Box::pin(tokio::time::sleep(slot.keep_alive())),
            expiry: Box::pin(tokio::time::sleep_until(start.expires)),
            delivered: 0,
            _slot: slot,
        }
    }

    /// The response body: the client's frames until it ends.
    pub fn into_body(self) -> impl futures::Stream<Item = Result<Bytes, Infallible>> + Send {
        futures::stream::unfold(self, |mut client| async move {
            let bytes = client.next().await?;
            Some((Ok(bytes), client))
        })
    }

    #[cfg(test)]
    pub async fn next_for_tests(&mut self) -> Option<Bytes> {
        self.next().await
    }

    async fn next(&mut self) -> Option<Bytes> {
        loop {
            if let Some(bytes) = self.pending.pop_front() {
                // Moving a deadline later does not touch tokio's timer
                // wheel: it is checked when the earlier one fires.
                let idle_until = tokio::time::Instant::now() + self.keep_alive;
                self.idle.as_mut().reset(idle_until);
                return Some(bytes);
            }
            if let Some(last_word) = self.last_word.take() {
                // Ends after this, whatever it is.
                self.last_word = Some(None);
                return last_word;
            }
            if tokio::time::Instant::now() >= self.expires {
                self.say_last(Some(expired()));
                continue;
            }
            // Marks the head seen before reading the ring, so that a frame
            // published after the read wakes the wait below.
            self.head.borrow_and_update();
            if self.collect() {
                continue;
            }
            tokio::select! {
                changed = self.head.changed() => {
                    if changed.is_err() {
                        // The feed is gone without an end (cannot happen
                        // while this client holds it); end cleanly.
                        self.say_last(None);
                    }
                }
                () = &mut self.expiry => {}
                () = self.shutdown.cancelled() => self.say_last(None),
                () = &mut self.idle => {
                    let idle_until = tokio::time::Instant::now() + self.keep_alive;
                    self.idle.as_mut().reset(idle_until);
                    return Some(frame::keep_alive());
                }
            }
        }
    }

    /// Takes what the ring has for this client into `pending`, or decides
    /// how it ends; `false` when there is nothing yet.
    fn collect(&mut self) -> bool {
        let ring = self.feed.lock();
        let head = ring.head_seq();
        if self.next_seq < ring.front_seq()
            || (self.caught_up && head.saturating_sub(self.next_seq) > self.buffer)
        {
            drop(ring);
            tracing::info!(
                stream_id = %self.feed.stream_id,
                "event stream client fell behind; sending a gap"
            );
            let gap = frame::gap(
                &self.last_cursor,
                "this client fell behind the live chat: reconnect with the gap's id as Last-Event-ID",
            );
            self.say_last(Some(gap));
            return true;
        }
        let mut taken = 0;
        while taken < BATCH && self.next_seq < head {
            let Some(frame) = ring.get(self.next_seq) else {
                break;
            };
            if frame.position.created_ms > self.valid_until_ms {
                drop(ring);
                self.say_last(Some(expired()));
                return true;
            }
            self.next_seq += 1;
            taken += 1;
            if frame.position <= self.after {
                continue;
            }
            self.pending.push_back(frame.bytes.clone());
            self.last_cursor.clear();
            self.last_cursor.push_str(&frame.cursor);
            self.delivered += 1;
        }
        if self.next_seq == head {
            self.caught_up = true;
            if let Some(end) = ring.end.clone() {
                drop(ring);
                let last_word = match end {
                    FeedEnd::Completed | FeedEnd::Shutdown => None,
                    FeedEnd::Failed(error) => Some(error),
                    FeedEnd::Gap(reason) => Some(frame::gap(&self.last_cursor, &reason)),
                };
                self.say_last(last_word);
                return true;
            }
        }
        taken > 0
    }

    fn say_last(&mut self, last_word: Option<Bytes>) {
        if self.last_word.is_none() {
            self.last_word = Some(last_word);
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        tracing::info!(
            stream_id = %self.feed.stream_id,
            events = self.delivered,
            "event stream closed"
        );
        self.feed.detach();
    }
}

fn expired() -> Bytes {
    frame::error(&ApiError::Unauthenticated(vec![TOKEN_EXPIRED.to_owned()]))
}
